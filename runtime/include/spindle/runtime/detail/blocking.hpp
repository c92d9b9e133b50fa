// spindle/runtime/detail/blocking.hpp — a job for to_thread's pool. Shipped but internal.
#pragma once

#include "spindle/runtime/detail/task_header.hpp"

namespace spindle::detail {

struct BlockingJob {
    virtual ~BlockingJob() = default;
    /// Runs on a pool thread; must not throw (the job stores its own outcome).
    /// The pool never touches the job after calling run(): run() owns its lifetime.
    virtual void run() noexcept = 0;
};

/// Hands `job` to the blocking pool of `t`'s runtime.
void submit_blocking(TaskHeader& t, BlockingJob* job);

}  // namespace spindle::detail

namespace spindle::detail {
/// A job of `t`'s runtime finished (after it woke its task): lets virtual time move.
void blocking_done(TaskHeader& t) noexcept;
}  // namespace spindle::detail
