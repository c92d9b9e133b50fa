// spindle/sync/semaphore.hpp — asyncio.Semaphore and BoundedSemaphore, safe across
// cores.
//
// Semantics (CPython 3.11 asyncio.Semaphore, exactly, at one worker):
//   * locked() is value() == 0 or any queued waiter not cancelled; acquire() takes a
//     permit at once iff !locked() — newcomers wait for earlier waiters to start
//     even when permits are free.
//   * release() adds a permit and gives it straight to the first waiter not yet
//     woken (value() does not rise then). A woken waiter, once it resumes, wakes the
//     next one if permits are still free.
//   * A waiter cancelled before it was woken leaves the queue; one woken but
//     cancelled before it resumed puts its permit back and wakes the next.
//   * BoundedSemaphore::release() above the initial value throws
//     std::invalid_argument (asyncio's ValueError).
//
// State word state_:
//   bits 0..31   value (free permits), < 2^31
//   bits 32..63  active: queued waiters not cancelled and not yet resumed
// A waker reserves a permit (value - 1) before granting a cell and gives it back if
// no waiter was there; the waiter re-checks the state after taking its cell, so the
// two cannot miss each other (Dekker on state_ and the queue's enq_).
//
// THREAD SAFETY: acquire/scoped inside a task; release/try_acquire/locked/value
// from any thread.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>

#include "spindle/runtime/detail/wait_queue.hpp"
#include "spindle/sync/detail/sync_wait.hpp"
#include "spindle/sync/scoped.hpp"

namespace spindle {

class Semaphore : private detail::WaitQueueOwner {
public:
    /// std::invalid_argument if value < 0 (or >= 2^31).
    explicit Semaphore(std::ptrdiff_t value = 1);
    ~Semaphore();
    Semaphore(const Semaphore&) = delete;
    Semaphore& operator=(const Semaphore&) = delete;

    class AcquireAwaiter : private detail::ResumeHook {
    public:
        explicit AcquireAwaiter(Semaphore& s) noexcept : sem_(&s) {}
        AcquireAwaiter(const AcquireAwaiter& o) noexcept : sem_(o.sem_) {}  // before use only
        AcquireAwaiter& operator=(const AcquireAwaiter&) = delete;
        bool await_ready() noexcept {
            if (!detail::coop_consume()) return false;  // budget spent: yield first
            fast_ = sem_->try_acquire();
            return fast_;
        }
        bool await_suspend(std::coroutine_handle<> h);
        void await_resume();

    private:
        bool before_resume(detail::TaskHeader& task) noexcept override;
        bool queue(std::coroutine_handle<> h);  // slow path; true = suspended

        Semaphore* sem_;
        detail::SyncWait w_;
        bool fast_ = false;
        bool queued_ = false;
        bool coop_ = false;
        bool acquired_ = false;
    };

    AcquireAwaiter acquire() noexcept { return AcquireAwaiter(*this); }
    detail::ScopedAwaiter<Semaphore, AcquireAwaiter> scoped() noexcept { return {*this, AcquireAwaiter(*this)}; }
    bool try_acquire() noexcept;
    void release();
    [[nodiscard]] bool locked() const noexcept;
    [[nodiscard]] std::ptrdiff_t value() const noexcept;
    [[nodiscard]] std::uint64_t approx_waiters() const noexcept { return q_.approx_size(); }

protected:
    /// For BoundedSemaphore: release() throws rather than exceed `bound`.
    Semaphore(std::ptrdiff_t value, std::ptrdiff_t bound);

private:
    static constexpr std::uint64_t kValueMask = 0xFFFFFFFFULL;
    static constexpr std::uint64_t kActiveOne = std::uint64_t{1} << 32;
    static std::uint64_t value_of(std::uint64_t s) noexcept { return s & kValueMask; }
    static std::uint64_t active_of(std::uint64_t s) noexcept { return s >> 32; }
    static bool locked_state(std::uint64_t s) noexcept { return value_of(s) == 0 || active_of(s) != 0; }

    void on_waiter_cancelled() noexcept override;
    [[nodiscard]] detail::WaitDescription describe_wait(const detail::WaitQueue& q) const noexcept override;
    void wake_up_next() noexcept;
    void put_back() noexcept;  // value + 1 without the bound check, then wake

    std::atomic<std::uint64_t> state_;
    const std::uint64_t bound_;  // release() refuses to exceed it
    const bool bounded_;         // BoundedSemaphore: invalid_argument, else overflow_error
    detail::WaitQueue q_;
};

/// release() above the initial value throws std::invalid_argument (ValueError).
class BoundedSemaphore final : public Semaphore {
public:
    explicit BoundedSemaphore(std::ptrdiff_t value = 1) : Semaphore(value, value) {}
};

}  // namespace spindle
