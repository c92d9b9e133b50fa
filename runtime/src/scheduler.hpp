// runtime/src/scheduler.hpp — the work-stealing scheduler behind spindle::Runtime.
// Never installed.
//
// ───────────────────────────── Design ─────────────────────────────
// Workers. One OS thread per worker. Each owns a LocalQueue (bounded FIFO ring, Go's
// runq; see local_queue.hpp). Tasks spawned or woken on a worker go to its tail; the
// worker runs from the head. With workers = 1 an unbounded overflow deque keeps the
// order strictly FIFO (so a program interleaves exactly as under asyncio's loop).
//
// Injector. Wakes and spawns from threads that are not workers of this runtime go to
// a moodycamel::ConcurrentQueue (the injector); `injected_` counts its items exactly
// (the queue's own size is approximate) so that a parking worker can re-check it.
//
// Wake area (2+ workers; Tokio's LIFO slot and Go's runnext, widened to 16 tasks).
// A task woken by the task running on a worker (a lock handed over, an item put for
// a waiting getter, a set event, a joined task) goes to that worker's WakeArea, runs
// there next in wake order, and no other worker is told: tasks that talk to each
// other stay on one core, where a hand-off costs a cache hit instead of a line
// transfer (on the 2-core VM a line moves between cores in ~220 ns; queue_mpsc with
// its producers spread over both workers ran 5x slower than on one). Limits:
//   - the area holds 16; a 17th wake pushes the oldest to the run queue, with a
//     notify_one() (a fan-out: a set event with many waiters spreads as before);
//   - after 3 area runs in a row, the run queue's head gets a turn (no starvation);
//   - the area is not stolen by searching workers, but tasks do not wait in it for
//     long while a worker idles: the stall monitor (below) moves the area of a worker
//     to the injector, which wakes an idle worker, once a task has waited in it for
//     kStallNs (its waker keeps running, or the tasks ahead of it are long). A woken
//     task therefore waits at most ~kStallNs plus the monitor's period behind its
//     waker or its siblings (Tokio's LIFO slot: for ever).
// With one worker there is no area: the ready queue stays strictly FIFO (asyncio).
//
// Migration to the waker (2+ workers). A task woken while it is still running on
// another worker — it registered its wait and is between that and the end of its
// slice, which is the common case when two tasks on two cores hand a Lock, a
// Semaphore permit or a Queue slot back and forth — used to be requeued on its own
// worker, so the pair stayed split over two cores and every hand-off paid a cache-line
// transfer (lock_contended_2: ~145 ns/op on 2 workers against 14 on one). Now
// schedule() leaves a hint in the task (the waking worker), and the worker that ends
// the slice hands the task to the waker's worker's Inbox (a bounded MPSC ring,
// local_queue.hpp); that worker drains its inbox into its wake area at the top of
// next_local(). After one such hand-off the pair runs on one core and later wakes
// are plain wake-area pushes. Rules:
//   - a yield (the task woke itself) and wakes from outside the workers leave no
//     hint: the task is requeued where it ran, as before;
//   - no hand-off to a parked worker (waking it costs microseconds) or a full inbox;
//   - a hand-off that races with the target parking is caught by a Dekker pair:
//     migrate() claims an inbox position (seq_cst RMW) then reads `parked`; park()
//     stores `parked` (seq_cst) then re-reads the inbox; whoever sees the other
//     wakes/keeps the worker up;
//   - a task in an inbox waits for its target's current slice; if that slice runs
//     long, the stall monitor moves the inbox to the injector as it does a wake
//     area (the inbox is an MPMC ring for this: the monitor is its second consumer);
//   - every worker's inbox counts in work_available(), so the last worker to go idle
//     neither advances the virtual clock nor checks for a deadlock while a task sits
//     in the inbox of a worker that is still parking (found in review: a task
//     handed over in that window saw the clock jump).
// Parallel work still spreads: spawned and yielding tasks go to the run queue, which
// idle workers steal from (half a queue at a time).
//
// Yield. A task that yields (yield_now, a spent coop budget) or was woken while it
// ran goes to the tail of the run queue. notify_one() only if the queue holds
// another task too: waking an idle worker to steal the one task its owner runs next
// only moves that task off its core. A Lock or Semaphore acquire that yields for the
// budget (or to break a Lock convoy) wakes nobody at all: it is a rotation among
// tasks this worker already had, not new work, and a woken thief would split tasks
// that contend for one primitive over two cores, where each acquisition costs a
// cache-line transfer (lock_contended_64 on 2 workers: bimodal 20-490 ns/op with the
// notify, 9-16 without). Idle workers still get these tasks: any spawn, wake-area
// overflow or injection notifies, and a searching worker steals half a queue.
//
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
// The monitor also watches each run queue's head: if it has not moved for kStallNs
// while a worker sleeps (its owner runs one long task and the tasks behind it were
// requeued without a notify, see "Yield"), it calls notify_one(); the woken worker
// steals half the queue. It never moves run-queue tasks itself.
//
// Batches. A worker runs its queue in batches, as asyncio's _run_once does: at each
// batch boundary it fires due timers (appending their tasks in deadline order) and
// pulls from the injector, then runs as many tasks as its queue held at that moment.
//
// Searching and parking (no lost wake-up, no thundering herd; Go's spinning Ms /
// Tokio's idle.rs). idle_ packs two counters: sleepers (parked workers) and
// searchers (workers looking for work to steal). A producer that makes work
// stealable calls notify_one(): after a seq_cst fence it reads idle_, and wakes one
// sleeper only if nobody is searching — a woken worker counts as a searcher, so a
// burst of pushes wakes one worker, not all. A searcher that finds work stops
// searching and, if it was the last searcher, calls notify_one() itself (chain wake).
// A worker that parks first announces itself in idle_ (seq_cst RMW) and only then
// re-checks every queue: Dekker's pattern guarantees that the producer sees the
// sleeper or the sleeper sees the work.
//
// Timers. One binary heap of intrusive entries (in the sleeping awaiter) under
// timer_mx_, keyed (deadline, seq) so equal deadlines fire in the order they were
// scheduled. An entry is only touched under timer_mx_; the firing worker claims the
// task's wait under the lock (and schedules it after unlocking), and the awaiter removes its
// entry (if still queued) under the lock before it can leave, so an entry is never
// touched after its frame is gone. next_deadline_ mirrors the heap top for lock-free
// polling. In real time, one parked worker (the timer owner) sleeps with a timeout
// until the earliest deadline. Under virtual time, the last worker to go idle, when
// no to_thread job runs and nothing was injected, advances the clock to the earliest
// deadline and fires it.
//
// Deadlock detection (RuntimeOptions::deadlock_timeout; see "Observability" in
// runtime.hpp for the contract). A block_on thread registers in ext_waiters_. The
// check runs only in park(), under idle_mx_, by the one worker not in sleepers_
// (virtual time: when the clock cannot move; real time: a "watch" — that worker
// sleeps deadlock_timeout and, woken by nobody, finds every worker still parked and
// no park/unpark since it started). Holding idle_mx_ with every other worker in
// sleepers_ means no worker can run a task during the check (leaving park takes
// idle_mx_), so only plain threads can change anything meanwhile, and each of their
// wakes is visible before it lands: a claimed wait (timers, joins, to_thread,
// cancel), a cell no longer WAITING (a sync grant from outside), kCancelReq, a
// queued spawn/wake (injected_ > 0). The check validates every live task twice
// (state_ and wait_ unchanged around the cell read: no ABA through a re-park) and
// re-reads the counters after, so a wake in flight always prevents a report.
// Nothing of this runs on a hot path: park() pays one branch on deadlock_ns_.
//
// Registry. Every live (spawned, not complete) task is in one of the shards' intrusive
// lists (mutex per shard: the shard of the spawning worker). Shutdown cancels them,
// dump() walks them.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <concurrentqueue/concurrentqueue.h>

#include "local_queue.hpp"
#include "spindle/runtime/detail/blocking.hpp"
#include "spindle/runtime/detail/timer.hpp"
#include "spindle/runtime/runtime.hpp"

namespace spindle::detail {

class Scheduler;

struct alignas(64) Worker {
    Scheduler* sched = nullptr;
    std::uint32_t index = 0;
    LocalQueue queue;
    std::deque<TaskHeader*> overflow;  // workers == 1 only; owner only
    WakeArea woken;                    // 2+ workers: tasks woken here; owner, and the stall monitor
    WorkerInbox inbox;                 // 2+ workers: tasks other workers hand over; owner pops
    std::atomic<bool> parked{false};   // owner writes in park(); migrate() reads
    std::uint32_t woken_runs = 0;      // consecutive runs from `woken` (capped); owner only
    struct Fired {
        TaskHeader* task;         // a claimed wait: schedule it
        TimeoutEntry* timeout;    // or, when set, a wait_for timeout: cancel its task
    };
    std::vector<Fired> fired;          // fire_due_timers' scratch list; owner only
    std::uint32_t batch_left = 0;      // owner only
    std::uint64_t rng = 0;             // owner only
    bool searching = false;            // owner only
    bool sleeping = false;             // under Scheduler::idle_mx_
    std::atomic<std::uint32_t> wake_word{0};  // futex: sleeper waits while 0
    // Metrics: written by the owner only (bump()), summed on read.
    std::atomic<std::uint64_t> m_steals{0}, m_parks{0}, m_unparks{0}, m_timers{0}, m_spawned{0},
        m_completed{0}, m_migrations{0};
    std::thread thread;
};

/// Adds n to a counter that only the calling worker writes: a plain load and store,
/// not a locked read-modify-write (two of these per task on the spawn path).
inline void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
    // relaxed: single writer (the owning worker); metrics() only sums, ordering nothing.
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

/// A tiny test-and-test-and-set lock: held for a handful of instructions (list
/// splicing), so spinning beats a futex-based mutex; yields after a while.
class SpinLock {
public:
    void lock() noexcept;
    void unlock() noexcept {
        // release: pairs with the acquire exchange in lock().
        locked_.store(false, std::memory_order_release);
    }

private:
    std::atomic<bool> locked_{false};
};

/// A block_on thread waiting for its task (a joiner of it).
struct ExternalJoin : JoinNode {
    static constexpr std::uint32_t kCompleted = 1;
    static constexpr std::uint32_t kDeadlock = 2;
    std::atomic<std::uint32_t> done{0};  // futex word
    std::string deadlock;                // written before kDeadlock (under ext_mx_)
};

struct alignas(64) RegistryShard {
    SpinLock mx;
    TaskHeader* head = nullptr;  // under mx
    // Tasks spawned into this shard (at insert) and finished (after the task's frame
    // was released, registry_done): two monotonic counts, updated without the lock.
    // live_count() reads every `done` before any `spawned` (see there).
    std::atomic<std::uint64_t> spawned{0};
    std::atomic<std::uint64_t> done{0};
    std::uint64_t next_id = 0;   // under mx: ids are next_id * shards + shard index
};

class Scheduler {
public:
    explicit Scheduler(const RuntimeOptions& opts);
    ~Scheduler();
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    void spawn(TaskHeader& t, std::string_view name);
    /// A spawned task: put it at the tail of a run queue.
    void enqueue(TaskHeader* t) noexcept;
    /// `t` was woken (a grant, a timer, a join): with 2+ workers it runs next on
    /// this worker (the wake area), so a lock handed over stays on a hot core.
    void wake(TaskHeader* t) noexcept;
    void on_complete(TaskHeader& t) noexcept;
    /// See detail::hand_over_self (task_header.hpp).
    bool hand_over_self(TaskHeader& t, std::coroutine_handle<> h, std::uint16_t hint) noexcept;
    /// The calling thread's worker of this runtime as a wake hint (index + 1), or 0.
    [[nodiscard]] std::uint16_t worker_hint() const noexcept;

    [[nodiscard]] std::int64_t now_ns() const noexcept;
    void add_timer(TimerEntry& e) noexcept;
    void remove_timer(TimerEntry& e) noexcept;
    bool disarm_timeout(TimeoutEntry& e) noexcept;

    void submit_blocking(TaskHeader& t, BlockingJob* job);
    void blocking_done(TaskHeader& t) noexcept;

    void wait_external(TaskHeader& t);
    void shutdown();
    /// std::logic_error when the caller is one of this runtime's workers.
    void check_not_own_worker(const char* what) const;

    [[nodiscard]] std::string dump() const;
    [[nodiscard]] RuntimeMetrics metrics() const;

    /// The stall monitor's mark on one ring: the tasks before `upto` were in it at `at`.
    struct StallMark {
        std::uint32_t upto = 0;
        std::int64_t at = 0;
        bool armed = false;
    };

    [[nodiscard]] const RuntimeOptions& options() const noexcept { return opts_; }
    [[nodiscard]] std::size_t worker_count() const noexcept { return workers_.size(); }

private:
    // idle_ encoding: low 32 bits = sleepers, high 32 bits = searchers.
    static constexpr std::uint64_t kSleeperOne = 1;
    static constexpr std::uint64_t kSearcherOne = std::uint64_t{1} << 32;
    static std::uint32_t sleepers_of(std::uint64_t v) noexcept { return static_cast<std::uint32_t>(v); }
    static std::uint32_t searchers_of(std::uint64_t v) noexcept { return static_cast<std::uint32_t>(v >> 32); }

    void worker_main(Worker& w);
    void run_task(Worker& w, TaskHeader* t) noexcept;
    TaskHeader* next_local(Worker& w) noexcept;
    void batch_boundary(Worker& w) noexcept;
    TaskHeader* search(Worker& w) noexcept;
    bool start_searching(Worker& w) noexcept;
    void stop_searching(Worker& w) noexcept;
    void park(Worker& w);
    void push_local(Worker& w, TaskHeader* t) noexcept;
    /// Hands `t` (woken while it ran on `from`) to `to`'s inbox; false if `to` is
    /// parked or its inbox is full (the caller keeps it).
    bool migrate(Worker& from, Worker& to, TaskHeader* t) noexcept;
    void drain_inbox(Worker& w) noexcept;   // owner: inbox -> wake area
    void wake_parked(Worker& w) noexcept;   // wakes `w` if it is in sleepers_
    void inject(TaskHeader* t) noexcept;
    void wake_for_injected() noexcept;  // after a task was counted and queued in the injector
    TaskHeader* pop_injector() noexcept;
    void notify_one() noexcept;
    Worker* take_sleeper() noexcept;  // under idle_mx_, sleepers_ not empty
    void wake_worker(Worker& w) noexcept;
    [[nodiscard]] bool work_available(const Worker& self) const noexcept;
    void fire_due_timers(Worker& w) noexcept;
    bool advance_virtual_clock() noexcept;  // under idle_mx_
    [[nodiscard]] std::int64_t earliest_deadline() const noexcept;
    void wake_timer_owner() noexcept;
    void monitor_main();
    /// One round of the stall monitor (one mark per worker's area). Returns whether
    /// it rescued anything.
    bool monitor_round(StallMark* marks);
    void wake_monitor() noexcept;

    /// The dump; with `stable`: whether every live task is parked with no wake in
    /// flight (see "Deadlock detection"), and `live` the number of tasks.
    std::string snapshot(bool* stable, std::size_t* live) const;
    void check_deadlock_locked();          // under idle_mx_, the other workers in sleepers_
    void report_deadlock(const std::string& dump);
    [[nodiscard]] std::uint64_t park_signature_locked() const noexcept;  // under idle_mx_
    void poke_idle_worker() noexcept;      // a fully idle runtime re-runs its idle checks
    void debug_after_slice(TaskHeader& t, std::int64_t start_ns) noexcept;

    void registry_insert(TaskHeader& t) noexcept;
    void registry_remove(TaskHeader& t) noexcept;  // unlinks (before the frame may die)
    void registry_done(std::size_t shard) noexcept;  // uncounts (after it may have died)

    void blocking_thread_main();

    RuntimeOptions opts_;
    bool single_ = false;  // workers == 1: strict FIFO mode
    bool debug_ = false;   // opts_.debug or SPINDLE_DEBUG=1
    std::int64_t deadlock_ns_ = 0;  // 0 = off
    std::vector<std::unique_ptr<Worker>> workers_;
    std::unique_ptr<RegistryShard[]> shards_;  // workers_.size() + 1 (external spawns)

    moodycamel::ConcurrentQueue<TaskHeader*> injector_;
    std::atomic<std::int64_t> injected_{0};  // exact count of tasks in injector_
    std::atomic<std::uint64_t> m_injections_{0};
    std::atomic<std::uint64_t> m_external_spawns_{0};

    alignas(64) std::atomic<std::uint64_t> idle_{0};  // sleepers | searchers << 32
    mutable std::mutex idle_mx_;                      // guards sleepers_ and timer ownership
    std::vector<Worker*> sleepers_;
    Worker* timer_owner_ = nullptr;
    std::int64_t timer_owner_deadline_ = 0;

    // Stall monitor (2+ workers).
    std::thread monitor_;
    std::unique_ptr<StallMark[]> marks_;                           // the monitor's, one per worker
    std::unique_ptr<moodycamel::ProducerToken> monitor_producer_;  // the monitor's injector token
    std::atomic<std::uint32_t> monitor_word_{0};  // futex: the monitor sleeps while 0
    std::atomic<bool> monitor_idle_{false};       // the monitor sleeps until a worker unparks
    std::atomic<std::uint64_t> m_rescued_{0};     // tasks moved out of stalled wake areas

    // Timers.
    mutable std::mutex timer_mx_;
    std::vector<TimerEntry*> heap_;  // under timer_mx_
    std::uint64_t timer_seq_ = 0;    // under timer_mx_
    alignas(64) std::atomic<std::int64_t> next_deadline_{INT64_MAX};
    std::atomic<std::int64_t> vclock_{0};
    std::chrono::steady_clock::time_point epoch_;

    // Blocking pool (to_thread).
    std::mutex block_mx_;
    std::condition_variable block_cv_;
    std::deque<BlockingJob*> block_jobs_;
    std::vector<std::thread> block_threads_;
    std::size_t block_idle_ = 0;
    bool block_stop_ = false;
    std::atomic<std::int64_t> blocking_running_{0};  // submitted and not yet done
    std::vector<TaskHeader*> blocking_tasks_;        // under block_mx_: their tasks (dump)

    // block_on threads (deadlock reports).
    std::mutex ext_mx_;
    std::vector<ExternalJoin*> ext_waiters_;  // under ext_mx_
    std::atomic<int> ext_count_{0};           // ext_waiters_.size(), for park() without the lock

    // Live tasks.
    [[nodiscard]] std::size_t live_count() const noexcept;
    std::mutex live_mx_;
    std::condition_variable live_cv_;
    std::atomic<bool> shutting_down_{false};

    std::atomic<bool> stop_{false};
};

}  // namespace spindle::detail
