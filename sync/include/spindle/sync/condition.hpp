// spindle/sync/condition.hpp — asyncio.Condition (with CPython 3.13's fix), safe
// across cores.
//
//   * wait() requires the lock (else std::logic_error), queues *before* it releases
//     the lock (so a notify from another core cannot slip in between), waits, and
//     re-acquires the lock (FIFO with everyone else) before returning true — also
//     when cancelled: the CancelledError leaves only once the lock is held again.
//   * CPython 3.13: a wait() that ends by an exception calls notify(1) on its way
//     out, so a notification it may have received is passed on.
//   * notify(n) wakes the n longest waiters not yet woken; notify_all() all of
//     them; both require the lock.
//   * wait_for(pred) re-checks pred after every wake-up; returns its final value.
// The wait has two suspensions (the notification, then the lock). Both are driven by
// one awaiter (detail::CondWaitEngine) through a resume hook: the worker that would
// resume the task after the notification re-acquires the lock first (queueing the
// task on it if it is held, at the same point in the run order where asyncio's
// `await self.acquire()` runs), and for wait_for re-checks pred, so the coroutine
// resumes once, with the lock held. wait_for() is frame-free; wait() is a Task (it
// can be spawned, as asyncio's create_task(cond.wait())) around the same awaiter.
//
// The waiters to notify are a doubly-linked list of nodes in the waiters' awaiters
// (detail::CondWaiter), not a WaitQueue: every wait() and notify() holds the
// condition's lock, so the list needs no lock-free queue; a one-word guard
// (list_busy_) only keeps misuse (a notify() from a thread that does not hold the
// lock while a task holds it) memory-safe, and lets a cancelled waiter unlink itself
// before it re-acquires the lock (asyncio's `finally: self._waiters.remove(fut)`).
// The arbitration between a notify and a cancellation is the CAS on the node's
// FrameCell (runtime/detail/wait_queue.hpp, F1-F3), as in a WaitQueue cell:
//   C1 a node is linked (under the guard), WAITING already, before its waiter
//      releases the lock, so a notify from another core always finds it. A notify
//      that comes before the waiter has suspended schedules it while it runs (the
//      worker runs it again once it has), so there is no deposit state.
//   C2 a notifier unlinks a node (linked = false) before its CAS out of WAITING, and
//      schedules the tasks it granted only after it released the guard: a waiter
//      runs only once scheduled, so from the first schedule on the notifier touches
//      neither the nodes nor the condition (it may be destroyed by a woken waiter
//      if the lock was released meanwhile, which a Lock without an owner allows).
//   C3 a waiter whose cell ends CANCELLED takes the guard and unlinks its node if it
//      is still linked (a notifier that lost the CAS has unlinked it already). So a
//      node is reachable from the list only while its waiter is inside its wait.
//   C4 a granted waiter never touches the list again (its node was unlinked).
// A 56-cell WaitQueue here cost ~420 of a wait's ~1,070 instructions (callgrind,
// condition_pingpong): a pinned enqueue, a pinned grant scan and a remove that moved
// the queue's front. The list costs a guard exchange per link, grant and unlink.
//
// THREAD SAFETY: acquire/scoped/wait/wait_for inside a task; notify/notify_all/
// release/locked from any thread (notify checks that the lock is held by someone).
#pragma once

#include <coroutine>
#include <cstdint>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "spindle/runtime/detail/biased_lock.hpp"
#include "spindle/runtime/task.hpp"
#include "spindle/runtime/detail/wait_queue.hpp"
#include "spindle/sync/detail/sync_wait.hpp"
#include "spindle/sync/lock.hpp"

namespace spindle {

class Barrier;
class Condition;

namespace detail {

/// A waiter's node in a Condition's list (in its awaiter, so in its frame). `fc` must
/// stay the first member (wait_cell_ points at its cell). Guarded by the condition's
/// list guard, except fc.cell (atomic: the notify/cancel arbitration).
struct CondWaiter {
    FrameCell fc;
    CondWaiter* prev = nullptr;
    CondWaiter* next = nullptr;          // also the notifier's chain of granted nodes (C2)
    TaskHeader* granted_task = nullptr;  // the notifier's, between its CAS and the schedule
    bool linked = false;
};

/// The engine of Condition::wait() and wait_for() (sync/src/condition.cpp): queue on
/// the condition, release the lock, wait for the notification, re-acquire the lock
/// (also after a cancellation, which is re-raised once the lock is ours) and, for
/// wait_for, re-check the predicate — all but the first step run by the worker in
/// before_resume(), so the awaiting coroutine resumes only when the wait is over.
class CondWaitEngine : private ResumeHook {
public:
    CondWaitEngine(const CondWaitEngine& o) noexcept : c_(o.c_) {}  // before use only
    CondWaitEngine& operator=(const CondWaitEngine&) = delete;

protected:
    explicit CondWaitEngine(Condition& c) noexcept : c_(&c) {}
    ~CondWaitEngine() = default;
    /// std::logic_error unless the condition's lock is held.
    void check_locked() const;
    /// await_suspend: true = suspended.
    bool suspend(std::coroutine_handle<> h);
    /// await_resume: a cancelled wait passes a notification on (CPython 3.13) and
    /// throws CancelledError; an exception of the predicate is rethrown.
    void rethrow_if_failed();
    /// Called with the lock held again after a notification: true = the wait is over
    /// (wait_for: the predicate holds; it stores an exception in error_ and says true).
    virtual bool recheck() noexcept { return true; }
    std::exception_ptr error_;

private:
    bool before_resume(TaskHeader& task) noexcept override;
    bool rotation() const noexcept override { return false; }  // a parked wait, not a yield
    bool park_notified(TaskHeader& self);  // queue, release the lock, park: always true (or throws)
    bool finish_notified(TaskHeader& self) noexcept;  // the notification wait ended: true = granted
    bool advance(TaskHeader& self) noexcept;  // true = resume the coroutine, lock held
    bool finish_lock_wait(Lock& l) noexcept;  // true = the lock is ours, false = cancelled

    Condition* c_;
    CondWaiter node_;  // the notification wait (the condition's list)
    SyncWait w_;       // the lock wait (the lock's WaitQueue)
    std::uint8_t stage_ = 0;  // 0: waiting for the notification; 1: for the lock; 2: failed
    bool cancelled_ = false;  // a cancellation was consumed; re-raised in await_resume
    std::coroutine_handle<> h_;
};

}  // namespace detail

/// asyncio.Condition (with CPython 3.13's fix), safe across cores: a Lock plus a FIFO
/// queue of tasks waiting to be notified. wait() queues before it releases the lock,
/// so no notify is lost, and re-acquires the lock (FIFO) before it returns — also
/// when cancelled. wait()/wait_for()/acquire()/scoped() inside a task;
/// notify()/notify_all()/release()/locked() from any thread.
class Condition final : private detail::FrameCellOwner {
public:
    /// A condition with a Lock of its own.
    Condition();
    /// A condition on `lock`, which must outlive it (asyncio's Condition(lock)).
    explicit Condition(Lock& lock) noexcept;
    ~Condition();
    Condition(const Condition&) = delete;
    Condition& operator=(const Condition&) = delete;

    /// `co_await cond.acquire()`: acquires the underlying lock (Lock::acquire()).
    Lock::AcquireAwaiter acquire() noexcept { return lock_->acquire(); }
    /// `auto guard = co_await cond.scoped();` — acquires the lock; the guard releases
    /// it when it dies (asyncio's `async with cond:`).
    detail::ScopedAwaiter<Lock, Lock::AcquireAwaiter> scoped() noexcept { return lock_->scoped(); }
    /// Releases the underlying lock; std::logic_error if it is not locked.
    void release() { lock_->release(); }
    /// True while the underlying lock is held (Lock::locked()).
    [[nodiscard]] bool locked() const noexcept { return lock_->locked(); }
    /// The underlying lock (the one given to the constructor, or the condition's own).
    [[nodiscard]] Lock& lock() noexcept { return *lock_; }

    /// Releases the lock, waits for a notification, re-acquires the lock; true
    /// (asyncio's Condition.wait()). std::logic_error unless the lock is held. A wait
    /// ended by an exception (CancelledError, a wait_for timeout) leaves only once the
    /// lock is held again, and first passes on a notification it may have received
    /// (notify(1), CPython 3.13). A Task (spawnable); wait_for() needs no frame.
    Task<bool> wait();

    /// `co_await cond.wait_for(pred)` (WaitForAwaiter): waits until pred() is truthy;
    /// returns its final value. pred is called with the lock held: once first, then
    /// after every wake-up (asyncio's Condition.wait_for()); an exception it throws
    /// leaves with the lock held. No frame of its own.
    template <class Pred>
    class WaitForAwaiter final : public detail::CondWaitEngine {
    public:
        /// What pred() returns (its final, truthy value is the result).
        using value_type = std::invoke_result_t<Pred&>;
        /// An awaiter that waits on `c` until `p()` is truthy.
        WaitForAwaiter(Condition& c, Pred p) : CondWaitEngine(c), pred_(std::move(p)) {}
        /// Moves an awaiter that has not been awaited yet (before use only).
        WaitForAwaiter(WaitForAwaiter&& o) noexcept(std::is_nothrow_move_constructible_v<Pred>)
            : CondWaitEngine(o), pred_(std::move(o.pred_)) {}
        bool await_ready() {
            result_.emplace(pred_());
            if (static_cast<bool>(*result_)) return true;
            check_locked();
            return false;
        }
        bool await_suspend(std::coroutine_handle<> h) { return suspend(h); }
        value_type await_resume() {
            rethrow_if_failed();
            return std::move(*result_);
        }

    private:
        bool recheck() noexcept override {
            try {
                result_.reset();
                result_.emplace(pred_());
                return static_cast<bool>(*result_);
            } catch (...) {
                error_ = std::current_exception();
                return true;
            }
        }
        Pred pred_;
        std::optional<value_type> result_;
    };
    /// `co_await cond.wait_for(pred)`: see WaitForAwaiter (asyncio's Condition.wait_for()).
    template <class Pred>
    WaitForAwaiter<Pred> wait_for(Pred pred) {
        return WaitForAwaiter<Pred>(*this, std::move(pred));
    }

    /// Wakes the n longest waiters not yet woken (fewer if fewer wait);
    /// std::logic_error unless the lock is held.
    void notify(std::size_t n = 1);
    /// Wakes every waiter not yet woken; std::logic_error unless the lock is held.
    void notify_all();
    /// Tasks waiting for a notification, cancelled ones that have not left yet
    /// included (approximate; diagnostics).
    [[nodiscard]] std::uint64_t approx_waiters() const noexcept {
        // relaxed: a diagnostic count.
        return n_linked_.load(std::memory_order_relaxed);
    }

private:
    class WaitOnce;
    friend class Barrier;
    friend class detail::CondWaitEngine;
    void on_frame_cell_cancelled() noexcept override {}
    [[nodiscard]] detail::WaitDescription describe_frame_wait() const noexcept override;

    // The waiter list (C1-C4 above), under a biased spin lock (runtime/detail/
    // biased_lock.hpp): the worker that runs both sides of a hand-off takes it with
    // plain stores. lock_list() returns the token unlock_list() needs.
    [[nodiscard]] bool lock_list() noexcept { return list_busy_.lock(); }
    void unlock_list(bool owner) noexcept { list_busy_.unlock(owner); }
    void link(detail::CondWaiter& w) noexcept;    // under the guard, at the back
    void unlink(detail::CondWaiter& w) noexcept;  // under the guard
    /// Takes the guard and unlinks `w` if it is still linked; false if a notifier
    /// already had (C2, C3).
    bool leave(detail::CondWaiter& w) noexcept;
    /// Grants the first n nodes not granted or cancelled (asyncio's notify loop).
    std::size_t grant_waiters(std::size_t n) noexcept;

    Lock own_;
    Lock* lock_;
    detail::BiasedLock list_busy_;
    detail::CondWaiter* head_ = nullptr;  // guarded by list_busy_
    detail::CondWaiter* tail_ = nullptr;  // guarded by list_busy_
    std::atomic<std::uint64_t> n_linked_{0};  // nodes in the list (approx_waiters, dump)
    const Barrier* barrier_ = nullptr;  // set by the Barrier built on this Condition (dump)
};

}  // namespace spindle
