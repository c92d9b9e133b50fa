// spindle/runtime/detail/timer.hpp — an intrusive timer entry (lives in the awaiter).
// Shipped but internal. See runtime/src/scheduler.hpp ("Timers") for the protocol:
// an entry is only read or written under the scheduler's timer lock.
#pragma once

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
};

/// The current task's runtime clock in ns (virtual or steady).
std::int64_t now_ns(const TaskHeader& t) noexcept;
/// Adds `e` to the timers of `t`'s runtime.
void add_timer(TaskHeader& t, TimerEntry& e) noexcept;
/// Removes `e` if it is still queued.
void remove_timer(TaskHeader& t, TimerEntry& e) noexcept;

}  // namespace spindle::detail
