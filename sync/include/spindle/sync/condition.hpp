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

class Condition final : private detail::WaitQueueOwner {
public:
    Condition();
    explicit Condition(Lock& lock) noexcept;
    ~Condition();
    Condition(const Condition&) = delete;
    Condition& operator=(const Condition&) = delete;

    Lock::AcquireAwaiter acquire() noexcept { return lock_->acquire(); }
    detail::ScopedAwaiter<Lock, Lock::AcquireAwaiter> scoped() noexcept { return lock_->scoped(); }
    void release() { lock_->release(); }
    [[nodiscard]] bool locked() const noexcept { return lock_->locked(); }
    [[nodiscard]] Lock& lock() noexcept { return *lock_; }

    /// Releases the lock, waits for a notification, re-acquires the lock; true.
    Task<bool> wait();

    /// Waits until pred() is truthy; returns its final value.
    template <class Pred>
    Task<std::invoke_result_t<Pred&>> wait_for(Pred pred) {
        auto result = pred();
        while (!result) {
            co_await wait();
            result = pred();
        }
        co_return result;
    }

    /// Wakes up to n waiters; std::logic_error unless the lock is held.
    void notify(std::size_t n = 1);
    void notify_all();
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
