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
        yield_self(*self);  // we are running: this only marks us to be re-queued
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
            yield_self(*self);
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

/// The timeout scope behind wait_for: CPython 3.12's asyncio.Timeout, inside the
/// awaiting task. enter() notes the task's cancellation count; arm() queues a
/// TimeoutEntry (timer.hpp) whose firing cancels the task in place; leave() disarms
/// it and, if it fired, withdraws that one request (Task.uncancel()) and says whether
/// it was the only request since enter() — then a CancelledError that leaves the
/// operation is ours and becomes TimeoutError; otherwise someone else cancelled us
/// too and the CancelledError goes on (never swallowed). As in CPython, a request
/// counted before enter() does not count against us: a task that cancelled itself
/// and then waits in an operation that absorbs the cancellation (Condition.wait
/// re-acquiring its lock) gets TimeoutError when the timer fires. A timer that fires
/// while a request is pending does nothing (TimeoutEntry): the task was woken with
/// that request and delivers it first, as asyncio runs its wake-up first.
class TimeoutScope {
public:
    explicit TimeoutScope(std::int64_t ns) noexcept : ns_(ns) {}
    TimeoutScope(const TimeoutScope&) = delete;
    TimeoutScope& operator=(const TimeoutScope&) = delete;
    ~TimeoutScope() = default;  // a task's frame is never destroyed while it waits

    void enter(TaskHeader& self) noexcept {
        self_ = &self;
        cancels_at_entry_ = self.cancel_requests();
    }
    /// Before the operation may suspend. "Forever" (>= INT64_MAX/4 ns) needs no timer.
    void arm() noexcept {
        if (armed_ || ns_ >= INT64_MAX / 4) return;
        entry_.deadline = now_ns(*self_) + ns_;
        entry_.task = self_;
        add_timer(*self_, entry_);
        armed_ = true;
    }
    /// True when the timer fired and no other cancellation was requested since enter().
    bool leave() noexcept {
        if (!armed_) return false;
        armed_ = false;
        if (!disarm_timeout(*self_, entry_)) return false;
        const std::uint32_t after = self_->uncancel();
        // CPython: `uncancel() <= cancelling-at-entry` (24-bit counts, wrapping).
        const std::uint32_t diff = since_entry(after);
        fired_ours_ = diff == 0 || diff >= (1U << 23);  // <= 0 as a signed 24-bit difference
        return fired_ours_;
    }
    /// After leave() said "ours" and the operation then raised CancelledError: still ours
    /// only if nobody requested a cancellation meanwhile. (Several workers: a request
    /// that lands while ours is still pending sets no new flag — kCancelReq is already
    /// set — so the one CancelledError stands for both, and must stay a CancelledError.
    /// One that lands after the operation consumed the flag sets it anew and is
    /// delivered at the next suspension point.)
    [[nodiscard]] bool still_ours() const noexcept {
        return since_entry(self_->cancel_requests()) == 0;
    }
    /// After the operation ended without CancelledError while our request may still be
    /// pending (it fired while the task ran): withdraw it unless a new one came since
    /// (CPython 3.13's uncancel() clears _must_cancel).
    void withdraw() noexcept {
        if (fired_ours_) (void)self_->withdraw_pending_cancel(cancels_at_entry_);
    }

private:
    /// Requests counted since enter(), modulo 2^24 (the count's width).
    [[nodiscard]] std::uint32_t since_entry(std::uint32_t count) const noexcept {
        return (count - cancels_at_entry_) & (UINT32_MAX >> TaskHeader::kCancelCountShift);
    }

    TimeoutEntry entry_;
    TaskHeader* self_ = nullptr;
    std::int64_t ns_;
    std::uint32_t cancels_at_entry_ = 0;
    bool armed_ = false;
    bool fired_ours_ = false;
};

/// `co_await wait_for(op, d)`: awaits `op` in place under a TimeoutScope (no task,
/// no frame of its own). An operation that completes without suspending arms no timer.
template <class A>
class [[nodiscard]] TimeoutAwaiter {
    using Got = decltype(get_awaiter(std::declval<A&&>()));
    static constexpr bool kOwnAwaiter = !std::is_reference_v<Got>;  // operator co_await made one
    using Inner = std::remove_cvref_t<Got>;

public:
    using value_type = await_result_t<A>;

    TimeoutAwaiter(A&& op, std::int64_t ns) noexcept(std::is_nothrow_move_constructible_v<A>)
        : op_(std::move(op)), ns_(ns), scope_(ns) {}
    TimeoutAwaiter(const TimeoutAwaiter&) = delete;
    TimeoutAwaiter& operator=(const TimeoutAwaiter&) = delete;

    bool await_ready() {
        scope_.enter(require_task("wait_for"));
        if constexpr (kOwnAwaiter) inner_.emplace(MakeInner{&op_});
        return inner().await_ready();
    }
    template <class P>
    decltype(auto) await_suspend(std::coroutine_handle<P> h) {
        scope_.arm();
        try {
            return inner().await_suspend(h);
        } catch (...) {
            // Not suspended (the coroutine resumes with this exception, await_resume
            // never runs): disarm, and withdraw a request the timer may have made.
            if (scope_.leave()) scope_.withdraw();
            throw;
        }
    }
    value_type await_resume() {
        const bool ours = scope_.leave();
        if (!ours) return inner().await_resume();
        try {
            if constexpr (std::is_void_v<value_type>) {
                inner().await_resume();
                scope_.withdraw();
            } else {
                value_type v = inner().await_resume();
                scope_.withdraw();
                return v;
            }
        } catch (const CancelledError&) {
            if (scope_.still_ours()) throw TimeoutError();  // cancelled by our timer alone
            throw;
        } catch (...) {
            scope_.withdraw();
            throw;
        }
    }

    /// For code that needs a Task (spawn, a Task<R> variable): the same wait, as a
    /// coroutine of its own.
    operator Task<value_type>() && { return as_task(std::move(op_), ns_); }  // NOLINT(google-explicit-constructor)

private:
    struct MakeInner {  // guaranteed elision of the awaiter operator co_await returns
        A* op;
        operator Inner() const { return get_awaiter(std::move(*op)); }  // NOLINT(google-explicit-constructor)
    };
    static Task<value_type> as_task(A op, std::int64_t ns) { co_return co_await TimeoutAwaiter(std::move(op), ns); }
    decltype(auto) inner() noexcept {
        if constexpr (kOwnAwaiter) return (*inner_);
        else return (op_);
    }

    A op_;
    std::int64_t ns_;
    std::conditional_t<kOwnAwaiter, std::optional<Inner>, char> inner_{};
    TimeoutScope scope_;
};

}  // namespace detail

/// Reschedules the current task behind every task that is already ready.
inline detail::YieldAwaiter yield_now() noexcept { return {}; }

/// Suspends the current task for `d` (runtime clock: virtual under virtual_time).
template <class Rep, class Period>
detail::SleepAwaiter sleep(std::chrono::duration<Rep, Period> d) noexcept {
    return detail::SleepAwaiter{detail::to_ns(d)};
}

/// asyncio.wait_for, CPython 3.12+ rules: `async with asyncio.timeout(d): return
/// await op`. The operation is awaited in place, in the calling task (no task of its
/// own); when it can complete without suspending it does, whatever `d` (d <= 0 too),
/// and arms no timer. When `d` passes first the task is cancelled in place — the
/// operation's own cancellation rules apply (a Lock or permit granted meanwhile is
/// passed on, a Queue item put back) — and the CancelledError that comes out of it
/// becomes TimeoutError. A cancellation from anyone else (JoinHandle::cancel, a
/// TaskGroup) is never swallowed: it stays a CancelledError even when the timer fired
/// too. Awaiting a JoinHandle under wait_for cancels that task on timeout, as asyncio
/// does. Outside a task: std::logic_error.
template <class A, class Rep, class Period>
detail::TimeoutAwaiter<A> wait_for(A aw, std::chrono::duration<Rep, Period> d) {
    return detail::TimeoutAwaiter<A>(std::move(aw), detail::to_ns(d));
}

}  // namespace spindle
