// runtime/src/scheduler.hpp — the work-stealing scheduler behind spindle::Runtime.
// Never installed.
//
// ───────────────────────────── Overview ─────────────────────────────
// One OS thread per worker, each with a bounded FIFO run queue (local_queue.hpp). A
// task woken by the task running on a worker runs next on that worker (its wake
// area); with 2+ workers a task spawned on a worker goes on its spawn stack and runs
// newest first; wakes and spawns from other threads go through a global queue (the
// injector). A worker without work steals half of another's queue (or, second, the
// oldest task of a spawn stack), then parks. Around
// the workers: a timer heap, a thread pool for to_thread, a stall monitor thread, and
// a registry of the live tasks (dump, shutdown, deadlock detection).
//
// Map: each mechanism, code and design notes, lives in one file. A comment that
// points to a section "in scheduler.hpp" means the file named here.
//   task.cpp      TaskHeader (schedule, cancel, joiners, frames), the join awaiter,
//                 the thread-locals (current task, coop budget, debug lock counts)
//   worker.cpp    "Workers", "Wake area", "Migration to the waker", "Yield",
//                 "Batches": the worker loop, spawn/enqueue/wake, the local queues,
//                 hand-overs between workers, stealing (search)
//   idle.cpp      "Searching and parking": idle_, park(), notify_one(), waking
//   inject.cpp    "Injector": wakes and spawns from outside; block_on's wait
//   timers.cpp    "Timers": the timer heap, now_ns() and the virtual clock
//   blocking.cpp  the blocking pool (to_thread)
//   registry.cpp  "Registry", "Deadlock detection": live tasks, completion,
//                 shutdown, dump(), metrics()
//   monitor.cpp   "Stall monitor" (and the I/O poller's hand-over)
//   io.hpp/.cpp   the I/O driver: epoll, fd slots, the wait spindle::net builds on
//   scheduler.cpp construction and teardown; the public spindle::Runtime
//   scheduler_internal.hpp  what these files share: thread-locals, futex, clock
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <sys/epoll.h>

#include <concurrentqueue/concurrentqueue.h>

#include "local_queue.hpp"
#include "spindle/runtime/detail/blocking.hpp"
#include "spindle/runtime/detail/timer.hpp"
#include "spindle/runtime/runtime.hpp"

namespace spindle::detail {

class Scheduler;
class IoDriver;

struct alignas(64) Worker {
    Scheduler* sched = nullptr;
    std::uint32_t index = 0;
    LocalQueue queue;
    std::deque<TaskHeader*> overflow;  // workers == 1 only; owner only
    WakeArea woken;                    // 2+ workers: tasks woken here; owner, and the stall monitor
    WorkerInbox inbox;                 // 2+ workers: tasks other workers hand over; owner pops
    SpawnStack spawned;                // 2+ workers: tasks spawned here, not yet started ("Spawn stack")
    std::atomic<bool> parked{false};   // owner writes in park(); migrate() reads
    std::uint32_t woken_runs = 0;      // consecutive runs from `woken` or `spawned` (capped); owner only
    std::uint32_t turn_bottom = 0;     // the spawn stack's bottom seq at the last turns; owner only
    std::uint32_t turn_stuck = 0;      // turns that found that same bottom; owner only
    // Inline joins ("Inline joins" in worker.cpp): the join awaiters of the tasks that
    // run a child inline in this slice, outermost first; inline_joins[i]->target is the
    // task awaited at level i (level i+1's awaiting task, or the innermost running task).
    // Owner only.
    static constexpr std::uint32_t kInlineMax = 128;
    bool inline_joins_on = false;  // 2+ workers, not debug mode; set before the threads start
    std::uint32_t inline_depth = 0;
    // The running task that yielded in this slice (yield_self), re-queued by end_slice
    // in one CAS; read and cleared by run_task when the slice ends. Owner only.
    TaskHeader* self_yield = nullptr;
    std::array<JoinAwaiterBase*, kInlineMax> inline_joins{};
    struct Fired {
        TaskHeader* task;         // a claimed wait: schedule it
        TimeoutEntry* timeout;    // or, when set, a wait_for timeout: cancel its task
    };
    std::vector<Fired> fired;          // fire_due_timers' scratch list; owner only
    // Tasks that completed here but are listed in another worker's registry shard
    // ("Unlisting" in registry.cpp): still listed, still holding the runtime's reference;
    // unlinked in one batch per shard lock by flush_unlisted(). Owner only.
    static constexpr std::uint32_t kUnlistBatch = 32;
    std::uint32_t unlist_n = 0;
    std::array<TaskHeader*, kUnlistBatch> unlist{};
    std::uint32_t batch_left = 0;      // owner only
    std::uint64_t rng = 0;             // owner only
    bool searching = false;            // owner only
    // spin_for_work's watch of the other workers' run queues (head index, since when):
    // a head that stays put for kStealPatienceNs is marked stealable. Owner only; sized
    // (one per worker) by the Scheduler's constructor, never by the worker itself.
    struct Watch {
        std::uint32_t head = 0;
        std::int64_t since = -1;  // -1: not watching (the queue was empty)
    };
    std::vector<Watch> watch;
    bool sleeping = false;             // under Scheduler::idle_mx_
    std::atomic<std::uint32_t> wake_word{0};  // futex: sleeper waits while 0
    // In epoll_wait instead of on wake_word (io.hpp): a waker writes the driver's
    // eventfd. Dekker with wake_word (see wake_worker / idle_wait).
    std::atomic<bool> in_poll{false};
    std::vector<epoll_event> io_events;  // the poll's events; owner only
    int io_ready = 0;                    // events in io_events not yet dispatched; owner only
    bool io_just_polled = false;         // park() polled: the next batch boundary need not; owner only
    // Metrics: written by the owner only (bump()), summed on read.
    // (Tasks spawned and completed: the registry shard's counts.)
    std::atomic<std::uint64_t> m_steals{0}, m_parks{0}, m_unparks{0}, m_timers{0}, m_migrations{0},
        m_inline_joins{0}, m_spins{0}, m_spin_hits{0};
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
    // Tasks spawned by this shard's worker and tasks finished on it (after the frame
    // was released, registry_done): two monotonic counts. A worker's shard is written
    // only by that worker (bump(): no locked instruction); the last shard, for plain
    // threads, under ext_count_mx. live_count() reads every `done` before any
    // `spawned` (see there). On a line of their own: another worker takes `mx` to
    // unlist a task that this shard's worker listed, and the counts are written on
    // every spawn and completion. They are also metrics()'s tasks_spawned and
    // tasks_completed (no second count per task).
    alignas(64) std::atomic<std::uint64_t> spawned{0};
    std::atomic<std::uint64_t> done{0};
    // Tasks finished on this shard's worker, counted before their joiners are told
    // (dump()'s count of unlisted tasks: a task whose JoinHandle reads done is not in
    // it). Written like `done`.
    std::atomic<std::uint64_t> finished{0};
    // Ids are next_id * shards + shard index: the worker's own counter (owner only),
    // or under ext_count_mx for the last shard.
    std::uint64_t next_id = 0;
    std::mutex ext_count_mx;     // the last shard only: plain threads spawning
};

class Scheduler {
public:
    explicit Scheduler(const RuntimeOptions& opts);
    ~Scheduler();
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    /// `caller`: the calling thread's tl_worker (null on a plain thread; any runtime's).
    void spawn(TaskHeader& t, std::string_view name, Worker* caller);
    /// A spawned task: put it at the tail of a run queue.
    void enqueue(TaskHeader* t) noexcept;
    /// `t` was woken (a grant, a timer, a join): with 2+ workers it runs next on
    /// this worker (the wake area), so a lock handed over stays on a hot core.
    void wake(TaskHeader* t) noexcept;
    /// `t` completed: outcome, joiners, hook, counts; drops the runtime's reference.
    /// `exclusive`: `t` ran inline and nobody but this thread can reach it (its joiner,
    /// frozen until we return, owns the only other reference: "Exclusive children" in
    /// worker.cpp), so its state_ and refs_ change with plain loads and stores.
    void on_complete(TaskHeader& t, bool exclusive = false) noexcept;
    /// A child that an owning awaiter (a consumed rvalue JoinHandle: `a.owns_ref`) runs
    /// inline and that nobody else can reach ("Exclusive children" in worker.cpp): the
    /// awaiter and the runtime are its only owners, it is not listed, it has no hook.
    [[nodiscard]] static bool exclusive_child(const JoinAwaiterBase& a, const TaskHeader& t) noexcept {
        // acquire: as release()'s load (other owners that let go: their writes).
        return a.owns_ref && !t.listed_ && t.hook_ == nullptr && t.refs_.load(std::memory_order_acquire) == 2;
    }
    /// The awaiting task (running on worker `w`) joins `target`: if `target` has not
    /// started and is in w's spawn stack, starts it inline and returns the handle to
    /// transfer to (its body; or the awaiting task itself when it ended cancelled before
    /// it ran). A null handle: not inlined, join as usual ("Inline joins" in worker.cpp).
    std::coroutine_handle<> join_inline(Worker& w, JoinAwaiterBase& a, std::coroutine_handle<> h) noexcept;
    /// A root task's final suspension: completes it, then returns the task to transfer
    /// to (the task that ran it inline and awaits it) or noop_coroutine().
    std::coroutine_handle<> complete_root(TaskHeader& t) noexcept;
    /// See detail::hand_over_self (task_header.hpp).
    bool hand_over_self(TaskHeader& t, std::coroutine_handle<> h, std::uint16_t hint) noexcept;

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
    /// The I/O driver (io.hpp): one per runtime, made with it.
    [[nodiscard]] IoDriver* io_driver() const noexcept { return io_; }
    [[nodiscard]] std::size_t worker_count() const noexcept { return workers_.size(); }
    /// Whether worker `i` exists and is not parked (a hint: awake_home()).
    [[nodiscard]] bool worker_awake(std::size_t i) const noexcept {
        // relaxed: a hint; migrate() re-checks with the Dekker pair.
        return i < workers_.size() && !workers_[i]->parked.load(std::memory_order_relaxed);
    }

private:
    // idle_ encoding: low 32 bits = sleepers, high 32 bits = searchers.
    static constexpr std::uint64_t kSleeperOne = 1;
    static constexpr std::uint64_t kSearcherOne = std::uint64_t{1} << 32;
    static std::uint32_t sleepers_of(std::uint64_t v) noexcept { return static_cast<std::uint32_t>(v); }
    static std::uint32_t searchers_of(std::uint64_t v) noexcept { return static_cast<std::uint32_t>(v >> 32); }

    void worker_main(Worker& w);
    void run_task(Worker& w, TaskHeader* t) noexcept;
    /// run_task's prologue, shared with join_inline (the caller dequeued `t` and made
    /// it the current task): takes kRunning; a task cancelled before its first slice is
    /// completed here instead (false: its body never runs).
    /// `exclusive`: no other thread can reach `t` (join_inline(): "Exclusive children"
    /// in worker.cpp), so its state changes with a plain load and store.
    [[gnu::always_inline]] inline bool start_slice(TaskHeader& t, bool exclusive = false) noexcept;
    /// The end of `t`'s slice on `w` (it suspended): list it, drop kRunning, requeue or
    /// hand it over if it was woken meanwhile.
    [[gnu::always_inline]] inline void end_slice(Worker& w, TaskHeader* t, bool yielded = false) noexcept;
    /// The slice that ran a chain of inline joins ended with `cur` suspended: every
    /// awaiting task of the chain becomes an ordinary joiner, and each slice ends.
    void detach_inline_chain(Worker& w, TaskHeader* cur) noexcept;
    TaskHeader* next_local(Worker& w) noexcept;
    void batch_boundary(Worker& w) noexcept;
    TaskHeader* search(Worker& w) noexcept;
    bool start_searching(Worker& w) noexcept;
    void stop_searching(Worker& w) noexcept;
    /// Idle spinning (idle.cpp): the searcher `w`, which found nothing, keeps looking
    /// for opts_.idle_spin_us. True: work turned up (w no longer searches); false: go
    /// and park (still searching; park() ends that).
    bool spin_for_work(Worker& w) noexcept;
    /// What the spinner looks for (cheap loads only).
    [[nodiscard]] bool spin_found_work(const Worker& w) const noexcept;
    void park(Worker& w);
    /// park()'s sleep: in epoll_wait when fds are registered and the poll lock is
    /// free, else on the futex word.
    void idle_wait(Worker& w, std::int64_t timeout_ns) noexcept;
    /// A batch boundary's look at the I/O driver (no blocking).
    void poll_io_now(Worker& w) noexcept;
    /// Schedules the tasks that the events in w.io_events woke.
    void dispatch_io(Worker& w) noexcept;
    /// Before the poll lock is released: counts events taken and not yet dispatched.
    void note_io_taken(Worker& w) noexcept;
    /// The stall monitor: fds are registered, nobody holds the poll lock (its holder
    /// went on to run tasks) and a worker sleeps on its futex: wake it, so that it
    /// parks again and polls.
    void hand_over_polling() noexcept;
    /// Virtual time's I/O grace (park()): changes when another worker than `self`
    /// parks or is woken, or I/O is dispatched (`self` parks for the grace itself).
    /// Under idle_mx_.
    [[nodiscard]] std::uint64_t io_signature_locked(const Worker& self) const noexcept {
        // relaxed: these counters are written under idle_mx_, which we hold.
        const std::uint64_t own = self.m_parks.load(std::memory_order_relaxed) + self.m_unparks.load(std::memory_order_relaxed);
        // seq_cst: a read next to park's other seq_cst reads, not a hot path. The
        // index tells graces begun by different workers apart.
        return park_signature_locked() - own + io_dispatched_.load(std::memory_order_seq_cst) * 1'000'003 +
               (std::uint64_t{self.index} << 56);
    }
    void push_local(Worker& w, TaskHeader* t) noexcept;
    void notify_if_stealable(Worker& w) noexcept;  // notify_one() if w's run queue is worth stealing
    /// 2+ workers, on its own worker: `t` (just spawned) goes on top of the spawn
    /// stack ("Spawn stack" in worker.cpp).
    void spawn_local(Worker& w, TaskHeader* t) noexcept;
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
    /// Work `self` could take, or (`last`: it is the last worker to go idle) any work
    /// at all. See idle.cpp.
    [[nodiscard]] bool work_available(const Worker& self, bool last) const noexcept;
    void fire_due_timers(Worker& w) noexcept;
    bool advance_virtual_clock() noexcept;  // under idle_mx_
    [[nodiscard]] std::int64_t earliest_deadline() const noexcept;
    void wake_timer_owner() noexcept;
    void monitor_main();
    /// One round of the stall monitor (one mark per worker's area). Returns whether
    /// it rescued anything.
    bool monitor_round(StallMark* marks);
    /// A worker at a batch boundary: takes half of a run queue stalled_busy_ names.
    void take_from_stalled(Worker& w) noexcept;
    void wake_monitor() noexcept;

    /// The dump; with `stable`: whether every live task is parked with no wake in
    /// flight (see "Deadlock detection" in registry.cpp), and `live` the number of tasks.
    std::string snapshot(bool* stable, std::size_t* live) const;
    void check_deadlock_locked();          // under idle_mx_, the other workers in sleepers_
    void report_deadlock(const std::string& dump);
    [[nodiscard]] std::uint64_t park_signature_locked() const noexcept;  // under idle_mx_
    void poke_idle_worker() noexcept;      // a fully idle runtime re-runs its idle checks
    void debug_after_slice(TaskHeader& t, std::int64_t start_ns) noexcept;

    /// `w` if it is one of this runtime's workers (the caller's tl_worker), else null:
    /// the shard the calling thread counts in (null: the last one, under its mutex).
    [[nodiscard]] Worker* own_worker(Worker* w) const noexcept { return w != nullptr && w->sched == this ? w : nullptr; }
    /// Counts a spawn and gives the task its id (no lock on a worker). `own`: own_worker().
    void count_spawn(TaskHeader& t, Worker* own) noexcept {
        if (own == nullptr) [[unlikely]] {
            count_spawn_external(t);
            return;
        }
        RegistryShard& s = shards_[own->index];
        t.id_ = (++s.next_id) * nshards_ + own->index;
        // release: a reader that sees a later `done` of this task (which happens
        // after this spawn) sees this count (live_count()).
        s.spawned.store(s.spawned.load(std::memory_order_relaxed) + 1, std::memory_order_release);  // relaxed load: single writer
    }
    void count_spawn_external(TaskHeader& t) noexcept;
    /// Lists `t` in the calling worker's shard (at spawn for a named task or in debug
    /// mode, else when its first slice ends without completing: "Registry").
    void registry_insert(TaskHeader& t) noexcept;
    void registry_remove(TaskHeader& t) noexcept;  // unlinks (before the frame may die)
    /// Unlinks the tasks `w` completed that another shard lists, then drops the runtime's
    /// reference to each and counts it done ("Unlisting" in registry.cpp). Owner only;
    /// at every batch boundary, before the worker idles, and when it exits.
    void flush_unlisted(Worker& w) noexcept;
    /// After counting tasks done: wakes shutdown() if it waits for live_count() == 0.
    void notify_shutdown_waiter() noexcept;
    /// Adds one to `counter` of `own`'s shard (own_worker(); null: the last shard,
    /// under its mutex). `finished`: a task about to be marked complete; `done`: a
    /// finished task, after its frame may have died.
    [[gnu::always_inline]] void count_on_shard(Worker* own, std::atomic<std::uint64_t> RegistryShard::*counter) noexcept {
        if (own == nullptr) [[unlikely]] {
            count_on_external_shard(counter);
            return;
        }
        std::atomic<std::uint64_t>& c = shards_[own->index].*counter;
        // release: pairs with the acquire loads of live_count() / unfinished_count().
        c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_release);  // relaxed load: single writer
    }
    void count_on_external_shard(std::atomic<std::uint64_t> RegistryShard::*counter) noexcept;

    void blocking_thread_main();

    RuntimeOptions opts_;
    IoDriver* io_ = nullptr;  // a reference (the driver is counted: io.hpp)
    bool single_ = false;  // workers == 1: strict FIFO mode
    bool debug_ = false;   // opts_.debug or SPINDLE_DEBUG=1
    std::int64_t deadlock_ns_ = 0;  // 0 = off
    std::vector<std::unique_ptr<Worker>> workers_;
    std::unique_ptr<RegistryShard[]> shards_;  // workers_.size() + 1 (external spawns)
    std::size_t nshards_ = 0;                  // workers_.size() + 1 (the ids' stride)

    moodycamel::ConcurrentQueue<TaskHeader*> injector_;
    std::atomic<std::int64_t> injected_{0};  // exact count of tasks in injector_
    std::atomic<std::uint64_t> m_injections_{0};

    alignas(64) std::atomic<std::uint64_t> idle_{0};  // sleepers | searchers << 32
    mutable std::mutex idle_mx_;                      // guards sleepers_ and timer ownership
    std::vector<Worker*> sleepers_;
    Worker* timer_owner_ = nullptr;
    std::int64_t timer_owner_deadline_ = 0;
    // I/O (io.hpp): events taken from epoll and not yet dispatched; dispatches so far.
    std::atomic<std::int64_t> io_pending_{0};
    // The one worker in spin_for_work() (Go: at most one spinning M per idle burst here).
    std::atomic<bool> spinning_{false};
    // A notify_one() found a searcher and left the work to it (S2 in idle.cpp).
    std::atomic<bool> help_wanted_{false};
    std::atomic<std::uint64_t> io_dispatched_{0};
    // Virtual time's I/O grace (park()), under idle_mx_: when it began (steady ns,
    // 0 = none) and the io_signature_locked() it began with.
    std::int64_t vt_grace_start_ = 0;
    std::uint64_t vt_grace_sig_ = 0;

    // Stall monitor (2+ workers).
    std::thread monitor_;
    std::unique_ptr<StallMark[]> marks_;                           // the monitor's, one per worker
    std::unique_ptr<moodycamel::ProducerToken> monitor_producer_;  // the monitor's injector token
    std::atomic<std::uint32_t> monitor_word_{0};  // futex: the monitor sleeps while 0
    std::atomic<bool> monitor_idle_{false};       // the monitor sleeps until a worker unparks
    std::atomic<std::uint64_t> m_rescued_{0};     // tasks moved out of stalled wake areas
    // The run queues (bit i: worker i, for the first 64) whose head the monitor found
    // standing still while every worker was awake ("Busy workers" in monitor.cpp): the
    // next worker at a batch boundary takes half of one. On a line of its own (the
    // timer mutex below starts the next): read at every batch boundary, written only
    // when a queue stalls.
    alignas(64) std::atomic<std::uint64_t> stalled_busy_{0};

    // Timers.
    alignas(64) mutable std::mutex timer_mx_;
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
    /// live_count() by `finished` instead of `done`: the tasks not yet complete.
    [[nodiscard]] std::size_t unfinished_count() const noexcept;
    std::mutex live_mx_;
    std::condition_variable live_cv_;
    std::atomic<bool> shutting_down_{false};

    std::atomic<bool> stop_{false};
};

}  // namespace spindle::detail
