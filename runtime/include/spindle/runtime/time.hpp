// spindle/runtime/time.hpp — yield_now, sleep, wait_for.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>

#include "spindle/runtime/detail/timer.hpp"
#include "spindle/runtime/errors.hpp"
#include "spindle/runtime/runtime.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle {

namespace detail {

/// `co_await yield_now()`: reschedule behind every task already ready (asyncio's
/// `await asyncio.sleep(0)`). A pending cancellation is delivered here.
struct YieldAwaiter {
    TaskHeader* self = nullptr;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) {
        self = &require_task("yield_now");
        self->resume_ = h;
        self->schedule();  // we are running: this only marks us to be re-queued
    }
    void await_resume() const {
        if (self->consume_cancel()) throw CancelledError{};
    }
};

/// `co_await sleep(d)`: a timer. d <= 0 is a plain yield, as in asyncio.
struct SleepAwaiter : WaitNode {
    explicit SleepAwaiter(std::int64_t ns) noexcept : delay_ns(ns) {}
    std::int64_t delay_ns;
    TimerEntry entry;
    TaskHeader* self = nullptr;

    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
        self = &require_task("sleep");
        if (delay_ns <= 0) {
            self->resume_ = h;
            self->schedule();
            return true;
        }
        entry.deadline = now_ns(*self) + delay_ns;
        entry.task = self;
        entry.token = self->arm(this, h);
        add_timer(*self, entry);
        // A pending cancellation: still go to the back of the ready queue, as asyncio
        // does (the cancelled future's callback is scheduled with call_soon).
        if (self->cancelled_while_arming(entry.token)) self->schedule();
        return true;
    }
    void await_resume() {
        if (delay_ns > 0) remove_timer(*self, entry);  // no-op when it fired
        if (self->consume_cancel()) throw CancelledError{};
    }
};

template <class Rep, class Period>
std::int64_t to_ns(std::chrono::duration<Rep, Period> d) noexcept {
    if (d <= std::chrono::duration<Rep, Period>::zero()) return 0;  // negative = zero
    using Ns = std::chrono::duration<long double, std::nano>;
    const long double ns = std::chrono::duration_cast<Ns>(d).count();
    if (ns >= static_cast<long double>(INT64_MAX / 4)) return INT64_MAX / 4;  // "forever"
    const auto r = static_cast<std::int64_t>(ns);
    return r == 0 ? 1 : r;
}

template <class A>
decltype(auto) get_awaiter(A&& a) {
    if constexpr (requires { std::forward<A>(a).operator co_await(); }) {
        return std::forward<A>(a).operator co_await();
    } else if constexpr (requires { operator co_await(std::forward<A>(a)); }) {
        return operator co_await(std::forward<A>(a));
    } else {
        return std::forward<A>(a);
    }
}

template <class A>
using await_result_t = decltype(get_awaiter(std::declval<A>()).await_resume());

/// Waits for `target` to complete or for a deadline; both end the same wait.
/// delay_ns < 0: no deadline; 0: times out at once without suspending.
struct JoinOrTimeout : WaitNode, JoinNode {
    enum class Outcome { kCompleted, kTimedOut, kCancelled };
    JoinOrTimeout(TaskHeader* t, std::int64_t ns) noexcept : target(t), delay_ns(ns) {}
    TaskHeader* target;
    std::int64_t delay_ns;
    TimerEntry entry;
    TaskHeader* self = nullptr;
    bool joined = false;
    bool timer = false;
    bool suspended = false;

    bool await_ready() const noexcept { return delay_ns == 0 || target->complete(); }
    bool await_suspend(std::coroutine_handle<> h);
    Outcome await_resume() noexcept;
    static void notify_fn(JoinNode* n) noexcept;
};

/// The body of wait_for once the inner operation runs as `child`.
template <class R>
Task<R> wait_for_child(JoinHandle<R> child, std::int64_t ns) {
    JoinOrTimeout first{child.header(), ns};
    auto outcome = co_await first;
    if (outcome == JoinOrTimeout::Outcome::kCompleted || child.done()) {
        // CPython: the inner task's done callback releases the waiter future, whose
        // callback wakes us: one more ready-queue step than a direct join.
        if (first.suspended && outcome == JoinOrTimeout::Outcome::kCompleted) {
            try {
                co_await YieldAwaiter{};
            } catch (const CancelledError&) {
                // CPython 3.11: cancelled after the inner task finished -> its result
                // is returned (`if fut.done(): return fut.result()`), never lost.
            }
        }
        co_return co_await std::move(child);
    }
    // Timed out or cancelled: cancel the inner operation and wait until it is done.
    child.cancel();
    bool woken_by_child = false;
    while (!child.done()) {
        // Wait (no deadline) until the inner operation has finished; a cancellation
        // of ours meanwhile is remembered and re-raised after it.
        JoinOrTimeout again{child.header(), -1};
        auto r = co_await again;
        if (r == JoinOrTimeout::Outcome::kCancelled) outcome = r;
        woken_by_child = again.suspended && r == JoinOrTimeout::Outcome::kCompleted;
    }
    if (woken_by_child) {  // CPython's _cancel_and_wait: the same extra step
        try {
            co_await detail::YieldAwaiter{};
        } catch (const CancelledError&) {
            outcome = JoinOrTimeout::Outcome::kCancelled;
        }
    }
    if (outcome == JoinOrTimeout::Outcome::kCancelled) {
        if (child.cancelled() || !child.done()) throw CancelledError{};
        // We were cancelled, but the inner operation completed anyway (a lock or a
        // permit may now be ours): never lose it (DESIGN: cancellation never loses a
        // grant). Return it and re-request the cancellation, delivered at our next
        // suspension point. (CPython 3.11 drops the result here; 3.12 fixed it.)
        (void)require_task("wait_for").cancel();
        co_return co_await std::move(child);
    }
    try {
        co_return co_await std::move(child);  // it finished anyway: its value wins (asyncio)
    } catch (const CancelledError&) {
        throw TimeoutError();
    }
}

template <class A>
Task<await_result_t<A>> as_task(A a) {
    co_return co_await std::move(a);
}

}  // namespace detail

/// Reschedules the current task behind every task that is already ready.
inline detail::YieldAwaiter yield_now() noexcept { return {}; }

/// Suspends the current task for `d` (runtime clock: virtual under virtual_time).
template <class Rep, class Period>
detail::SleepAwaiter sleep(std::chrono::duration<Rep, Period> d) noexcept {
    return detail::SleepAwaiter{detail::to_ns(d)};
}

/// asyncio.wait_for: the awaitable's value, or — when `d` passes first — the inner
/// operation is cancelled, waited for, and TimeoutError is thrown (unless it
/// completed anyway, whose value is then returned, as in CPython 3.11). The inner
/// operation runs as a task of its own, as asyncio's does.
template <class A, class Rep, class Period>
Task<detail::await_result_t<A>> wait_for(A aw, std::chrono::duration<Rep, Period> d) {
    using R = detail::await_result_t<A>;
    const std::int64_t ns = detail::to_ns(d);
    JoinHandle<R> child;
    if constexpr (std::is_same_v<std::remove_cvref_t<A>, Task<R>>) {
        child = spawn(std::move(aw));
    } else if constexpr (std::is_same_v<std::remove_cvref_t<A>, JoinHandle<R>>) {
        child = std::move(aw);  // asyncio.wait_for(task): the timeout cancels that task
    } else {
        child = spawn(detail::as_task(std::move(aw)));
    }
    return detail::wait_for_child<R>(std::move(child), ns);
}

}  // namespace spindle
