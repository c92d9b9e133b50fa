// tests/engine/ebr_test.cpp — epoch-based reclamation (runtime/include/spindle/runtime/
// detail/ebr.hpp) on its own: readers pinned with ebr::Guard follow a shared pointer
// that a writer keeps replacing and retiring. An object is freed only when no pinned
// thread can hold it, so a reader must never see one that its deleter has poisoned.
//
// What each test would catch:
//   - a collector that frees too early (at the next epoch instead of two later, or
//     without scanning the records): readers see the poison (and ASan reports the
//     read of freed memory in the sanitizer builds). Both mutations failed 3 runs of 3;
//   - a pin whose store a collector misses (the fence pair: a seq_cst fence on both
//     sides, or the light/heavy pair of asym_fence.hpp) only in principle: the readers
//     and the writer run pinned to two CPUs at once (time sliced on one CPU, every
//     switch is a full barrier), but the window — a pin store still in the store buffer
//     while the object is retired and two epochs pass — is a few dozen cycles, and with
//     the collector's heavy fence removed the test passed 5 runs of 5. The pair's
//     argument is in asym_fence.hpp and ebr.cpp (try_advance);
//   - garbage that is never freed: approx_pending() must come back to 0 after the
//     threads have exited (their limbo lists go to the orphans) and collect().
// The same binary runs under SPINDLE_NO_MEMBARRIER=1 (ctest: runtime.symmetric_fences.ebr).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "cpu_pin.hpp"
#include "spindle/runtime/detail/ebr.hpp"

namespace {

namespace ebr = spindle::detail::ebr;

constexpr std::uint64_t kAlive = 0x600DF00D600DF00DULL;
constexpr std::uint64_t kPoison = 0xDEADBEEFDEADBEEFULL;

struct Node {
    std::uint64_t pad[2] = {0, 0};  // the allocator may reuse the first words of a freed block
    std::atomic<std::uint64_t> value{kAlive};
};

void poison_and_free(void* p) noexcept {
    auto* n = static_cast<Node*>(p);
    // relaxed: a reader that still holds the node (the bug this test looks for) may see it.
    n->value.store(kPoison, std::memory_order_relaxed);
    delete n;
}

using spindle::testing::pin_to_nth_cpu;

TEST(Ebr, PinnedReadersNeverSeeARetiredObjectFreed) {
    std::atomic<Node*> shared{new Node};
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> bad{0}, reads{0};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
    constexpr std::uint64_t kReplacements = 400'000;

    std::vector<std::thread> readers;
    for (int r = 0; r < 3; ++r) {
        readers.emplace_back([&, r] {
            (void)pin_to_nth_cpu(r % 2);
            std::uint64_t n = 0, seen_bad = 0;
            // relaxed: a flag polled between operations.
            while (!stop.load(std::memory_order_relaxed)) {
                const ebr::Guard g;
                // acquire: pairs with the writer's release exchange (the node's fields).
                Node* p = shared.load(std::memory_order_acquire);
                for (int k = 0; k < 4; ++k)  // hold it across a few reads
                    // relaxed: compared only; a poisoned node is the bug.
                    if (p->value.load(std::memory_order_relaxed) != kAlive) ++seen_bad;
                ++n;
            }
            bad.fetch_add(seen_bad);
            reads.fetch_add(n);
        });
    }
    std::thread writer([&] {
        (void)pin_to_nth_cpu(1);
        for (std::uint64_t i = 0; i < kReplacements && std::chrono::steady_clock::now() < deadline; ++i) {
            // acq_rel: publishes the new node (release) and takes the old one's writes.
            Node* old = shared.exchange(new Node, std::memory_order_acq_rel);
            ebr::retire(old, &poison_and_free);
        }
        stop.store(true);
    });
    writer.join();
    for (auto& t : readers) t.join();
    EXPECT_EQ(bad.load(), 0U) << "a pinned reader saw a retired object freed (of " << reads.load() << " reads)";
    EXPECT_GT(reads.load(), 0U);

    ebr::retire(shared.exchange(nullptr), &poison_and_free);
    // Every thread that retired has exited (its limbo went to the orphans) but this one:
    // a few collections free everything, pinned by nobody.
    for (int i = 0; i < 8 && ebr::approx_pending() > 0; ++i) ebr::collect();
    EXPECT_EQ(ebr::approx_pending(), 0) << "retired objects were never freed";
}

TEST(Ebr, NestedPinsAndRetiringWhilePinned) {
    // A thread that retires while pinned (the waiter engine does) frees its object only
    // after it unpins and the epoch has moved on twice; nested guards unpin at the outer.
    std::atomic<bool> freed{false};
    struct Flagged {
        std::atomic<bool>* flag;
    };
    auto* f = new Flagged{&freed};
    {
        const ebr::Guard outer;
        {
            const ebr::Guard inner;
            ebr::retire(f, [](void* p) noexcept {
                auto* x = static_cast<Flagged*>(p);
                x->flag->store(true);
                delete x;
            });
        }
        // Still pinned (the outer guard): nothing this thread may hold can be freed.
        ebr::collect();
        EXPECT_FALSE(freed.load()) << "freed while its retirer was still pinned";
    }
    for (int i = 0; i < 8 && !freed.load(); ++i) ebr::collect();
    EXPECT_TRUE(freed.load());
}

}  // namespace
