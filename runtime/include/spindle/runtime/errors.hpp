// spindle/runtime/errors.hpp — the exceptions of DESIGN.md's error table.
//
// asyncio                     spindle
// RuntimeError (misuse)       std::logic_error
// ValueError                  std::invalid_argument
// CancelledError              spindle::CancelledError (NOT a std::exception, see below)
// TimeoutError                spindle::TimeoutError : std::runtime_error
// BrokenBarrierError          spindle::BrokenBarrierError : std::runtime_error
// QueueEmpty/Full/ShutDown    spindle::QueueEmpty / QueueFull / QueueShutDown
//
// Deadlock detection (Observability) throws spindle::DeadlockError.
#pragma once

#include <stdexcept>

/// The whole public API of spindle: the runtime (Task, Runtime, spawn, JoinHandle,
/// sleep, wait_for, gather, TaskGroup, to_thread), the asyncio primitives (Lock,
/// Semaphore, BoundedSemaphore, Event, Condition, Barrier, Queue, LifoQueue,
/// PriorityQueue) and the errors they throw.
namespace spindle {

/// Delivered to a task at its current (or next real) suspension point when it is
/// cancelled. Deliberately not derived from std::exception, so that
/// `catch (const std::exception&)` cannot swallow a cancellation — asyncio makes
/// CancelledError a BaseException for the same reason. Catch it by name, and rethrow.
struct CancelledError {
    /// A fixed message, for logs (there is no std::exception base to provide one).
    [[nodiscard]] const char* what() const noexcept { return "spindle::CancelledError: task was cancelled"; }
};

/// `spindle::wait_for` ran out of time (asyncio.TimeoutError).
struct TimeoutError : std::runtime_error {
    TimeoutError() : std::runtime_error("spindle::TimeoutError: operation timed out") {}
    using std::runtime_error::runtime_error;
};

/// `block_on` found every task parked, with nothing pending, for longer than
/// `RuntimeOptions::deadlock_timeout`; what() is a header line and Runtime::dump().
struct DeadlockError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

}  // namespace spindle
