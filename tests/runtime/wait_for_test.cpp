// wait_for (CPython 3.12's asyncio.wait_for = `async with asyncio.timeout(d): return
// await op`): the value in time, or the operation is cancelled in place and its
// CancelledError becomes TimeoutError; another task's cancellation is never swallowed.
#include <stdexcept>
#include <string>

#include "runtime_test_util.hpp"

using namespace std::chrono_literals;
using spindle::CancelledError;
using spindle::JoinHandle;
using spindle::Task;
using spindle::TimeoutError;
using spindle::testing::one_worker_virtual;

namespace {

struct Probe {
    bool started = false;
    bool cancelled = false;
    bool finished = false;
};

Task<int> sleep_then_return(Probe& p, std::chrono::milliseconds d, int v) {
    p.started = true;
    try {
        co_await spindle::sleep(d);
    } catch (const CancelledError&) {
        p.cancelled = true;
        throw;
    }
    p.finished = true;
    co_return v;
}

Task<void> sleep_void(Probe& p, std::chrono::milliseconds d) { (void)co_await sleep_then_return(p, d, 0); }

Task<int> immediate(Probe& p, int v) {
    p.started = true;
    p.finished = true;
    co_return v;
}

Task<int> ignore_cancel(Probe& p, int v) {
    p.started = true;
    try {
        co_await spindle::sleep(1h);
    } catch (const CancelledError&) {
        p.cancelled = true;
    }
    co_await spindle::sleep(5ms);  // finishes anyway, a little later
    p.finished = true;
    co_return v;
}

Task<int> fail_after(std::chrono::milliseconds d) {
    co_await spindle::sleep(d);
    throw std::domain_error("inner failed");
}

}  // namespace

CO_TEST_OPTS(WaitFor, ReturnsValueInTime, one_worker_virtual()) {
    Probe p;
    const auto t0 = spindle::now();
    const int v = co_await spindle::wait_for(sleep_then_return(p, 10ms, 5), 1s);
    EXPECT_EQ(v, 5);
    EXPECT_TRUE(p.finished);
    EXPECT_FALSE(p.cancelled);
    EXPECT_EQ(spindle::now() - t0, 10ms) << "wait_for returns when the operation completes, not at the deadline";
}

CO_TEST_OPTS(WaitFor, VoidOperation, one_worker_virtual()) {
    Probe p;
    co_await spindle::wait_for(sleep_void(p, 3ms), 1s);
    EXPECT_TRUE(p.finished);
}

CO_TEST_OPTS(WaitFor, TimesOutAndCancelsInner, one_worker_virtual()) {
    Probe p;
    const auto t0 = spindle::now();
    bool timed_out = false;
    try {
        (void)co_await spindle::wait_for(sleep_then_return(p, 1h, 1), 50ms);
    } catch (const TimeoutError& e) {
        timed_out = true;
        EXPECT_NE(std::string(e.what()), "");
    }
    EXPECT_TRUE(timed_out);
    EXPECT_TRUE(p.started);
    EXPECT_TRUE(p.cancelled) << "the inner operation must see CancelledError";
    EXPECT_FALSE(p.finished);
    EXPECT_EQ(spindle::now() - t0, 50ms);
}

CO_TEST_OPTS(WaitFor, TimeoutErrorIsARuntimeError, one_worker_virtual()) {
    Probe p;
    bool caught = false;
    try {
        (void)co_await spindle::wait_for(sleep_then_return(p, 1h, 1), 1ms);
    } catch (const std::runtime_error&) {
        caught = true;
    }
    EXPECT_TRUE(caught);
}

// CPython 3.12: `async with asyncio.timeout(0): return await op` — an operation that
// completes without suspending gives its value; one that would wait is cancelled at its
// first suspension point, without the clock moving.
CO_TEST_OPTS(WaitFor, ZeroTimeoutRunsAnOperationThatNeedsNoWait, one_worker_virtual()) {
    Probe p;
    EXPECT_EQ(co_await spindle::wait_for(immediate(p, 1), 0ms), 1);
    EXPECT_TRUE(p.finished);
    Probe q;
    EXPECT_EQ(co_await spindle::wait_for(immediate(q, 2), -5ms), 2);
    EXPECT_TRUE(q.finished);
}

CO_TEST_OPTS(WaitFor, ZeroTimeoutCancelsAnOperationThatWouldWait, one_worker_virtual()) {
    Probe p;
    const auto t0 = spindle::now();
    bool timed_out = false;
    try {
        (void)co_await spindle::wait_for(sleep_then_return(p, 1h, 1), 0ms);
    } catch (const TimeoutError&) {
        timed_out = true;
    }
    EXPECT_TRUE(timed_out);
    EXPECT_TRUE(p.started);
    EXPECT_TRUE(p.cancelled);
    EXPECT_FALSE(p.finished);
    EXPECT_EQ(spindle::now(), t0);
}

// Issue 14: the operation is awaited in place. A free Lock is taken without the task
// suspending: a task that is ready meanwhile does not run (a task of its own, as
// CPython 3.11's wait_for made, would need the caller to suspend).
CO_TEST_OPTS(WaitFor, FreeLockAcquireDoesNotSuspend, one_worker_virtual()) {
    spindle::Lock lock;
    bool other_ran = false;
    auto other = spindle::spawn([](bool& flag) -> Task<void> {
        flag = true;
        co_return;
    }(other_ran));
    co_await spindle::wait_for(lock.acquire(), 1s);
    EXPECT_FALSE(other_ran) << "wait_for(free_lock.acquire(), 1s) suspended the task";
    EXPECT_TRUE(lock.locked());
    lock.release();
    co_await other;
    EXPECT_TRUE(other_ran);
}

// A cancellation from someone else is never swallowed, even when the timer fired in
// the same instant: main's sleep and the waiter's timeout are due together; main's
// timer fires first, the timeout cancels the waiter, then main cancels it too.
CO_TEST_OPTS(WaitFor, CancellationIsNeverSwallowedWhenTheTimerFiredToo, one_worker_virtual()) {
    spindle::Event never;
    Probe p;
    auto waiter = spindle::spawn([](spindle::Event& e, Probe& probe) -> Task<void> {
        probe.started = true;
        co_await spindle::wait_for(e.wait(), 10ms);
        probe.finished = true;
    }(never, p));
    co_await spindle::sleep(10ms);  // queued before the waiter's timer: fires first
    EXPECT_TRUE(p.started);
    EXPECT_TRUE(waiter.cancel());
    bool cancelled = false;
    try {
        co_await waiter;
    } catch (const CancelledError&) {
        cancelled = true;
    } catch (const TimeoutError&) {
        ADD_FAILURE() << "a cancellation requested by another task became TimeoutError";
    }
    EXPECT_TRUE(cancelled);
    EXPECT_TRUE(waiter.cancelled());
    EXPECT_FALSE(p.finished);
}

// CPython 3.12 compares against the cancellation count at entry (3.11 compared with
// zero): a task that swallowed a cancellation earlier still gets TimeoutError.
CO_TEST_OPTS(WaitFor, TimeoutAfterASwallowedCancellationIsStillATimeout, one_worker_virtual()) {
    Probe p;
    auto h = spindle::spawn([](Probe& probe) -> Task<int> {
        try {
            co_await spindle::sleep(1h);
        } catch (const CancelledError&) {
        }
        try {
            (void)co_await spindle::wait_for(sleep_then_return(probe, 1h, 1), 5ms);
        } catch (const TimeoutError&) {
            co_return 1;
        }
        co_return 0;
    }(p));
    co_await spindle::yield_now();
    EXPECT_TRUE(h.cancel());
    EXPECT_EQ(co_await h, 1);
    EXPECT_TRUE(p.cancelled);
}

// Nested scopes: each turns only its own cancellation into TimeoutError.
CO_TEST_OPTS(WaitFor, NestedTimeouts, one_worker_virtual()) {
    struct Local {
        static Task<int> inner_first() {
            Probe p;
            co_return co_await spindle::wait_for(sleep_then_return(p, 1h, 1), 5ms);
        }
        static Task<int> outer_only(int& reached) {
            Probe p;
            try {
                (void)co_await spindle::wait_for(sleep_then_return(p, 1h, 1), 1h);
            } catch (const TimeoutError&) {
                reached = -1;  // the inner scope must not claim the outer's cancellation
                throw;
            }
            co_return 0;
        }
    };
    // The inner deadline passes first: its TimeoutError goes through the outer scope.
    const auto t0 = spindle::now();
    bool inner_timeout = false;
    try {
        (void)co_await spindle::wait_for(Local::inner_first(), 1h);
    } catch (const TimeoutError&) {
        inner_timeout = true;
    }
    EXPECT_TRUE(inner_timeout);
    EXPECT_EQ(spindle::now() - t0, 5ms);
    // The outer deadline passes first: the inner scope sees a CancelledError that is
    // not its own and lets it through; the outer one turns it into TimeoutError.
    int reached = 0;
    bool outer_timeout = false;
    try {
        (void)co_await spindle::wait_for(Local::outer_only(reached), 7ms);
    } catch (const TimeoutError&) {
        outer_timeout = true;
    }
    EXPECT_TRUE(outer_timeout);
    EXPECT_EQ(reached, 0);
    EXPECT_EQ(spindle::now() - t0, 12ms);
    // Nothing is left pending: the next suspension point is an ordinary one.
    co_await spindle::yield_now();
}

// asyncio: an awaitable that is already done gives its value, whatever the timeout.
CO_TEST_OPTS(WaitFor, InnerExceptionPropagates, one_worker_virtual()) {
    bool caught = false;
    try {
        (void)co_await spindle::wait_for(fail_after(2ms), 1s);
    } catch (const std::domain_error& e) {
        caught = true;
        EXPECT_STREQ(e.what(), "inner failed");
    }
    EXPECT_TRUE(caught);
}

// CPython 3.12: when the operation swallows the cancellation and completes anyway,
// its value is returned (the timeout scope raises only on a CancelledError).
CO_TEST_OPTS(WaitFor, InnerThatIgnoresCancellationReturnsItsValue, one_worker_virtual()) {
    Probe p;
    const auto t0 = spindle::now();
    const int v = co_await spindle::wait_for(ignore_cancel(p, 77), 20ms);
    EXPECT_EQ(v, 77);
    EXPECT_TRUE(p.cancelled);
    EXPECT_TRUE(p.finished);
    EXPECT_EQ(spindle::now() - t0, 25ms) << "the operation runs in place until it finishes";
    co_await spindle::yield_now();  // the timer's request was delivered, nothing is pending
}

// wait_for on a JoinHandle: the timeout cancels the task behind the handle.
CO_TEST_OPTS(WaitFor, TimeoutOnJoinHandleCancelsTheTask, one_worker_virtual()) {
    Probe p;
    auto h = spindle::spawn(sleep_then_return(p, 1h, 1));
    bool timed_out = false;
    try {
        (void)co_await spindle::wait_for(h, 30ms);
    } catch (const TimeoutError&) {
        timed_out = true;
    }
    EXPECT_TRUE(timed_out);
    EXPECT_TRUE(p.cancelled);
    EXPECT_TRUE(h.done());
    EXPECT_TRUE(h.cancelled());
}

CO_TEST_OPTS(WaitFor, HandleValueInTime, one_worker_virtual()) {
    Probe p;
    auto h = spindle::spawn(sleep_then_return(p, 10ms, 12));
    EXPECT_EQ(co_await spindle::wait_for(h, 1s), 12);
    EXPECT_EQ(co_await h, 12);
}

// Cancelling the task that is inside wait_for cancels the inner operation too, and
// the cancellation (not a timeout) comes out.
CO_TEST_OPTS(WaitFor, CancellingTheWaiterCancelsInner, one_worker_virtual()) {
    Probe p;
    struct Local {
        static Task<int> body(Probe& probe) {
            co_return co_await spindle::wait_for(sleep_then_return(probe, 1h, 1), 10min);
        }
    };
    const auto t0 = spindle::now();
    auto h = spindle::spawn(Local::body(p));
    co_await spindle::yield_now();
    co_await spindle::yield_now();
    CO_ASSERT_TRUE(p.started);
    EXPECT_TRUE(h.cancel());
    bool cancelled = false;
    try {
        (void)co_await h;
    } catch (const CancelledError&) {
        cancelled = true;
    } catch (const TimeoutError&) {
        ADD_FAILURE() << "cancellation must not turn into TimeoutError";
    }
    EXPECT_TRUE(cancelled);
    EXPECT_TRUE(p.cancelled);
    EXPECT_TRUE(h.cancelled());
    EXPECT_EQ(spindle::now(), t0);
}

CO_TEST(WaitFor, RealTimeTimeout) {
    Probe p;
    const auto t0 = std::chrono::steady_clock::now();
    bool timed_out = false;
    try {
        (void)co_await spindle::wait_for(sleep_then_return(p, 1h, 1), 5ms);
    } catch (const TimeoutError&) {
        timed_out = true;
    }
    EXPECT_TRUE(timed_out);
    EXPECT_TRUE(p.cancelled);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 5ms);
}

// Several workers, real time: the timer fires on another worker while the task is
// running (the operation never suspends past the deadline). The scope withdraws its
// request when the operation completes anyway, so no CancelledError surfaces later.
TEST(WaitForThreads, TimerFiringWhileTheTaskRunsLeavesNoStrayCancellation) {
    spindle::Runtime rt(spindle::RuntimeOptions{.workers = 2});
    struct Local {
        static Task<int> spin(std::chrono::microseconds d) {
            const auto end = std::chrono::steady_clock::now() + d;
            while (std::chrono::steady_clock::now() < end) {
            }
            co_return 7;
        }
        static Task<int> body(int rounds) {
            int stray = 0;
            for (int i = 0; i < rounds; ++i) {
                const int v = co_await spindle::wait_for(spin(std::chrono::microseconds(300)), 50us);
                if (v != 7) co_return -1;
                try {
                    co_await spindle::yield_now();
                } catch (const CancelledError&) {
                    ++stray;  // a timeout's request that outlived its scope
                }
            }
            co_return stray;
        }
    };
    EXPECT_EQ(rt.block_on(Local::body(100)), 0);
}
