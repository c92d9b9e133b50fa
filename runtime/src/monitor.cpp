// runtime/src/monitor.cpp — the stall monitor: one thread (2+ workers) that moves
// tasks stuck behind a busy worker to where another worker takes them.
//
// ───────────────────────────── Design ─────────────────────────────
// Stall monitor (2+ workers; a small sysmon). One thread wakes every kMonitorNs while
// some worker is awake (backing off to kMonitorBusyMaxNs while nothing stalls), backs
// off further while every worker is parked and then sleeps on a futex until one
// unparks (a worker leaving park() wakes it: Dekker on idle_ / monitor_idle_). For
// each worker it marks the tail of the wake area; if, a round later and kStallNs
// after the mark, the head has not passed the mark, a task has waited that long: it
// moves the area's tasks to the injector (each counted in injected_ before it leaves
// the area, so no task is ever uncounted: a parking worker's re-check and the virtual
// clock see it), which wakes an idle worker. It never runs a task, and it does not
// allocate (a thread heap of its own slowed spawn_join by ~25%).
//
// The monitor also watches each run queue's head and each spawn stack's bottom: if one
// has not moved for kStallNs while a worker sleeps (its owner runs one long task and
// the tasks behind it were requeued without a notify, see "Yield" in worker.cpp), it
// marks it stealable (a run queue shorter than kStealMin is otherwise left to its
// owner: "Stealing" in worker.cpp) and calls notify_one(); the woken worker steals
// half the queue, or takes the stack's bottom on its second pass. It never moves
// run-queue or stack tasks itself. (Run queues also while no worker sleeps: "Busy
// workers" below.)
//
// Busy workers. A queue can also stand still while every worker is awake: its owner runs
// one long task, or the kernel has taken its vCPU away (more runnable threads than
// cores), while the other workers run tasks of their own and never search. Then a stuck
// wake area or inbox goes to the injector as above (every worker takes a share of it at
// its batch boundaries), and a stuck run queue is marked stealable and named in
// stalled_busy_ (a bit per worker): the next other worker to reach a batch boundary
// with room in its queue takes half of it (take_from_stalled in worker.cpp), as an idle
// one would have. Without this, tasks queued behind a long task waited for all of it
// whenever the other workers were busy (tests/runtime/locality_test.cpp,
// AShortQueueBehindALongTaskIsTakenByABusyWorker). A queue whose owner runs it down
// moves every few microseconds, so only one stuck for kStallNs is taken: tasks that
// contend for one primitive stay where they are ("Stealing" in worker.cpp). Not spawn stacks: a steal from one costs a membarrier and
// they are left to searching thieves, so a task at the bottom of a busy spawner's stack
// still waits while every other worker is busy too (a limitation).
//
// And the I/O driver's poller role (io.hpp): a worker that parked while another held
// the poll lock (or before any fd was registered) sleeps on its futex; if the holder
// then runs a long task instead of polling, nobody would collect readiness until it
// parks again or reaches a batch boundary. At a round, if fds are registered, the lock
// is free, a worker sleeps, no worker is spinning for work (it polls: idle.cpp) and
// nobody has polled since the previous round, the monitor wakes the sleeper; it parks
// again and polls. (Readiness then waits at most about two rounds behind long tasks;
// a worker that polls at its batch boundaries, or spins, keeps the role.)
#include "scheduler_internal.hpp"

#include "io.hpp"

#include <algorithm>

namespace spindle::detail {

namespace {

// Stall monitor (see "Wake area" in worker.cpp): a task that has waited kStallNs in
// a wake area is rescued. The monitor looks every kMonitorNs, backing off to
// kMonitorBusyMaxNs while nothing stalls, and to kMonitorIdleMaxNs (then a futex
// sleep) while every worker is parked.
constexpr std::int64_t kStallNs = 250'000;
constexpr std::int64_t kMonitorNs = 250'000;
constexpr std::int64_t kMonitorBusyMaxNs = 1'000'000;
constexpr std::int64_t kMonitorIdleMaxNs = 4'000'000;

}  // namespace

void Scheduler::wake_monitor() noexcept {
    monitor_word_.store(1);  // seq_cst: see monitor_main
    futex_wake(monitor_word_);
}

void Scheduler::monitor_main() {
    // No allocation on this thread (marks_ and monitor_producer_ were made by the
    // constructor): a malloc here gave the thread a mimalloc heap of its own, and that
    // alone slowed spawn_join by ~25% (measured, not understood).
    StallMark* const marks = marks_.get();
    std::int64_t period = kMonitorNs;
    std::uint64_t polls_seen = ~std::uint64_t{0};  // the driver's poll count at the last round
    while (!stop_.load()) {
        // seq_cst, as every store to the word: a wake (store 1) after this store is
        // seen by the futex; one before it is cut short by the period at worst.
        monitor_word_.store(0);
        futex_wait(monitor_word_, 0, period);
        if (stop_.load()) break;
        // seq_cst: Dekker with the end of park() (see there).
        if (sleepers_of(idle_.load(std::memory_order_seq_cst)) == workers_.size()) {
            // Every worker is parked: nothing can stall. Back off first (a runtime that
            // parks between short bursts would otherwise pay a futex wake per burst),
            // then sleep until a worker unparks.
            if (period < kMonitorIdleMaxNs) {
                period = std::min(2 * period, kMonitorIdleMaxNs);
                continue;
            }
            // The stores, then the re-checks, all seq_cst: a worker unparking or the
            // destructor (stop_, then wake_monitor) is seen here, or sees us.
            monitor_word_.store(0);
            monitor_idle_.store(true, std::memory_order_seq_cst);
            if (sleepers_of(idle_.load(std::memory_order_seq_cst)) == workers_.size() && !stop_.load())
                futex_wait(monitor_word_, 0, -1);
            monitor_idle_.store(false, std::memory_order_seq_cst);
            for (std::size_t i = 0; i < 4 * workers_.size(); ++i) marks[i].armed = false;  // start afresh
            period = kMonitorNs;
            continue;
        }
        if (const std::uint64_t polls = io_->polls(); polls == polls_seen) hand_over_polling();
        else polls_seen = polls;
        period = monitor_round(marks) ? kMonitorNs : std::min(2 * period, kMonitorBusyMaxNs);
    }
}

namespace {
// Whether a task that was in the area at the mark is still there kStallNs later
// (then the mark is re-armed at the current tail).
template <class Area>
bool stalled(const Area& area, Scheduler::StallMark& m, std::int64_t now) noexcept {
    const std::uint32_t head = area.head_index();
    const std::uint32_t tail = area.tail_index();
    if (m.armed && static_cast<std::int32_t>(head - m.upto) < 0) {  // a marked task is still there
        if (now - m.at < kStallNs) return false;
        m.upto = tail;
        m.at = now;
        return true;
    }
    m.armed = tail != head;  // everything marked has left: mark what is there now
    m.upto = tail;
    m.at = now;
    return false;
}
}  // namespace

bool Scheduler::monitor_round(StallMark* marks) {
    // seq_cst: read once per round, not a hot path. Nobody idle: stuck wake areas still
    // go to the injector (busy workers take from it at their batch boundaries), and a
    // stuck run queue is named for them ("Busy workers" above).
    const bool idle = sleepers_of(idle_.load(std::memory_order_seq_cst)) != 0;
    // Real time even under virtual time: a stall is a task not being run.
    const std::int64_t now = steady_ns();
    bool rescued = false;
    const std::size_t n = workers_.size();
    auto rescue = [&](auto& area) {
        // Counted before it leaves the area, so that a worker about to park (and
        // the virtual clock) never sees it nowhere: injected_ > 0 keeps them up.
        for (;;) {
            // seq_cst: the count a parking worker re-checks (see inject()).
            injected_.fetch_add(1, std::memory_order_seq_cst);
            TaskHeader* x = area.steal_one();
            if (x == nullptr) {
                // seq_cst: as above.
                injected_.fetch_sub(1, std::memory_order_seq_cst);
                break;
            }
            // Counted before the task can run: the enqueue below publishes it (relaxed:
            // a statistic, ordered by the injector's release/acquire), so whoever
            // observes the rescued task's effects reads stall_rescues with it counted
            // (counted after the wake, a test that joined the task saw 0, 1 run in 6).
            m_rescued_.fetch_add(1, std::memory_order_relaxed);
            // The constructor's token: no allocation on the monitor's thread (while
            // the pre-allocated blocks last).
            injector_.enqueue(*monitor_producer_, x);
            wake_for_injected();
            rescued = true;
        }
    };
    for (std::size_t i = 0; i < n; ++i) {
        Worker& v = *workers_[i];
        if (stalled(v.woken, marks[i], now)) rescue(v.woken);
        if (stalled(v.inbox, marks[n + i], now)) rescue(v.inbox);
        if (!idle) {
            if (stalled(v.queue, marks[2 * n + i], now)) {
                v.queue.mark_stealable();  // worth_stealing() needs it for a queue shorter than kStealMin
                // release: publishes the mark above to take_from_stalled's acquire exchange
                // (its worth_stealing() must see it).
                if (i < 64) stalled_busy_.fetch_or(std::uint64_t{1} << i, std::memory_order_release);
                // A worker may have gone to sleep since the idle_ load above without
                // seeing the mark (its re-check counts a marked queue): the marker's
                // notify_one() (its fence orders the mark before the read of idle_).
                notify_one();
                rescued = true;
            }
            continue;  // spawn stacks: only searching thieves take from them (a limitation)
        }
        // A run queue whose head has not moved for kStallNs while a worker sleeps:
        // its owner runs one long task and nobody was told (budget rotations do not
        // notify, see "Yield" in worker.cpp). Wake an idle worker; it steals half the queue.
        if (stalled(v.queue, marks[2 * n + i], now)) {
            v.queue.mark_stealable();  // a thief takes even a short queue now (worth_stealing)
            notify_one();
            rescued = true;
        }
        // Likewise a task left at a spawn stack's bottom by a spawner that runs on: a
        // searching worker takes it on its second pass ("Spawn stack" in worker.cpp).
        if (stalled(v.spawned, marks[3 * n + i], now)) {
            v.spawned.mark_stalled();  // a thief takes even a lone task now (worth_stealing)
            notify_one();
            rescued = true;
        }
    }
    return rescued;
}

}  // namespace spindle::detail
