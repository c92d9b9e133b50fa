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
//   bit 0        locked
//   bits 32..63  active: queued waiters not cancelled and not yet resumed
//                (WAITING or woken-not-resumed), asyncio's "waiters not cancelled"
// Invariants: active counts exactly the cells in q_ that are WAITING, DEPOSIT or
// GRANTED and whose waiter counted itself; the fast path needs locked == 0 and
// active == 0.
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

class Lock final : private detail::WaitQueueOwner {
public:
    Lock();
    ~Lock();
    Lock(const Lock&) = delete;
    Lock& operator=(const Lock&) = delete;

    class AcquireAwaiter : private detail::ResumeHook {
    public:
        explicit AcquireAwaiter(Lock& l) noexcept : lock_(&l) {}
        AcquireAwaiter(const AcquireAwaiter& o) noexcept : lock_(o.lock_) {}  // before use only
        AcquireAwaiter& operator=(const AcquireAwaiter&) = delete;
        bool await_ready() noexcept {
            if (!detail::coop_consume()) return false;  // budget spent: yield first
            fast_ = lock_->try_acquire();
            return fast_;
        }
        bool await_suspend(std::coroutine_handle<> h);
        void await_resume();

    private:
        bool before_resume(detail::TaskHeader& task) noexcept override;
        bool queue(std::coroutine_handle<> h);  // slow path; true = suspended

        Lock* lock_;
        detail::SyncWait w_;
        bool fast_ = false;       // took the lock in await_ready
        bool queued_ = false;     // took a cell in the queue
        bool coop_ = false;       // yielded for the budget
        bool acquired_ = false;   // took the lock without queueing after the yield
    };

    /// `co_await lock.acquire()`: waits until the lock is ours.
    AcquireAwaiter acquire() noexcept { return AcquireAwaiter(*this); }
    /// `auto guard = co_await lock.scoped();` — released when the guard dies.
    detail::ScopedAwaiter<Lock, AcquireAwaiter> scoped() noexcept { return {*this, AcquireAwaiter(*this)}; }
    /// Takes the lock if acquire() would not wait.
    bool try_acquire() noexcept;
    /// Unlocks; std::logic_error if not locked.
    void release();
    [[nodiscard]] bool locked() const noexcept;
    /// Queued waiters (approximate; diagnostics).
    [[nodiscard]] std::uint64_t approx_waiters() const noexcept { return q_.approx_size(); }

private:
    static constexpr std::uint64_t kLocked = 1;
    static constexpr std::uint64_t kActiveOne = std::uint64_t{1} << 32;
    static std::uint64_t active_of(std::uint64_t s) noexcept { return s >> 32; }

    void on_waiter_cancelled() noexcept override;
    void wake_up_first() noexcept;

    std::atomic<std::uint64_t> state_{0};
    detail::WaitQueue q_;
};

}  // namespace spindle
