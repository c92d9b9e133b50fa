// runtime/src/asym_fence.cpp — see asym_fence.hpp.
#include "asym_fence.hpp"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace spindle::detail::asym {

namespace {
Mode decide() noexcept {
    // SPINDLE_NO_MEMBARRIER=1: the symmetric fences, as on a kernel without membarrier
    // (how the tests cover that path, and a switch for a user who suspects it).
    if (const char* e = std::getenv("SPINDLE_NO_MEMBARRIER"); e != nullptr && e[0] == '1') return Mode::kSymmetric;
    const long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (cmds < 0 || (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) return Mode::kSymmetric;
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) != 0) return Mode::kSymmetric;
    return Mode::kMembarrier;
}
}  // namespace

Mode mode() noexcept {
    static const Mode m = decide();  // a magic static: decided once, before any use returns
    return m;
}

void heavy(Mode m) noexcept {
    if (m == Mode::kSymmetric) {
        std::atomic_thread_fence(std::memory_order_seq_cst);
        return;
    }
    // Registered in mode(), so the call fails only for want of memory (ENOMEM: a CPU
    // mask on a kernel built for many CPUs). The light side relies on it: retry, then
    // fall back to MEMBARRIER_CMD_GLOBAL (slow, milliseconds, but as strong), and stop
    // only if that fails too (found in review: aborting at once).
    for (int attempt = 0; attempt < 3; ++attempt)
        if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0) return;
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) == 0) return;
    std::fputs("spindle: membarrier failed after registration; mutual exclusion cannot be kept\n", stderr);
    std::abort();
}

}  // namespace spindle::detail::asym
