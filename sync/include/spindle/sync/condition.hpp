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
// wait() is a coroutine (it has two suspension points: the notification and the
// lock), so it costs one frame allocation per call, like asyncio's `async def`.
//
// THREAD SAFETY: acquire/scoped/wait/wait_for inside a task; notify/notify_all/
// release/locked from any thread (notify checks that the lock is held by someone).
#pragma once

#include <coroutine>
#include <cstdint>
#include <type_traits>

#include "spindle/runtime/task.hpp"
#include "spindle/runtime/detail/wait_queue.hpp"
#include "spindle/sync/detail/sync_wait.hpp"
#include "spindle/sync/lock.hpp"

namespace spindle {

class Barrier;

/// asyncio.Condition (with CPython 3.13's fix), safe across cores: a Lock plus a FIFO
/// queue of tasks waiting to be notified. wait() queues before it releases the lock,
/// so no notify is lost, and re-acquires the lock (FIFO) before it returns — also
/// when cancelled. wait()/wait_for()/acquire()/scoped() inside a task;
/// notify()/notify_all()/release()/locked() from any thread.
class Condition final : private detail::WaitQueueOwner {
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
    /// (notify(1), CPython 3.13). A coroutine: one frame allocation per call.
    Task<bool> wait();

    /// Waits until pred() is truthy; returns its final value. pred is called with the
    /// lock held: once first, then after every wake-up (asyncio's Condition.wait_for()).
    template <class Pred>
    Task<std::invoke_result_t<Pred&>> wait_for(Pred pred) {
        auto result = pred();
        while (!result) {
            co_await wait();
            result = pred();
        }
        co_return result;
    }

    /// Wakes the n longest waiters not yet woken (fewer if fewer wait);
    /// std::logic_error unless the lock is held.
    void notify(std::size_t n = 1);
    /// Wakes every waiter not yet woken; std::logic_error unless the lock is held.
    void notify_all();
    /// Tasks waiting for a notification (approximate; diagnostics).
    [[nodiscard]] std::uint64_t approx_waiters() const noexcept { return q_.approx_size(); }

private:
    class NotifiedAwaiter;
    friend class Barrier;
    void on_waiter_cancelled() noexcept override {}
    [[nodiscard]] detail::WaitDescription describe_wait(const detail::WaitQueue& q) const noexcept override;

    Lock own_;
    Lock* lock_;
    detail::WaitQueue q_;
    const Barrier* barrier_ = nullptr;  // set by the Barrier built on this Condition (dump)
};

}  // namespace spindle
