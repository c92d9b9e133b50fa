// spindle/sync/event.hpp — asyncio.Event, safe across cores.
//
// set() wakes every current waiter, in FIFO order; a waiter woken by set() returns
// even if clear() runs before it resumes. wait() on a set event returns at once
// (without suspending). A waiter takes its cell *before* it reads the flag, and
// set() stores the flag before it reads the queue's end, so a waiter either sees
// the flag or is found by set() (seq_cst on both sides).
//
// THREAD SAFETY: wait inside a task; set/clear/is_set from any thread.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>

#include "spindle/runtime/detail/wait_queue.hpp"
#include "spindle/sync/detail/sync_wait.hpp"

namespace spindle {

class Event final : private detail::WaitQueueOwner {
public:
    Event();
    ~Event();
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;

    class WaitAwaiter {
    public:
        explicit WaitAwaiter(Event& e) noexcept : ev_(&e) {}
        bool await_ready() const noexcept { return ev_->is_set(); }
        bool await_suspend(std::coroutine_handle<> h);
        /// True (asyncio's Event.wait returns True).
        bool await_resume();

    private:
        Event* ev_;
        detail::SyncWait w_;
        bool queued_ = false;
    };

    /// `co_await ev.wait()`: until the event is set.
    WaitAwaiter wait() noexcept { return WaitAwaiter(*this); }
    void set() noexcept;
    void clear() noexcept;
    [[nodiscard]] bool is_set() const noexcept;
    [[nodiscard]] std::uint64_t approx_waiters() const noexcept { return q_.approx_size(); }

private:
    void on_waiter_cancelled() noexcept override {}
    [[nodiscard]] detail::WaitDescription describe_wait(const detail::WaitQueue& q) const noexcept override {
        return {"Event", this, q.approx_size()};
    }

    std::atomic<bool> value_{false};
    detail::WaitQueue q_;
};

}  // namespace spindle
