// spindle/runtime/detail/ebr.hpp — epoch-based memory reclamation for the waiter
// engine's segments. Shipped but internal.
//
// Algorithm: Fraser's epoch-based reclamation (as in crossbeam-epoch).
//   * A global epoch E. Every thread that touches a shared segment first *pins*:
//     it publishes "active at E" in its own record (a store, then a fence), and
//     unpins after. The fence is asymmetric (runtime/src/asym_fence.hpp): a compiler
//     fence in the pin and membarrier(2) in the collector before it reads the
//     records, or a seq_cst fence on both sides where membarrier is refused.
//   * An object unlinked from every shared root is *retired* with the epoch at
//     retirement; it is freed once the global epoch is at least two epochs later.
//   * The epoch advances from E to E+1 only when every pinned thread is pinned at E.
// Invariant: a thread pinned at epoch e may hold pointers to objects retired at e
// or later, never earlier: an object retired at r was unreachable before the epoch
// became r+1, and a thread pinned at r+1 or later loaded its pointers after that.
// Freed at E >= r + 2, no pinned thread (all at >= E-1 >= r+1) can hold it.
//
// Records are per thread (workers and plain threads alike), kept in a lock-free
// list, never freed, and reused after a thread exits. A thread's garbage (its
// "limbo" list) is freed by that thread as epochs advance; an exiting thread hands
// its limbo to a global orphan stack that any collector frees when safe.
// Progress: pin/unpin/retire are wait-free; collection is lock-free but may be
// delayed (not blocked) by a thread that stays pinned — pins last one operation.
//
// THREAD SAFETY: Guard (pin/unpin) and retire from any thread; pins nest.
#pragma once

#include <atomic>
#include <cstdint>

namespace spindle::detail::ebr {

using Deleter = void (*)(void*) noexcept;

/// Pins the calling thread for its lifetime (nests).
class Guard {
public:
    Guard() noexcept;
    ~Guard();
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
};

/// Frees `p` with `del` once no pinned thread can still hold it. Call while pinned
/// or not; `p` must already be unreachable from every shared root.
void retire(void* p, Deleter del) noexcept;

/// Tries to advance the epoch and frees what is safe (tests and shutdown).
void collect() noexcept;

/// Objects retired and not yet freed, over all threads (approximate; tests).
std::int64_t approx_pending() noexcept;

}  // namespace spindle::detail::ebr
