// runtime/src/worker.cpp — the workers and their local queues: spawn, enqueue and
// wake (the run queue, the wake area, the overflow of a single worker), the worker
// loop (worker_main, next_local, batch_boundary, run_task), hand-overs between
// workers (hand_over_self, migrate, drain_inbox), stealing (search), and debug
// mode's report of slow slices. Parking and the searcher count are in idle.cpp, the
// injector in inject.cpp, timers in timers.cpp.
//
// ───────────────────────────── Design ─────────────────────────────
// Workers. One OS thread per worker. Each owns a LocalQueue (bounded FIFO ring, Go's
// runq; see local_queue.hpp). Tasks spawned or woken on a worker go to its tail; the
// worker runs from the head. With workers = 1 an unbounded overflow deque keeps the
// order strictly FIFO (so a program interleaves exactly as under asyncio's loop).
//
// Wake area (2+ workers; Tokio's LIFO slot and Go's runnext, widened to 16 tasks).
// A task woken by the task running on a worker (a lock handed over, an item put for
// a waiting getter, a set event, a joined task) goes to that worker's WakeArea, runs
// there next in wake order, and no other worker is told: tasks that talk to each
// other stay on one core, where a hand-off costs a cache hit instead of a line
// transfer (on the 2-core VM a line moves between cores in ~220 ns; queue_mpsc with
// its producers spread over both workers ran 5x slower than on one). Limits:
//   - the area holds 16; a 17th wake pushes the oldest to the run queue, with a
//     notify_one() once the queue is worth stealing ("Stealing" below: a set event with
//     many waiters spreads; up to ~80 short ones stay with their waker, and long ones
//     spread once a spinning worker or the monitor sees the queue stand still);
//   - after 3 area runs in a row, the run queue's head gets a turn (no starvation);
//   - the area is not stolen by searching workers, but tasks do not wait in it for
//     long: the stall monitor (monitor.cpp) moves the area of a worker to the injector,
//     which wakes an idle worker (busy ones take from it at their batch boundaries),
//     once a task has waited in it for kStallNs (its waker keeps running, or the tasks
//     ahead of it are long). A woken task therefore waits at most ~kStallNs plus the
//     monitor's period behind its waker or its siblings (Tokio's LIFO slot: for ever).
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
// Parallel work still spreads: spawns go to the spawn stack (below), whose oldest task
// reaches idle workers through the run queue, and a run queue that is long or stuck is
// stolen from, half at a time ("Stealing" below).
//
// Spawn stack (2+ workers; the work-first order of Cilk, oneTBB and TooManyCooks). A
// task spawned on a worker goes on top of its SpawnStack (local_queue.hpp, 16 tasks,
// guarded by a biased lock: no locked instruction for its owner, a membarrier for a
// thief); the worker runs the newest spawn first, as soon as the spawner suspends. A recursive fork-join (fib_spawn) so runs
// depth-first on each core, on frames that are still in cache; a FIFO run queue
// expanded the tree breadth-first and ran the oldest, coldest task next. Thieves take the
// bottom — the oldest spawn, the biggest share of a tree. Rules:
//   - the stack shares the wake area's turn (at most 3 runs from the two in a row);
//   - pushing onto a non-empty stack calls notify_one() (there is parallel work); the
//     first spawn onto an empty one does not (spawn-then-await stays on its core);
//   - while a worker is idle or searching (idle_ read without a fence: spawn_local()), that push also moves
//     the stack's bottom, the oldest spawn, to the run queue's tail, where thieves take
//     half a queue with one CAS: parallel work leaves through the run queue;
//   - a full stack moves its bottom task to the run queue's tail;
//   - a thief takes from a stack (second pass, no run queue had anything) only once the
//     stall monitor marked it, its bottom having stayed for kStallNs (its worker runs on
//     without suspending), and then the older half of it (one membarrier for up to 8
//     tasks, which may each be long): a steal costs a membarrier, and thieves that
//     took each fresh spawn made spawn_join ~80x slower; idle workers do not count
//     another's unmarked stack as work (work_available()), so they sleep and the
//     monitor, which marks stacks only while a worker sleeps, can mark it;
//   - starvation: at the run queue's turn, a bottom task that has stayed through
//     kStackTurns turns moves to the run queue's tail, so neither a wake-area ping-pong
//     (found in review, with the one-task slot this replaced) nor a chain of spawns
//     above it can keep it waiting for ever;
//   - with one worker there is no stack: spawns join the FIFO ready queue (asyncio).
// History: a one-task slot (Go's runnext) came first (46c9199); the stack replaced it
// because fib_spawn's second join still found its child deep in the FIFO queue.
//
// Inline joins (2+ workers; the work-first join of Cilk, oneTBB and TooManyCooks). A
// task that awaits the JoinHandle of a task it spawned which has not started yet, and
// is still in this worker's spawn stack, takes it back (SpawnStack::take) and runs it
// at once in its own slice, by symmetric transfer: no park, no wake, no queue. The
// awaiting task keeps kRunning and is not registered as a joiner; this worker keeps
// its join awaiter in `inline_joins` (a stack, outermost first). Then:
//   - the child completes without suspending: complete_root() pops the awaiter and
//     transfers back to the awaiting task, which finds the child complete (a join
//     that never parks). A recursive fork-join (fib_spawn) so runs as one slice per
//     subtree, with four locked instructions per task on this path (the start's
//     RMW, the completion's CAS, the two reference drops, all on the frame's line;
//     the spawn stack's biased lock costs its owner none at push and take, and the
//     second spawn's read of idle_ needs no fence, see spawn_local());
//   - the innermost task suspends (a Lock, a timer, a join that must park, a yield):
//     at the end of the slice detach_inline_chain() registers every awaiting task of
//     the chain as an ordinary joiner of the task it awaits (innermost first, so a
//     cancellation forwarded down the chain finds each wait armed), then ends each
//     task's slice. Until its own end_slice() each task holds kRunning, so no
//     registration can miss a completion, and a wake that lands meanwhile only sets
//     kNotified (the task is requeued). From there on everything is as before.
//   - not inlined: one worker (asyncio's order), debug mode (per-slice reports), a
//     child that a thief took or that started, an
//     awaiting task with a cancellation pending (parking forwards it to the child, as
//     asyncio does), and a slice whose cooperative budget is spent: every inline join
//     draws one unit, so a loop of spawn-and-join still ends its slice every 128 joins
//     (batch boundaries come round; timers, the injector and I/O are polled) and a
//     compiler that does not turn symmetric transfer into a tail call (g++ at -O0 and
//     -O1, sanitizer builds) stacks at most that many frames. The same bound keeps a
//     chain within the awaiter stack (kInlineMax >= kCoopBudget, a static_assert).
// dump() shows a task whose child runs inline as running, not as parked on a JoinHandle.
//
// Exclusive children. `co_await std::move(h)` (and `co_await spawn(...)`) consumes the
// handle: its reference moves into the awaiter (JoinAwaiterBase::owns_ref), which no
// other thread or task can name. A child that such an awaiter starts inline is then
// reachable by nobody but this thread when (exclusive_child(), scheduler.hpp) its count
// is 2 — the runtime's reference and the awaiter's, so no copy of the handle exists —
// it is not in the registry (!listed_: shutdown's walk, dump() and the deadlock check
// find only listed tasks) and it has no completion hook (no TaskGroup or gather can
// cancel it). Every other way to change a task's state_ or refs_ needs a reference (a
// copy, JoinHandle::cancel, a join), the registry or a hook, or a wait that the task
// armed (a waker's token, a timeout's timer) — and a wait is armed only after the
// start, by this thread, and left before the completion (a timeout's scope waits out a
// firing timer: disarm_timeout). The awaiting task runs on this thread at the start
// and is frozen in the inline chain at the completion. So for such a child the start
// (start_slice) and the completion (on_complete) change state_ with a plain load and
// store, and on_complete drops the runtime's reference with a plain store (the
// awaiter's destructor is then the last owner: release() skips its decrement too). No
// locked instruction is left on the path of a fork-join that moves its handles
// (fib_spawn). Not for an lvalue handle, whose object other threads may use while it is
// awaited (copy it, cancel through it, await it): each broke plain stores with a count
// of 2 (review, three tests in tests/runtime/inline_join_test.cpp). A child that fails
// a condition — a copy (refs_ 3), a name (listed at spawn), a TaskGroup's, a joiner
// that registered once (kJoined, at the completion) — takes the read-modify-writes.
// (An lvalue awaiter made from a handle object before another task moved out of it
// holds no reference: then the count can read 2 while it exists. Moving from an object
// that another task is reading is that program's data race, as for any C++ object.)
// A cancellation of the awaiting task while its child runs inline sets its flag only
// (its wait is not armed): it is forwarded to the child at the detach if the child
// suspends, else delivered at the join when the child completes (complete_root: the
// join throws CancelledError, asyncio's outcome). current_task() is the inline child
// while it runs.
//
// Yield. A task that yields (yield_now, a spent coop budget) or was woken while it
// ran goes to the tail of the run queue. notify_one() only if that makes the queue
// worth stealing ("Stealing" below): waking an idle worker to steal tasks its owner
// runs within microseconds only moves them off their core. A Lock or Semaphore acquire that yields for the
// budget (or to break a Lock convoy) wakes nobody at all: it is a rotation among
// tasks this worker already had, not new work, and a woken thief would split tasks
// that contend for one primitive over two cores, where each acquisition costs a
// cache-line transfer (lock_contended_64 on 2 workers: bimodal 20-490 ns/op with the
// notify, 9-16 without). Idle workers still get these tasks: a spawn onto a non-empty
// spawn stack, a wake-area overflow or an injection notifies, and a searching worker
// steals half a queue.
//
// Stealing (issue 12: "steal what is worth stealing ... a thief that steals a task the
// owner would run within microseconds is a loss"). A searching worker takes half of
// another worker's run queue only if the queue is worth stealing
// (RingQueue::worth_stealing): it holds kStealMin (64) tasks or more, or tasks that
// were there when it was marked stealable, which happens when
//   - its owner moved a spawn there for idle workers (spawn_local: parallel work, a
//     fork-join's oldest subtree, however short the queue), or a poll's readiness
//     overflowed the wake area into it (dispatch_io: independent connections);
//   - a thief stole into it from a queue worth stealing (the batch may spread on);
//   - a spinning worker saw its head stand still for kStealPatienceNs (S6 in idle.cpp:
//     the owner runs a long task and the tasks behind it wait);
//   - the stall monitor saw the same for kStallNs (while a worker slept; while none
//     did, it names the queue for the next busy worker's batch boundary instead).
// The mark covers the tasks queued when it was made and expires once the head passes
// them (an index, not a flag: RingQueue::worth_stealing). Producers call notify_one()
// for a run-queue push only when the queue is then worth stealing, and park()'s re-check
// counts another worker's run queue only then, so an idle worker sleeps beside a short
// queue that its owner is running down (the monitor marks it if it stops moving).
// Why: tasks that contend for one primitive — a Semaphore's holders, a Barrier's
// round, woken 63 at a time — are short, and split over two cores each operation pays
// cache-line transfers. Measured on the 2-core VM (spindle_bench --runs 5 --scale 0.3
// --workers 2, 3 alternated rounds), stealing any non-empty queue against this rule:
// semaphore_throttle 906 -> 220 ns/op (one worker: 210), barrier_rounds 32.5 -> 8.6
// us/round (Go: 9.8-10.7); bench/RESULTS.md ("Stealing") has every workload. The
// price: fewer than kStealMin short independent tasks (say 40 that only yield) stay
// on one core while their owner keeps running them down, and a fan-out of up to ~80
// long ones (a wide wake) spreads only once S6 (10 us) or the monitor (0.25-2 ms)
// sees the queue stand still.
//
// Home (a Semaphore's grants). A release wakes the next waiter onto the releaser's
// worker (the wake area above). For holders of a Semaphore spread over two workers
// that keeps each worker's number of holders for ever — each release feeds the
// releaser's own worker — so once the first spawns split them (a stolen batch whose
// tasks took permits over there) every permit moved cache lines between the cores:
// full-size semaphore_throttle ran 800-1,000 ns/op in 4 runs of 5 against 215-260.
// So a Semaphore has a home worker (Semaphore::home_, a hint): the worker of its first
// grant, moved to the granting worker whenever the home has parked. Its grants wake
// their waiters there (a WakeHomeScope around the grant, read by wake(); migrate()'s
// inbox hand-over, refused for a worker that parked meanwhile); the other worker's
// holders drain to the home as they release, and with "Stealing" below nobody takes
// them back while the home runs them down. Other wakes (joins, an Event's broadcast,
// I/O) stay where they are: a probe that sent every wake to one worker made
// event_broadcast 2.3x and fib_spawn 1.5x slower (bench/RESULTS.md, "Stealing").
// Holders that run long still spread: the home's run queue stands still, a thief
// takes half of it, and their releases send the next waiters home again.
//
// Batches. A worker runs its queue in batches, as asyncio's _run_once does: at each
// batch boundary it fires due timers (appending their tasks in deadline order) and
// pulls from the injector, then runs as many tasks as its queue held at that moment.
#include "scheduler_internal.hpp"

#include "io.hpp"

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

namespace spindle::detail {

namespace {

constexpr std::uint32_t kCoopBudget = 128;  // Tokio's default

// Debug mode: a task that runs longer than this without suspending is reported
// (asyncio's slow_callback_duration); tests lower it.
std::atomic<std::int64_t> g_slow_ns{100'000'000};

constexpr std::uint32_t kInjectorEvery = 61;  // Go's fairness tick for the global queue
constexpr std::uint32_t kStackTurns = 8;      // turns a spawn-stack bottom may wait ("Spawn stack")

std::uint64_t xorshift(std::uint64_t& s) noexcept {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
}

}  // namespace

void spawn_root(Scheduler* s, TaskHeader& t, std::string_view name, CompletionHook* hook) {
    t.hook_ = hook;
    Worker* const w = tl_worker;  // one thread-local read for the whole spawn
    if (s == nullptr) {
        if (w == nullptr)
            throw std::logic_error("spindle::spawn called outside a task: there is no current runtime "
                                   "(use Runtime::spawn from plain threads)");
        s = w->sched;
    }
    s->spawn(t, name, w);
}

std::chrono::nanoseconds set_slow_task_threshold(std::chrono::nanoseconds d) noexcept {
    // relaxed: a configuration value, read at the end of each slice in debug mode.
    return std::chrono::nanoseconds(g_slow_ns.exchange(d.count(), std::memory_order_relaxed));
}

// ── spawning and queues ──

namespace {
[[gnu::cold, gnu::noinline]] void name_task(TaskHeader& t, std::string_view name) {
    auto* p = static_cast<char*>(std::malloc(name.size() + 1));
    if (p == nullptr) throw std::bad_alloc();
    std::memcpy(p, name.data(), name.size());
    p[name.size()] = '\0';
    t.name_ = p;
    t.named_ = true;
}
}  // namespace

void Scheduler::spawn(TaskHeader& t, std::string_view name, Worker* caller) {
    if (stop_.load()) [[unlikely]] throw std::logic_error("spindle: spawn on a runtime that has stopped");
    t.sched_ = this;
    if (debug_) [[unlikely]] t.debug_ = true;  // a fresh header: false otherwise
    if (!name.empty()) [[unlikely]] name_task(t, name);
    // The shard it counts in, and where it goes.
    Worker* const w = own_worker(caller);
    count_spawn(t, w);
    // relaxed: a race with shutdown()'s store only picks which rule applies.
    if (shutting_down_.load(std::memory_order_relaxed)) [[unlikely]] t.spawned_in_shutdown_ = true;
    // Listed now only if dump() should show it before it runs ("Registry" in registry.cpp).
    if (t.named_ || debug_) [[unlikely]] registry_insert(t);
    // relaxed: the frame is published to the worker by the queue (release/acquire).
    tsan_release(&t);  // see scheduler_internal.hpp
    t.state_.store(TaskHeader::kNotified, std::memory_order_relaxed);
    if (w != nullptr && !single_) spawn_local(*w, &t);
    else enqueue(&t);
}

void Scheduler::spawn_local(Worker& w, TaskHeader* t) noexcept {
    // Parallel work when the stack already held a task: tell an idle worker (it takes
    // the bottom on its second pass). A full stack's bottom goes to the run queue.
    // (Notifying only when the stack reached two tasks saved notify_one()'s fence on most
    // spawns, but an idle worker that missed that one notification — it was still
    // counted as searching — slept through the whole of a short fork-join: fib(20) ran
    // on one worker with 0 steals. So every push onto a non-empty stack notifies.)
    const bool had = w.spawned.maybe_nonempty();
    if (TaskHeader* oldest = w.spawned.push(t)) push_local(w, oldest);
    if (!had) return;
    // Parallel work. While a worker is idle or searching, the oldest spawn goes where it
    // can take it, the run queue (thieves take half a queue with one CAS), instead of the
    // stack, whose steals cost a membarrier ("Spawn stack" above); the newest stays for
    // its spawner's join. The move comes before notify_one(), whose fence then orders
    // the run-queue push before its read of idle_ (the Dekker pair with park()'s
    // re-check): a worker that searched too early and parks still sees the task (found
    // in review: moved after the notify, it could sit until the monitor's next look).
    // No fence between the stack push and the read of idle_ (there was a seq_cst one, a
    // locked instruction per fork: ~10% of fib_spawn's time): the push needs no Dekker
    // pair with park(), whose re-check never counts another awake worker's unmarked
    // stack (work_available(): only a stack the monitor marked, or any when the parker
    // is the last awake, which it is not while we run). A stack the monitor marked is
    // non-empty before this push, so the re-check sees it without it. The read only
    // chooses whether to spill, and a read that passes the push (store buffering) is
    // the case of a worker that parks just after it: the task stays on the stack,
    // where the monitor marks it if it stays. The spill below is a run-queue push, and
    // that one is paired: notify_one()'s fence follows it.
    // relaxed: see above.
    const std::uint64_t idle = idle_.load(std::memory_order_relaxed);
    if (searchers_of(idle) == 0 && sleepers_of(idle) == 0) return;
    if (TaskHeader* oldest = w.spawned.take_oldest()) {
        push_local(w, oldest);
        w.queue.mark_stealable();  // parallel work, whatever the queue's length ("Stealing")
    }
    notify_one();
}

void Scheduler::enqueue(TaskHeader* t) noexcept {
    Worker* w = tl_worker;
    if (w != nullptr && w->sched == this) {
        push_local(*w, t);
        if (!single_) notify_one();
    } else {
        inject(t);
    }
}

void TaskHeader::schedule() noexcept {
    tsan_release(this);  // see spindle/runtime/detail/tsan.hpp (a no-op without TSan)
    // relaxed: the CAS below validates.
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    for (;;) {
        if ((s & (kNotified | kComplete)) != 0U) return;
        // Running elsewhere: leave a hint of the waking worker, so that the task's
        // worker hands it over instead of requeueing it at home. (Not for a task that
        // schedules itself — a yield: it stays where it runs, and skipping the call
        // and the store keeps yield_now's path as short as before.) A worker of
        // another runtime gives an index that is only range-checked: a wrong target.
        if ((s & kRunning) != 0U && tl_task != this)
            wake_hint_.store(current_worker_hint(), std::memory_order_relaxed);  // relaxed: published by the CAS below to run_task's fetch_sub
        // acq_rel: releases what the waker wrote (a grant) to the worker that will
        // run the task (its fetch_add in run_task acquires); acquires the task's own
        // writes before it suspended.
        if (state_.compare_exchange_weak(s, s | kNotified, std::memory_order_acq_rel, std::memory_order_relaxed)) {
            if ((s & kRunning) == 0U) sched_->wake(this);
            return;
        }
    }
}

void Scheduler::wake(TaskHeader* t) noexcept {
    Worker* w = tl_worker;
    if (single_ || w == nullptr || w->sched != this) {
        enqueue(t);
        return;
    }
    // A grant made under a WakeHomeScope: to the primitive's home worker ("Home" above),
    // unless it parked meanwhile (then here, as any wake).
    if (const std::uint16_t home = tl_wake_home; home != 0 && home != w->index + 1U && home <= workers_.size() &&
                                                 migrate(*w, *workers_[home - 1U], t))
        return;
    // Full: the oldest woken task goes to the run queue, where idle workers may steal
    // it (a fan-out spreads). pop() finds nothing only if the monitor just emptied it.
    while (!w->woken.push(t)) {
        if (TaskHeader* old = w->woken.pop()) {
            push_local(*w, old);
            notify_if_stealable(*w);
        }
    }
}

void Scheduler::notify_if_stealable(Worker& w) noexcept {
    // After a run-queue push: wake an idle worker only for a queue worth stealing
    // ("Stealing" above); its fence orders the push before the read of idle_.
    if (w.queue.worth_stealing()) notify_one();
}

void Scheduler::push_local(Worker& w, TaskHeader* t) noexcept {
    if (single_) {
        if (!w.overflow.empty() || !w.queue.push(t)) w.overflow.push_back(t);
        return;
    }
    while (!w.queue.push(t)) {
        // Full: move the older half to the injector in one batch (one count update,
        // one notification), as Go's runqputslow does.
        std::array<TaskHeader*, LocalQueue::kCapacity / 2> batch{};
        const std::uint32_t n = w.queue.drain_half(batch.data());
        if (n == 0) continue;
        injector_.enqueue_bulk(batch.data(), n);
        // seq_cst: as in inject(): counted after the enqueue; Dekker with park().
        injected_.fetch_add(n, std::memory_order_seq_cst);
        notify_one();
    }
}

// ── the worker loop ──

void Scheduler::worker_main(Worker& w) {
    tl_worker = &w;
    tl_debug = debug_;
    while (!stop_.load(std::memory_order_relaxed)) {  // relaxed: re-checked under idle_mx_ in park
        TaskHeader* t = next_local(w);
        if (t == nullptr) t = search(w);
        if (t == nullptr) {
            // Before idling: a parked worker holds no completed task back ("Unlisting" in
            // registry.cpp; the deadlock check and shutdown() count on it).
            if (w.unlist_n != 0) flush_unlisted(w);
            if (!spin_for_work(w)) park(w);
            continue;
        }
        run_task(w, t);
    }
    flush_unlisted(w);
    tl_worker = nullptr;
}

TaskHeader* Scheduler::next_local(Worker& w) noexcept {
    // First: the batch boundary fires timers, whose wakes may land in the wake area.
    if (w.batch_left == 0) batch_boundary(w);
    // Tasks handed over by other workers join the wake area (they were woken by a task
    // of this worker). One seq_cst load of a line that only changes on a hand-over.
    if (!single_ && w.inbox.maybe_nonempty()) drain_inbox(w);
    // The wake area first, but after 3 runs from it in a row the run queue's head
    // gets a turn (two tasks waking each other cannot starve the queue), and that
    // turn counts towards the batch even if the queue is empty (timers and the
    // injector are still looked at every few runs).
    if (w.woken_runs < 3) {
        if (TaskHeader* t = w.woken.pop()) {
            ++w.woken_runs;
            return t;
        }
        if (TaskHeader* t = w.spawned.pop()) {
            ++w.woken_runs;
            return t;
        }
    }
    w.woken_runs = 0;
    // The run queue's turn. A spawn-stack bottom that has stayed through kStackTurns
    // turns joins the queue's tail ("Spawn stack" above: no starvation).
    if (!single_ && w.spawned.maybe_nonempty()) {
        const std::uint32_t bottom = w.spawned.head_index();
        if (bottom != w.turn_bottom) {
            w.turn_bottom = bottom;
            w.turn_stuck = 0;
        } else if (++w.turn_stuck >= kStackTurns) {
            w.turn_stuck = 0;
            if (TaskHeader* s = w.spawned.take_oldest()) push_local(w, s);
        }
    }
    if (w.batch_left > 0) --w.batch_left;
    TaskHeader* t = w.queue.pop();
    if (t == nullptr && single_ && !w.overflow.empty()) {
        // Refill the ring from the overflow, oldest first (the ring is empty now).
        while (!w.overflow.empty() && w.queue.push(w.overflow.front())) w.overflow.pop_front();
        t = w.queue.pop();
    }
    if (t == nullptr && (t = w.woken.pop()) != nullptr) ++w.woken_runs;
    if (t == nullptr && (t = w.spawned.pop()) != nullptr) ++w.woken_runs;
    return t;
}

void Scheduler::batch_boundary(Worker& w) noexcept {
    if (w.unlist_n != 0) flush_unlisted(w);  // completed tasks another shard lists ("Unlisting" in registry.cpp)
    // I/O readiness first, then timers, then the injector: asyncio's _run_once order
    // (select, due timers, then the ready queue). As in asyncio, which selects with no
    // timeout only when callbacks are ready: with nothing else to run here the worker
    // is about to park, and park() polls (blocking), so this poll would be a system
    // call for nothing.
    // Nor right after park() polled: the tasks it woke are this batch (asyncio runs
    // what one select() returned before it selects again).
    if (w.io_just_polled) w.io_just_polled = false;
    else if (io_->active() && (w.queue.approx_size() > 0 || !w.overflow.empty() || w.woken.approx_size() > 0 ||
                          w.spawned.maybe_nonempty() || injected_.load(std::memory_order_relaxed) > 0))  // relaxed: a hint
        poll_io_now(w);
    fire_due_timers(w);
    if (single_) {
        // asyncio order: everything that arrived from outside joins the ready queue.
        while (TaskHeader* t = pop_injector()) push_local(w, t);
        w.batch_left = w.queue.approx_size() + static_cast<std::uint32_t>(w.overflow.size());
    } else {
        // A run queue the monitor found standing still while every worker was busy
        // ("Busy workers" in monitor.cpp). relaxed: a hint; take_from_stalled's acquire
        // exchange reads the mark.
        if (stalled_busy_.load(std::memory_order_relaxed) != 0) [[unlikely]] take_from_stalled(w);
        // Take a share of the global queue every batch (Go checks it every 61 ticks):
        // its fair share (count / workers + 1, Go's globrunqget), at least 8, at most
        // what fits in half our ring, in one bulk dequeue. (A wide wake — one set()
        // with 100k waiters — spills through the injector; one task per dequeue made
        // pop_injector 8% of event_broadcast's profile.)
        // seq_cst: the count a parking worker re-checks (see inject()).
        const std::int64_t queued = injected_.load(std::memory_order_seq_cst);
        if (queued > 0) {
            std::array<TaskHeader*, LocalQueue::kCapacity / 2> batch{};
            const std::uint32_t room = LocalQueue::kCapacity / 2 - std::min<std::uint32_t>(w.queue.approx_size(), LocalQueue::kCapacity / 2);
            const auto share = static_cast<std::uint32_t>(std::min<std::int64_t>(queued / static_cast<std::int64_t>(workers_.size()) + 1, LocalQueue::kCapacity / 2));
            const std::uint32_t want = std::min(room, std::max<std::uint32_t>(share, 8));
            const std::size_t got = want == 0 ? 0 : injector_.try_dequeue_bulk(batch.data(), want);
            if (got > 0) {
                // seq_cst: keeps the count exact for park()'s re-check.
                injected_.fetch_sub(static_cast<std::int64_t>(got), std::memory_order_seq_cst);
                for (std::size_t i = 0; i < got; ++i) push_local(w, batch[i]);
            }
        }
        w.batch_left = std::min<std::uint32_t>(w.queue.approx_size(), kInjectorEvery);
    }
    if (w.batch_left == 0) w.batch_left = 1;
}

inline bool Scheduler::start_slice(TaskHeader& t, bool exclusive) noexcept {
    std::uint32_t prev = 0;
    if (exclusive) {
        // relaxed (both): nobody else can reach the task ("Exclusive children" above); it
        // was spawned by this thread.
        prev = t.state_.load(std::memory_order_relaxed);
        t.state_.store(prev + TaskHeader::kRunning - TaskHeader::kNotified, std::memory_order_relaxed);  // relaxed: pairs with nothing, see above
    } else {
        // acquire: pairs with the acq_rel CAS in schedule() / the relaxed store in spawn
        // published by the queue; clears kNotified and sets kRunning in one step.
        prev = t.state_.fetch_add(TaskHeader::kRunning - TaskHeader::kNotified, std::memory_order_acquire);  // acquire: pairs with schedule()'s acq_rel CAS
    }
    tsan_acquire(&t);  // see scheduler_internal.hpp
    if (t.started_) return true;
    t.started_ = true;
    // seq_cst: see "Registry" in registry.cpp (an unlisted task that starts
    // during shutdown() is cancelled here).
    // A task spawned during shutdown() (a cancelled task's cleanup) runs, as it
    // did when every task was listed at spawn: the walk cancels it later.
    if ((prev & TaskHeader::kCancelReq) != 0U ||
        (!t.spawned_in_shutdown_ && shutting_down_.load(std::memory_order_seq_cst))) [[unlikely]] {
        // Cancelled before it first ran: the body never runs (asyncio).
        t.exception_ = std::make_exception_ptr(CancelledError{});
        on_complete(t);
        return false;
    }
    return true;
}

void Scheduler::run_task(Worker& w, TaskHeader* t) noexcept {
    // A worker woken as a searcher that found work without searching (its wake
    // area, the injector at a batch boundary) stops counting as one, or every
    // later notify_one() would think someone is already looking.
    if (w.searching) stop_searching(w);
    tl_task = t;
    tl_completed = false;
    if (!start_slice(*t)) {
        tl_task = nullptr;
        return;
    }
    tl_coop_budget = single_ ? UINT32_MAX : kCoopBudget;
    ResumeHook* hook = t->resume_hook_;
    t->resume_hook_ = nullptr;
    if (hook == nullptr || hook->before_resume(*t)) {
        if (debug_) [[unlikely]] {
            tl_slice_start = steady_ns();
            t->resume_.resume();
            if (!tl_completed) debug_after_slice(*t, tl_slice_start);  // else on_complete did
            tl_slice_start = 0;
        } else {
            t->resume_.resume();
        }
    }
    // The task whose slice ends here: `t`, or the innermost task of a chain of inline
    // joins that suspended ("Inline joins" above).
    TaskHeader* const cur = tl_task;
    tl_task = nullptr;
    // A yield in this slice (yield_self: only outside inline joins, so only by `t`).
    TaskHeader* const yielded = w.self_yield;
    w.self_yield = nullptr;
    if (tl_completed) return;  // the frame may be gone
    if (w.inline_depth > 0) {
        detach_inline_chain(w, cur);
        return;
    }
    end_slice(w, t, yielded == t);
}

void yield_self(TaskHeader& t) noexcept {
    Worker* w = tl_worker;
    // Not a worker's running task, or inside an inline join (detach_inline_chain reads
    // kNotified from the state): the plain way.
    if (w == nullptr || tl_task != &t || w->inline_depth > 0) {
        t.schedule();
        return;
    }
    w->self_yield = &t;
}

inline void Scheduler::end_slice(Worker& w, TaskHeader* t, bool yielded) noexcept {
    if (!t->listed_) {
        // Its first slice ended without completing: list it now, while we still hold
        // kRunning ("Registry" in registry.cpp). seq_cst: the load after the insert's
        // lock, against shutdown()'s store before its walk.
        registry_insert(*t);
        if (!t->spawned_in_shutdown_ && shutting_down_.load(std::memory_order_seq_cst)) [[unlikely]] t->cancel();
    }
    // A budget rotation (a primitive's cooperative yield, which leaves a resume hook:
    // Lock, Semaphore) is not new work: see "Yield" above. A hook left by a wait that
    // parked (Condition's wait) is not a rotation. Read while we still hold kRunning
    // (nobody else can touch the task, so the hook, in its frame, is alive).
    const bool rotation = t->resume_hook_ != nullptr && t->resume_hook_->rotation();
    // acq_rel: releases the task's writes to the next worker; observes a kNotified
    // set by a waker while we ran (the waker did not enqueue then).
    tsan_release(t);  // see scheduler_internal.hpp
    std::uint32_t s = 0;
    if (yielded) [[unlikely]] {
        // A yield: Running -> Notified in one step, as schedule() during the slice and
        // the fetch_sub below made it in two. (A waker that set kNotified meanwhile
        // leaves it set; nobody else enqueues a running task.) acq_rel: as the
        // fetch_sub; failure relaxed: the loop re-reads.
        s = t->state_.load(std::memory_order_relaxed);  // relaxed: the CAS validates
        while (!t->state_.compare_exchange_weak(s, (s | TaskHeader::kNotified) & ~TaskHeader::kRunning,
                                                std::memory_order_acq_rel, std::memory_order_relaxed)) {  // acq_rel: pairs with start_slice's fetch_add
        }
        s |= TaskHeader::kNotified;
    } else {
        // acq_rel: pairs with schedule()'s CAS and the next start_slice's fetch_add (see above).
        s = t->state_.fetch_sub(TaskHeader::kRunning, std::memory_order_acq_rel);
    }
    if ((s & TaskHeader::kNotified) != 0U) {
        // Woken while it ran by a task on another worker: it joins its waker there
        // ("Migration to the waker" above).
        if (!single_) {
            // relaxed: published by the waker's CAS, acquired by the fetch_sub above.
            const std::uint16_t hint = t->wake_hint_.load(std::memory_order_relaxed);
            if (hint != 0) {
                t->wake_hint_.store(0, std::memory_order_relaxed);  // relaxed: a hint, reset by its reader
                if (hint - 1U != w.index && hint - 1U < workers_.size() && migrate(w, *workers_[hint - 1U], t)) return;
            }
        }
        // A yield, or woken while it ran: to the tail. Wake an idle worker only if the
        // queue holds another task too ("Yield" above).
        push_local(w, t);
        if (!single_ && !rotation) notify_if_stealable(w);
    }
}

// ── inline joins ──

// Every inline start draws one unit of the slice's budget (below), so a chain is never
// deeper than the budget: the awaiter stack cannot overflow.
static_assert(Worker::kInlineMax >= kCoopBudget, "an inline chain is bounded by the coop budget");

std::coroutine_handle<> Scheduler::join_inline(Worker& w, JoinAwaiterBase& a, std::coroutine_handle<> h) noexcept {
    // (One worker and debug mode never call this: Worker::inline_joins_on.)
    // A cancellation pending for the awaiting task is delivered at this join, as when it
    // parks: park_on_target() forwards it to the child (found in review: inlining ran the
    // child's body and the join returned its value, so a task that only spawns and joins
    // could not be cancelled at all).
    if (a.self->cancel_pending()) return {};
    // Each inline join draws on the cooperative budget, like any operation that goes on
    // without suspending: once it is spent the join parks as before and the slice ends.
    // Else a loop of spawn-and-join never reached a batch boundary (timers, the injector,
    // I/O waited for ever), and each transfer that the compiler does not make a tail call
    // (g++ at -O0/-O1, the sanitizer builds) grew the worker's stack (found in review).
    if (tl_coop_budget == 0) return {};
    TaskHeader& c = *a.target;
    // relaxed: a hint (take() decides): a task in a run queue or stack is notified and
    // not running; anything else cannot be in our stack.
    if ((c.state_.load(std::memory_order_relaxed) & (TaskHeader::kNotified | TaskHeader::kRunning | TaskHeader::kComplete)) !=
        TaskHeader::kNotified)
        return {};
    if (!w.spawned.take(&c)) return {};
    --tl_coop_budget;
    // Ours now, as if next_local() had popped it: run_task's prologue, without its
    // locked instruction when nobody else can reach the child ("Exclusive children").
    tl_task = &c;
    if (!start_slice(c, exclusive_child(a, c))) {
        // Cancelled before it first ran: the awaiting task goes on at once (the join
        // finds it complete).
        tl_task = a.self;
        tl_completed = false;  // on_complete() ended c, not the awaiting task's slice
        return h;
    }
    bump(w.m_inline_joins);
    a.self->resume_ = h;
    w.inline_joins[w.inline_depth++] = &a;
    tl_task = &c;
    return c.resume_;
}

void Scheduler::detach_inline_chain(Worker& w, TaskHeader* cur) noexcept {
    // Every task of the chain still holds kRunning, so none can complete or run
    // elsewhere until its end_slice() below: each registration finds its target
    // incomplete, and a wake that lands meanwhile only sets kNotified (end_slice
    // requeues the task).
    for (std::uint32_t i = w.inline_depth; i-- > 0;) {
        JoinAwaiterBase& a = *w.inline_joins[i];
        (void)a.park_on_target(a.self->resume_);  // always true: the target holds kRunning
    }
    const std::uint32_t depth = w.inline_depth;
    w.inline_depth = 0;
    end_slice(w, cur);
    for (std::uint32_t i = depth; i-- > 0;) end_slice(w, w.inline_joins[i]->self);
}

bool Scheduler::hand_over_self(TaskHeader& t, std::coroutine_handle<> h, std::uint16_t hint) noexcept {
    if (single_ || hint == 0) return false;
    const Worker* w = tl_worker;
    if (w == nullptr || w->sched != this || hint - 1U == w->index || hint - 1U >= workers_.size()) return false;
    // relaxed: a heuristic (migrate() re-checks; a parked target means we stay).
    if (workers_[hint - 1U]->parked.load(std::memory_order_relaxed)) return false;
    t.resume_ = h;
    // relaxed: published by the RMW below to run_task's fetch_sub (same thread here).
    t.wake_hint_.store(hint, std::memory_order_relaxed);
    // acq_rel: as schedule()'s CAS; the task is running, so this only marks it, and
    // run_task hands it over at the end of the slice (or requeues it here).
    tsan_release(&t);  // see scheduler_internal.hpp
    t.state_.fetch_or(TaskHeader::kNotified, std::memory_order_acq_rel);
    return true;
}

bool Scheduler::migrate(Worker& from, Worker& to, TaskHeader* t) noexcept {
    // relaxed: a heuristic; a parked worker would have to be woken (microseconds on a
    // VM): the task then stays here. The exact check is the Dekker pair below.
    if (to.parked.load(std::memory_order_relaxed)) return false;
    // Counted before the push publishes the task (the task may run on `to` at once; a
    // reader that saw it run sees it counted) and taken back if the inbox is full.
    bump(from.m_migrations);
    if (!to.inbox.push(t)) {  // full: keep it
        from.m_migrations.store(from.m_migrations.load(std::memory_order_relaxed) - 1,
                                std::memory_order_relaxed);  // relaxed: single writer, as bump()
        return false;
    }
    // seq_cst: the load half of the Dekker pair with park(): our push's claim (a
    // seq_cst RMW) precedes this load; park() stores `parked` before it re-reads the
    // inbox. Either it sees the task or we see it parked and wake it.
    if (to.parked.load(std::memory_order_seq_cst)) wake_parked(to);
    return true;
}

void Scheduler::drain_inbox(Worker& w) noexcept {
    while (TaskHeader* t = w.inbox.pop()) {
        if (!w.woken.push(t)) {
            push_local(w, t);
            notify_if_stealable(w);
        }
    }
}

void Scheduler::take_from_stalled(Worker& w) noexcept {
    // acquire: pairs with the monitor's release fetch_or (its mark_stealable() before).
    std::uint64_t bits = stalled_busy_.exchange(0, std::memory_order_acquire);
    if (w.index < 64) bits &= ~(std::uint64_t{1} << w.index);  // ours: we are at a batch boundary, it moves
    std::uint64_t keep = 0;                                        // named queues left for another worker
    for (; bits != 0; bits &= bits - 1) {
        const std::uint64_t bit = bits & (~bits + 1);
        const auto i = static_cast<std::size_t>(__builtin_ctzll(bits));
        if (i >= workers_.size() || !workers_[i]->queue.worth_stealing()) continue;  // its mark expired
        // Half of it, as a searching worker takes ("Stealing" above): marked by the
        // monitor, so worth stealing however short, until its head passes the mark.
        TaskHeader* t = workers_[i]->queue.steal_into(w.queue);
        if (t == nullptr) {
            keep |= bit;  // our queue is too full, or it emptied: leave it named
            continue;
        }
        push_local(w, t);          // behind the rest of the batch, in the victim's order
        w.queue.mark_stealable();  // as search(): the batch may spread on
        bump(w.m_steals);
        keep |= bits & (bits - 1);  // one victim per boundary: the next taker gets the rest
        break;
    }
    // relaxed: a hint for the next worker's boundary; the mark it needs was published
    // to us by the acquire above, and steal_into's CASes decide what each one takes.
    if (keep != 0) stalled_busy_.fetch_or(keep, std::memory_order_relaxed);
}

TaskHeader* Scheduler::search(Worker& w) noexcept {
    if (TaskHeader* t = pop_injector()) {
        stop_searching(w);
        return t;
    }
    if (single_ || !start_searching(w)) return nullptr;
    const std::size_t n = workers_.size();
    for (int round = 0; round < 2; ++round) {
        const std::size_t start = xorshift(w.rng) % n;
        for (std::size_t i = 0; i < n; ++i) {
            Worker& v = *workers_[(start + i) % n];
            if (&v == &w) continue;
            // Only a queue worth stealing ("Stealing" above).
            TaskHeader* t = v.queue.worth_stealing() ? v.queue.steal_into(w.queue) : nullptr;
            // Spawn stacks only on the second pass, when no queue had anything: the
            // bottom, the oldest spawn ("Spawn stack").
            if (t == nullptr && round == 1 && v.spawned.worth_stealing()) {
                // The older half: the oldest runs now, the rest joins our run queue.
                std::array<TaskHeader*, SpawnStack::kCapacity / 2> got{};
                const std::uint32_t k = v.spawned.steal_half(got);
                if (k > 0) t = got[0];
                for (std::uint32_t j = 1; j < k; ++j) push_local(w, got[j]);
            }
            if (t != nullptr) {
                // What came with it into our queue was worth stealing from there: a third
                // worker may take half of it from us (found in review: left unmarked, a
                // stolen batch of long tasks spread no further until the monitor looked).
                w.queue.mark_stealable();
                // relaxed: metrics.
                bump(w.m_steals);
                stop_searching(w);
                return t;
            }
        }
        if (TaskHeader* t = pop_injector()) {
            stop_searching(w);
            return t;
        }
    }
    return nullptr;
}

void Scheduler::debug_after_slice(TaskHeader& t, std::int64_t start_ns) noexcept {
    const std::int64_t ran = steady_ns() - start_ns;
    // relaxed: a configuration value.
    if (ran <= g_slow_ns.load(std::memory_order_relaxed)) return;
    try {
        std::fprintf(stderr, "spindle debug: task %" PRIu64 " \"%s\" ran for %.1f ms without suspending\n", t.id_,
                     task_display_name(t).c_str(), static_cast<double>(ran) / 1e6);
    } catch (...) {  // NOLINT(bugprone-empty-catch): a diagnostic must not throw
    }
}

}  // namespace spindle::detail
