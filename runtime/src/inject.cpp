// runtime/src/inject.cpp — work from outside the workers: the injector (inject,
// wake_for_injected, pop_injector; a worker takes its share of it at a batch
// boundary, batch_boundary in worker.cpp) and threads that wait for a task from
// outside (Runtime::block_on: wait_external, check_not_own_worker).
//
// ───────────────────────────── Design ─────────────────────────────
// Injector. Wakes and spawns from threads that are not workers of this runtime go to
// a moodycamel::ConcurrentQueue (the injector); `injected_` counts its items exactly
// (the queue's own size is approximate) so that a parking worker can re-check it.
//
// Invariants: a task is counted in injected_ after it is enqueued (seq_cst: the store
// half of the Dekker pair with park()'s re-check) and uncounted after it is dequeued;
// whoever counts one then wakes a sleeper if there is one (wake_for_injected), so a
// parking worker sees the task or is woken. A block_on thread is a joiner of its task
// (an ExternalJoin, a futex word); with deadlock_timeout set it is also listed in
// ext_waiters_, where a deadlock report reaches it ("Deadlock detection" in
// registry.cpp).
#include "scheduler_internal.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace spindle::detail {

void wait_external(Scheduler& s, TaskHeader& t) { s.wait_external(t); }
void check_block_on(Scheduler& s) { s.check_not_own_worker("Runtime::block_on"); }

void Scheduler::inject(TaskHeader* t) noexcept {
    injector_.enqueue(t);
    // seq_cst: counted after the enqueue so a worker that sees the count can dequeue;
    // also the store half of the Dekker pair with park()'s re-check.
    injected_.fetch_add(1, std::memory_order_seq_cst);
    // relaxed: metrics.
    m_injections_.fetch_add(1, std::memory_order_relaxed);
    wake_for_injected();
}

void Scheduler::wake_for_injected() noexcept {
    // A wake from outside must get some worker going, even with one worker.
    // seq_cst: Dekker with park(): injected_ store above, idle_ load below.
    const std::uint64_t idle = idle_.load(std::memory_order_seq_cst);
    if (sleepers_of(idle) == 0) return;
    std::unique_lock lk(idle_mx_);
    if (sleepers_.empty()) return;
    Worker* s = take_sleeper();
    // seq_cst: keeps idle_ exact for the Dekker re-checks.
    idle_.fetch_sub(kSleeperOne, std::memory_order_seq_cst);
    lk.unlock();
    wake_worker(*s);
}

TaskHeader* Scheduler::pop_injector() noexcept {
    // seq_cst: cheap exit when empty; paired with inject()'s fetch_add.
    if (injected_.load(std::memory_order_seq_cst) <= 0) return nullptr;
    TaskHeader* t = nullptr;
    if (!injector_.try_dequeue(t)) return nullptr;
    // seq_cst: keeps the count exact for park()'s re-check.
    injected_.fetch_sub(1, std::memory_order_seq_cst);
    return t;
}

namespace {
void external_join_notify(JoinNode* n) noexcept {
    auto* self = static_cast<ExternalJoin*>(n);
    // release: pairs with the acquire load in wait_external.
    self->done.fetch_or(ExternalJoin::kCompleted, std::memory_order_release);
    futex_wake(self->done);
}
}  // namespace

void Scheduler::wait_external(TaskHeader& t) {
    check_not_own_worker("Runtime::block_on");
    ExternalJoin node;
    node.notify = &external_join_notify;
    t.lock_joiners();
    const bool added = t.add_joiner_locked(&node);
    t.unlock_joiners();
    // The outcome was written by the task's worker (in the user's own, perhaps
    // instrumented, code: return_value): see tsan.hpp. Pairs with on_complete's release.
    if (!added) {
        tsan_acquire(&t);
        return;
    }
    if (deadlock_ns_ > 0) {
        {
            std::lock_guard lk(ext_mx_);
            ext_waiters_.push_back(&node);
            // seq_cst: park() reads it without ext_mx_.
            ext_count_.fetch_add(1, std::memory_order_seq_cst);
        }
        // Every worker may have gone idle (and checked) before we registered.
        poke_idle_worker();
    }
    // acquire: pairs with the release RMWs in external_join_notify / report_deadlock.
    while (node.done.load(std::memory_order_acquire) == 0) futex_wait(node.done, 0, -1);
    if (deadlock_ns_ > 0) {
        std::lock_guard lk(ext_mx_);
        auto it = std::find(ext_waiters_.begin(), ext_waiters_.end(), &node);
        if (it != ext_waiters_.end()) {
            ext_waiters_.erase(it);
            ext_count_.fetch_sub(1, std::memory_order_seq_cst);  // seq_cst: as above
        }
    }
    // The completing worker may still be inside unlock_joiners() of t, but no longer
    // touches the node after notify's store... except futex_wake on node.done.
    // Take the joiners lock once so that call has returned before `node` dies; after
    // a deadlock report the node is still linked: unlink it.
    t.lock_joiners();
    t.remove_joiner_locked(&node);
    t.unlock_joiners();
    // acquire: as above.
    const std::uint32_t done = node.done.load(std::memory_order_acquire);
    if ((done & ExternalJoin::kCompleted) == 0U) throw DeadlockError(node.deadlock);
    tsan_acquire(&t);  // as above
}

void Scheduler::check_not_own_worker(const char* what) const {
    if (tl_worker != nullptr && tl_worker->sched == this)
        throw std::logic_error(std::string("spindle: ") + what +
                               " called from one of the runtime's own workers (it would wait for itself)");
}

}  // namespace spindle::detail
