// runtime/src/blocking.cpp — the blocking pool behind to_thread: threads started
// on demand (when no pool thread is idle, up to max_blocking_threads) that run
// BlockingJobs first come first served and stay until the runtime is destroyed.
//
// Invariants: blocking_running_ counts the jobs submitted and not yet done. It is
// raised before the job can finish and lowered after the job's wake was injected,
// so the virtual clock never jumps while a job runs and a deadlock is never reported
// while one runs (park() and check_deadlock_locked() read it); under virtual time the
// last job to finish wakes a worker if all of them sleep. blocking_tasks_ (under
// block_mx_) lists the tasks whose jobs run, for dump().
#include "scheduler_internal.hpp"

#include <algorithm>

namespace spindle::detail {

void submit_blocking(TaskHeader& t, BlockingJob* job) { t.sched_->submit_blocking(t, job); }

void Scheduler::submit_blocking(TaskHeader& t, BlockingJob* job) {
    // seq_cst: counted before the job can finish, so virtual time never jumps while
    // a job runs (park() reads it).
    blocking_running_.fetch_add(1, std::memory_order_seq_cst);
    std::unique_lock lk(block_mx_);
    try {
        blocking_tasks_.push_back(&t);
    } catch (...) {
        blocking_running_.fetch_sub(1, std::memory_order_seq_cst);  // seq_cst: as above
        throw;
    }
    block_jobs_.push_back(job);
    if (block_idle_ == 0 && block_threads_.size() < opts_.max_blocking_threads) {
        try {
            block_threads_.emplace_back([this] { blocking_thread_main(); });
        } catch (...) {
            if (block_threads_.empty()) {
                block_jobs_.pop_back();
                blocking_tasks_.pop_back();
                blocking_running_.fetch_sub(1, std::memory_order_seq_cst);  // seq_cst: as above
                throw;
            }
        }
    }
    lk.unlock();
    block_cv_.notify_one();
}

void Scheduler::blocking_done(TaskHeader& t) noexcept {
    {
        std::lock_guard lk(block_mx_);
        // The job still holds a ref on t. One entry per job: t may have another job now.
        auto it = std::find(blocking_tasks_.begin(), blocking_tasks_.end(), &t);
        if (it != blocking_tasks_.end()) blocking_tasks_.erase(it);
    }
    // seq_cst: the job's wake (an injection, counted in injected_) happened before;
    // a worker that sees 0 here also sees that injection.
    blocking_running_.fetch_sub(1, std::memory_order_seq_cst);
    // Under virtual time the last parked worker may be waiting for this to reach 0.
    if (opts_.virtual_time) {
        std::unique_lock lk(idle_mx_);
        if (sleepers_.size() != workers_.size()) return;  // someone is awake: it will see it
        Worker* s = sleepers_.back();
        sleepers_.pop_back();
        s->sleeping = false;
        idle_.fetch_sub(kSleeperOne, std::memory_order_seq_cst);  // seq_cst: Dekker on idle_
        lk.unlock();
        wake_worker(*s);
    }
}

void Scheduler::blocking_thread_main() {
    std::unique_lock lk(block_mx_);
    for (;;) {
        while (block_jobs_.empty() && !block_stop_) {
            ++block_idle_;
            block_cv_.wait(lk);
            --block_idle_;
        }
        if (block_jobs_.empty()) return;
        BlockingJob* job = block_jobs_.front();
        block_jobs_.pop_front();
        lk.unlock();
        job->run();
        lk.lock();
    }
}

void blocking_done(TaskHeader& t) noexcept { t.sched_->blocking_done(t); }

}  // namespace spindle::detail
