// Cancellation (DESIGN.md §2 "Tasks and cancellation"), checked against asyncio's
// Task.cancel semantics.
#include <atomic>
#include <chrono>
#include <exception>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "runtime_test_util.hpp"

using namespace std::chrono_literals;
using spindle::CancelledError;
using spindle::JoinHandle;
using spindle::Task;
using spindle::testing::DropCounter;
using spindle::testing::join_trace;
using spindle::testing::one_worker_virtual;

static_assert(!std::is_base_of_v<std::exception, CancelledError>,
              "CancelledError must not be a std::exception (asyncio: BaseException)");
static_assert(std::is_base_of_v<std::runtime_error, spindle::TimeoutError>);

namespace {

struct SleepProbe {
    bool started = false;
    bool caught = false;
    bool finished = false;
};

Task<void> sleep_forever(SleepProbe& p) {
    p.started = true;
    try {
        co_await spindle::sleep(1h);
    } catch (const CancelledError&) {
        p.caught = true;
        throw;
    }
    p.finished = true;
}

Task<int> immediate(int v) { co_return v; }

Task<void> set_flag(bool& flag) {
    flag = true;
    co_return;
}

template <class T>
Task<T> await_it(JoinHandle<T> h) {
    co_return co_await h;
}

Task<int> swallow_cancel(int value) {
    try {
        co_await spindle::sleep(1h);
    } catch (const CancelledError&) {
        co_return value;
    }
    co_return -1;
}

Task<int> swallow_then_sleep(int value) {
    try {
        co_await spindle::sleep(1h);
    } catch (const CancelledError&) {
    }
    co_await spindle::sleep(10ms);  // a second cancel() before delivery is not re-delivered
    co_return value;
}

}  // namespace

CO_TEST_OPTS(Cancel, SleepingTaskGetsCancelledError, one_worker_virtual()) {
    SleepProbe p;
    const auto t0 = spindle::now();
    auto h = spindle::spawn(sleep_forever(p));
    co_await spindle::yield_now();  // h runs and goes to sleep
    CO_ASSERT_TRUE(p.started);
    EXPECT_FALSE(h.done());
    EXPECT_FALSE(h.cancelled());
    EXPECT_TRUE(h.cancel());
    bool got_cancelled = false;
    try {
        co_await h;
    } catch (const CancelledError&) {
        got_cancelled = true;
    }
    EXPECT_TRUE(got_cancelled);
    EXPECT_TRUE(p.caught);
    EXPECT_FALSE(p.finished);
    EXPECT_TRUE(h.done());
    EXPECT_TRUE(h.cancelled());
    EXPECT_EQ(spindle::now(), t0) << "the cancelled sleep must not have waited for its timer";
    EXPECT_FALSE(h.cancel()) << "cancel() of a finished task returns false";

    // Awaiting it again rethrows the same outcome.
    bool again = false;
    try {
        co_await h;
    } catch (const CancelledError&) {
        again = true;
    }
    EXPECT_TRUE(again);
}

CO_TEST_OPTS(Cancel, CancelReturnsFalseWhenAlreadyDone, one_worker_virtual()) {
    auto h = spindle::spawn(immediate(9));
    EXPECT_EQ(co_await h, 9);
    EXPECT_TRUE(h.done());
    EXPECT_FALSE(h.cancel());
    EXPECT_FALSE(h.cancelled());
    EXPECT_EQ(co_await h, 9) << "a refused cancel() does not change the outcome";
}

CO_TEST_OPTS(Cancel, CancelledBeforeFirstRunNeverRunsBody, one_worker_virtual()) {
    bool ran = false;
    std::atomic<int> dropped{0};
    struct Local {
        static Task<void> body(bool& flag, DropCounter) {
            flag = true;
            co_return;
        }
    };
    auto h = spindle::spawn(Local::body(ran, DropCounter(dropped)));
    EXPECT_TRUE(h.cancel());  // one worker: h has not run yet
    bool got_cancelled = false;
    try {
        co_await h;
    } catch (const CancelledError&) {
        got_cancelled = true;
    }
    EXPECT_TRUE(got_cancelled);
    EXPECT_FALSE(ran) << "a task cancelled before it first runs never runs its body";
    EXPECT_TRUE(h.cancelled());
    EXPECT_EQ(dropped.load(), 0) << "the frame lives while a handle does";
    h = {};
    EXPECT_EQ(dropped.load(), 1) << "dropping the last handle destroys the frame";
}

// A pending cancellation is delivered at the next point where the task really
// suspends; awaits that complete without suspending are not interrupted.
CO_TEST_OPTS(Cancel, DeliveredAtNextRealSuspension, one_worker_virtual()) {
    struct Box {
        JoinHandle<void> self;
        JoinHandle<int> finished;
        std::vector<std::string> trace;
    } box;
    struct Local {
        static Task<void> body(Box& b) {
            b.trace.push_back("start");
            b.trace.push_back(b.self.cancel() ? "requested" : "refused");
            (void)co_await immediate(1);  // nested Task: no suspension
            b.trace.push_back("after-nested");
            (void)co_await b.finished;  // a finished handle: no suspension
            b.trace.push_back("after-finished-join");
            try {
                co_await spindle::yield_now();
            } catch (const CancelledError&) {
                b.trace.push_back("cancelled");
                throw;
            }
            b.trace.push_back("not-reached");
        }
    };
    box.finished = spindle::spawn(immediate(2));
    co_await box.finished;
    box.self = spindle::spawn(Local::body(box));
    bool got_cancelled = false;
    try {
        co_await box.self;
    } catch (const CancelledError&) {
        got_cancelled = true;
    }
    EXPECT_TRUE(got_cancelled);
    EXPECT_EQ(join_trace(box.trace), "start requested after-nested after-finished-join cancelled");
    EXPECT_TRUE(box.self.cancelled());
    box.self = {};
}

// A zero sleep is a yield, and delivers a pending cancellation like one.
CO_TEST_OPTS(Cancel, DeliveredAtZeroSleep, one_worker_virtual()) {
    struct Box {
        JoinHandle<void> self;
        bool after = false;
    } box;
    struct Local {
        static Task<void> body(Box& b) {
            (void)b.self.cancel();
            co_await spindle::sleep(0s);
            b.after = true;
        }
    };
    box.self = spindle::spawn(Local::body(box));
    bool got_cancelled = false;
    try {
        co_await box.self;
    } catch (const CancelledError&) {
        got_cancelled = true;
    }
    EXPECT_TRUE(got_cancelled);
    EXPECT_FALSE(box.after);
    box.self = {};
}

// asyncio: a task whose cancellation was requested but never delivered (it never
// suspended again) and that returns normally ends cancelled.
CO_TEST_OPTS(Cancel, UndeliveredCancelEndsTaskCancelled, one_worker_virtual()) {
    struct Box {
        JoinHandle<int> self;
    } box;
    struct Local {
        static Task<int> body(Box& b) {
            (void)b.self.cancel();
            co_return 3;
        }
    };
    box.self = spindle::spawn(Local::body(box));
    bool got_cancelled = false;
    try {
        (void)co_await box.self;
    } catch (const CancelledError&) {
        got_cancelled = true;
    }
    EXPECT_TRUE(got_cancelled);
    EXPECT_TRUE(box.self.cancelled());
    box.self = {};
}

// The task is running on another worker when a plain thread cancels it; it gets
// CancelledError at its next real suspension, not before.
CO_TEST_OPTS(Cancel, DeliveredToTaskRunningOnAnotherThread, (spindle::RuntimeOptions{.workers = 2})) {
    struct Shared {
        std::atomic<bool> started{false};
        std::atomic<bool> cancel_sent{false};
        bool saw_cancel_sent = false;
        bool survived_nested = false;
        bool cancelled_at_yield = false;
    } sh;
    struct Local {
        static Task<void> body(Shared& s) {
            s.started.store(true);
            s.started.notify_all();
            const auto limit = std::chrono::steady_clock::now() + 20s;  // bound, not synchronization
            while (!s.cancel_sent.load() && std::chrono::steady_clock::now() < limit) {
            }
            s.saw_cancel_sent = s.cancel_sent.load();
            (void)co_await immediate(1);  // completes without suspending: not interrupted
            s.survived_nested = true;
            try {
                co_await spindle::yield_now();
            } catch (const CancelledError&) {
                s.cancelled_at_yield = true;
                throw;
            }
        }
    };
    auto h = spindle::spawn(Local::body(sh));
    std::thread canceller([&sh, h]() mutable {
        sh.started.wait(false);
        const bool accepted = h.cancel();
        EXPECT_TRUE(accepted);
        sh.cancel_sent.store(true);
    });
    bool got_cancelled = false;
    try {
        co_await h;
    } catch (const CancelledError&) {
        got_cancelled = true;
    }
    canceller.join();
    EXPECT_TRUE(sh.saw_cancel_sent);
    EXPECT_TRUE(sh.survived_nested);
    EXPECT_TRUE(sh.cancelled_at_yield);
    EXPECT_TRUE(got_cancelled);
    EXPECT_TRUE(h.cancelled());
}

// Real time: a task asleep for an hour is woken by a cancel() from a plain thread.
CO_TEST_OPTS(Cancel, FromPlainThreadWakesRealTimeSleeper, (spindle::RuntimeOptions{.workers = 2})) {
    SleepProbe p;
    auto h = spindle::spawn(sleep_forever(p));
    std::thread canceller([h]() mutable { (void)h.cancel(); });
    bool got_cancelled = false;
    try {
        co_await h;
    } catch (const CancelledError&) {
        got_cancelled = true;
    }
    canceller.join();
    EXPECT_TRUE(got_cancelled);
    EXPECT_FALSE(p.finished);
    EXPECT_TRUE(h.cancelled());
}

CO_TEST_OPTS(Cancel, CancellingAwaiterCancelsAwaitedTask, one_worker_virtual()) {
    SleepProbe p;
    const auto t0 = spindle::now();
    auto inner = spindle::spawn(sleep_forever(p));
    auto outer = spindle::spawn(await_it(inner));
    co_await spindle::yield_now();  // both are now parked
    CO_ASSERT_TRUE(p.started);
    EXPECT_TRUE(outer.cancel());
    bool outer_cancelled = false;
    try {
        co_await outer;
    } catch (const CancelledError&) {
        outer_cancelled = true;
    }
    EXPECT_TRUE(outer_cancelled);
    EXPECT_TRUE(outer.cancelled());
    EXPECT_TRUE(p.caught) << "the awaited task must have received the cancellation";
    EXPECT_TRUE(inner.done());
    EXPECT_TRUE(inner.cancelled());
    EXPECT_EQ(spindle::now(), t0);
}

// asyncio: cancelling a task that awaits another forwards the cancel; if the awaited
// task swallows it and returns a value, the awaiter gets the value and is not
// cancelled (Task.cancel: "it may be a Task that catches and ignores the cancellation").
CO_TEST_OPTS(Cancel, ForwardedCancelSwallowedByAwaitedTaskYieldsItsValue, one_worker_virtual()) {
    auto inner = spindle::spawn(swallow_cancel(7));
    auto outer = spindle::spawn(await_it(inner));
    co_await spindle::yield_now();
    EXPECT_TRUE(outer.cancel());
    EXPECT_EQ(co_await outer, 7);
    EXPECT_FALSE(outer.cancelled());
    EXPECT_FALSE(inner.cancelled());
}

// The awaited task runs on the other worker and ends without a suspension point, so it
// never observes the cancellation forwarded to it and returns its value: the forward had
// no effect, and the awaiting task is cancelled instead (asyncio: fut_waiter.cancel()
// returned False, so the task itself gets CancelledError). Found by CI: a task that only
// spawns and joins lost its cancel() whenever the other worker had started the child.
TEST(Cancel, AForwardTheRunningAwaitedTaskNeverObservesCancelsTheAwaiter) {
    spindle::Runtime rt(spindle::RuntimeOptions{.workers = 2});
    for (int round = 0; round < 20; ++round) {
        std::atomic<bool> running{false}, go{false}, awaiting{false};
        struct Local {
            static Task<int> spin(std::atomic<bool>& running, std::atomic<bool>& go) {
                running.store(true);
                // A bound, not synchronization: the main thread sets `go` at once.
                const auto limit = std::chrono::steady_clock::now() + 20s;
                while (!go.load() && std::chrono::steady_clock::now() < limit) {
                }
                co_return 5;
            }
            static Task<int> await_flagged(JoinHandle<int> h, std::atomic<bool>& awaiting) {
                awaiting.store(true);  // no suspension point between this and the await
                co_return co_await h;
            }
        };
        JoinHandle<int> child = rt.spawn(Local::spin(running, go));
        while (!running.load()) std::this_thread::yield();  // it holds one worker
        JoinHandle<int> outer = rt.spawn(Local::await_flagged(child, awaiting));
        while (!awaiting.load()) std::this_thread::yield();  // the other worker runs it
        // Until the awaiting task is parked on the child: a cancel() that lands while it
        // still runs, before it reaches the join, is delivered at its next suspension
        // point — and if the child completes first, the join does not suspend and the
        // task keeps its value (a task cancelled by another core while it runs and that
        // returns without suspending: TaskHeader::request_cancel). That is the documented
        // rule, not the case under test (found by CI: round 0 read "lost" once in ~10
        // ASan runs). A bound, not synchronization: the other worker arms the wait at once.
        const auto armed_limit = std::chrono::steady_clock::now() + 20s;
        while ((outer.header()->wait_.load() & spindle::detail::TaskHeader::kArmed) == 0U &&
               std::chrono::steady_clock::now() < armed_limit)
            std::this_thread::yield();
        EXPECT_TRUE(outer.cancel());
        go.store(true);
        bool outer_cancelled = false;
        try {
            (void)rt.block_on(await_it(outer));
        } catch (const CancelledError&) {
            outer_cancelled = true;
        }
        EXPECT_TRUE(outer_cancelled) << "round " << round << ": the accepted cancel() was lost";
        EXPECT_TRUE(outer.cancelled());
        // The child finished with its value: the forwarded request reached it running.
        EXPECT_EQ(rt.block_on(await_it(child)), 5);
        EXPECT_FALSE(child.cancelled());
        if (::testing::Test::HasFailure()) break;
    }
}

// Cancelling one of two awaiters of the same task cancels that task (asyncio), so the
// other awaiter sees CancelledError too.
CO_TEST_OPTS(Cancel, SharedAwaitedTaskIsCancelledForAllAwaiters, one_worker_virtual()) {
    SleepProbe p;
    auto inner = spindle::spawn(sleep_forever(p));
    auto a = spindle::spawn(await_it(inner));
    auto b = spindle::spawn(await_it(inner));
    co_await spindle::yield_now();
    EXPECT_TRUE(a.cancel());
    int cancelled = 0;
    for (auto* h : {&a, &b}) {
        try {
            co_await *h;
        } catch (const CancelledError&) {
            ++cancelled;
        }
    }
    EXPECT_EQ(cancelled, 2);
    EXPECT_TRUE(inner.cancelled());
}

CO_TEST_OPTS(Cancel, CaughtCancellationReturnsValue, one_worker_virtual()) {
    auto h = spindle::spawn(swallow_cancel(42));
    co_await spindle::yield_now();
    EXPECT_TRUE(h.cancel());
    EXPECT_EQ(co_await h, 42);
    EXPECT_TRUE(h.done());
    EXPECT_FALSE(h.cancelled()) << "a task that swallows CancelledError and returns is not cancelled";
}

// asyncio: two cancel() calls before the task runs again deliver one CancelledError.
CO_TEST_OPTS(Cancel, DoubleCancelDeliversOnce, one_worker_virtual()) {
    const auto t0 = spindle::now();
    auto h = spindle::spawn(swallow_then_sleep(5));
    co_await spindle::yield_now();
    EXPECT_TRUE(h.cancel());
    EXPECT_TRUE(h.cancel()) << "cancel() is true while the task is not done";
    EXPECT_EQ(co_await h, 5);
    EXPECT_FALSE(h.cancelled());
    EXPECT_EQ(spindle::now() - t0, 10ms);
}

CO_TEST_OPTS(Cancel, CatchStdExceptionDoesNotSwallowCancellation, one_worker_virtual()) {
    struct Local {
        static Task<void> body(bool& swallowed) {
            try {
                co_await spindle::sleep(1h);
            } catch (const std::exception&) {
                swallowed = true;
            }
        }
    };
    bool swallowed = false;
    auto h = spindle::spawn(Local::body(swallowed));
    co_await spindle::yield_now();
    EXPECT_TRUE(h.cancel());
    bool got_cancelled = false;
    try {
        co_await h;
    } catch (const CancelledError& e) {
        got_cancelled = true;
        EXPECT_NE(e.what(), nullptr);
    }
    EXPECT_TRUE(got_cancelled);
    EXPECT_FALSE(swallowed);
}

CO_TEST_OPTS(Cancel, CancellationUnwindsLocals, one_worker_virtual()) {
    std::atomic<int> dropped{0};
    struct Local {
        static Task<void> body(std::atomic<int>& counter) {
            DropCounter local(counter);
            co_await spindle::sleep(1h);
        }
    };
    auto h = spindle::spawn(Local::body(dropped));
    co_await spindle::yield_now();
    EXPECT_EQ(dropped.load(), 0);
    EXPECT_TRUE(h.cancel());
    try {
        co_await h;
    } catch (const CancelledError&) {
    }
    EXPECT_EQ(dropped.load(), 1);
}

CO_TEST_OPTS(Cancel, ReachesSleepInsideNestedTask, one_worker_virtual()) {
    SleepProbe p;
    struct Local {
        static Task<void> body(SleepProbe& probe, bool& outer_saw) {
            try {
                co_await sleep_forever(probe);  // nested, not spawned
            } catch (const CancelledError&) {
                outer_saw = true;
                throw;
            }
        }
    };
    bool outer_saw = false;
    auto h = spindle::spawn(Local::body(p, outer_saw));
    co_await spindle::yield_now();
    EXPECT_TRUE(h.cancel());
    try {
        co_await h;
    } catch (const CancelledError&) {
    }
    EXPECT_TRUE(p.caught);
    EXPECT_TRUE(outer_saw);
    EXPECT_TRUE(h.cancelled());
}

// After a task swallowed one cancellation, a later cancel() is delivered again.
CO_TEST_OPTS(Cancel, LaterCancelIsDeliveredAgain, one_worker_virtual()) {
    struct Local {
        static Task<int> body(int& swallowed) {
            for (;;) {
                try {
                    co_await spindle::sleep(1h);
                } catch (const CancelledError&) {
                    if (++swallowed == 2) throw;
                }
            }
        }
    };
    int swallowed = 0;
    auto h = spindle::spawn(Local::body(swallowed));
    co_await spindle::yield_now();
    EXPECT_TRUE(h.cancel());
    co_await spindle::yield_now();
    EXPECT_EQ(swallowed, 1);
    EXPECT_FALSE(h.done());
    EXPECT_TRUE(h.cancel());
    try {
        (void)co_await h;
    } catch (const CancelledError&) {
    }
    EXPECT_EQ(swallowed, 2);
    EXPECT_TRUE(h.cancelled());
}

CO_TEST_OPTS(Cancel, JoinHandleCopiesShareTheTask, one_worker_virtual()) {
    bool ran = false;
    auto h = spindle::spawn(set_flag(ran));
    JoinHandle<void> copy = h;
    EXPECT_EQ(copy.id(), h.id());
    EXPECT_TRUE(copy.cancel());
    EXPECT_TRUE(h.valid());
    try {
        co_await h;
    } catch (const CancelledError&) {
    }
    EXPECT_TRUE(copy.cancelled());
    EXPECT_FALSE(ran);
}

// An await cycle (A awaits B, B awaits A) can never complete; cancelling one of them
// ends both with CancelledError instead of forwarding the cancellation round the
// cycle forever (it spun; asyncio recurses until RecursionError). Also a 3-cycle.
namespace {
Task<void> await_slot(std::vector<JoinHandle<void>>& hs, std::size_t i, int& started) {
    ++started;
    while (hs.size() <= i) co_await spindle::yield_now();
    co_await hs[i];
}
}  // namespace

CO_TEST_OPTS(Cancel, AwaitCycleEndsCancelled, one_worker_virtual()) {
    for (std::size_t n : {2U, 3U}) {
        std::vector<JoinHandle<void>> hs;
        hs.reserve(n);
        int started = 0;
        std::vector<JoinHandle<void>> tasks;
        for (std::size_t k = 0; k < n; ++k) tasks.push_back(spindle::spawn(await_slot(hs, (k + 1) % n, started)));
        for (auto& t : tasks) hs.push_back(t);  // each awaits the next one: a cycle
        for (int i = 0; i < 10; ++i) co_await spindle::yield_now();
        EXPECT_EQ(started, static_cast<int>(n));
        (void)hs[0].cancel();
        for (int i = 0; i < 100; ++i) {
            bool all = true;
            for (auto& h : hs) all = all && h.done();
            if (all) break;
            co_await spindle::yield_now();
        }
        for (std::size_t k = 0; k < n; ++k) {
            const bool done = hs[k].done();
            EXPECT_TRUE(done) << "cycle of " << n << ": task " << k << " still waiting";
            if (!done) co_return;
            EXPECT_TRUE(hs[k].cancelled()) << "cycle of " << n << ": task " << k;
        }
    }
}
