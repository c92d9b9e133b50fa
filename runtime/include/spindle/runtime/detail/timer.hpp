// spindle/runtime/detail/timer.hpp — an intrusive timer entry (lives in the awaiter).
// Shipped but internal. See runtime/src/scheduler.hpp ("Timers") for the protocol:
// an entry is only read or written under the scheduler's timer lock.
#pragma once

#include <atomic>
#include <cstdint>

#include "spindle/runtime/detail/task_header.hpp"

namespace spindle::detail {

struct TimerEntry {
    static constexpr std::uint32_t kNotQueued = UINT32_MAX;
    std::int64_t deadline = 0;  // runtime clock, ns
    std::uint64_t seq = 0;      // tie-break: scheduling order
    TaskHeader* task = nullptr;
    std::uint64_t token = 0;    // the wait to claim when it fires
    std::uint32_t index = kNotQueued;  // position in the heap, or kNotQueued
    bool cancels = false;       // a TimeoutEntry: firing cancels `task` (no claim)
};

/// wait_for's timer (CPython 3.12's asyncio.Timeout): when it fires, the task is
/// cancelled in place (TaskHeader::cancel(), a counted request), wherever it waits.
/// Handshake, because cancel() runs outside the timer lock (it may wake tasks, and
/// the lock order is idle_mx_ before timer_mx_):
///   firer, under timer_mx_: takes the entry out of the heap, fire_state = kFiring
///   firer, after unlocking: task->cancel_unless_pending(), then fire_state = kFired
///          if that counted a request, kFiredIdle if one was pending already (release)
///   owner: disarm_timeout() takes timer_mx_; if the entry is still queued it removes
///          it (never fired); else it waits for kFired/kFiredIdle (acquire), so the entry (in the
///          owner's frame) outlives the firer's last touch, and the cancellation it
///          counted is visible before the owner decides what it was.
/// The task cannot complete while the entry is armed (the owner disarms first), so
/// the header the firer cancels stays alive.
struct TimeoutEntry : TimerEntry {
    static constexpr std::uint8_t kIdle = 0;
    static constexpr std::uint8_t kFiring = 1;
    static constexpr std::uint8_t kFired = 2;      // fired and counted its cancellation
    static constexpr std::uint8_t kFiredIdle = 3;  // fired while one was pending: did nothing
    TimeoutEntry() noexcept { cancels = true; }
    std::atomic<std::uint8_t> fire_state{kIdle};
};

/// The current task's runtime clock in ns (virtual or steady).
std::int64_t now_ns(const TaskHeader& t) noexcept;
/// Adds `e` to the timers of `t`'s runtime.
void add_timer(TaskHeader& t, TimerEntry& e) noexcept;
/// Removes `e` if it is still queued.
void remove_timer(TaskHeader& t, TimerEntry& e) noexcept;
/// Disarms a TimeoutEntry that add_timer() queued: true if it fired and counted a
/// cancellation (which has completed), false if it was removed before firing or fired
/// while a cancellation was already pending. See TimeoutEntry.
bool disarm_timeout(TaskHeader& t, TimeoutEntry& e) noexcept;

}  // namespace spindle::detail
