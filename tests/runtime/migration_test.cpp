// Coroutines that migrate between workers between two thread-local accesses (issue
// 17). The inline fast paths that run inside a coroutine body — Lock/Semaphore/Queue
// await_ready (the cooperative budget), Lock::try_acquire/release (debug accounting) —
// reach the worker's thread-locals only through out-of-line accessors
// (task_header.hpp, "thread-locals and coroutines that migrate"). If a compiler kept a
// thread-local's address across a suspension, a body resumed on another worker would
// touch the first worker's copy: a data race that ThreadSanitizer reports (this test
// runs in the TSan build), and a budget that never runs out on the new worker.
#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "runtime_test_util.hpp"

using namespace std::chrono_literals;
using spindle::Task;

namespace {

struct Shared {
    spindle::Lock lock;
    spindle::Semaphore sem{2};
    spindle::Queue<int> queue{0};
    std::atomic<long> migrations{0};
    std::atomic<long> ops{0};
};

// Fast-path operations (no suspension: the budget is drawn, debug accounting runs),
// then a suspension that resumes wherever the scheduler puts it, then more of them —
// round after round until enough bodies have been seen to move (or a generous
// deadline passes, which the test then reports).
Task<void> body(Shared& s, long target, std::chrono::steady_clock::time_point deadline) {
    for (int r = 0; s.migrations.load() < target && std::chrono::steady_clock::now() < deadline; ++r) {
        const auto before = std::this_thread::get_id();
        for (int k = 0; k < 8; ++k) {
            co_await s.lock.acquire();  // await_ready: coop_consume(); try_acquire: note_lock_acquired()
            s.lock.release();           // note_lock_released()
            co_await s.sem.acquire();
            s.sem.release();
            co_await s.queue.put(k);
            (void)co_await s.queue.get();
            s.ops.fetch_add(3, std::memory_order_relaxed);  // relaxed: a count read after the join
        }
        // Resumed by the blocking pool's thread or by a timer: the wake comes from
        // outside the task's worker, so the task lands on whichever worker takes it.
        if (r % 2 == 0) co_await spindle::to_thread([] {});
        else co_await spindle::sleep(50us);
        if (std::this_thread::get_id() != before) s.migrations.fetch_add(1, std::memory_order_relaxed);  // relaxed: as above
    }
}

Task<void> run_all(Shared& s, int tasks, long target) {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    std::vector<spindle::JoinHandle<void>> hs;
    for (int i = 0; i < tasks; ++i) hs.push_back(spindle::spawn(body(s, target, deadline)));
    for (auto& h : hs) co_await h;
}

}  // namespace

TEST(Migration, FastPathsAfterMovingToAnotherWorker) {
    for (const bool debug : {false, true}) {
        spindle::Runtime rt(spindle::RuntimeOptions{.workers = 2, .debug = debug});
        Shared s;
        const long target = static_cast<long>(spindle::testing::stress_size(200));
        rt.block_on(run_all(s, 8, target));
        EXPECT_EQ(s.ops.load() % 3, 0);
        EXPECT_FALSE(s.lock.locked());
        EXPECT_EQ(s.sem.value(), 2);
        EXPECT_EQ(s.queue.qsize(), 0U);
        // The test is only worth something if bodies did move between workers.
        EXPECT_GE(s.migrations.load(), target) << "too few resumptions on another worker in 20 s (debug=" << debug << ")";
    }
}
