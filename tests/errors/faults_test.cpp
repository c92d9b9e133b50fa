// tests/errors/faults_test.cpp — faults: exceptions thrown inside critical sections,
// to_thread jobs, TaskGroup and gather children, and std::bad_alloc from a
// coroutine-frame allocation. Each must reach the right caller with its exact type,
// leave the primitives usable, leak nothing (run under ASan/LSan) and deadlock
// nowhere (every test has a ctest TIMEOUT).
#include <atomic>
#include <new>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <vector>

#include <spindle/runtime/detail/fault_injection.hpp>

#include "co_test.hpp"

using namespace std::chrono_literals;
using spindle::JoinHandle;
using spindle::Task;
using spindle::testing::one_worker_virtual;
namespace fault = spindle::detail::fault;

namespace {

struct Boom : std::runtime_error {
    explicit Boom(int i) : std::runtime_error("boom " + std::to_string(i)), id(i) {}
    int id;
};

template <class Guarded>
Task<void> throw_inside(Guarded& prim, int id) {
    auto g = co_await prim.scoped();
    co_await spindle::yield_now();  // others queue behind us
    throw Boom(id);
}

Task<int> enter(spindle::Lock& l, std::atomic<int>& inside) {
    auto g = co_await l.scoped();
    inside.fetch_add(1);
    co_return 1;
}

Task<int> small(int v) { co_return v; }

// `started` counts bodies that began: a child cancelled before it first runs never
// runs its body (asyncio), so the tests below wait for every parked child to start
// before one fails, instead of assuming the start order of a 2-worker runtime.
Task<int> parked_until_cancelled(spindle::Event& never, std::atomic<int>& cancelled, std::atomic<int>& started) {
    started.fetch_add(1);
    try {
        co_await never.wait();
    } catch (...) {  // CancelledError is not a std::exception
        cancelled.fetch_add(1);
        throw;
    }
    co_return 0;
}

Task<int> fails_after_yield(int id) {
    co_await spindle::yield_now();
    throw Boom(id);
}

Task<int> fails_once_started(int id, const std::atomic<int>& started, int n) {
    while (started.load() < n) co_await spindle::yield_now();
    throw Boom(id);
}

}  // namespace

// ───────────────────────── critical sections ─────────────────────────

CO_TEST(Faults, ExceptionInsideALockScopeReleasesItAndTheQueueMovesOn) {
    spindle::Lock lock;
    std::atomic<int> inside{0};
    auto thrower = spindle::spawn(throw_inside(lock, 1));
    // On 2 workers the thrower may take the lock, yield and throw between two of our
    // looks: stop waiting once it is done too (a plain `!lock.locked()` hung, CI).
    while (!lock.locked() && !thrower.done()) co_await spindle::yield_now();
    std::vector<JoinHandle<int>> hs;
    for (int i = 0; i < 8; ++i) hs.push_back(spindle::spawn(enter(lock, inside)));
    int caught = 0;
    try {
        co_await thrower;
    } catch (const Boom& b) {
        caught = b.id;
    }
    EXPECT_EQ(caught, 1) << "the exception reaches the awaiter of the task, with its type";
    int sum = 0;
    for (auto& h : hs) {
        int v = co_await h;
        sum += v;
    }
    EXPECT_EQ(sum, 8);
    EXPECT_EQ(inside.load(), 8) << "every waiter behind the failed critical section got the lock";
    EXPECT_FALSE(lock.locked());
}

CO_TEST(Faults, ExceptionInsideASemaphoreScopeGivesThePermitBack) {
    spindle::Semaphore sem(2);
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < 6; ++i) hs.push_back(spindle::spawn(throw_inside(sem, i)));
    int failures = 0;
    for (auto& h : hs) {
        try {
            co_await h;
        } catch (const Boom&) {
            ++failures;
        }
    }
    EXPECT_EQ(failures, 6);
    EXPECT_EQ(sem.value(), 2) << "every permit came back through the guards";
    EXPECT_FALSE(sem.locked());
}

CO_TEST_OPTS(Faults, ExceptionInsideAConditionScopeReleasesTheLock, one_worker_virtual()) {
    spindle::Condition cond;
    auto h = spindle::spawn(throw_inside(cond, 3));
    bool caught = false;
    try {
        co_await h;
    } catch (const Boom&) {
        caught = true;
    }
    EXPECT_TRUE(caught);
    EXPECT_FALSE(cond.locked());
    auto g = co_await cond.scoped();
    EXPECT_TRUE(cond.locked());
}

// ───────────────────────── to_thread ─────────────────────────

CO_TEST(Faults, ExceptionInsideAToThreadJobReachesTheTaskWithItsType) {
    int caught = 0;
    try {
        int v = co_await spindle::to_thread([]() -> int { throw Boom(5); });
        (void)v;
    } catch (const Boom& b) {
        caught = b.id;
    }
    EXPECT_EQ(caught, 5);
    bool bad_alloc = false;
    try {
        co_await spindle::to_thread([] { throw std::bad_alloc(); });
    } catch (const std::bad_alloc&) {
        bad_alloc = true;
    }
    EXPECT_TRUE(bad_alloc);
    // The blocking pool is still serving.
    int ok = co_await spindle::to_thread([] { return 42; });
    EXPECT_EQ(ok, 42);
}

// ───────────────────────── TaskGroup and gather ─────────────────────────

CO_TEST(Faults, FailingTaskGroupChildCancelsSiblingsAndJoinRethrows) {
    spindle::Event never;
    std::atomic<int> cancelled{0}, started{0};
    int caught = -1;
    {
        spindle::TaskGroup group;
        for (int i = 0; i < 4; ++i) (void)group.spawn(parked_until_cancelled(never, cancelled, started));
        (void)group.spawn(fails_once_started(9, started, 4));
        try {
            co_await group.join();
        } catch (const Boom& b) {
            caught = b.id;
        }
    }
    EXPECT_EQ(caught, 9);
    EXPECT_EQ(cancelled.load(), 4) << "the first failure cancels every sibling, join waits for them";
}

CO_TEST(Faults, GatherRethrowsTheFirstFailureAfterTheOthersFinish) {
    spindle::Event never;
    std::atomic<int> cancelled{0}, started{0};
    int caught = -1;
    try {
        auto r = co_await spindle::gather(parked_until_cancelled(never, cancelled, started),
                                          fails_once_started(4, started, 2),
                                          parked_until_cancelled(never, cancelled, started));
        (void)r;
    } catch (const Boom& b) {
        caught = b.id;
    }
    EXPECT_EQ(caught, 4);
    EXPECT_EQ(cancelled.load(), 2) << "no child outlives gather";
    std::vector<Task<int>> ts;
    for (int i = 0; i < 5; ++i) ts.push_back(i == 2 ? fails_after_yield(i) : small(i));
    caught = -1;
    try {
        auto r = co_await spindle::gather(std::move(ts));
        (void)r;
    } catch (const Boom& b) {
        caught = b.id;
    }
    EXPECT_EQ(caught, 2);
}

// ───────────────────────── bad_alloc from a frame allocation ─────────────────────────

TEST(Faults, FrameAllocationFailureReachesTheCallerOfSpawnFromOutside) {
    spindle::Runtime rt(spindle::RuntimeOptions{.workers = 2});
    fault::fail_frame_allocation_after(1);
    bool caught = false;
    try {
        (void)rt.spawn(small(1));
    } catch (const std::bad_alloc&) {
        caught = true;
    }
    EXPECT_TRUE(caught);
    EXPECT_EQ(fault::frame_allocation_countdown(), 0) << "the injected failure fired once";
    auto h = rt.spawn(small(2));  // the runtime is fine
    EXPECT_EQ(rt.block_on([](JoinHandle<int> j) -> Task<int> {
        int v = co_await j;
        co_return v;
    }(std::move(h))),
              2);
}

CO_TEST(Faults, FrameAllocationFailureReachesTheCallerOfSpawnInsideATask) {
    std::atomic<int> ran{0};
    fault::fail_frame_allocation_after(2);  // the first frame is fine, the second fails
    std::vector<JoinHandle<int>> hs;
    int caught = 0;
    for (int i = 0; i < 3; ++i) {
        try {
            hs.push_back(spindle::spawn(small(i)));
        } catch (const std::bad_alloc&) {
            ++caught;
        }
    }
    EXPECT_EQ(caught, 1);
    EXPECT_EQ(hs.size(), 2U);
    int sum = 0;
    for (auto& h : hs) {
        int v = co_await h;
        sum += v;
    }
    EXPECT_EQ(sum, 0 + 2) << "the spawns around the failure ran";
    (void)ran;
}

TEST(Faults, FrameAllocationFailureInsideATaskFailsThatTaskOnly) {
    int r = spindle::run([]() -> Task<int> {
        // The nested call's frame fails: the exception is thrown inside this task, at
        // the call, and can be handled there.
        fault::fail_frame_allocation_after(1);
        int handled = 0;
        try {
            int v = co_await small(1);
            (void)v;
        } catch (const std::bad_alloc&) {
            handled = 1;
        }
        // Unhandled in a child: the child fails with bad_alloc, its joiner sees it.
        auto child = spindle::spawn([]() -> Task<int> {
            fault::fail_frame_allocation_after(1);
            int v = co_await small(2);
            co_return v;
        }());
        int joined = 0;
        try {
            int v = co_await child;
            (void)v;
        } catch (const std::bad_alloc&) {
            joined = 1;
        }
        co_return handled * 10 + joined;
    }());
    EXPECT_EQ(r, 11);
}

CO_TEST(Faults, FrameAllocationFailureOfAWaiterLeavesTheLockConsistent) {
    spindle::Lock lock;
    co_await lock.acquire();
    std::atomic<int> inside{0};
    fault::fail_frame_allocation_after(2);
    std::vector<JoinHandle<int>> hs;
    int caught = 0;
    for (int i = 0; i < 4; ++i) {
        try {
            hs.push_back(spindle::spawn(enter(lock, inside)));
        } catch (const std::bad_alloc&) {
            ++caught;
        }
    }
    EXPECT_EQ(caught, 1);
    lock.release();
    for (auto& h : hs) {
        int v = co_await h;
        (void)v;
    }
    EXPECT_EQ(inside.load(), 3);
    EXPECT_FALSE(lock.locked());
}
