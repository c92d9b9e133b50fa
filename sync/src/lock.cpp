// sync/src/lock.cpp — see spindle/sync/lock.hpp.
#include "spindle/sync/lock.hpp"

#include <stdexcept>

#include "spindle/runtime/errors.hpp"

namespace spindle {

Lock::Lock() : q_(this) {}
Lock::~Lock() = default;

bool Lock::try_acquire() noexcept {
    std::uint64_t free_state = 0;  // unlocked and nobody queued
    // acquire: pairs with release()'s RMW (the previous critical section).
    return state_.compare_exchange_strong(free_state, kLocked, std::memory_order_acquire,
                                          std::memory_order_relaxed);  // failure: nothing is read
}

bool Lock::locked() const noexcept {
    // acquire: pairs with the RMWs that lock/unlock.
    return (state_.load(std::memory_order_acquire) & kLocked) != 0U;
}

void Lock::release() {
    // seq_cst: releases the critical section, and is the store half of the Dekker
    // pair with a waiter that took its cell (enq_) and then reads state_.
    const std::uint64_t prev = state_.fetch_and(~kLocked, std::memory_order_seq_cst);
    if ((prev & kLocked) == 0U) throw std::logic_error("spindle::Lock::release: Lock is not acquired");
    if (active_of(prev) != 0) wake_up_first();
}

void Lock::wake_up_first() noexcept { (void)q_.grant_front(); }

void Lock::on_waiter_cancelled() noexcept {
    // seq_cst: the waiter stops counting at once (asyncio: fut.cancelled()).
    state_.fetch_sub(kActiveOne, std::memory_order_seq_cst);
}

bool Lock::AcquireAwaiter::await_suspend(std::coroutine_handle<> h) {
    detail::TaskHeader& self = detail::waiting_task("Lock::acquire");
    w_.self = &self;
    if (!coop_ && detail::tl_coop_budget == 0) {
        // Cooperative yield: go to the back of the ready queue; the worker retries
        // the acquisition (before_resume) when our turn comes.
        coop_ = true;
        self.resume_ = h;
        self.resume_hook_ = this;
        self.schedule();
        return true;
    }
    return queue(h);
}

bool Lock::AcquireAwaiter::before_resume(detail::TaskHeader& task) noexcept {
    if (task.cancel_pending()) return true;  // delivered in await_resume
    if (lock_->try_acquire()) {
        acquired_ = true;
        return true;
    }
    w_.self = &task;
    try {
        return !queue(task.resume_);
    } catch (...) {  // enqueue cannot fail short of memory exhaustion (it aborts)
        return true;
    }
}

bool Lock::AcquireAwaiter::queue(std::coroutine_handle<> h) {
    Lock& l = *lock_;
    w_.pos = l.q_.enqueue();
    // seq_cst: the load half of the Dekker pair with release() (see there).
    std::uint64_t s = l.state_.load(std::memory_order_seq_cst);
    for (;;) {
        if (s == 0) {  // became free with nobody queued: take it after all
            // seq_cst: as above; acquires the previous critical section.
            if (l.state_.compare_exchange_weak(s, kLocked, std::memory_order_seq_cst)) {
                (void)l.q_.abandon(w_.pos);  // a deposit here only said "it is yours"
                acquired_ = true;
                return false;
            }
            continue;
        }
        // seq_cst: as above.
        if (l.state_.compare_exchange_weak(s, s + kActiveOne, std::memory_order_seq_cst)) break;
    }
    queued_ = true;
    return w_.park(l.q_, h);
}

void Lock::AcquireAwaiter::await_resume() {
    if (!queued_) {
        if (fast_ || acquired_) return;
        // Yielded for the budget and resumed with a cancellation pending.
        (void)w_.self->consume_cancel();
        throw CancelledError{};
    }
    Lock& l = *lock_;
    bool granted = true;
    if (w_.suspended) granted = w_.finish(l.q_);
    else l.q_.remove(w_.pos);  // a deposit: granted without suspending
    if (granted && !(w_.suspended && w_.self->consume_cancel())) {
        // Take the reserved lock: active - 1, locked.
        // relaxed: the CAS validates.
        std::uint64_t s = l.state_.load(std::memory_order_relaxed);
        // seq_cst: acquires the previous critical section; Dekker as in release().
        while (!l.state_.compare_exchange_weak(s, (s - kActiveOne) | kLocked, std::memory_order_seq_cst)) {
        }
        return;
    }
    if (granted) {
        // Woken but cancelled before it resumed: stop counting; pass the lock on.
        // seq_cst: as in on_waiter_cancelled().
        l.state_.fetch_sub(kActiveOne, std::memory_order_seq_cst);
    } else {
        (void)w_.self->consume_cancel();  // cancelled in the queue (already uncounted)
    }
    if (!l.locked()) l.wake_up_first();
    throw CancelledError{};
}

}  // namespace spindle
