// tests/errors — one test per row of DESIGN.md's error table and per misuse of the
// sync primitives (the Queue rows live with the Queue's tests; the runtime's misuse
// rows — spawn outside a runtime, block_on from a worker, shutdown from a worker,
// bad RuntimeOptions, empty handles — are in tests/runtime/misuse_test.cpp).
// Runtime::shutdown() cancels the live tasks and leaves the runtime usable, so a
// spawn after it is not an error (the "stopped" check only guards destruction).
//
// Every test checks the EXACT exception type (not a subclass: typeid), and that the
// primitive still works afterwards — a waiter still gets woken, the counts are right.
#include <atomic>
#include <climits>
#include <coroutine>
#include <cstddef>
#include <stdexcept>
#include <typeinfo>
#include <vector>

#include "co_test.hpp"

using namespace std::chrono_literals;
using spindle::JoinHandle;
using spindle::Task;
using spindle::testing::one_worker_virtual;

namespace {

/// Runs f, which must throw exactly E (typeid equality, not a derived type).
template <class E, class F>
void expect_exact(F&& f, const char* what) {
    bool thrown = false;
    try {
        f();
    } catch (const std::exception& e) {
        thrown = true;
        EXPECT_EQ(typeid(e), typeid(E)) << what << ": threw " << typeid(e).name() << " (" << e.what() << ")";
    }
    EXPECT_TRUE(thrown) << what << ": did not throw";
}

/// For a call made inside a task (co_await cannot sit in a lambda): exactly E?
template <class E>
bool is_exact(const std::exception& e) {
    return typeid(e) == typeid(E);
}

Task<void> hold_lock_until(spindle::Lock& l, spindle::Event& go, std::atomic<int>& got) {
    co_await l.acquire();
    got.fetch_add(1);
    co_await go.wait();
    l.release();
}

Task<void> take_sem(spindle::Semaphore& s, std::atomic<int>& got) {
    co_await s.acquire();
    got.fetch_add(1);
}

}  // namespace

// ───────────────────────── Lock ─────────────────────────

TEST(Errors, LockReleaseWhenUnlockedIsLogicErrorAndLockStillWorks) {
    spindle::Lock lock;
    expect_exact<std::logic_error>([&] { lock.release(); }, "Lock::release unlocked");
    EXPECT_FALSE(lock.locked());
    // Still usable: one task takes it, a second waits and is woken by the release.
    spindle::run([](spindle::Lock& l) -> Task<void> {
        spindle::Event go;
        std::atomic<int> got{0};
        auto a = spindle::spawn(hold_lock_until(l, go, got));
        while (got.load() == 0) co_await spindle::yield_now();
        EXPECT_TRUE(l.locked());
        std::atomic<int> got2{0};
        spindle::Event go2;
        auto b = spindle::spawn(hold_lock_until(l, go2, got2));
        go.set();
        co_await a;
        go2.set();
        co_await b;
        EXPECT_EQ(got2.load(), 1) << "the queued waiter was woken";
        EXPECT_FALSE(l.locked());
    }(lock));
    EXPECT_TRUE(lock.try_acquire());
    lock.release();
    expect_exact<std::logic_error>([&] { lock.release(); }, "Lock::release twice");
}

CO_TEST_OPTS(Errors, LockSecondReleaseWhileReservedIsLogicErrorAndTheWaiterStillGetsIt, one_worker_virtual()) {
    spindle::Lock lock;
    co_await lock.acquire();
    std::atomic<int> got{0};
    spindle::Event go;
    auto h = spindle::spawn(hold_lock_until(lock, go, got));
    co_await spindle::yield_now();  // h queues
    lock.release();                 // reserved for h
    EXPECT_FALSE(lock.locked());
    expect_exact<std::logic_error>([&] { lock.release(); }, "release of a reserved lock");
    EXPECT_FALSE(lock.try_acquire()) << "nobody barges past the reservation";
    co_await spindle::yield_now();  // h runs and takes the lock
    EXPECT_EQ(got.load(), 1);
    EXPECT_TRUE(lock.locked());
    go.set();
    co_await h;
    EXPECT_FALSE(lock.locked());
}

// ───────────────────────── Condition ─────────────────────────

CO_TEST_OPTS(Errors, ConditionWaitWithoutTheLockIsLogicErrorAndStillWorks, one_worker_virtual()) {
    spindle::Condition cond;
    bool caught = false;
    try {
        bool r = co_await cond.wait();
        (void)r;
    } catch (const std::exception& e) {
        caught = is_exact<std::logic_error>(e);
    }
    EXPECT_TRUE(caught) << "Condition::wait without the lock: std::logic_error";
    EXPECT_FALSE(cond.locked()) << "the failed wait did not take the lock";
    // Still works: a waiter is notified.
    std::atomic<int> woken{0};
    auto h = spindle::spawn([](spindle::Condition& c, std::atomic<int>& w) -> Task<void> {
        auto g = co_await c.scoped();
        bool r = co_await c.wait();
        EXPECT_TRUE(r);
        w.fetch_add(1);
    }(cond, woken));
    co_await spindle::yield_now();  // h waits
    {
        auto g = co_await cond.scoped();
        cond.notify();
    }
    co_await h;
    EXPECT_EQ(woken.load(), 1);
}

CO_TEST_OPTS(Errors, ConditionNotifyWithoutTheLockIsLogicErrorAndTheWaiterIsStillWoken, one_worker_virtual()) {
    spindle::Condition cond;
    std::atomic<int> woken{0};
    auto h = spindle::spawn([](spindle::Condition& c, std::atomic<int>& w) -> Task<void> {
        auto g = co_await c.scoped();
        bool r = co_await c.wait();
        EXPECT_TRUE(r);
        w.fetch_add(1);
    }(cond, woken));
    co_await spindle::yield_now();  // h waits (and released the lock)
    expect_exact<std::logic_error>([&] { cond.notify(); }, "Condition::notify without the lock");
    expect_exact<std::logic_error>([&] { cond.notify_all(); }, "Condition::notify_all without the lock");
    expect_exact<std::logic_error>([&] { cond.release(); }, "Condition::release without the lock");
    co_await spindle::yield_now();
    EXPECT_EQ(woken.load(), 0) << "a rejected notify wakes nobody";
    {
        auto g = co_await cond.scoped();
        cond.notify_all();
    }
    co_await h;
    EXPECT_EQ(woken.load(), 1);
}

// ───────────────────────── Semaphore / BoundedSemaphore ─────────────────────────

TEST(Errors, NegativeSemaphoreValueIsInvalidArgument) {
    expect_exact<std::invalid_argument>([] { spindle::Semaphore s(-1); }, "Semaphore(-1)");
    expect_exact<std::invalid_argument>([] { spindle::BoundedSemaphore s(-1); }, "BoundedSemaphore(-1)");
    expect_exact<std::invalid_argument>([] { spindle::Semaphore s(std::ptrdiff_t{INT32_MAX} + 1); },
                                        "Semaphore(2^31)");
    spindle::Semaphore zero(0);  // 0 is fine
    EXPECT_TRUE(zero.locked());
    EXPECT_EQ(zero.value(), 0);
}

TEST(Errors, BoundedSemaphoreOverReleaseIsInvalidArgumentAndCountsStayRight) {
    spindle::BoundedSemaphore sem(1);
    expect_exact<std::invalid_argument>([&] { sem.release(); }, "BoundedSemaphore over-release");
    EXPECT_EQ(sem.value(), 1) << "a rejected release does not change the value";
    spindle::run([](spindle::BoundedSemaphore& s) -> Task<void> {
        co_await s.acquire();
        EXPECT_EQ(s.value(), 0);
        std::atomic<int> got{0};
        auto h = spindle::spawn(take_sem(s, got));
        while (s.approx_waiters() == 0) co_await spindle::yield_now();
        s.release();  // to the waiter
        co_await h;
        EXPECT_EQ(got.load(), 1) << "the waiter got the permit";
        EXPECT_EQ(s.value(), 0);
        s.release();  // the waiter's permit back
        EXPECT_EQ(s.value(), 1);
    }(sem));
    expect_exact<std::invalid_argument>([&] { sem.release(); }, "BoundedSemaphore over-release, again");
    EXPECT_EQ(sem.value(), 1);
    EXPECT_TRUE(sem.try_acquire());
    EXPECT_EQ(sem.value(), 0);
}

TEST(Errors, SemaphoreOverflowIsOverflowErrorAndTheValueIsKept) {
    spindle::Semaphore sem(INT32_MAX);
    expect_exact<std::overflow_error>([&] { sem.release(); }, "Semaphore above 2^31-1");
    EXPECT_EQ(sem.value(), INT32_MAX);
    EXPECT_TRUE(sem.try_acquire());
    sem.release();
    EXPECT_EQ(sem.value(), INT32_MAX);
}

// ───────────────────────── Barrier ─────────────────────────

TEST(Errors, BarrierWithZeroPartiesIsInvalidArgument) {
    expect_exact<std::invalid_argument>([] { spindle::Barrier b(0); }, "Barrier(0)");
    spindle::Barrier one(1);
    EXPECT_EQ(one.parties(), 1U);
    std::size_t idx = spindle::run([](spindle::Barrier& b) -> Task<std::size_t> {
        std::size_t i = co_await b.wait();
        co_return i;
    }(one));
    EXPECT_EQ(idx, 0U);
}

CO_TEST_OPTS(Errors, AbortedBarrierIsBrokenBarrierErrorForWaitersAndLaterCalls, one_worker_virtual()) {
    spindle::Barrier b(2);
    std::atomic<int> broken{0};
    auto h = spindle::spawn([](spindle::Barrier& bar, std::atomic<int>& br) -> Task<void> {
        try {
            std::size_t i = co_await bar.wait();
            (void)i;
        } catch (const std::exception& e) {
            if (is_exact<spindle::BrokenBarrierError>(e)) br.fetch_add(1);
        }
    }(b, broken));
    co_await spindle::yield_now();
    EXPECT_EQ(b.n_waiting(), 1U);
    co_await b.abort();
    co_await h;
    EXPECT_EQ(broken.load(), 1) << "the waiter was woken with BrokenBarrierError";
    EXPECT_TRUE(b.broken());
    bool caught = false;
    try {
        std::size_t i = co_await b.wait();
        (void)i;
    } catch (const std::exception& e) {
        caught = is_exact<spindle::BrokenBarrierError>(e);
    }
    EXPECT_TRUE(caught);
    co_await b.reset();  // reset repairs it (asyncio)
    EXPECT_FALSE(b.broken());
}

// ───────────────────────── TimeoutError ─────────────────────────

CO_TEST_OPTS(Errors, WaitForTimeoutIsTimeoutErrorAndLosesNoPermit, one_worker_virtual()) {
    spindle::Semaphore sem(0);
    bool caught = false;
    try {
        co_await spindle::wait_for(sem.acquire(), 10ms);
    } catch (const std::exception& e) {
        caught = is_exact<spindle::TimeoutError>(e);
    }
    EXPECT_TRUE(caught) << "wait_for: exactly spindle::TimeoutError";
    EXPECT_FALSE(sem.try_acquire());
    sem.release();
    EXPECT_EQ(sem.value(), 1) << "the timed-out waiter left the queue; the permit is free";
    EXPECT_FALSE(sem.locked());
    co_await sem.acquire();
    EXPECT_EQ(sem.value(), 0);
}

// ───────────────────────── waiting calls outside a task ─────────────────────────
// `co_await x.acquire()` outside a spindle task reaches the awaiter's await_suspend
// on a plain thread; that is what we call here.

TEST(Errors, WaitingOutsideATaskIsLogicErrorAndLeavesNoWaiter) {
    spindle::Lock lock;
    ASSERT_TRUE(lock.try_acquire());
    {
        auto a = lock.acquire();
        ASSERT_FALSE(a.await_ready());
        expect_exact<std::logic_error>([&] { (void)a.await_suspend(std::noop_coroutine()); }, "Lock::acquire");
    }
    lock.release();  // no waiter was queued: the lock is free, not reserved
    EXPECT_FALSE(lock.locked());
    EXPECT_TRUE(lock.try_acquire());
    lock.release();

    spindle::Semaphore sem(0);
    {
        auto a = sem.acquire();
        ASSERT_FALSE(a.await_ready());
        expect_exact<std::logic_error>([&] { (void)a.await_suspend(std::noop_coroutine()); }, "Semaphore::acquire");
    }
    sem.release();
    EXPECT_EQ(sem.value(), 1) << "no phantom waiter took the permit";
    EXPECT_TRUE(sem.try_acquire());

    spindle::Event ev;
    {
        auto a = ev.wait();
        ASSERT_FALSE(a.await_ready());
        expect_exact<std::logic_error>([&] { (void)a.await_suspend(std::noop_coroutine()); }, "Event::wait");
    }
    ev.set();
    EXPECT_TRUE(ev.is_set());
    // And the primitives still serve tasks.
    spindle::run([](spindle::Lock& l, spindle::Event& e) -> Task<void> {
        co_await l.acquire();
        co_await e.wait();
        l.release();
    }(lock, ev));
    EXPECT_FALSE(lock.locked());
}

// ───────────────────────── runtime misuse not covered elsewhere ─────────────────────────

TEST(Errors, AwaitingATaskTwiceIsLogicError) {
    int r = spindle::run([]() -> Task<int> {
        auto t = []() -> Task<int> { co_return 7; }();
        int v = co_await std::move(t);
        int caught = 0;
        try {
            int w = co_await std::move(t);
            (void)w;
        } catch (const std::exception& e) {
            caught = is_exact<std::logic_error>(e) ? 1 : 0;
        }
        co_return v * 10 + caught;
    }());
    EXPECT_EQ(r, 71);
}
