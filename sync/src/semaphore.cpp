// sync/src/semaphore.cpp — see spindle/sync/semaphore.hpp.
#include "spindle/sync/semaphore.hpp"

#include <climits>
#include <stdexcept>
#include <string>
#include <thread>

#include "spindle/runtime/detail/tsan.hpp"
#include "spindle/runtime/errors.hpp"

namespace spindle {

namespace {
std::uint64_t checked_initial(std::ptrdiff_t v) {
    if (v < 0) throw std::invalid_argument("spindle::Semaphore: initial value must be >= 0");
    if (v > INT32_MAX)
        throw std::invalid_argument("spindle::Semaphore: initial value must be < 2^31 (got " + std::to_string(v) +
                                    ")");
    return static_cast<std::uint64_t>(v);
}
}  // namespace

Semaphore::Semaphore(std::ptrdiff_t value) : Semaphore(value, -1) {}

Semaphore::Semaphore(std::ptrdiff_t value, std::ptrdiff_t bound)
    : state_(checked_initial(value)),
      bound_(bound < 0 ? static_cast<std::uint64_t>(INT32_MAX) : static_cast<std::uint64_t>(bound)),
      bounded_(bound >= 0),
      q_(this) {}

Semaphore::~Semaphore() = default;

detail::WaitDescription Semaphore::describe_wait(const detail::WaitQueue& /*q*/) const noexcept {
    // relaxed: a diagnostic snapshot.
    return {bounded_ ? "BoundedSemaphore" : "Semaphore", this, active_of(state_.load(std::memory_order_relaxed))};
}

bool Semaphore::try_acquire() noexcept {
    // relaxed: the CAS validates.
    std::uint64_t s = state_.load(std::memory_order_relaxed);
    for (;;) {
        if (locked_state(s)) return false;
        // acquire: pairs with release()'s RMW.
        if (state_.compare_exchange_weak(s, s - 1, std::memory_order_acquire, std::memory_order_relaxed)) {
            if ((s & kGiving) != 0U) [[unlikely]] after_giving();  // S2
            return true;
        }
    }
}

bool Semaphore::locked() const noexcept {
    // acquire: a snapshot ordered after the RMWs it reflects.
    return locked_state(state_.load(std::memory_order_acquire));
}

std::ptrdiff_t Semaphore::value() const noexcept {
    // acquire: as in locked().
    return static_cast<std::ptrdiff_t>(value_of(state_.load(std::memory_order_acquire)));
}

void Semaphore::release() {
    // relaxed: the CAS validates (and give_to_waiter() re-reads with seq_cst).
    std::uint64_t s = state_.load(std::memory_order_relaxed);
    for (;;) {
        if (value_of(s) >= bound_) throw_over_bound();
        if (active_of(s) != 0) break;  // waiters: the permit goes to one of them (below)
        // seq_cst: releases the permit holder's work, and is the store half of the
        // Dekker pair with a waiter that took its cell and then reads state_. Nobody
        // was counted: this store is our last touch of *this (S1 in the header).
        if (state_.compare_exchange_weak(s, s + 1, std::memory_order_seq_cst, std::memory_order_relaxed)) return;
    }
    // S1: the permit stays in our hands, never in value, where a waiter that resumes
    // meanwhile could pass it to the last waiter, which could return and destroy
    // *this before we touch state_ again. (Before, release() added it to value and
    // then reserved it back in wake_up_next(): tests/sync/lifetime_test.cpp,
    // SemaphoreDestroyedByItsLastAcquirerWhileReleasesReturn, ASan.)
    // The bound check above read a word no CAS validated: if no cell takes the permit,
    // give_to_waiter() checks it again on the word its give-back CAS replaces, and
    // refuses (changing nothing) when value reached the bound meanwhile
    // (SyncSemaphoreRace.BoundedConcurrentOverReleasesNeverExceedTheBound).
    if (!give_to_waiter(s, /*release_bound=*/true)) throw_over_bound();
}

void Semaphore::throw_over_bound() const {
    if (bounded_) throw std::invalid_argument("spindle::BoundedSemaphore released too many times");
    throw std::overflow_error("spindle::Semaphore: value would exceed 2^31 - 1");
}

void Semaphore::put_back() noexcept {
    // seq_cst: as in release().
    const std::uint64_t s = state_.fetch_add(1, std::memory_order_seq_cst);
    if (active_of(s) != 0) wake_up_next();
}

void Semaphore::wake_up_next() noexcept {
    // seq_cst: see release().
    std::uint64_t s = state_.load(std::memory_order_seq_cst);
    for (;;) {
        if (value_of(s) == 0 || active_of(s) == 0) return;
        // Reserve the permit for the waiter we are about to wake.
        // seq_cst: Dekker with waiters (see release()).
        if (state_.compare_exchange_weak(s, s - 1, std::memory_order_seq_cst)) break;
    }
    (void)give_to_waiter(s - 1, /*release_bound=*/false);  // a permit taken from value: no bound to re-check
}

bool Semaphore::give_to_waiter(std::uint64_t reserved, bool release_bound) noexcept {
    // We hold one permit that is not in value (`reserved`: the state when we took it).
    // The waiter we grant wakes on the semaphore's home worker, not necessarily ours
    // ("Home" in runtime/src/worker.cpp): read (and moved, if its worker parked) before
    // the grant, as S1 requires; the scope is a thread-local, not *this.
    // relaxed: a hint; nothing is ordered by it.
    const std::uint16_t seen = home_.load(std::memory_order_relaxed);
    const std::uint16_t home = detail::awake_home(seen);
    if (home != seen) home_.store(home, std::memory_order_relaxed);  // relaxed: as above
    const detail::WakeHomeScope at_home(home);
    std::uint64_t enq_before = q_.enqueued();
    if (q_.grant_first(1) == 1) return true;  // S1: nothing of *this after the grant
    // Nobody waiting (every queued waiter was woken already): give it back, taking
    // kGiving with it (S2): until we clear it, whoever takes a permit waits for us
    // before its acquire returns, so the reads below cannot outlive *this. Another
    // giver holds it: wait for its short, non-blocking window to end.
    std::uint64_t s = reserved;
    bool moved = false;  // the word was not `reserved` when the permit went back
    for (int spins = 0;;) {
        if ((s & kGiving) != 0U) {
            s = wait_giving(spins++);
            moved = true;
            continue;
        }
        // release()'s new permit lands in value here, so its bound check belongs to the
        // word this CAS replaces: release() read its word without validating it, and
        // value may have risen since (another release gave its permit back, the granted
        // waiter resumed and released). Refused: nothing of ours has been written (no
        // grant, no kGiving), and release() throws. Also keeps value below kGiving.
        if (release_bound && value_of(s) >= bound_) return false;
        // seq_cst: as above.
        if (state_.compare_exchange_weak(s, (s + 1) | kGiving, std::memory_order_seq_cst)) break;
        moved = true;
    }
    for (;;) {
        // The word can be back at `reserved` although a waiter queued behind our scan
        // (active + 1, after it saw the reservation) and a cancelled one left (active
        // - 1): ABA. That waiter took its cell before it read state_, so enq_ shows
        // it; look again then (found by the model, tests/model/). A word that moved
        // may hide such a waiter too: look again.
        if (!moved && q_.enqueued() == enq_before) break;
        // Take a permit again if one is free and someone is counted (wake_up_next's
        // reservation), else stop.
        // seq_cst: as above.
        s = state_.load(std::memory_order_seq_cst);
        if (value_of(s) == 0 || active_of(s) == 0) break;
        // seq_cst: as above.
        if (!state_.compare_exchange_strong(s, s - 1, std::memory_order_seq_cst)) continue;
        reserved = s - 1;
        enq_before = q_.enqueued();
        if (q_.grant_first(1) == 1) break;  // the grantee waits for our kGiving to clear
        // seq_cst: as above (kGiving is ours: it stays set).
        moved = state_.fetch_add(1, std::memory_order_seq_cst) != reserved;
    }
    // release: the last touch of *this; pairs with wait_giving()'s acquire load and
    // with every acquirer's RMW later in this release sequence (S2).
    state_.fetch_and(~kGiving, std::memory_order_release);
    return true;
}

std::uint64_t Semaphore::wait_giving(int spins) const noexcept {
    if (spins > 64) std::this_thread::yield();
    // acquire: pairs with give_to_waiter()'s clearing fetch_and.
    return state_.load(std::memory_order_acquire);
}

void Semaphore::after_giving() const noexcept {
    for (int spins = 0; (wait_giving(spins) & kGiving) != 0U; ++spins) {
    }
}

void Semaphore::on_waiter_cancelled() noexcept {
    // seq_cst: the waiter stops counting at once (asyncio: fut.cancelled()).
    state_.fetch_sub(kActiveOne, std::memory_order_seq_cst);
}

bool Semaphore::AcquireAwaiter::await_suspend(std::coroutine_handle<> h) {
    detail::TaskHeader& self = detail::waiting_task("Semaphore::acquire");
    w_.self = &self;
    if (!coop_ && detail::tl_coop_budget == 0) {
        // Cooperative yield (see Lock::AcquireAwaiter::await_suspend).
        coop_ = true;
        self.resume_ = h;
        self.resume_hook_ = this;
        self.schedule();
        return true;
    }
    return queue(h);
}

bool Semaphore::AcquireAwaiter::before_resume(detail::TaskHeader& task) noexcept {
    if (task.cancel_pending()) return true;  // delivered in await_resume
    if (sem_->try_acquire()) {
        acquired_ = true;
        // The release was the inline release() in the user's code (seen by the user's
        // TSan); this acquisition runs in the library (not seen): spindle/runtime/detail/tsan.hpp.
        detail::tsan_acquire(&sem_->state_);
        return true;
    }
    try {
        return !queue(task.resume_);
    } catch (...) {
        return true;
    }
}

bool Semaphore::AcquireAwaiter::queue(std::coroutine_handle<> h) {
    Semaphore& sem = *sem_;
    w_.pos = sem.q_.enqueue();
    // seq_cst: the load half of the Dekker pair with release().
    std::uint64_t s = sem.state_.load(std::memory_order_seq_cst);
    for (;;) {
        if (!locked_state(s)) {  // became acquirable: take a permit after all
            // seq_cst: as above.
            if (sem.state_.compare_exchange_weak(s, s - 1, std::memory_order_seq_cst)) {
                if (sem.q_.abandon(w_.pos)) sem.put_back();  // a deposit made it two
                if ((s & kGiving) != 0U) [[unlikely]] sem.after_giving();  // S2
                acquired_ = true;
                detail::tsan_acquire(&sem.state_);  // as in before_resume()
                return false;
            }
            continue;
        }
        // seq_cst: as above.
        if (sem.state_.compare_exchange_weak(s, s + kActiveOne, std::memory_order_seq_cst)) break;
    }
    queued_ = true;
    return w_.park(sem.q_, h);
}

void Semaphore::AcquireAwaiter::await_resume() {
    if (!queued_) {
        if (fast_ || acquired_) return;
        (void)w_.self->consume_cancel();  // yielded for the budget, then cancelled
        throw CancelledError{};
    }
    Semaphore& sem = *sem_;
    bool granted = true;
    if (w_.suspended) granted = w_.finish(sem.q_);
    else sem.q_.remove(w_.pos);  // a deposit: granted without suspending
    if (!granted) {
        (void)w_.self->consume_cancel();  // cancelled in the queue (already uncounted)
        // A newcomer may have queued behind our stale `active` count while permits
        // were free (between the CAS that cancelled our cell and the decrement);
        // now that we are uncounted, look again (found by the model, tests/model/) —
        // unless a granted waiter has yet to resume: its epilogue below (asyncio's
        // `if self._value > 0: self._wake_up_next()`) wakes the newcomer, and waking it
        // here would be earlier than asyncio (a newcomer also queues, in asyncio too,
        // while a granted waiter has not resumed: locked() counts it). Found by the
        // differential test (seed 200409, regressions/sem_cancelled_waiter_wakes_early.prog).
        if (!sem.q_.has_pending_grant()) sem.wake_up_next();
        throw CancelledError{};
    }
    if (w_.suspended && w_.self->consume_cancel()) {
        // Woken but cancelled before it resumed: the permit goes back, and on.
        // seq_cst: as in release(); active - 1 and value + 1 in one step.
        sem.state_.fetch_add(1 - kActiveOne, std::memory_order_seq_cst);
        sem.wake_up_next();
        throw CancelledError{};
    }
    // seq_cst: as in release().
    const std::uint64_t s = sem.state_.fetch_sub(kActiveOne, std::memory_order_seq_cst) - kActiveOne;
    if (value_of(s) > 0) sem.wake_up_next();  // permits still free: wake the next (asyncio)
    // S2: our permit came from a releaser still in its give-back window: the caller may
    // destroy *this once we return, so wait for that window to close.
    if ((s & kGiving) != 0U) [[unlikely]] sem.after_giving();
}

}  // namespace spindle
