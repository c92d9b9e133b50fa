// spindle::Lock — every member, every error, and asyncio.Lock's behaviour at one worker.
//
// Suites: SyncLock (members, errors, guards, misuse), SyncLockAsyncio (ports of CPython
// 3.11's test_locks.py LockTests plus the reserved window / cancellation rules of
// DESIGN.md §2). Every expected trace in SyncLockAsyncio is what CPython 3.11 prints
// for the program of the same name in tests/sync/asyncio_sync_reference.py.
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "sync_test_util.hpp"

using namespace std::chrono_literals;
using spindle::CancelledError;
using spindle::Event;
using spindle::JoinHandle;
using spindle::Lock;
using spindle::Task;
using spindle::synctest::cancel_soon;
using spindle::synctest::Eager;
using spindle::synctest::ended_cancelled;
using spindle::synctest::one_worker;
using spindle::synctest::Trace;

namespace {

Task<void> acquire_traced(Lock& l, Trace& T, std::string name) {
    co_await l.acquire();
    T(name);
}

// acquire; trace; yield once; release (asyncio: `async with lock: T(); await sleep(0)`).
Task<void> hold_once(Lock& l, Trace& T, std::string name) {
    co_await l.acquire();
    T(name + "+");
    co_await spindle::yield_now();
    l.release();
    T(name + "-");
}

// acquire (tracing a cancellation); trace; yield; release.
Task<void> acquire_or_cancel(Lock& l, Trace& T, std::string name, bool yield_inside) {
    try {
        co_await l.acquire();
    } catch (const CancelledError&) {
        T(name + "-cancelled");
        throw;
    }
    T(name + "+");
    if (yield_inside) co_await spindle::yield_now();
    l.release();
}

Task<void> release_from_task(Lock& l) {
    l.release();
    co_return;
}

Eager acquire_outside_task(Lock& l, bool& got) {
    co_await l.acquire();
    got = true;
}

Eager scoped_outside_task(Lock& l, bool& got) {
    auto g = co_await l.scoped();
    got = true;
}

}  // namespace

// ─────────────────────────────── members and errors ───────────────────────────────

TEST(SyncLock, StartsUnlockedTryAcquireAndRelease) {
    Lock lock;
    EXPECT_FALSE(lock.locked());
    EXPECT_EQ(lock.approx_waiters(), 0u);
    EXPECT_TRUE(lock.try_acquire());
    EXPECT_TRUE(lock.locked());
    EXPECT_FALSE(lock.try_acquire()) << "try_acquire of a locked lock";
    EXPECT_TRUE(lock.locked());
    lock.release();
    EXPECT_FALSE(lock.locked());
    EXPECT_TRUE(lock.try_acquire());
    lock.release();
}

TEST(SyncLock, ReleaseUnlockedThrowsLogicErrorAndLockStillWorks) {
    Lock lock;
    EXPECT_THROW(lock.release(), std::logic_error);
    EXPECT_FALSE(lock.locked());
    EXPECT_TRUE(lock.try_acquire()) << "a failed release must not corrupt the state";
    lock.release();
    EXPECT_THROW(lock.release(), std::logic_error) << "double release";
    EXPECT_FALSE(lock.locked());
    // ...and the lock still queues and hands over after both misuses.
    spindle::run(
        [](Lock& l) -> Task<void> {
            Trace T;
            co_await l.acquire();
            auto a = spindle::spawn(acquire_traced(l, T, "a"));
            auto b = spindle::spawn(acquire_traced(l, T, "b"));
            co_await spindle::yield_now();
            EXPECT_TRUE(l.locked());
            l.release();
            co_await a;
            l.release();
            co_await b;
            l.release();
            EXPECT_EQ(T.str(), "a b");
            EXPECT_FALSE(l.locked());
        }(lock),
        one_worker());
}

TEST(SyncLock, ReleaseUnlockedThrowsExactlyLogicError) {
    Lock lock;
    try {
        lock.release();
        ADD_FAILURE() << "no exception";
    } catch (const std::invalid_argument&) {
        ADD_FAILURE() << "invalid_argument (ValueError) instead of logic_error (RuntimeError)";
    } catch (const std::logic_error& e) {
        EXPECT_NE(std::string(e.what()).size(), 0u);
    }
}

// DESIGN.md: waiting calls need a running task. A contended acquire() from a plain
// thread (here: a coroutine that is not a spindle task) throws std::logic_error and
// leaves no trace in the lock.
TEST(SyncLock, ContendedAcquireOutsideATaskThrowsLogicError) {
    Lock lock;
    ASSERT_TRUE(lock.try_acquire());
    bool got = false;
    {
        Eager e = acquire_outside_task(lock, got);
        EXPECT_TRUE(e.finished()) << "must throw, not suspend forever";
        EXPECT_THROW(e.rethrow(), std::logic_error);
    }
    {
        Eager e = scoped_outside_task(lock, got);
        EXPECT_TRUE(e.finished());
        EXPECT_THROW(e.rethrow(), std::logic_error);
    }
    EXPECT_FALSE(got);
    EXPECT_TRUE(lock.locked());
    EXPECT_EQ(lock.approx_waiters(), 0u) << "the failed acquire left a cell behind";
    lock.release();
    EXPECT_FALSE(lock.locked());
    EXPECT_TRUE(lock.try_acquire()) << "a phantom waiter blocks the fast path";
    lock.release();
}

CO_TEST_OPTS(SyncLock, AcquireOfAFreeLockDoesNotSuspend, one_worker()) {
    Lock lock;
    Trace T;
    auto other = spindle::spawn([](Trace& t) -> Task<void> {
        t("other");
        co_return;
    }(T));
    co_await lock.acquire();  // asyncio: the fast path returns without yielding
    T("main");
    lock.release();
    co_await other;
    EXPECT_EQ(T.str(), "main other");
}

CO_TEST_OPTS(SyncLock, ScopedReleasesOnDestruction, one_worker()) {
    Lock lock;
    {
        auto g = co_await lock.scoped();
        EXPECT_TRUE(g.owns());
        EXPECT_TRUE(lock.locked());
    }
    EXPECT_FALSE(lock.locked());
    EXPECT_TRUE(lock.try_acquire());
    lock.release();
}

CO_TEST_OPTS(SyncLock, ScopedReleasesWhenAnExceptionUnwinds, one_worker()) {
    Lock lock;
    bool caught = false;
    try {
        auto g = co_await lock.scoped();
        EXPECT_TRUE(lock.locked());
        throw std::runtime_error("boom");
    } catch (const std::runtime_error&) {
        caught = true;
        EXPECT_FALSE(lock.locked()) << "the guard did not release during unwinding";
    }
    EXPECT_TRUE(caught);
    EXPECT_FALSE(lock.locked());
    // The next holder gets it normally.
    auto g2 = co_await lock.scoped();
    EXPECT_TRUE(lock.locked());
}

// A CancelledError unwinding through a task that holds the guard releases the lock,
// and the queued waiter gets it.
CO_TEST_OPTS(SyncLock, ScopedReleasesWhenCancelledWhileHolding, one_worker()) {
    Lock lock;
    Trace T;
    auto holder = spindle::spawn([](Lock& l, Trace& t) -> Task<void> {
        auto g = co_await l.scoped();
        t("holder+");
        co_await spindle::sleep(1h);
        t("holder-not-reached");
    }(lock, T));
    co_await spindle::yield_now();
    auto waiter = spindle::spawn(acquire_traced(lock, T, "waiter"));
    co_await spindle::yield_now();
    EXPECT_TRUE(lock.locked());
    EXPECT_TRUE(holder.cancel());
    {
        const bool r = co_await ended_cancelled(holder);
        EXPECT_TRUE(r);
    }
    co_await waiter;
    EXPECT_EQ(T.str(), "holder+ waiter");
    EXPECT_TRUE(lock.locked());  // held by waiter
    lock.release();
}

CO_TEST_OPTS(SyncLock, ScopedGuardResetDismissAndMove, one_worker()) {
    Lock lock;
    {
        auto g = co_await lock.scoped();
        g.reset();
        EXPECT_FALSE(g.owns());
        EXPECT_FALSE(lock.locked());
        g.reset();  // second reset: no second release (that would throw)
        EXPECT_FALSE(lock.locked());
    }  // destructor: nothing to release
    EXPECT_FALSE(lock.locked());
    {
        auto g = co_await lock.scoped();
        Lock* p = g.dismiss();
        EXPECT_EQ(p, &lock);
        EXPECT_FALSE(g.owns());
    }
    EXPECT_TRUE(lock.locked()) << "a dismissed guard must not release";
    lock.release();
    {
        auto g1 = co_await lock.scoped();
        auto g2 = std::move(g1);
        EXPECT_FALSE(g1.owns());  // NOLINT(bugprone-use-after-move): moved-from state is specified
        EXPECT_TRUE(g2.owns());
        EXPECT_TRUE(lock.locked());
    }
    EXPECT_FALSE(lock.locked());
    {
        Lock other;
        auto g1 = co_await lock.scoped();
        auto g2 = co_await other.scoped();
        g2 = std::move(g1);  // releases `other`, takes over `lock`
        EXPECT_FALSE(other.locked());
        EXPECT_TRUE(lock.locked());
    }
    EXPECT_FALSE(lock.locked());
}

// A scoped() cancelled while it waits yields no guard and does not release the lock
// that someone else holds.
CO_TEST_OPTS(SyncLock, ScopedCancelledWhileWaitingReleasesNothing, one_worker()) {
    Lock lock;
    co_await lock.acquire();
    auto w = spindle::spawn([](Lock& l) -> Task<void> {
        auto g = co_await l.scoped();
        ADD_FAILURE() << "scoped() returned a guard to a cancelled waiter";
    }(lock));
    co_await spindle::yield_now();
    EXPECT_TRUE(w.cancel());
    {
        const bool r = co_await ended_cancelled(w);
        EXPECT_TRUE(r);
    }
    EXPECT_TRUE(lock.locked());
    EXPECT_EQ(lock.approx_waiters(), 0u);
    lock.release();
    EXPECT_TRUE(lock.try_acquire());
    lock.release();
}

// Waking calls work from any thread: a plain std::thread releases the lock a task
// waits for.
CO_TEST(SyncLock, ReleaseFromAPlainThreadWakesTheWaiter) {
    Lock lock;
    co_await lock.acquire();
    std::atomic<bool> got{false};
    auto w = spindle::spawn([](Lock& l, std::atomic<bool>& g) -> Task<void> {
        co_await l.acquire();
        g.store(true);
        l.release();
    }(lock, got));
    while (lock.approx_waiters() == 0) co_await spindle::yield_now();  // the waiter is queued
    EXPECT_FALSE(got.load());
    std::thread t([&] { lock.release(); });
    co_await w;
    t.join();
    EXPECT_TRUE(got.load());
    EXPECT_FALSE(lock.locked());
}

// A Lock has no owner (asyncio): another task may release it.
CO_TEST_OPTS(SyncLock, AnotherTaskMayRelease, one_worker()) {
    Lock lock;
    co_await lock.acquire();
    co_await spindle::spawn(release_from_task(lock));
    EXPECT_FALSE(lock.locked());
}

// ─────────────────────────────── asyncio ports (one worker) ───────────────────────────────

// test_locks.py LockTests.test_acquire.
CO_TEST_OPTS(SyncLockAsyncio, LockAcquireFifo, one_worker()) {
    Lock lock;
    Trace T;
    co_await lock.acquire();
    auto t1 = spindle::spawn(acquire_traced(lock, T, "c1"));
    auto t2 = spindle::spawn(acquire_traced(lock, T, "c2"));
    co_await spindle::yield_now();
    T("locked", lock.locked());
    lock.release();
    T("locked", lock.locked());
    co_await spindle::yield_now();
    T("locked", lock.locked());
    co_await spindle::yield_now();
    auto t3 = spindle::spawn(acquire_traced(lock, T, "c3"));
    lock.release();
    co_await spindle::yield_now();
    lock.release();
    co_await spindle::yield_now();
    T("done", t1.done() && t2.done() && t3.done());
    T("locked", lock.locked());
    EXPECT_EQ(T.str(), "locked=1 locked=0 c1 locked=1 c2 c3 done=1 locked=1");
    co_await t1;
    co_await t2;
    co_await t3;
}

// DESIGN.md §2: release() with waiters leaves the lock unlocked but reserved: locked()
// is false, a newcomer queues behind, a second release() raises.
CO_TEST_OPTS(SyncLockAsyncio, LockReservedWindow, one_worker()) {
    Lock lock;
    Trace T;
    co_await lock.acquire();
    auto a = spindle::spawn(hold_once(lock, T, "a"));
    co_await spindle::yield_now();
    lock.release();
    T("locked", lock.locked());
    try {
        lock.release();
        T("second-release-ok");
    } catch (const std::logic_error&) {
        T("second-release-raises");
    }
    T("locked", lock.locked());
    EXPECT_FALSE(lock.try_acquire()) << "try_acquire barged into the reserved window";
    auto b = spindle::spawn(hold_once(lock, T, "b"));
    co_await lock.acquire();  // main queues behind a and b
    T("main+");
    T("locked", lock.locked());
    lock.release();
    co_await a;
    co_await b;
    T("locked", lock.locked());
    EXPECT_EQ(T.str(), "locked=0 second-release-raises locked=0 a+ a- main+ locked=1 b+ b- locked=0");
}

// test_acquire_cancel: a waiter cancelled before the grant leaves the queue.
CO_TEST_OPTS(SyncLockAsyncio, LockCancelBeforeGrant, one_worker()) {
    Lock lock;
    Trace T;
    co_await lock.acquire();
    auto task = spindle::spawn(acquire_traced(lock, T, "t+"));
    auto c = spindle::spawn(cancel_soon(task));
    const bool was_cancelled = co_await ended_cancelled(task);
    if (was_cancelled) T("t-cancelled");
    T("waiters", lock.approx_waiters());
    T("locked", lock.locked());
    lock.release();
    T("locked", lock.locked());
    EXPECT_EQ(T.str(), "t-cancelled waiters=0 locked=1 locked=0");
    EXPECT_TRUE(lock.try_acquire()) << "the cancelled waiter still counts";
    lock.release();
    co_await c;
}

// test_cancel_race: B is cancelled while A releases; C must get the lock.
namespace {
Task<void> lockit(Lock& l, Trace& T, std::string name, Event* blocker) {
    co_await l.acquire();
    T(name + "+");
    try {
        if (blocker != nullptr) co_await blocker->wait();
    } catch (...) {
        l.release();
        T(name + "-");
        throw;
    }
    l.release();
    T(name + "-");
}
}  // namespace

CO_TEST_OPTS(SyncLockAsyncio, LockCancelRace, one_worker()) {
    Lock lock;
    Event fa;
    Trace T;
    auto ta = spindle::spawn(lockit(lock, T, "a", &fa));
    co_await spindle::yield_now();
    T("locked", lock.locked());
    auto tb = spindle::spawn(lockit(lock, T, "b", nullptr));
    co_await spindle::yield_now();
    auto tc = spindle::spawn(lockit(lock, T, "c", nullptr));
    co_await spindle::yield_now();
    fa.set();
    tb.cancel();
    co_await spindle::yield_now();
    T("locked", lock.locked());
    T("a-done", ta.done());
    co_await spindle::yield_now();
    T("b-cancelled", tb.cancelled());
    co_await tc;
    T("locked", lock.locked());
    EXPECT_EQ(T.str(), "a+ locked=1 a- locked=0 a-done=1 c+ c- b-cancelled=1 locked=0");
    co_await ta;
    {
        const bool r = co_await ended_cancelled(tb);
        EXPECT_TRUE(r);
    }
}

// test_cancel_release_race (bpo-32734): cancel the first waiter and release at once:
// exactly one of the others gets the lock.
namespace {
Task<void> lockit_count(Lock& l, Trace& T, std::string name, int& lock_count, int& call_count) {
    ++call_count;
    co_await l.acquire();
    ++lock_count;
    T(name + "+");
}
Task<void> cancel_and_release(JoinHandle<void> h, Lock& l) {
    h.cancel();
    l.release();
    co_return;
}
}  // namespace

CO_TEST_OPTS(SyncLockAsyncio, LockCancelReleaseRace, one_worker()) {
    Lock lock;
    Trace T;
    int lock_count = 0;
    int call_count = 0;
    co_await lock.acquire();
    auto t1 = spindle::spawn(lockit_count(lock, T, "t1", lock_count, call_count));
    auto t2 = spindle::spawn(lockit_count(lock, T, "t2", lock_count, call_count));
    auto t3 = spindle::spawn(lockit_count(lock, T, "t3", lock_count, call_count));
    co_await spindle::yield_now();
    auto trig = spindle::spawn(cancel_and_release(t1, lock));
    const bool was_cancelled = co_await ended_cancelled(t1);
    if (was_cancelled) T("t1-cancelled");
    T("lock_count", lock_count);
    T("call_count", call_count);
    T("t1c", t1.cancelled());
    T("t2d", t2.done());
    t3.cancel();
    co_await spindle::yield_now();
    T("t3c", t3.cancelled());
    EXPECT_EQ(T.str(), "t2+ t1-cancelled lock_count=1 call_count=3 t1c=1 t2d=1 t3c=1");
    co_await trig;
    co_await t2;
    {
        const bool r = co_await ended_cancelled(t3);
        EXPECT_TRUE(r);
    }
    EXPECT_TRUE(lock.locked());  // t2 holds it
}

// test_finished_waiter_cancelled: a waiter cancelled before release() stops counting at
// once, so release() wakes nobody and the not-yet-started newcomer takes the lock.
CO_TEST_OPTS(SyncLockAsyncio, LockFinishedWaiterCancelled, one_worker()) {
    Lock lock;
    Trace T;
    co_await lock.acquire();
    auto tb = spindle::spawn(acquire_traced(lock, T, "b+"));
    co_await spindle::yield_now();
    auto tc = spindle::spawn(acquire_traced(lock, T, "c+"));
    tb.cancel();
    lock.release();
    T("locked", lock.locked());
    co_await spindle::yield_now();
    T("locked", lock.locked());
    T("bc", tb.cancelled());
    co_await tc;
    T("cd", tc.done());
    EXPECT_EQ(T.str(), "locked=0 c+ locked=1 bc=1 cd=1");
    {
        const bool r = co_await ended_cancelled(tb);
        EXPECT_TRUE(r);
    }
    lock.release();
}

// DESIGN.md §2: a waiter woken but cancelled before it resumed passes the lock on.
CO_TEST_OPTS(SyncLockAsyncio, LockCancelAfterGrant, one_worker()) {
    Lock lock;
    Trace T;
    co_await lock.acquire();
    auto tb = spindle::spawn(acquire_or_cancel(lock, T, "b", true));
    auto tc = spindle::spawn(acquire_or_cancel(lock, T, "c", true));
    co_await spindle::yield_now();
    lock.release();  // b is woken (the lock is reserved for it)
    T("locked", lock.locked());
    tb.cancel();  // ...but cancelled before it resumes
    co_await spindle::yield_now();
    T("locked", lock.locked());
    co_await spindle::yield_now();
    T("locked", lock.locked());
    const bool was_cancelled = co_await ended_cancelled(tb);
    if (was_cancelled) T("b-joined-cancelled");
    co_await tc;
    T("locked", lock.locked());
    EXPECT_EQ(T.str(), "locked=0 b-cancelled locked=0 c+ locked=1 b-joined-cancelled locked=0");
    EXPECT_TRUE(lock.try_acquire());
    lock.release();
}

// Cancelled waiters in the middle of the queue are skipped; the order of the rest holds.
CO_TEST_OPTS(SyncLockAsyncio, LockCancelledInMiddle, one_worker()) {
    Lock lock;
    Trace T;
    co_await lock.acquire();
    std::vector<JoinHandle<void>> ts;
    for (const char* n : {"b", "c", "d", "e"}) ts.push_back(spindle::spawn(acquire_or_cancel(lock, T, n, true)));
    co_await spindle::yield_now();
    ts[1].cancel();
    ts[2].cancel();
    lock.release();
    const char* names[] = {"b", "c", "d", "e"};
    for (int i = 0; i < 4; ++i) {
        const bool cancelled = co_await ended_cancelled(ts[i]);
        if (cancelled) T(std::string(names[i]) + "-joined-cancelled");
    }
    T("locked", lock.locked());
    EXPECT_EQ(T.str(), "c-cancelled d-cancelled b+ e+ c-joined-cancelled d-joined-cancelled locked=0");
    EXPECT_EQ(lock.approx_waiters(), 0u);
}

// Lock header: only the front waiter is ever woken; a cancelled waiter still at the
// front holds the hand-over up until its task has run (asyncio's _wake_up_first), and a
// newcomer queues behind the live waiter meanwhile.
CO_TEST_OPTS(SyncLockAsyncio, LockCancelledFrontHoldsUp, one_worker()) {
    Lock lock;
    Trace T;
    co_await lock.acquire();
    auto tb = spindle::spawn(acquire_or_cancel(lock, T, "b", false));
    auto tc = spindle::spawn(acquire_or_cancel(lock, T, "c", false));
    co_await spindle::yield_now();
    tb.cancel();
    lock.release();  // b's cell is cancelled: nobody is woken yet
    T("locked", lock.locked());
    EXPECT_FALSE(lock.try_acquire()) << "c is still waiting: no barging";
    auto td = spindle::spawn(acquire_or_cancel(lock, T, "d", false));
    for (auto* h : {&tb, &tc, &td}) (void)co_await ended_cancelled(*h);
    T("locked", lock.locked());
    EXPECT_EQ(T.str(), "locked=0 b-cancelled c+ d+ locked=0");
}

// asyncio's fast path: "not locked and every waiter cancelled" takes the lock.
CO_TEST_OPTS(SyncLockAsyncio, LockOnlyCancelledWaitersNewcomerBarges, one_worker()) {
    Lock lock;
    Trace T;
    co_await lock.acquire();
    auto tb = spindle::spawn(acquire_or_cancel(lock, T, "b", false));
    co_await spindle::yield_now();
    tb.cancel();
    lock.release();
    T("locked", lock.locked());
    co_await lock.acquire();
    T("main+");
    T("locked", lock.locked());
    const bool was_cancelled = co_await ended_cancelled(tb);
    if (was_cancelled) T("b-joined-cancelled");
    T("locked", lock.locked());
    lock.release();
    EXPECT_EQ(T.str(), "locked=0 main+ locked=1 b-cancelled b-joined-cancelled locked=1");
}

// asyncio.wait_for(lock.acquire(), t): a timeout leaves the queue; a release before the
// deadline is received.
namespace {
Task<void> release_later(Lock& l) {
    co_await spindle::sleep(5ms);
    l.release();
}
}  // namespace

CO_TEST_OPTS(SyncLockAsyncio, LockWaitForTimeout, one_worker()) {
    Lock lock;
    Trace T;
    co_await lock.acquire();
    try {
        co_await spindle::wait_for(lock.acquire(), 10ms);
        T("acquired");
    } catch (const spindle::TimeoutError&) {
        T("timeout");
    }
    T("waiters", lock.approx_waiters());
    T("locked", lock.locked());
    auto r = spindle::spawn(release_later(lock));
    co_await spindle::wait_for(lock.acquire(), 10ms);
    T("acquired");
    T("locked", lock.locked());
    co_await r;
    lock.release();
    T("locked", lock.locked());
    EXPECT_EQ(T.str(), "timeout waiters=0 locked=1 acquired locked=1 locked=0");
}

// test_context_manager / test_release_no_waiters.
CO_TEST_OPTS(SyncLockAsyncio, LockContextManagerAndReleaseNoWaiters, one_worker()) {
    Lock lock;
    EXPECT_FALSE(lock.locked());
    {
        auto g = co_await lock.scoped();
        EXPECT_TRUE(lock.locked());
    }
    EXPECT_FALSE(lock.locked());
    co_await lock.acquire();
    EXPECT_TRUE(lock.locked());
    lock.release();
    EXPECT_FALSE(lock.locked());
}
