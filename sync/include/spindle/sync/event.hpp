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

/// asyncio.Event, safe across cores: a flag that tasks can wait for. set() wakes every
/// current waiter, in FIFO order; a waiter woken by set() returns even if clear() runs
/// before it resumes. wait() inside a task; set()/clear()/is_set() from any thread.
class Event final : private detail::WaitQueueOwner {
public:
    /// An event that is not set.
    Event();
    ~Event();
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;

    /// `co_await ev.wait()`: returns true at once if the event is set, else suspends
    /// until set() wakes it; CancelledError if the task is cancelled first.
    class WaitAwaiter {
    public:
        /// An awaiter that waits for `e`.
        explicit WaitAwaiter(Event& e) noexcept : ev_(&e) {}
        bool await_ready() const noexcept { return ev_->is_set(); }
        bool await_suspend(std::coroutine_handle<> h);
        /// True (asyncio's Event.wait returns True).
        bool await_resume();

    private:
        Event* ev_;
        detail::SyncWait w_;  // w_.queued: took a cell
    };

    /// `co_await ev.wait()`: until the event is set.
    WaitAwaiter wait() noexcept { return WaitAwaiter(*this); }
    /// Sets the flag and wakes every task waiting now, FIFO (asyncio's Event.set()); a
    /// no-op if already set.
    void set() noexcept;
    /// Resets the flag: later wait() calls suspend until the next set(). Waiters that
    /// set() already woke still return.
    void clear() noexcept;
    /// True while the flag is set.
    [[nodiscard]] bool is_set() const noexcept;
    /// Queued waiters (approximate; diagnostics).
    [[nodiscard]] std::uint64_t approx_waiters() const noexcept { return q_->approx_size(); }

private:
    void on_waiter_cancelled() noexcept override {}
    [[nodiscard]] detail::WaitDescription describe_wait(const detail::WaitQueue& q) const noexcept override {
        return {"Event", this, q.approx_size()};
    }

    std::atomic<bool> value_{false};
    // On the heap, freed through EBR (wait_queue.hpp G5): a waiter that sees the flag
    // may destroy the Event while set() still walks the queue.
    detail::WaitQueue* const q_;
};

}  // namespace spindle
