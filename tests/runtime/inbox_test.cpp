// Inbox (runtime/src/local_queue.hpp): the bounded MPSC ring through which a worker
// hands a task to the worker whose task woke it. Each test targets one invariant of
// its header comment: FIFO and exact capacity (I1/I2: a full ring refuses instead of
// overwriting), every task delivered exactly once under concurrent producers (I1:
// one claim per position), per-producer order, and maybe_nonempty() staying true
// while a claimed position is unpublished or untaken (I3: the owner never sleeps on
// a task in its inbox).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "../../runtime/src/local_queue.hpp"

using spindle::detail::Inbox;
using spindle::detail::TaskHeader;

namespace {
// Fake task pointers: the ring never dereferences them. Values > 0, 8-aligned.
TaskHeader* fake(std::uintptr_t producer, std::uintptr_t seq) {
    return reinterpret_cast<TaskHeader*>(((producer << 40) | (seq + 1)) << 3);
}
std::uintptr_t producer_of(TaskHeader* t) { return reinterpret_cast<std::uintptr_t>(t) >> 43; }
std::uintptr_t seq_of(TaskHeader* t) { return ((reinterpret_cast<std::uintptr_t>(t) >> 3) & ((std::uintptr_t{1} << 40) - 1)) - 1; }
}  // namespace

TEST(Inbox, FifoAndExactCapacity) {
    Inbox<8> box;
    EXPECT_FALSE(box.maybe_nonempty());
    EXPECT_EQ(box.pop(), nullptr);
    for (int round = 0; round < 3; ++round) {  // wraps the free-running indices
        for (std::uintptr_t i = 0; i < 8; ++i) ASSERT_TRUE(box.push(fake(0, i)));
        EXPECT_FALSE(box.push(fake(0, 99))) << "a full ring must refuse, not overwrite";
        EXPECT_TRUE(box.maybe_nonempty());
        for (std::uintptr_t i = 0; i < 8; ++i) ASSERT_EQ(box.pop(), fake(0, i));
        EXPECT_EQ(box.pop(), nullptr);
        EXPECT_FALSE(box.maybe_nonempty());
    }
    // Interleaved: one slot freed is one slot reusable.
    for (std::uintptr_t i = 0; i < 8; ++i) ASSERT_TRUE(box.push(fake(1, i)));
    ASSERT_EQ(box.pop(), fake(1, 0));
    ASSERT_TRUE(box.push(fake(1, 8)));
    EXPECT_FALSE(box.push(fake(1, 9)));
    for (std::uintptr_t i = 1; i <= 8; ++i) ASSERT_EQ(box.pop(), fake(1, i));
}

TEST(Inbox, ConcurrentProducersDeliverEachTaskOnceInProducerOrder) {
    constexpr std::uintptr_t kProducers = 3;
    const std::uintptr_t per = 50'000 * SPINDLE_STRESS_SCALE;
    Inbox<64> box;
    std::atomic<bool> go{false};
    std::vector<std::thread> producers;
    std::atomic<std::uint64_t> refused{0};
    for (std::uintptr_t p = 0; p < kProducers; ++p) {
        producers.emplace_back([&, p] {
            while (!go.load()) std::this_thread::yield();
            for (std::uintptr_t i = 0; i < per; ++i) {
                while (!box.push(fake(p, i))) {  // full: the owner is behind
                    refused.fetch_add(1, std::memory_order_relaxed);
                    std::this_thread::yield();
                }
            }
        });
    }
    std::vector<std::uintptr_t> next(kProducers, 0);
    std::uintptr_t received = 0;
    go.store(true);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (received < kProducers * per) {
        TaskHeader* t = box.pop();
        if (t == nullptr) {
            ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "tasks lost: received " << received;
            continue;
        }
        const std::uintptr_t p = producer_of(t);
        ASSERT_LT(p, kProducers);
        ASSERT_EQ(seq_of(t), next[p]) << "producer " << p << ": a task lost, doubled or reordered";
        ++next[p];
        ++received;
    }
    for (auto& th : producers) th.join();
    EXPECT_EQ(box.pop(), nullptr);
    EXPECT_FALSE(box.maybe_nonempty());
    for (std::uintptr_t p = 0; p < kProducers; ++p) EXPECT_EQ(next[p], per);
}

TEST(Inbox, MaybeNonemptyUntilTheLastTaskIsTaken) {
    // The owner's park() re-check: after any completed push, maybe_nonempty() is true
    // until the owner popped that task (a producer racing with the check is covered
    // by the Dekker pair in Scheduler::park / migrate, see scheduler.hpp).
    Inbox<4> box;
    std::atomic<int> phase{0};
    std::thread producer([&] {
        for (std::uintptr_t i = 0; i < 10'000; ++i) {
            while (!box.push(fake(0, i))) std::this_thread::yield();
            phase.store(static_cast<int>(i + 1));
        }
    });
    std::uintptr_t taken = 0;
    while (taken < 10'000) {
        const int published = phase.load();
        if (static_cast<std::uintptr_t>(published) > taken) {
            ASSERT_TRUE(box.maybe_nonempty()) << "a pushed task is invisible to the owner's re-check";
        }
        if (TaskHeader* t = box.pop()) {
            ASSERT_EQ(seq_of(t), taken);
            ++taken;
        }
    }
    producer.join();
    EXPECT_FALSE(box.maybe_nonempty());
}

// ───────────── run queues: what a thief may take ("Stealing" in worker.cpp) ─────────────

TEST(RunQueue, WorthStealingNeedsABacklogOrAMark) {
    using spindle::detail::kStealMin;
    using spindle::detail::LocalQueue;
    LocalQueue q, thief;
    EXPECT_FALSE(q.worth_stealing());
    q.mark_stealable();
    EXPECT_FALSE(q.worth_stealing()) << "an empty queue is never worth a steal, marked or not";
    for (std::uintptr_t i = 0; i < 10; ++i) ASSERT_TRUE(q.push(fake(0, i)));
    EXPECT_FALSE(q.worth_stealing()) << "a mark covers only the tasks queued when it was made";
    q.mark_stealable();
    EXPECT_TRUE(q.worth_stealing());
    // A steal takes the older half (rounded up); the rest stays marked (found in review:
    // a flag that the steal cleared left it to the owner however long its task ran).
    TaskHeader* got = q.steal_into(thief);
    ASSERT_NE(got, nullptr);
    EXPECT_EQ(q.approx_size(), 5U);
    EXPECT_TRUE(q.worth_stealing()) << "what a steal left behind is still marked";
    // The owner runs the marked tasks down: the mark expires by itself, and tasks queued
    // after it (a later phase, say tasks contending for a Semaphore) are not marked
    // (found in review: a flag nobody cleared stayed on for them).
    while (q.pop() != nullptr) {
    }
    for (std::uintptr_t i = 10; i < 13; ++i) ASSERT_TRUE(q.push(fake(0, i)));
    EXPECT_FALSE(q.worth_stealing()) << "a mark outlived the tasks it covered";
    // A backlog of kStealMin tasks is worth stealing without a mark.
    for (std::uintptr_t i = 13; q.approx_size() < kStealMin - 1; ++i) ASSERT_TRUE(q.push(fake(0, i)));
    EXPECT_FALSE(q.worth_stealing());
    ASSERT_TRUE(q.push(fake(1, 0)));
    EXPECT_TRUE(q.worth_stealing());
    EXPECT_NE(q.pop(), nullptr);
    EXPECT_FALSE(q.worth_stealing()) << "run down below the threshold, unmarked";
}
