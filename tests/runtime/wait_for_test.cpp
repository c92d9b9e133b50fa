// wait_for (asyncio.wait_for, CPython 3.11 semantics): value in time, or the inner
// operation is cancelled, waited for, and TimeoutError is thrown.
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

// asyncio 3.11: timeout <= 0 with an operation that is not done yet cancels it at
// once; a coroutine wrapped in a fresh task never starts.
CO_TEST_OPTS(WaitFor, ZeroTimeoutTimesOutWithoutRunningTheOperation, one_worker_virtual()) {
    Probe p;
    const auto t0 = spindle::now();
    bool timed_out = false;
    try {
        (void)co_await spindle::wait_for(immediate(p, 1), 0ms);
    } catch (const TimeoutError&) {
        timed_out = true;
    }
    EXPECT_TRUE(timed_out);
    EXPECT_FALSE(p.started);
    EXPECT_EQ(spindle::now(), t0);

    Probe q;
    bool negative_timed_out = false;
    try {
        (void)co_await spindle::wait_for(immediate(q, 1), -5ms);
    } catch (const TimeoutError&) {
        negative_timed_out = true;
    }
    EXPECT_TRUE(negative_timed_out);
    EXPECT_FALSE(q.started);
}

// asyncio 3.11: with timeout <= 0, an awaitable that is already done gives its value.
CO_TEST_OPTS(WaitFor, ZeroTimeoutOnFinishedHandleReturnsValue, one_worker_virtual()) {
    Probe p;
    auto h = spindle::spawn(immediate(p, 8));
    (void)co_await h;
    CO_ASSERT_TRUE(h.done());
    // asyncio.wait_for(task, 0): ensure_future(task) is the task itself, already done,
    // so its result is returned; no timeout.
    bool timed_out = false;
    int v = 0;
    try {
        v = co_await spindle::wait_for(h, 0ms);
    } catch (const TimeoutError&) {
        timed_out = true;
    }
    EXPECT_FALSE(timed_out) << "asyncio.wait_for(done_task, 0) returns the task's result";
    EXPECT_EQ(v, 8);
}

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

// CPython 3.11: when the inner operation swallows the cancellation and completes
// anyway, its value is returned (documented in time.hpp).
CO_TEST_OPTS(WaitFor, InnerThatIgnoresCancellationReturnsItsValue, one_worker_virtual()) {
    Probe p;
    const auto t0 = spindle::now();
    const int v = co_await spindle::wait_for(ignore_cancel(p, 77), 20ms);
    EXPECT_EQ(v, 77);
    EXPECT_TRUE(p.cancelled);
    EXPECT_TRUE(p.finished);
    EXPECT_EQ(spindle::now() - t0, 25ms) << "wait_for waits for the cancelled operation to finish";
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
