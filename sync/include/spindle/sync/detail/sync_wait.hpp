// spindle/sync/detail/sync_wait.hpp — the part every primitive's awaiter shares:
// one wait of the current task in a WaitQueue. Shipped but internal.
//
// Protocol (see runtime/detail/wait_queue.hpp for the cell states):
//   1. pos = queue.enqueue()                 (the primitive then decides: fast path
//                                             -> queue.abandon(pos), or wait)
//   2. park(): wait_cell_ = cell; install WAITING with the next token; arm.
//      A pending cancellation found while arming cancels the cell ourselves and
//      still requeues the task at the back (asyncio: call_soon), so a cancelled
//      waiter sits in the queue for one step exactly as its future does in asyncio.
//   3. after resume, finish(): clear wait_cell_, disarm, read the outcome, REMOVED.
#pragma once

#include <coroutine>
#include <cstdint>

#include "spindle/runtime/detail/task_header.hpp"
#include "spindle/runtime/detail/wait_queue.hpp"

namespace spindle::detail {

// In every primitive's awaiter, so in every parked task's frame (memory_parked): 24
// bytes, two flags included. The wait's token is not kept: finish_keep() reads it back
// from the task's wait_ (only the task arms, so its epoch is still ours). `queued` is
// the awaiter's own flag (Event's and Queue's), kept here rather than after the
// member. No awaiter keeps flags in SyncWait's tail padding ([[no_unique_address]]):
// with that layout ../shared/repros/condition_cancel_2 crashed 20 runs of 20, which
// was most likely the repros' g++ 12-miscompiled interp meeting a new frame layout
// (tests/CMakeLists.txt, "repro.*"), but the plain layout costs nothing here.
// Not assignable (reset() assigns the members one by one): a whole-object copy writes
// the padding as well.
struct SyncWait {
    WaitPosition pos;
    TaskHeader* self = nullptr;
    bool suspended = false;  // a real suspension point (cancellation is delivered here)
    bool queued = false;     // the awaiter's: it took a cell in the queue

    SyncWait() = default;
    SyncWait(const SyncWait&) = default;  // construction: the flags after it are built later
    SyncWait& operator=(const SyncWait&) = delete;
    /// A fresh wait of task `t` (as a new SyncWait, without touching the tail padding).
    void reset(TaskHeader* t) noexcept {
        pos = WaitPosition{};
        self = t;
        suspended = false;
        queued = false;
    }

    /// Steps 2: false when a deposit granted us already (do not suspend).
    bool park(WaitQueue& q, std::coroutine_handle<> h) noexcept;
    /// Step 3: true if granted, false if cancelled in the queue. The cell is removed.
    bool finish(WaitQueue& q) noexcept;
    /// Step 3 without removing the cell (the caller calls q.remove(pos) after it has
    /// acted on the outcome).
    bool finish_keep() noexcept;
};

/// Throws std::logic_error naming `what` when called outside a task.
TaskHeader& waiting_task(const char* what);

}  // namespace spindle::detail
