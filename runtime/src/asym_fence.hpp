// runtime/src/asym_fence.hpp — asymmetric fences: a free "light" fence on a hot path
// paired with a "heavy" fence, membarrier(2), on a rare one (folly's
// asymmetricLightBarrier/asymmetricHeavyBarrier, liburcu's sys_membarrier flavour).
// Never installed.
//
// A Dekker pair — each side stores its flag, then loads the other's — needs a StoreLoad
// fence on both sides (a locked instruction on x86, ~6 ns on the 2-core VM). When one
// side runs millions of times and the other a handful, the frequent side can use a
// compiler-only fence if the rare side calls membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED):
// every CPU running a thread of this process then executes a full barrier before the
// call returns. Why that suffices: an interrupt is taken at an instruction boundary, so
// if the light side's load retired before the barrier ran on its CPU, its earlier store
// retired too and is drained by that barrier, and the heavy side's load (after the call)
// sees it; if the load comes after the barrier, it sees the heavy side's store (made
// before the call, whose entry is a full barrier). So at least one side sees the other.
//
// Availability: registered once per process (MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
// Linux 4.14). Where it is refused (an old kernel, seccomp, valgrind) mode() is kSymmetric
// and both sides use a seq_cst fence: correct, and as costly as before. The mode is
// decided before any user of it is constructed and never changes afterwards, so both
// sides of a pair always agree on it (users copy it at construction).
#pragma once

#include <atomic>

namespace spindle::detail::asym {

enum class Mode : int { kSymmetric = 0, kMembarrier = 1 };

/// Registers with membarrier on the first call (thread-safe); the process's mode.
Mode mode() noexcept;

/// The frequent side's fence (between its store and its load).
inline void light(Mode m) noexcept {
    if (m == Mode::kMembarrier) std::atomic_signal_fence(std::memory_order_seq_cst);  // compiler only
    else std::atomic_thread_fence(std::memory_order_seq_cst);
}

/// The rare side's fence (between its store and its load): a system call of about a
/// microsecond, interrupting the CPUs that run this process's other threads.
void heavy(Mode m) noexcept;

}  // namespace spindle::detail::asym
