// spindle::Event — every member, every error, and asyncio.Event's behaviour at one worker.
//
// Suites: SyncEvent (members, errors), SyncEventAsyncio (ports of CPython 3.11's
// test_locks.py EventTests plus DESIGN.md §2's rules). Every expected trace is what
// CPython 3.11 prints for the program of the same name in
// tests/sync/asyncio_sync_reference.py (waiters= there is len(ev._waiters); here the
// queue's approx_waiters(), which counts the cells from the oldest waiter that has
// not left to the newest: the same number as long as nobody in the middle left).
#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "sync_test_util.hpp"

using namespace std::chrono_literals;
using spindle::CancelledError;
using spindle::Event;
using spindle::JoinHandle;
using spindle::Task;
using spindle::synctest::cancel_soon;
using spindle::synctest::Eager;
using spindle::synctest::nm;
using spindle::synctest::ended_cancelled;
using spindle::synctest::one_worker;
using spindle::synctest::Trace;

namespace {

Task<void> wait_traced(Event& e, Trace& T, std::string name) {
    const bool r = co_await e.wait();
    if (r) T(name);
}

Task<void> wait_or_cancel(Event& e, Trace& T, std::string name) {
    try {
        co_await e.wait();
    } catch (const CancelledError&) {
        T(name + "-cancelled");
        throw;
    }
    T(name + "+");
}

Eager wait_outside_task(Event& e, bool& got) {
    got = co_await e.wait();
}

}  // namespace

// ─────────────────────────────── members and errors ───────────────────────────────

TEST(SyncEvent, SetClearIsSet) {  // test_clear
    Event ev;
    EXPECT_FALSE(ev.is_set());
    ev.set();
    EXPECT_TRUE(ev.is_set());
    ev.set();  // idempotent
    EXPECT_TRUE(ev.is_set());
    ev.clear();
    EXPECT_FALSE(ev.is_set());
    ev.clear();
    EXPECT_FALSE(ev.is_set());
    EXPECT_EQ(ev.approx_waiters(), 0u);
}

// test_wait_on_set: wait() on a set event returns true without suspending.
CO_TEST_OPTS(SyncEvent, WaitOnSetReturnsTrueWithoutSuspending, one_worker()) {
    Event ev;
    Trace T;
    ev.set();
    auto other = spindle::spawn([](Trace& t) -> Task<void> {
        t("other");
        co_return;
    }(T));
    const bool r = co_await ev.wait();
    T("main");
    EXPECT_TRUE(r);
    co_await other;
    EXPECT_EQ(T.str(), "main other");
}

CO_TEST_OPTS(SyncEvent, WaitReturnsTrueAfterSet, one_worker()) {
    Event ev;
    auto w = spindle::spawn([](Event& e) -> Task<bool> { co_return co_await e.wait(); }(ev));
    co_await spindle::yield_now();
    EXPECT_FALSE(w.done());
    ev.set();
    {
        const bool r = co_await w;
        EXPECT_TRUE(r);
    }
}

// DESIGN.md: waiting calls need a running task; on a set event wait() does not wait.
TEST(SyncEvent, WaitOutsideATaskThrowsLogicErrorUnlessSet) {
    Event ev;
    bool got = false;
    {
        Eager e = wait_outside_task(ev, got);
        EXPECT_TRUE(e.finished());
        EXPECT_THROW(e.rethrow(), std::logic_error);
    }
    EXPECT_FALSE(got);
    EXPECT_EQ(ev.approx_waiters(), 0u);
    ev.set();
    {
        Eager e = wait_outside_task(ev, got);
        EXPECT_TRUE(e.finished());
        EXPECT_NO_THROW(e.rethrow());
    }
    EXPECT_TRUE(got);
    // still works in a runtime after the misuse
    ev.clear();
    spindle::run(
        [](Event& e) -> Task<void> {
            Trace T;
            auto w = spindle::spawn(wait_traced(e, T, "w"));
            co_await spindle::yield_now();
            EXPECT_EQ(T.str(), "");
            e.set();
            co_await w;
            EXPECT_EQ(T.str(), "w");
        }(ev),
        one_worker());
}

// Waking calls from any thread: set() from a plain std::thread.
CO_TEST(SyncEvent, SetFromAPlainThreadWakesWaiters) {
    Event ev;
    std::atomic<int> woke{0};
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < 8; ++i)
        hs.push_back(spindle::spawn([](Event& e, std::atomic<int>& w) -> Task<void> {
            co_await e.wait();
            w.fetch_add(1);
        }(ev, woke)));
    while (ev.approx_waiters() < 8) co_await spindle::yield_now();
    EXPECT_EQ(woke.load(), 0);
    std::thread t([&] { ev.set(); });
    for (auto& h : hs) co_await h;
    t.join();
    EXPECT_EQ(woke.load(), 8);
}

// An event can be set, cleared and waited on again, round after round.
CO_TEST_OPTS(SyncEvent, ReusableAcrossRounds, one_worker()) {
    Event ev;
    Trace T;
    for (int round = 0; round < 3; ++round) {
        ev.clear();
        std::vector<JoinHandle<void>> hs;
        for (int i = 0; i < 3; ++i)
            hs.push_back(spindle::spawn(wait_traced(ev, T, nm(std::to_string(round), i))));
        co_await spindle::yield_now();
        T("set");
        ev.set();
        for (auto& h : hs) co_await h;
    }
    EXPECT_EQ(T.str(), "set 00 01 02 set 10 11 12 set 20 21 22");
}

// ─────────────────────────────── asyncio ports (one worker) ───────────────────────────────

// test_wait: c3, created after the others but before set(), runs first and finds the
// flag set; set() woke c1 and c2 behind it, in order.
CO_TEST_OPTS(SyncEventAsyncio, EventWait, one_worker()) {
    Event ev;
    Trace T;
    T("set", ev.is_set());
    auto t1 = spindle::spawn(wait_traced(ev, T, "c1"));
    auto t2 = spindle::spawn(wait_traced(ev, T, "c2"));
    co_await spindle::yield_now();
    T("trace-empty");
    auto t3 = spindle::spawn(wait_traced(ev, T, "c3"));
    ev.set();
    co_await spindle::yield_now();
    T("done", t1.done() && t2.done() && t3.done());
    EXPECT_EQ(T.str(), "set=0 trace-empty c3 c1 c2 done=1");
}

// set() wakes every current waiter in FIFO order; the setter keeps running.
CO_TEST_OPTS(SyncEventAsyncio, EventSetWakesAllFifo, one_worker()) {
    Event ev;
    Trace T;
    std::vector<JoinHandle<void>> ts;
    for (int i = 0; i < 6; ++i) ts.push_back(spindle::spawn(wait_traced(ev, T, nm("w", i))));
    co_await spindle::yield_now();
    T("waiters", ev.approx_waiters());
    ev.set();
    T("main");
    co_await spindle::yield_now();
    T("main");
    T("waiters", ev.approx_waiters());
    for (auto& h : ts) co_await h;
    EXPECT_EQ(T.str(), "waiters=6 main w0 w1 w2 w3 w4 w5 main waiters=0");
}

// test_wait_cancel.
CO_TEST_OPTS(SyncEventAsyncio, EventWaitCancel, one_worker()) {
    Event ev;
    Trace T;
    auto wait = spindle::spawn(wait_traced(ev, T, "w+"));
    auto c = spindle::spawn(cancel_soon(wait));
    const bool was_cancelled = co_await ended_cancelled(wait);
    if (was_cancelled) T("cancelled");
    T("waiters", ev.approx_waiters());
    ev.set();
    T("set", ev.is_set());
    EXPECT_EQ(T.str(), "cancelled waiters=0 set=1");
    co_await c;
}

// test_clear_with_waiters.
CO_TEST_OPTS(SyncEventAsyncio, EventClearWithWaiters, one_worker()) {
    Event ev;
    Trace T;
    auto t = spindle::spawn(wait_traced(ev, T, "c1"));
    co_await spindle::yield_now();
    ev.set();
    ev.clear();
    T("set", ev.is_set());
    ev.set();
    ev.set();
    T("waiters", ev.approx_waiters());
    co_await spindle::yield_now();
    T("waiters", ev.approx_waiters());
    T("done", t.done());
    EXPECT_EQ(T.str(), "set=0 waiters=1 c1 waiters=0 done=1");
    co_await t;
}

// DESIGN.md §2: a waiter woken by set() returns even if clear() runs before it
// resumes; a waiter arriving after clear() waits for the next set().
CO_TEST_OPTS(SyncEventAsyncio, EventWokenReturnsDespiteClear, one_worker()) {
    Event ev;
    Trace T;
    std::vector<JoinHandle<void>> ts;
    for (int i = 0; i < 3; ++i) ts.push_back(spindle::spawn(wait_traced(ev, T, nm("w", i))));
    co_await spindle::yield_now();
    ev.set();
    ev.clear();
    auto late = spindle::spawn(wait_traced(ev, T, "w9"));
    co_await spindle::yield_now();
    T("set", ev.is_set());
    T("late-done", late.done());
    ev.set();
    co_await late;
    for (auto& h : ts) co_await h;
    EXPECT_EQ(T.str(), "w0 w1 w2 set=0 late-done=0 w9");
}

// A waiter woken by set() but cancelled before it resumed gets CancelledError (asyncio:
// the task's pending cancel is delivered at the await); the others are unaffected.
CO_TEST_OPTS(SyncEventAsyncio, EventCancelAfterSet, one_worker()) {
    Event ev;
    Trace T;
    auto a = spindle::spawn(wait_or_cancel(ev, T, "a"));
    auto b = spindle::spawn(wait_or_cancel(ev, T, "b"));
    co_await spindle::yield_now();
    ev.set();
    a.cancel();
    for (auto* h : {&a, &b}) {
        const bool cancelled = co_await ended_cancelled(*h);
        if (cancelled) T("joined-cancelled");
    }
    EXPECT_EQ(T.str(), "a-cancelled b+ joined-cancelled");
}

// A cancelled waiter leaves the queue; set() wakes the rest in order.
CO_TEST_OPTS(SyncEventAsyncio, EventCancelOneOfMany, one_worker()) {
    Event ev;
    Trace T;
    std::vector<JoinHandle<void>> ts;
    for (const char* n : {"a", "b", "c", "d"}) ts.push_back(spindle::spawn(wait_or_cancel(ev, T, n)));
    co_await spindle::yield_now();
    ts[1].cancel();
    co_await spindle::yield_now();
    T("b-done", ts[1].done());
    ev.set();
    for (auto& h : ts) (void)co_await ended_cancelled(h);
    EXPECT_EQ(T.str(), "b-cancelled b-done=1 a+ c+ d+");
    EXPECT_EQ(ev.approx_waiters(), 0u);
}

// spindle::wait_for(ev.wait(), t): a timeout leaves the queue and the event usable.
CO_TEST_OPTS(SyncEventAsyncio, EventWaitForTimeout, one_worker()) {
    Event ev;
    bool timed_out = false;
    try {
        (void)co_await spindle::wait_for(ev.wait(), 10ms);
    } catch (const spindle::TimeoutError&) {
        timed_out = true;
    }
    EXPECT_TRUE(timed_out);
    EXPECT_EQ(ev.approx_waiters(), 0u);
    auto setter = spindle::spawn([](Event& e) -> Task<void> {
        co_await spindle::sleep(5ms);
        e.set();
    }(ev));
    {
        const bool r = co_await spindle::wait_for(ev.wait(), 10ms);
        EXPECT_TRUE(r);
    }
    co_await setter;
}
