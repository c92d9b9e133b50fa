// spindle/runtime/detail/tsan.hpp — happens-before annotations for ThreadSanitizer
// that cost one predictable branch when TSan is absent. Used by the library only.
//
// ThreadSanitizer annotations for a *user's* sanitized build against an uninstrumented
// (Release) library (issue 17). TSan sees only the synchronization of instrumented
// code; the hand-off of a task between workers happens here, in atomics it cannot
// see, so every coroutine that moved between workers looked like a data race in the
// user's code. Weak references to the TSan runtime's entry points: null in a process
// without TSan (one predictable branch per hand-off), real when the user's program
// links libtsan. The pairs: release(task) wherever a task is made runnable or ends a
// slice (schedule(), spawn, run_task's end of slice, hand_over_self, completion),
// acquire(task) before run_task resumes it and before its frame is destroyed; and for a
// grant that a waiter finds deposited in its cell (no wake at all): release(cell) by
// the depositor, acquire(cell) by the waiter (wait_queue.cpp).
#pragma once

extern "C" {
void __tsan_acquire(void* addr) __attribute__((weak));  // NOLINT(bugprone-reserved-identifier)
void __tsan_release(void* addr) __attribute__((weak));  // NOLINT(bugprone-reserved-identifier)
}

namespace spindle::detail {

inline void tsan_release(const void* p) noexcept {
    if (&__tsan_release != nullptr) __tsan_release(const_cast<void*>(p));
}
inline void tsan_acquire(const void* p) noexcept {
    if (&__tsan_acquire != nullptr) __tsan_acquire(const_cast<void*>(p));
}

}  // namespace spindle::detail
