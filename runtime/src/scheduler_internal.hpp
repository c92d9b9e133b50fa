// runtime/src/scheduler_internal.hpp — what the scheduler's source files share and no
// other file sees: the thread-locals of a worker (defined once, in task.cpp), the futex
// and clock helpers. Never installed. The sources include it instead of scheduler.hpp.
//
// The thread-locals are constinit on their declaration and on their definition: their
// initializers are constants, and a file that only sees the extern declaration then
// reads them directly, without a call to a TLS init wrapper (they were file-static
// before the split, read without one).
#pragma once

#include "scheduler.hpp"
#include "spindle/runtime/detail/tsan.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>

namespace spindle::detail {

// The worker this thread is (nullptr on other threads), set by worker_main.
extern constinit thread_local Worker* tl_worker;
// The task running on this thread, set by run_task for the length of a slice.
extern constinit thread_local TaskHeader* tl_task;
// Set by on_complete: the slice that run_task resumed ended the task (its frame may be gone).
extern constinit thread_local bool tl_completed;
extern constinit thread_local std::int64_t tl_slice_start;  // debug mode: when the current resume began
// A grant's wake destination (WakeHomeScope; "Home" in worker.cpp): a wake hint, 0 = here.
extern constinit thread_local std::uint16_t tl_wake_home;

inline std::int64_t steady_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

/// A relative timeout in ns (>= 0) as a timespec.
inline timespec to_timespec(std::int64_t ns) noexcept {
    timespec ts{};
    if (ns > 0) {
        ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
        ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    }
    return ts;
}

inline void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, std::int64_t timeout_ns) noexcept {
    timespec ts = to_timespec(timeout_ns);
    syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected,
            timeout_ns >= 0 ? &ts : nullptr, nullptr, 0);
}
inline void futex_wake(std::atomic<std::uint32_t>& word) noexcept {
    syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

}  // namespace spindle::detail
