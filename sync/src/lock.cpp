// sync/src/lock.cpp — see spindle/sync/lock.hpp.
#include "spindle/sync/lock.hpp"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "spindle/runtime/detail/tsan.hpp"
#include "spindle/runtime/errors.hpp"

namespace spindle {

Lock::Lock() : q_(this) {}
Lock::~Lock() = default;

detail::WaitDescription Lock::describe_wait(const detail::WaitQueue& /*q*/) const noexcept {
    // relaxed: a diagnostic snapshot.
    return {"Lock", this, active_of(state_.load(std::memory_order_relaxed))};
}

void Lock::release_slow(std::uint64_t prev) {
    if ((prev & kLocked) == 0U) throw std::logic_error("spindle::Lock::release: Lock is not acquired");
    if (active_of(prev) != 0) wake_up_first();
}

bool Lock::try_reserve() noexcept {
    // seq_cst: part of the Dekker pairs on state_ (release/queue, and L4).
    std::uint64_t s = state_.load(std::memory_order_seq_cst);
    for (;;) {
        if ((s & (kLocked | kReserved)) != 0U || active_of(s) == 0) return false;
        // seq_cst: as above.
        if (state_.compare_exchange_weak(s, s | kReserved, std::memory_order_seq_cst)) return true;
    }
}

void Lock::hand_off() noexcept {
    for (;;) {
        const detail::WaitQueue::FrontGrant r = q_.grant_front();
        if (r.granted) return;  // the grantee turns `reserved` into `locked` (L3)
        // Nobody to hand to now: drop the reservation, then re-check a cancelled
        // front (L4) — its waiter hands off itself if it leaves after this.
        // seq_cst: the store half of L4's Dekker pair.
        state_.fetch_and(~kReserved, std::memory_order_seq_cst);
        if (r.blocked == UINT64_MAX) {
            // Nothing to grant and no cancelled front: every waiter still counted in
            // `active` took its cell after our scan read enq_ — it saw `reserved`
            // and queued, relying on us. Take the reservation back and scan again
            // (try_reserve fails when nobody is counted). At one worker the scan
            // always sees every counted waiter, so this never loops there.
            // Found by the model (tests/model/lock.pml, BUG_LOCK_NO_RESCAN).
            if (!try_reserve()) return;
            continue;
        }
        if (!q_.is_removed(r.blocked)) return;
        if (!try_reserve()) return;
    }
}

void Lock::wake_up_first() noexcept {
    if (try_reserve()) hand_off();
}

void Lock::on_waiter_cancelled() noexcept {
    // seq_cst: the waiter stops counting at once (asyncio: fut.cancelled()).
    state_.fetch_sub(kActiveOne, std::memory_order_seq_cst);
}

bool Lock::AcquireAwaiter::await_suspend(std::coroutine_handle<> h) {
    detail::TaskHeader& self = detail::waiting_task("Lock::acquire");
    w_.self = &self;
    if (!coop_ && (detail::tl_coop_budget == 0 || (breaking_ = handing_over()))) {
        // Cooperative yield: go to the back of the ready queue; the worker retries
        // the acquisition (before_resume) when our turn comes. Also taken (once per
        // acquire, 2+ workers) when the lock is being handed to a woken waiter: see
        // handing_over().
        coop_ = true;
        self.resume_ = h;
        self.resume_hook_ = this;
        self.schedule();
        return true;
    }
    return queue(h);
}

namespace {
// Per worker thread: the predictor's probe clock (see handing_over). Library code,
// never inlined into a coroutine body.
thread_local std::uint32_t tl_convoy_probe = 0;
}  // namespace

bool Lock::AcquireAwaiter::handing_over() const noexcept {
    // relaxed: a heuristic; queue() re-reads the state with the Dekker protocol.
    const std::uint64_t s = lock_->state_.load(std::memory_order_relaxed);
    if ((s & (kLocked | kReserved)) != kReserved || detail::single_worker(*w_.self)) return false;
    // The predictor first (it sits on state_'s line, which we just read): a yield
    // that found the lock held again on its retry (the waiter keeps it across a
    // suspension: lock_across_await) only added a suspension, so after a miss the
    // lock's acquires queue directly, and one in 128 on each worker probes again.
    // Nothing is written on this path: a per-lock counter written by every acquire
    // made the lock's hot line bounce between the workers (lock_across_await on 2
    // workers: ~120 -> ~300 ns/op).
    // relaxed: a heuristic shared by the lock's users; nothing is published through it.
    if (lock_->convoy_credit_.load(std::memory_order_relaxed) < 0 && (++tl_convoy_probe & 127U) != 0) return false;
    // Only when the waiter it was handed to runs next here (its granter was this
    // worker, so it sits in our wake area): yielding then costs one turn and keeps
    // FIFO order among the tasks that share the lock. A waiter woken elsewhere may
    // not run for a while: queue behind it (its wake brings us to its worker later).
    const std::uint16_t me = detail::current_worker_hint();
    return me != 0 && lock_->q_.grant_hint() == me;
}

void Lock::AcquireAwaiter::note_break(bool got_it) noexcept {
    // relaxed: see handing_over(). Written only when a convoy yield retries.
    const std::int8_t c = lock_->convoy_credit_.load(std::memory_order_relaxed);
    const std::int8_t next = got_it ? static_cast<std::int8_t>(c < 0 ? 0 : (c < 4 ? c + 1 : 4))
                                    : static_cast<std::int8_t>(c > 0 ? c - 1 : -1);
    if (next != c) lock_->convoy_credit_.store(next, std::memory_order_relaxed);  // relaxed: as above
}

bool Lock::AcquireAwaiter::before_resume(detail::TaskHeader& task) noexcept {
    if (task.cancel_pending()) return true;  // delivered in await_resume
    if (lock_->try_acquire_raw()) {
        if (breaking_) note_break(true);
        acquired_ = true;
        // The release was the inline release() in the user's code (seen by the user's
        // TSan); this acquisition runs in the library (not seen): spindle/runtime/detail/tsan.hpp.
        detail::tsan_acquire(&lock_->state_);
        return true;
    }
    // A miss only if the lock is held and its last grant was made here: the waiter we
    // yielded to ran on this worker, took the lock and still holds it now that we run
    // on the same worker, so it suspended holding it (lock_across_await). Held after
    // a grant elsewhere is contention with the other worker, not a miss; reserved
    // again is another hand-off.
    // relaxed: a heuristic read.
    if (breaking_ && (lock_->state_.load(std::memory_order_relaxed) & kLocked) != 0U &&
        lock_->q_.grant_hint() == detail::current_worker_hint())
        note_break(false);
    w_.self = &task;
    try {
        return !queue(task.resume_);
    } catch (...) {  // enqueue cannot fail short of memory exhaustion (it aborts)
        return true;
    }
}

Lock::Queued Lock::queue_waiter(detail::SyncWait& w, std::coroutine_handle<> h) {
    w.pos = q_.enqueue();
    // seq_cst: the load half of the Dekker pair with release() (see there).
    std::uint64_t s = state_.load(std::memory_order_seq_cst);
    for (;;) {
        if (s == 0) {  // became free with nobody queued: take it after all
            // seq_cst: as above; acquires the previous critical section.
            if (state_.compare_exchange_weak(s, kLocked, std::memory_order_seq_cst)) {
                // No deposit can be here: a grant needs `reserved`, so the word was
                // not 0 while one was in flight (L2).
                (void)q_.abandon(w.pos);
                detail::tsan_acquire(&state_);  // as in AcquireAwaiter::before_resume()
                return Queued::took;
            }
            continue;
        }
        // seq_cst: as above.
        if (state_.compare_exchange_weak(s, s + kActiveOne, std::memory_order_seq_cst)) break;
    }
    return w.park(q_, h) ? Queued::parked : Queued::deposit;
}

bool Lock::AcquireAwaiter::queue(std::coroutine_handle<> h) {
    const Queued r = lock_->queue_waiter(w_, h);
    if (r == Queued::took) {
        acquired_ = true;
        return false;
    }
    queued_ = true;               // parked, or granted before it slept (a deposit)
    return r == Queued::parked;
}

void Lock::AcquireAwaiter::await_resume() {
    if (!queued_) {
        if (fast_ || acquired_) {
            if (acquired_ && detail::tl_debug) [[unlikely]] detail::debug_lock_acquired();  // fast_: try_acquire counted
            return;
        }
        // Yielded for the budget and resumed with a cancellation pending.
        (void)w_.self->consume_cancel();
        throw CancelledError{};
    }
    if (!lock_->finish_queued(w_)) throw CancelledError{};
}

bool Lock::finish_queued(detail::SyncWait& w) noexcept {
    // A deposit (granted before we slept) is a grant without a suspension point.
    const bool granted = w.suspended ? w.finish_keep() : true;
    if (granted && !(w.suspended && w.self->consume_cancel())) {
        // L3: take the reserved lock — reserved -> locked, active - 1 — then leave.
        // relaxed: the CAS validates.
        std::uint64_t s = state_.load(std::memory_order_relaxed);
        for (;;) {
            if ((s & kReserved) == 0U || (s & kLocked) != 0U) {
                std::fprintf(stderr, "spindle: internal error: Lock granted without a reservation\n");
                std::abort();
            }
            // seq_cst: acquires the previous critical section; Dekker as in release().
            if (state_.compare_exchange_weak(s, ((s - kActiveOne) & ~kReserved) | kLocked,
                                             std::memory_order_seq_cst))
                break;
        }
        q_.remove(w.pos);
        if (detail::tl_debug) [[unlikely]] detail::debug_lock_acquired();
        return true;
    }
    if (granted) {
        // Woken but cancelled before it resumed: stop counting, keep the reservation
        // and hand the lock to the next front waiter (asyncio: wake_up_first).
        // seq_cst: as in on_waiter_cancelled().
        state_.fetch_sub(kActiveOne, std::memory_order_seq_cst);
        q_.remove(w.pos);
        hand_off();
    } else {
        // Cancelled in the queue (already uncounted): leave, then asyncio's
        // `if not locked: wake_up_first()`.
        (void)w.self->consume_cancel();
        q_.remove(w.pos);
        wake_up_first();
    }
    return false;
}

}  // namespace spindle
