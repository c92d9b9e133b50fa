// spindle/sync/lock.hpp — asyncio.Lock, safe across cores.
//
// Semantics (CPython 3.11 asyncio.Lock, exactly, at one worker):
//   * acquire() takes the lock at once iff it is unlocked and no waiter is queued
//     (cancelled waiters do not count); otherwise it queues, FIFO.
//   * release() of an unlocked lock throws std::logic_error. With waiters, it leaves
//     the lock *unlocked but reserved*: the front waiter is woken and takes the lock
//     when it resumes; until then locked() is false, newcomers queue behind, and a
//     second release() throws. Only the front waiter is ever woken (asyncio's
//     _wake_up_first): a cancelled waiter still at the front holds it up until its
//     task has run, exactly as its cancelled future does in asyncio.
//   * A waiter cancelled before it was woken leaves the queue; one woken but
//     cancelled before it resumed wakes the next (nothing lost, nothing doubled).
//
// State word state_ (one atomic, so the uncontended acquire and release are one
// read-modify-write each):
//   bit 0        locked    (asyncio's _locked; what locked() answers)
//   bit 1        reserved  a grant is in flight: the lock is handed to the front
//                          waiter, which turns reserved into locked when it resumes
//                          (asyncio's "unlocked but reserved" window)
//   bits 32..63  active    queued waiters not cancelled and not yet resumed
// Invariants:
//   L1 locked and reserved are never both set; at most one grant is in flight, and
//      only the holder of `reserved` may call q_.grant_front().
//   L2 the fast path (try_acquire) needs the whole word to be 0: unlocked, nothing
//      reserved, nobody queued — so nobody can barge past a reservation or a waiter.
//   L3 a granted waiter takes the lock with one CAS reserved -> locked (and only
//      then removes its cell); a woken-but-cancelled one keeps `reserved` and hands
//      the lock to the next front waiter; a cancelled one, on leaving, reserves the
//      lock if it is free and waiters remain (asyncio: `if not locked: wake first`).
//   L4 a hand-off that finds a CANCELLED front drops `reserved`, then re-checks that
//      cell (is_removed: front_, then the cell): its waiter leaves — stores REMOVED,
//      or at the front moves front_ over the cell (wait_queue.hpp R6) — and then
//      reads state_ (seq_cst both sides), so either it sees the reservation gone and
//      hands off itself, or we see the cell removed and try again.
//
// THREAD SAFETY: acquire/scoped inside a task; release/try_acquire/locked from any
// thread (a Lock has no owner, as in asyncio).
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>

#include "spindle/runtime/detail/wait_queue.hpp"
#include "spindle/sync/detail/sync_wait.hpp"
#include "spindle/sync/scoped.hpp"

namespace spindle {

namespace detail {
class CondWaitEngine;
}  // namespace detail

/// asyncio.Lock, safe across cores: a mutual-exclusion lock for tasks that waits by
/// suspending, never by blocking a thread. Strictly FIFO, no barging: release() with
/// waiters hands the lock to the longest waiter (unlocked but reserved until it
/// resumes), and a cancelled waiter never loses or doubles the lock. A Lock has no
/// owner (any task or thread may release it). acquire()/scoped() inside a task;
/// release()/try_acquire()/locked() from any thread. The exact rules open the source
/// of spindle/sync/lock.hpp.
class Lock final : private detail::WaitQueueOwner {
public:
    /// An unlocked lock.
    Lock();
    ~Lock();
    Lock(const Lock&) = delete;
    Lock& operator=(const Lock&) = delete;

    /// `co_await lock.acquire()`: takes the lock at once if it is free and nobody
    /// waits, else queues (FIFO) until it is handed over; CancelledError if the task is
    /// cancelled first (the lock is then passed on, never lost).
    class AcquireAwaiter : private detail::ResumeHook {
    public:
        /// An awaiter that acquires `l`.
        explicit AcquireAwaiter(Lock& l) noexcept : lock_(&l) {}
        /// Copies an awaiter that has not been awaited yet (before use only).
        AcquireAwaiter(const AcquireAwaiter& o) noexcept : lock_(o.lock_) {}  // before use only
        AcquireAwaiter& operator=(const AcquireAwaiter&) = delete;
        bool await_ready() noexcept {
            // One out-of-line call for the budget and the debug flag (task_header.hpp:
            // inline code never reads a thread-local itself).
            const unsigned t = detail::coop_consume_and_debug();
            if ((t & detail::kCoopTaken) == 0U) return false;  // budget spent: yield first
            fast_ = lock_->try_acquire_raw();
            if (fast_ && (t & detail::kCoopDebug) != 0U) [[unlikely]] detail::debug_lock_acquired();
            return fast_;
        }
        bool await_suspend(std::coroutine_handle<> h);
        void await_resume();

    private:
        bool before_resume(detail::TaskHeader& task) noexcept override;
        bool queue(std::coroutine_handle<> h);  // slow path; true = suspended
        // Breaking a convoy (2+ workers). The lock is reserved for a waiter that a
        // release just woke and that has not taken it yet. Queueing behind it would
        // make this task a waiter too, and its own release would then wake us: from
        // then on every acquisition is a full hand-off (a suspension, a wake and a
        // queue cell each: ~130 ns instead of ~14 on this VM), for ever, since a
        // waiter is always queued when the holder releases. The woken task usually
        // runs on this worker (the wake area runs before the run queue), so we yield
        // once instead and retry behind it: it takes and releases the lock, and the
        // tasks go back to uncontended acquisitions. Fairness: a task that yields
        // here has not joined the queue yet (as with the budget yield); the retry
        // queues normally. workers = 1 never does this (asyncio's interleaving).
        // A per-lock predictor turns it off where it does not pay (see there).
        bool handing_over() const noexcept;
        void note_break(bool got_it) noexcept;  // the retry after a convoy yield

        Lock* lock_;
        detail::SyncWait w_;
        bool fast_ = false;       // took the lock in await_ready
        bool queued_ = false;     // took a cell in the queue
        bool coop_ = false;       // yielded for the budget
        bool acquired_ = false;   // took the lock without queueing after the yield
        bool breaking_ = false;   // the yield was a convoy break (handing_over)
    };

    /// `co_await lock.acquire()`: waits until the lock is ours (asyncio.Lock.acquire()).
    AcquireAwaiter acquire() noexcept { return AcquireAwaiter(*this); }
    /// `auto guard = co_await lock.scoped();` — released when the guard dies.
    detail::ScopedAwaiter<Lock, AcquireAwaiter> scoped() noexcept { return {*this, AcquireAwaiter(*this)}; }
    /// Takes the lock if acquire() would not wait (unlocked, not reserved, nobody
    /// queued); true if it did.
    bool try_acquire() noexcept {
        const bool ok = try_acquire_raw();
        // Debug mode counts the locks a task holds (a task that finishes holding one
        // is reported). Out of line: this may be inlined into a coroutine body, which
        // must not touch a thread-local itself (task_header.hpp).
        if (ok) detail::note_lock_acquired();
        return ok;
    }
    /// Unlocks, handing the lock to the longest waiter if any; std::logic_error if not
    /// locked (also while it is reserved for a woken waiter), as asyncio's RuntimeError.
    void release() {
        // seq_cst: releases the critical section, and is the store half of the Dekker
        // pair with a waiter that took its cell (enq_) and then reads state_.
        const std::uint64_t prev = state_.fetch_and(~kLocked, std::memory_order_seq_cst);
        if (prev != kLocked) release_slow(prev);  // not locked, or waiters to wake
        detail::note_lock_released();  // out of line, as in try_acquire()
    }
    /// True while the lock is held (asyncio's Lock.locked()); false in the "unlocked but
    /// reserved" window after a release() that woke a waiter.
    [[nodiscard]] bool locked() const noexcept {
        // acquire: pairs with the RMWs that lock/unlock.
        return (state_.load(std::memory_order_acquire) & kLocked) != 0U;
    }
    /// Queued waiters (approximate; diagnostics).
    [[nodiscard]] std::uint64_t approx_waiters() const noexcept { return q_.approx_size(); }

private:
    friend class Condition;  // its wait() releases and re-acquires in library code (TSan annotations)
    friend class detail::CondWaitEngine;  // Condition's wait: the queued re-acquire
    bool try_acquire_raw() noexcept {
        std::uint64_t free_state = 0;  // unlocked and nobody queued
        // acquire: pairs with release()'s RMW (the previous critical section).
        return state_.compare_exchange_strong(free_state, kLocked, std::memory_order_acquire,
                                              std::memory_order_relaxed);  // failure: nothing is read
    }
    [[nodiscard]] detail::WaitDescription describe_wait(const detail::WaitQueue& q) const noexcept override;

    static constexpr std::uint64_t kLocked = 1;
    static constexpr std::uint64_t kReserved = 2;
    static constexpr std::uint64_t kActiveOne = std::uint64_t{1} << 32;
    static_assert((kLocked | kReserved) < kActiveOne, "flag bits below the waiter count");
    static std::uint64_t active_of(std::uint64_t s) noexcept { return s >> 32; }

    void on_waiter_cancelled() noexcept override;
    void wake_up_first() noexcept;      // reserve if free and waited for, then hand off
    bool try_reserve() noexcept;        // (unlocked, unreserved, active > 0) -> reserved
    void hand_off() noexcept;           // with `reserved` held: grant the front or drop it
    void release_slow(std::uint64_t prev);
    // The queued acquisition, shared by AcquireAwaiter and Condition's re-acquire.
    // queue_waiter: `w.self` set; queues w and parks it at h — took: the lock was free
    // after all (taken, nothing queued); parked: suspended (or handed over to the
    // granter's worker); deposit: granted before it slept (call finish_queued now).
    // finish_queued: after parked/deposit; true = the lock is ours (L3), false = the
    // wait was cancelled (the request consumed, the lock passed on as asyncio does).
    enum class Queued : std::uint8_t { took, parked, deposit };
    Queued queue_waiter(detail::SyncWait& w, std::coroutine_handle<> h);
    bool finish_queued(detail::SyncWait& w) noexcept;

    std::atomic<std::uint64_t> state_{0};
    // Convoy-break predictor (AcquireAwaiter::handing_over): >= 0 break, < 0 queue.
    std::atomic<std::int8_t> convoy_credit_{0};
    detail::WaitQueue q_;
};

}  // namespace spindle
