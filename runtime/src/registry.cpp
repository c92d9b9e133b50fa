// runtime/src/registry.cpp — the live tasks: the registry (sharded intrusive
// lists), completion (on_complete: joiners, the completion hook, the frame's
// release), shutdown(), dump() and the deadlock detector built on it, and metrics().
//
// ───────────────────────────── Design ─────────────────────────────
// Registry. The live tasks that dump(), shutdown() and deadlock detection must find
// are in the shards' intrusive lists (a SpinLock per shard: the shard of the worker
// that listed the task, or the last one for plain threads). A task is listed lazily:
// at spawn only when it is named or the runtime is in debug mode, otherwise when its
// first slice ends without completing (run_task, before it gives up kRunning). A
// task that completes in its first slice — a leaf of a fork-join tree, a spawned
// one-shot job — never touches a shared line of the registry. So at any instant an
// unlisted live task is unnamed and either queued before its first run or inside it:
//   - dump() lists named and parked tasks and says how many others are live (from the
//     counts below);
//   - deadlock detection runs only when every worker is parked and nothing is queued,
//     so every live task has ended a slice and is listed;
//   - shutdown() sets shutting_down_ before it walks the lists (seq_cst); a task that
//     lists itself loads it after its insert (seq_cst, after the shard lock) and
//     cancels itself, and a task that starts while it is set is cancelled before its
//     body runs: every task is cancelled (its 20 ms re-cancel loop stays as before).
//     Except a task spawned while the flag is set (a cancelled task's cleanup child):
//     it runs, and the next walk cancels it, as before lazy listing.
// Unlisting. A listed task that completes on the worker whose shard lists it is
// unlinked at once. An unnamed one (outside debug mode) that a worker listed and that
// completes on another worker (a stolen or migrated task: event_broadcast's woken half)
// is not: that worker keeps it in its `unlist` buffer,
// listed and with the runtime's reference, and unlinks the buffer in one go per shard
// lock (flush_unlisted: when 32 are held, at each batch boundary, before it idles, when
// it exits), then drops the references and counts the tasks done. Unlinking each one
// at its completion took the other worker's shard lock once per task, beside that
// worker's own unlinking: about half of event_broadcast's second-worker cost (a probe
// without listing: 114-123 against 134-135 ns/waiter). So a listed task may be complete:
// dump() skips complete tasks; shutdown()'s walk only cancels them (a no-op) under its
// own reference; the deadlock check runs only when every worker is parked, and each
// flushes before it idles. The runtime still unlists a task (under the shard lock)
// before it drops its reference, which release()'s fast path relies on. The cost, for
// those tasks only: the frame (its by-value parameters) dies at that worker's next batch
// boundary or idle instead of at completion (JoinHandle's comment says so; a held
// handle already kept it longer). block_on's root, tasks spawned from plain threads
// (the external shard) and named tasks are unlinked at completion, as before.
// Counting (live_count): per-shard monotonic `spawned` and `done` counts, each shard
// written by one worker (no locked instruction). A task is counted spawned by the
// thread that spawned it and done by the worker it completed on.
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
#include "scheduler_internal.hpp"

#include "io.hpp"

#include "spindle/runtime/detail/wait_queue.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <exception>
#include <string>
#include <utility>
#include <vector>

namespace spindle::detail {

namespace {

bool is_cancelled_error(const std::exception_ptr& e) noexcept {
    if (!e) return false;
    try {
        std::rethrow_exception(e);
    } catch (const CancelledError&) {
        return true;
    } catch (...) {
        return false;
    }
}

}  // namespace

std::coroutine_handle<> on_root_complete(TaskHeader& t) noexcept { return t.sched_->complete_root(t); }

// ("Inline joins" in worker.cpp; here, next to on_complete, so that the final awaiter's
// call reaches on_complete without another call between translation units.)
std::coroutine_handle<> Scheduler::complete_root(TaskHeader& t) noexcept {
    Worker* w = tl_worker;
    JoinAwaiterBase* a = nullptr;
    if (w != nullptr && w->inline_depth > 0 && w->inline_joins[w->inline_depth - 1]->target == &t) {
        a = w->inline_joins[--w->inline_depth];
    }
    if (a == nullptr) {
        on_complete(t);  // may destroy t's frame
        return std::noop_coroutine();
    }
    // An owning joiner (a consumed rvalue handle) of a child nobody else can reach:
    // plain stores ("Exclusive children" in worker.cpp).
    if (exclusive_child(*a, t)) {
        // relaxed: nobody else writes state_ (exclusive); a joiner that ever registered
        // (kJoinLock/kJoined) takes on_complete's path.
        const std::uint32_t s = t.state_.load(std::memory_order_relaxed);
        // The common end of a fork-join child: it returned a value, nobody else can reach
        // it, no joiner ever registered, not in debug mode. on_complete()'s work reduces to
        // the counts, kComplete and the runtime's reference: what on_complete(t, true)
        // does on this path, without its checks for what cannot be so here (listed, named,
        // deferred, a hook: exclusive_child() excludes them; a thrown or self-cancelled
        // outcome and debug mode go the long way). `w` is this runtime's worker: an
        // inline join is made only on one (join_inline()).
        if (!t.exception_ && !t.self_cancel_ && !debug_ && (s & (TaskHeader::kJoinLock | TaskHeader::kJoined)) == 0U) {
            tsan_release(&t);  // as on_complete()
            count_on_shard(w, &RegistryShard::finished);
            // release: publishes the outcome, as on_complete()'s store.
            t.state_.store(s | TaskHeader::kComplete, std::memory_order_release);
            tl_completed = true;
            t.refs_.store(1, std::memory_order_release);  // release: as on_complete()'s (release()'s acquire load)
            count_on_shard(w, &RegistryShard::done);
            notify_shutdown_waiter();
        } else {
            on_complete(t, true);
        }
    } else {
        on_complete(t);  // may destroy t's frame
    }
    // The awaiting task goes on in the same slice: it still holds kRunning. A cancellation
    // of it that arrived meanwhile (its wait was not armed, so nothing was forwarded) is
    // delivered at this join, as when a parked join's task is cancelled after its child
    // completed: asyncio's outcome whether the request came while the child ran (asyncio
    // forwards it, and a child that then returns ends cancelled) or from the child's
    // completion (a TaskGroup's hook cancelling its siblings; found in review: the join
    // returned the child's value and the request could be lost for good).
    if (a->self->cancel_pending()) a->suspended = true;  // finish_resume() delivers it
    tl_task = a->self;
    tl_completed = false;
    return a->self->resume_;
}

void SpinLock::lock() noexcept {
    unsigned spins = 0;
    for (;;) {
        // acquire: pairs with the release store in unlock().
        if (!locked_.exchange(true, std::memory_order_acquire)) return;
        // relaxed: wait for the lock to look free before trying again (TTAS).
        while (locked_.load(std::memory_order_relaxed)) {
            if (++spins < 128) cpu_relax();
            else std::this_thread::yield();
        }
    }
}

void Scheduler::count_spawn_external(TaskHeader& t) noexcept {
    RegistryShard& s = shards_[workers_.size()];
    std::lock_guard lk(s.ext_count_mx);
    t.id_ = (++s.next_id) * nshards_ + workers_.size();
    s.spawned.fetch_add(1, std::memory_order_release);  // release: as count_spawn(); the mutex orders writers
}

void Scheduler::registry_insert(TaskHeader& t) noexcept {
    Worker* w = tl_worker;
    const std::size_t shard = (w != nullptr && w->sched == this) ? w->index : workers_.size();
    t.shard_ = static_cast<std::uint16_t>(shard);
    t.listed_ = true;
    RegistryShard& s = shards_[shard];
    std::lock_guard lk(s.mx);
    t.reg_prev_ = nullptr;
    t.reg_next_ = s.head;
    if (s.head != nullptr) s.head->reg_prev_ = &t;
    s.head = &t;
}

namespace {
// Under s.mx: takes `t` out of shard `s`'s list.
void unlink_locked(RegistryShard& s, TaskHeader& t) noexcept {
    if (t.reg_prev_ != nullptr) t.reg_prev_->reg_next_ = t.reg_next_;
    else s.head = t.reg_next_;
    if (t.reg_next_ != nullptr) t.reg_next_->reg_prev_ = t.reg_prev_;
}
}  // namespace

void Scheduler::registry_remove(TaskHeader& t) noexcept {
    RegistryShard& s = shards_[t.shard_];
    std::lock_guard lk(s.mx);
    unlink_locked(s, t);
}

void Scheduler::notify_shutdown_waiter() noexcept {
    // relaxed: only set while shutdown() waits; a missed notify costs one 20 ms poll.
    if (shutting_down_.load(std::memory_order_relaxed)) {
        std::lock_guard lk(live_mx_);
        live_cv_.notify_all();
    }
}

void Scheduler::count_on_external_shard(std::atomic<std::uint64_t> RegistryShard::*counter) noexcept {
    // The last shard, shared by plain threads: its writers take the mutex. (Tasks
    // complete on workers only; kept for any caller off a worker.)
    RegistryShard& s = shards_[workers_.size()];
    std::lock_guard lk(s.ext_count_mx);
    (s.*counter).fetch_add(1, std::memory_order_release);  // release: as count_on_shard()
}

std::size_t Scheduler::unfinished_count() const noexcept {
    // As live_count(), with `finished` for `done`.
    std::uint64_t fin = 0, spawned = 0;
    // acquire: pairs with count_on_shard(finished)'s release stores.
    for (std::size_t i = 0; i <= workers_.size(); ++i) fin += shards_[i].finished.load(std::memory_order_acquire);
    // acquire: pairs with count_spawn()'s release stores.
    for (std::size_t i = 0; i <= workers_.size(); ++i) spawned += shards_[i].spawned.load(std::memory_order_acquire);
    return static_cast<std::size_t>(spawned - fin);
}

std::size_t Scheduler::live_count() const noexcept {
    // The shards cannot be read at one instant, and a task may be spawned into a shard
    // already read (its parent finishing in a shard read later): a per-shard live
    // count could sum to 0 with that child alive. So the counts are monotonic and
    // every `done` is read before any `spawned`. Every task's spawn happens before its
    // completion (the run queue publishes it), and a spawner's own completion after
    // its spawns; so each `done` increment read here (acquire) brings with it the
    // `spawned` increments of that task and of its children, which the second pass
    // then reads: done_sum counts only tasks whose spawn is in spawned_sum, and equal
    // sums mean that no task read as done left a live child uncounted. (Tasks spawned
    // by plain threads concurrently with the call may be missed: shutdown() loops.)
    std::uint64_t done = 0, spawned = 0;
    // acquire: pairs with count_on_shard(done)'s release stores.
    for (std::size_t i = 0; i <= workers_.size(); ++i) done += shards_[i].done.load(std::memory_order_acquire);
    // acquire: pairs with count_spawn()'s release stores.
    for (std::size_t i = 0; i <= workers_.size(); ++i) spawned += shards_[i].spawned.load(std::memory_order_acquire);
    return static_cast<std::size_t>(spawned - done);
}

void Scheduler::on_complete(TaskHeader& t, bool exclusive) noexcept {
    tsan_release(&t);  // for whoever destroys the frame or reads the outcome (scheduler_internal.hpp)
    // asyncio: a task that cancelled itself and returns without suspending again
    // ends cancelled ("cancelled right before coro stops"); see cancel().
    if (!t.exception_ && t.self_cancel_ && t.cancel_pending()) t.exception_ = std::make_exception_ptr(CancelledError{});
    t.outcome_cancelled_ = is_cancelled_error(t.exception_);
    if (debug_) [[unlikely]] {
        if (tl_slice_start != 0) debug_after_slice(t, tl_slice_start);
        if (t.debug_locks_held_ > 0)
            std::fprintf(stderr,
                         "spindle debug: task %" PRIu64 " \"%s\" finished while still holding %u Lock(s) it "
                         "acquired (a Lock has no owner: nobody else will release it unless your code does)\n",
                         t.id_, task_display_name(t).c_str(), t.debug_locks_held_);
    }
    Worker* const own = own_worker(tl_worker);
    // Listed in another worker's shard: unlinked later, in a batch ("Unlisting" above).
    // Only unnamed tasks outside debug mode listed by a worker: never block_on's root or
    // another task spawned from a plain thread (the external shard), nor a named one,
    // whose frames (by-value parameters) then die at completion as before (review:
    // block_on's root kept its frame past block_on's return, 10 runs of 10).
    const bool defer = t.listed_ && own != nullptr && t.shard_ != own->index && t.shard_ < workers_.size() &&
                       !t.named_ && !t.debug_;
    if (t.listed_ && !defer) registry_remove(t);
    // Before the kComplete CAS that tells joiners, so whoever sees the task complete
    // (a JoinHandle, block_on) and then calls dump() or metrics() reads this count.
    count_on_shard(own, &RegistryShard::finished);
    // Sets kComplete; takes the join lock only if a joiner ever registered (a task
    // that finishes before anyone awaits it costs one CAS here, not three RMWs). An
    // exclusive child ("Exclusive children" in worker.cpp) with no joiner ever: a plain
    // load and store. relaxed (the load): nobody else writes state_.
    const std::uint32_t s = exclusive ? t.state_.load(std::memory_order_relaxed) : 0U;
    if (exclusive && (s & (TaskHeader::kJoinLock | TaskHeader::kJoined)) == 0U) {
        // release: publishes the outcome, as the CAS's release in complete_and_lock_joiners().
        t.state_.store(s | TaskHeader::kComplete, std::memory_order_release);
    } else if (t.complete_and_lock_joiners()) {
        // The list is newest-first; asyncio runs done-callbacks first-come first, so
        // reverse it before notifying.
        JoinNode* fifo = nullptr;
        for (JoinNode* n = t.joiners_; n != nullptr;) {
            JoinNode* next = n->next;
            n->next = fifo;
            fifo = n;
            n = next;
        }
        for (JoinNode* n = fifo; n != nullptr;) {
            JoinNode* next = n->next;  // read before notify: the node may die after it
            n->prev = n->next = nullptr;
            n->notify(n);
            n = next;
        }
        t.joiners_ = nullptr;
        t.unlock_joiners();
    }
    tl_completed = true;
    if (CompletionHook* h = t.hook_) h->on_done(h, t);
    // The runtime's reference: with a plain store for an exclusive child (its owning
    // joiner, frozen until we return, holds the only other reference and nobody can
    // make one: "Exclusive children" in worker.cpp). Not for a child awaited through an
    // lvalue handle even when the count reads 2: another thread may copy that handle
    // (a const read) between the load and the store, and its reference was lost (review,
    // InlineJoin.ACopyOfTheJoinersHandleMadeDuringAnInlineCompletionKeepsTheFrameAlive).
    if (defer) {
        // Still listed, so the runtime keeps its reference until the flush has unlinked it.
        own->unlist[own->unlist_n++] = &t;
        if (own->unlist_n == Worker::kUnlistBatch) flush_unlisted(*own);
        return;
    }
    if (exclusive)
        t.refs_.store(1, std::memory_order_release);  // release: pairs with the awaiter's acquire load in release()
    else
        t.release();  // may destroy the frame: t is not touched after this
    // After the task's frame was released, so shutdown() that reads 0 sees every
    // frame destroyed.
    count_on_shard(own, &RegistryShard::done);
    notify_shutdown_waiter();
}

void Scheduler::flush_unlisted(Worker& w) noexcept {
    const std::uint32_t n = w.unlist_n;
    if (n == 0) return;
    // A copy: a frame's destruction below may complete and defer another task (nothing
    // does today), which must not overwrite entries not yet released (review).
    std::array<TaskHeader*, Worker::kUnlistBatch> batch;
    std::copy_n(w.unlist.begin(), n, batch.begin());
    w.unlist_n = 0;
    // Unlink, one lock per run of tasks of the same shard (with two workers: one).
    for (std::uint32_t i = 0; i < n;) {
        RegistryShard& s = shards_[batch[i]->shard_];
        std::lock_guard lk(s.mx);
        for (; i < n && &shards_[batch[i]->shard_] == &s; ++i) unlink_locked(s, *batch[i]);
    }
    // Unlisted: now the runtime's references may go (each may destroy its frame).
    for (std::uint32_t i = 0; i < n; ++i) {
        batch[i]->release();
        // After the frame's release, as in on_complete().
        count_on_shard(&w, &RegistryShard::done);
    }
    notify_shutdown_waiter();
}

void Scheduler::shutdown() {
    check_not_own_worker("Runtime shutdown");
    shutting_down_.store(true);
    for (;;) {
        std::vector<TaskHeader*> live;
        for (std::size_t i = 0; i <= workers_.size(); ++i) {
            std::lock_guard lk(shards_[i].mx);
            for (TaskHeader* t = shards_[i].head; t != nullptr; t = t->reg_next_) {
                t->add_ref();
                live.push_back(t);
            }
        }
        for (TaskHeader* t : live) {
            t->cancel();
            t->release();
        }
        // Done when every task has completed *and* released its frame (the count
        // drops after the frame is gone, the list entry before). Re-cancel
        // stragglers (spawned during shutdown, or that swallowed the cancellation)
        // every 20 ms.
        std::unique_lock lk(live_mx_);
        if (live_cv_.wait_for(lk, std::chrono::milliseconds(20), [this] { return live_count() == 0; })) break;
    }
    shutting_down_.store(false);
}

namespace {
std::string fmt_time(std::int64_t ns) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%.3fs", static_cast<double>(ns) / 1e9);
    return buf;
}
std::string fmt_ptr(const void* p) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%p", p);
    return buf;
}
}  // namespace

std::string Scheduler::dump() const { return snapshot(nullptr, nullptr); }

std::string Scheduler::snapshot(bool* stable_out, std::size_t* live_out) const {
    bool stable = true;
    // 1. Timers: (task, deadline), under timer_mx_ (entries die only after leaving
    //    the heap under it; we keep pointers only to compare).
    // A wait_for timeout (TimeoutEntry) is kept apart from a sleep's timer: it annotates
    // whatever the task waits on.
    std::vector<std::pair<const TaskHeader*, std::int64_t>> timers;
    std::vector<std::pair<const TaskHeader*, std::int64_t>> timeouts;
    {
        std::lock_guard lk(timer_mx_);
        timers.reserve(heap_.size());
        for (const TimerEntry* e : heap_) (e->cancels ? timeouts : timers).emplace_back(e->task, e->deadline);
    }
    if (!timers.empty() || !timeouts.empty()) stable = false;
    // 2. to_thread jobs running.
    std::vector<const TaskHeader*> blocking;
    {
        std::lock_guard lk(const_cast<std::mutex&>(block_mx_));
        blocking.assign(blocking_tasks_.begin(), blocking_tasks_.end());
    }
    if (!blocking.empty()) stable = false;
    // 2b. Tasks waiting on an fd (the I/O driver's slots).
    std::vector<IoDriver::WaitInfo> io_waits;
    io_->collect_waiters(io_waits);
    // 3. Every registry shard, held together: no task can leave the registry (so none
    //    can complete and free its frame) while we look at it, and none can join it.
    std::vector<std::unique_lock<SpinLock>> held;
    held.reserve(workers_.size() + 1);
    for (std::size_t i = 0; i <= workers_.size(); ++i) held.emplace_back(shards_[i].mx);
    // 4. Joins: who awaits whose JoinHandle. A join node is unlinked under the joined
    //    task's kJoinLock before its awaiter can leave, so under that lock it is alive.
    struct Join {
        const TaskHeader* waiter;
        std::uint64_t target_id;
        std::string target_name;
    };
    std::vector<Join> joins;
    for (std::size_t i = 0; i <= workers_.size(); ++i) {
        for (TaskHeader* t = shards_[i].head; t != nullptr; t = t->reg_next_) {
            t->lock_joiners();
            for (JoinNode* n = t->joiners_; n != nullptr; n = n->next) {
                const TaskHeader* waiter = nullptr;
                if (n->notify == &JoinAwaiterBase::notify_joiner) waiter = static_cast<JoinAwaiterBase*>(n)->self;
                if (waiter != nullptr) joins.push_back({waiter, t->id_, task_display_name(*t)});
            }
            t->unlock_joiners();
        }
    }
    // 5. One line per task, by id.
    std::vector<std::pair<std::uint64_t, std::string>> lines;
    std::size_t live = 0;
    const std::int64_t now = now_ns();
    for (std::size_t i = 0; i <= workers_.size(); ++i) {
        for (TaskHeader* t = shards_[i].head; t != nullptr; t = t->reg_next_) {
            // seq_cst: with the re-reads below, brackets the cell read (see "Deadlock detection").
            const std::uint32_t s1 = t->state_.load(std::memory_order_seq_cst);
            // Completed, waiting in another worker's unlist buffer ("Unlisting"): not live.
            if ((s1 & TaskHeader::kComplete) != 0U) continue;
            ++live;
            const std::uint64_t w1 = t->wait_.load(std::memory_order_seq_cst);  // seq_cst: as above
            std::string line = "task " + std::to_string(t->id_) + " \"" + task_display_name(*t) + "\": ";
            bool parked = false;
            if ((s1 & TaskHeader::kRunning) != 0U) {
                line += "running";
            } else if ((s1 & TaskHeader::kNotified) != 0U) {
                line += "ready";
            } else {
                parked = true;
                WaitDescription d;
                std::uint64_t cell_value = 0;
                const Join* join = nullptr;
                for (const Join& j : joins)
                    if (j.waiter == t) join = &j;
                std::int64_t deadline = -1;
                for (const auto& [task, dl] : timers)
                    if (task == t) deadline = dl;
                std::int64_t timeout = -1;  // the earliest of its wait_for deadlines
                for (const auto& [task, dl] : timeouts)
                    if (task == t && (timeout < 0 || dl < timeout)) timeout = dl;
                const bool in_thread = std::find(blocking.begin(), blocking.end(), t) != blocking.end();
                if (describe_cell_wait(*t, d, cell_value)) {
                    const std::uint64_t n = d.waiters;
                    line += std::string("parked on ") + d.kind + " " + fmt_ptr(d.address) + " (" + std::to_string(n) +
                            (n == 1 ? " waiter)" : " waiters)");
                    if (!cell::is_waiting(cell_value) || cell::task_of(cell_value) != t) {
                        line += ", being woken";
                        stable = false;
                    }
                } else if (join != nullptr) {
                    line += "parked on JoinHandle of task " + std::to_string(join->target_id) + " \"" +
                            join->target_name + "\"";
                } else if (deadline >= 0) {
                    line += "sleeping until " + fmt_time(deadline) + " (now " + fmt_time(now) + ")";
                } else if (const auto io = std::find_if(io_waits.begin(), io_waits.end(),
                                                        [t](const IoDriver::WaitInfo& x) { return x.task == t; });
                           io != io_waits.end()) {
                    line += "parked on fd " + std::to_string(io->fd) + (io->dir == IoDir::read ? " (read)" : " (write)");
                } else if (in_thread) {
                    line += "parked on to_thread (a blocking job is running)";
                } else if ((w1 & TaskHeader::kSyncWait) != 0U) {
                    line += "parked on a primitive (leaving it)";
                } else {
                    line += "parked (gather, TaskGroup or another wait)";
                }
                if (timeout >= 0) line += " (wait_for, times out at " + fmt_time(timeout) + ")";
                // seq_cst: the second read of the bracket.
                const std::uint32_t s2 = t->state_.load(std::memory_order_seq_cst);
                const std::uint64_t w2 = t->wait_.load(std::memory_order_seq_cst);  // seq_cst: as above
                if (s1 != s2 || w1 != w2 || (w1 & TaskHeader::kArmed) == 0U ||
                    (s1 & (TaskHeader::kCancelReq | TaskHeader::kComplete)) != 0U)
                    stable = false;  // a wake, a cancellation or a new wait in flight
            }
            if (!parked) stable = false;
            lines.emplace_back(t->id_, std::move(line));
        }
    }
    held.clear();
    std::sort(lines.begin(), lines.end());
    std::string out;
    for (auto& [id, l] : lines) {
        out += l;
        out += '\n';
    }
    // Unlisted tasks ("Registry" above): unnamed, queued before their first run or
    // inside it. Their existence alone means that something runs or will.
    // Not live_count(): a task stays in it until its frame is released, after its
    // joiners were told (a dump right after block_on returned showed it: the soak).
    const std::size_t all = unfinished_count();
    if (all > live) {
        stable = false;
        const std::size_t more = all - live;
        out += "(+" + std::to_string(more) + (more == 1 ? " unnamed task" : " unnamed tasks") +
               " not listed: queued before its first run, or running it)\n";
    }
    if (stable_out != nullptr) *stable_out = stable;
    if (live_out != nullptr) *live_out = live;
    return out;
}

std::uint64_t Scheduler::park_signature_locked() const noexcept {
    std::uint64_t sig = 0;
    // relaxed: every write of these counters happens under idle_mx_, which we hold.
    for (const auto& w : workers_)
        sig += w->m_parks.load(std::memory_order_relaxed) + w->m_unparks.load(std::memory_order_relaxed);  // relaxed: as above
    return sig;
}

void Scheduler::check_deadlock_locked() {
    // seq_cst (these loads): the load halves of the Dekker pairs with inject(),
    // submit_blocking() and add_timer(); read before and after the snapshot.
    auto quiet = [this] {
        return ext_count_.load(std::memory_order_seq_cst) > 0 && injected_.load(std::memory_order_seq_cst) == 0 &&
               blocking_running_.load(std::memory_order_seq_cst) == 0 &&  // seq_cst: as above
               next_deadline_.load(std::memory_order_seq_cst) == INT64_MAX &&  // seq_cst: as above
               io_->waiting() == 0;  // a task waiting on a socket can be woken from outside
    };
    if (!quiet()) return;
    bool stable = false;
    std::size_t live = 0;
    try {
        std::string text = snapshot(&stable, &live);
        if (!stable || live == 0 || !quiet()) return;
        report_deadlock(text);
    } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory: no report this time
    }
}

void Scheduler::report_deadlock(const std::string& dump) {
    std::string msg = "spindle::DeadlockError: every task is parked";
    if (opts_.virtual_time) msg += " (virtual time: the clock cannot move)";
    else msg += " and has been for " + std::to_string(opts_.deadlock_timeout.ms) + " ms";
    msg += ", with no timer pending, no to_thread job running and nothing queued from outside. Tasks:\n";
    msg += dump;
    std::lock_guard lk(ext_mx_);
    for (ExternalJoin* e : ext_waiters_) {
        e->deadlock = msg;
        // release: pairs with the acquire loads in wait_external (the message).
        e->done.fetch_or(ExternalJoin::kDeadlock, std::memory_order_release);
        futex_wake(e->done);  // the node stays alive: its thread unregisters under ext_mx_ first
    }
    ext_waiters_.clear();
    // seq_cst: park() reads it without ext_mx_.
    ext_count_.store(0, std::memory_order_seq_cst);
}

RuntimeMetrics Scheduler::metrics() const {
    RuntimeMetrics m;
    for (const auto& w : workers_) {
        // relaxed: counters are independent and read as a snapshot.
        m.steals += w->m_steals.load(std::memory_order_relaxed);
        m.parks += w->m_parks.load(std::memory_order_relaxed);  // relaxed: a statistic
        m.unparks += w->m_unparks.load(std::memory_order_relaxed);
        m.timers_fired += w->m_timers.load(std::memory_order_relaxed);  // relaxed: a statistic
        m.migrations += w->m_migrations.load(std::memory_order_relaxed);  // relaxed: a statistic
        m.inline_joins += w->m_inline_joins.load(std::memory_order_relaxed);  // relaxed: a statistic
        m.idle_spins += w->m_spins.load(std::memory_order_relaxed);           // relaxed: a statistic
        m.idle_spin_hits += w->m_spin_hits.load(std::memory_order_relaxed);   // relaxed: a statistic
    }
    for (std::size_t i = 0; i < nshards_; ++i) {
        // relaxed: a snapshot (the shards' counts, which live_count() reads with acquire).
        m.tasks_spawned += shards_[i].spawned.load(std::memory_order_relaxed);
        m.tasks_completed += shards_[i].finished.load(std::memory_order_relaxed);  // relaxed: a snapshot
    }
    // relaxed: a snapshot.
    m.injections = m_injections_.load(std::memory_order_relaxed);
    m.stall_rescues = m_rescued_.load(std::memory_order_relaxed);  // relaxed: a statistic
    m.workers = workers_.size();
    return m;
}

}  // namespace spindle::detail
