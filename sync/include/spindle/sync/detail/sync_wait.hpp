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
// bytes and a flag. The wait's token is not kept: finish_keep() reads it back from
// the task's wait_ (only the task arms, so its epoch is still ours). Awaiters declare
// it [[no_unique_address]] so that their own flags fill its tail padding.
struct SyncWait {
    WaitPosition pos;
    TaskHeader* self = nullptr;
    bool suspended = false;  // a real suspension point (cancellation is delivered here)

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
