// runtime/src/idle.cpp — idle workers: the idle_ counters (sleepers and searchers),
// searching (start_searching, stop_searching; the stealing itself is search(), in
// worker.cpp), parking (park(), with the virtual clock's jump and the deadlock check
// that it may run), and waking (notify_one, take_sleeper, wake_worker, wake_parked,
// poke_idle_worker). sleepers_, and the sleeper count in idle_, change only under
// idle_mx_ (the searcher count does not: start/stop_searching); lock order: idle_mx_
// before timer_mx_.
//
// ───────────────────────────── Design ─────────────────────────────
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
// Idle spinning (spin_for_work; RuntimeOptions::idle_spin_us, 2+ workers, real time).
// A searcher that found nothing to steal may, if no other worker is spinning
// (spinning_), stay a searcher for idle_spin_us more: it polls the I/O driver without
// blocking and looks at the injector, due timers and the other workers' run queues,
// pausing between looks. Invariants:
//   S1 it is counted in idle_ as a searcher the whole time, so notify_one() wakes no
//      sleeper for work it will find (Go's spinning M); when it gives up, park()
//      drops the count and re-checks under the Dekker protocol above, as for any
//      searcher that found nothing. No wake-up can be lost: the spin only delays the
//      park that already guaranteed it.
//   S2 it steals from another worker's run queue only after a producer asked for help
//      and only a queue worth stealing (RingQueue::worth_stealing; S6 for a stuck one):
//      notify_one() that returns because a searcher exists sets help_wanted_ (release,
//      after the push it announces; the spinner's exchange acquires it). Tasks queued
//      without a notify stay with their owner: the budget rotations of Lock and
//      Semaphore, a lone yield — stealing those moves a hand-off to another core
//      (issue 12's "a thief that steals a task the owner would run within microseconds
//      is a loss"; a first version that took any queue of 2+ tasks made
//      lock_contended_64 1.44x slower). Every notify a producer skipped while we
//      searched is so answered within one look (found in review: a version that ignored
//      a lone queued task let it wait up to idle_spin_us beside an idle worker).
//   S3 when it finds work it stops searching; as the last searcher it wakes another
//      worker (notify_one) if more than the one task it is about to run is waiting —
//      in its own queues, the injector or any other worker's run queue — the chain
//      wake of stop_searching() for work whose producers skipped their notify while it
//      searched (found in review: with 3+ workers a hit on its own I/O left another
//      worker's queued task unannounced until the stall monitor's look). Work it found
//      in another worker's queue it takes through search(), whose stop_searching()
//      chains.
//   S4 at most one worker spins (spinning_, a CAS), only while the runtime is not
//      stopping, and never under virtual time (the clock jumps only when every worker
//      parks) or with one worker (asyncio's loop blocks in select at once).
//   S5 it is the poller while it spins: a worker that parks meanwhile sleeps on its
//      futex instead of blocking in epoll_wait (idle_wait), and the stall monitor
//      hands the role to a sleeper only when nobody spins and the poll count has not
//      moved for a round. The spinner takes the role (a blocking poll) when it parks.
//   S6 it watches the other workers' run queues: a non-empty queue whose head has not
//      moved for kStealPatienceNs (its owner runs a long task) is marked stealable
//      (RingQueue::mark_stealable: the tasks queued now) and search() takes half of
//      it; S3's wake is then left to search()'s stop_searching(). Together with S2 this
//      is the spinner's part of "Stealing" in worker.cpp: it takes a short queue only
//      when a producer asked and the queue is worth stealing, or when it stands still.
// The price: up to idle_spin_us of one core after each burst of work (counted in
// metrics(): idle_spins, idle_spin_hits). A runtime with nothing to do spins once,
// then sleeps.
#include "scheduler_internal.hpp"

#include "io.hpp"

#include <algorithm>

namespace spindle::detail {

namespace {
// Virtual time: how long (real time) the last idle worker polls for I/O before the
// clock may jump while tasks wait on sockets (see park()).
constexpr std::int64_t kVirtualIoGraceNs = 20'000'000;
// S6: how long a spinning worker watches another run queue's head stand still before
// it takes the tasks behind it (Go lets a thief take runnext after ~3 us; a steal
// that the owner would have beaten by microseconds only moves the task off its core).
constexpr std::int64_t kStealPatienceNs = 10'000;
}  // namespace

void Scheduler::notify_one() noexcept {
    // seq_cst fence: the store that published work (tail_ / injected_) must not be
    // reordered after the load of idle_ (Dekker with park()).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    // relaxed: ordered by the fence above.
    const std::uint64_t idle = idle_.load(std::memory_order_relaxed);
    if (searchers_of(idle) != 0) {
        // A searcher will look; one spinning for work looks at other run queues only
        // when asked (S2). release: publishes the push this notify announces to the
        // spinner's acquire exchange. (A plain store, only while someone searches;
        // relaxed, the load: it only skips a store to a line the spinner reads.)
        if (!help_wanted_.load(std::memory_order_relaxed)) help_wanted_.store(true, std::memory_order_release);
        return;
    }
    if (sleepers_of(idle) == 0) return;
    std::unique_lock lk(idle_mx_);
    // relaxed: re-read under the lock; every change to idle_ happens under idle_mx_.
    const std::uint64_t again = idle_.load(std::memory_order_relaxed);
    if (searchers_of(again) != 0 || sleepers_.empty()) return;
    Worker* s = take_sleeper();
    // The woken worker starts as a searcher, so concurrent notifiers do not wake more.
    // seq_cst: part of the Dekker protocol on idle_.
    idle_.fetch_add(kSearcherOne - kSleeperOne, std::memory_order_seq_cst);
    s->searching = true;  // s reads it after re-taking idle_mx_ in park()
    lk.unlock();
    wake_worker(*s);
}

Worker* Scheduler::take_sleeper() noexcept {
    // Prefer a sleeper that is not the timer owner, so the timer role stays put.
    auto it = sleepers_.end() - 1;
    if (*it == timer_owner_ && sleepers_.size() > 1) --it;
    Worker* s = *it;
    sleepers_.erase(it);
    s->sleeping = false;
    return s;
}

void Scheduler::wake_worker(Worker& w) noexcept {
    // seq_cst: pairs with the acquire load in park() after the futex returns, and is
    // the store half of the Dekker pair with idle_wait() (in_poll, then wake_word).
    w.wake_word.store(1, std::memory_order_seq_cst);
    // seq_cst: the load half of that pair. A worker in epoll_wait is woken through
    // the driver's eventfd; one on its futex word by a futex wake.
    if (w.in_poll.load(std::memory_order_seq_cst)) io_->notify();
    else futex_wake(w.wake_word);
}

void Scheduler::idle_wait(Worker& w, std::int64_t timeout_ns) noexcept {
    // Not while another worker spins for work (S5): it polls without blocking, and a
    // worker blocked in epoll_wait would take the readiness it is waiting for (a
    // wake-up instead of a hit). Nobody is left without a poller: the spinner clears
    // spinning_ itself before it parks, and then takes the poll lock in its own
    // idle_wait (or, if it found work and runs a long task, the stall monitor, awake
    // while any worker is, hands the role to a sleeper once the poll count stops).
    // relaxed: a heuristic; the cases above do not depend on this load's freshness.
    if (io_->active() && !spinning_.load(std::memory_order_relaxed)) {
        if (io_->try_lock_poll()) {
            // seq_cst: Dekker with wake_worker(): in_poll before the wake_word re-read.
            w.in_poll.store(true, std::memory_order_seq_cst);
            // seq_cst: as above.
            if (w.wake_word.load(std::memory_order_seq_cst) == 0) {
                w.io_ready = io_->poll(w.io_events, timeout_ns);
                w.io_just_polled = true;
            }
            // relaxed: a waker that still sees true writes the eventfd once more (drained
            // by the next poll); the unlock below orders the poller's state.
            w.in_poll.store(false, std::memory_order_relaxed);
            note_io_taken(w);
            io_->unlock_poll();
            return;
        }
        // Someone else holds the poll lock; if it goes on to run tasks instead of
        // polling, the stall monitor wakes a sleeper to take the poller's role.
    }
    futex_wait(w.wake_word, 0, timeout_ns);
}

void Scheduler::note_io_taken(Worker& w) noexcept {
    // Events taken from epoll but not yet dispatched are work: counted before the
    // poll lock is released, so a worker that parks meanwhile (work_available) does
    // not advance the virtual clock or report a deadlock past them.
    if (w.io_ready > 0) io_pending_.fetch_add(1, std::memory_order_seq_cst);  // seq_cst: read by work_available
}

void Scheduler::poll_io_now(Worker& w) noexcept {
    if (!io_->try_lock_poll()) return;  // another worker is polling: it dispatches
    w.io_ready = io_->poll(w.io_events, 0);
    note_io_taken(w);
    io_->unlock_poll();
    dispatch_io(w);
}

void Scheduler::dispatch_io(Worker& w) noexcept {
    if (w.io_ready == 0) return;
    const int n = w.io_ready;
    w.io_ready = 0;
    io_->dispatch(w.io_events.data(), n);
    // Readiness of several sockets is independent work (connections, like spawns): what
    // overflowed the wake area into the run queue is worth stealing however short the
    // queue is ("Stealing" in worker.cpp; without this, tcp_echo_64's 64 echoes of one
    // poll ran on one core while the other idled).
    if (!single_ && w.queue.approx_size() > 0) {
        w.queue.mark_stealable();
        notify_one();
    }
    // seq_cst: after the woken tasks were queued (work_available sees them or this).
    io_dispatched_.fetch_add(1, std::memory_order_seq_cst);
    io_pending_.fetch_sub(1, std::memory_order_seq_cst);  // seq_cst: as above
}

void Scheduler::hand_over_polling() noexcept {
    // Fds registered, nobody polling (a poller holds the lock), and a worker asleep on
    // its futex: it parked while the lock was taken, or before any fd was registered.
    // relaxed: a heuristic; re-checked under idle_mx_ (sleepers_) and, by the woken
    // worker, by the try-lock.
    if (!io_->active() || io_->poll_locked() || sleepers_of(idle_.load(std::memory_order_relaxed)) == 0) return;
    // A worker spinning for work polls without blocking (spin_for_work): it is the poller.
    // relaxed: a heuristic, as above.
    if (spinning_.load(std::memory_order_relaxed)) return;
    std::unique_lock lk(idle_mx_);
    if (sleepers_.empty() || io_->poll_locked()) return;
    Worker* s = take_sleeper();
    idle_.fetch_sub(kSleeperOne, std::memory_order_seq_cst);  // seq_cst: Dekker on idle_
    lk.unlock();
    wake_worker(*s);  // it finds nothing to run, parks again and takes the poll lock
}

void Scheduler::wake_parked(Worker& w) noexcept {
    std::unique_lock lk(idle_mx_);
    if (!w.sleeping) return;  // it left park() on its own (its re-check saw the task)
    w.sleeping = false;
    sleepers_.erase(std::find(sleepers_.begin(), sleepers_.end(), &w));
    // seq_cst: keeps idle_ exact for the Dekker re-checks.
    idle_.fetch_sub(kSleeperOne, std::memory_order_seq_cst);
    lk.unlock();
    wake_worker(w);
}

bool Scheduler::start_searching(Worker& w) noexcept {
    if (w.searching) return true;
    // Limit searchers to half the workers (Tokio), so idle workers do not all spin.
    // relaxed: a heuristic; the exact protocol is on the RMW below.
    const std::uint64_t idle = idle_.load(std::memory_order_relaxed);
    if (2 * searchers_of(idle) >= workers_.size()) return false;
    // seq_cst: part of the Dekker protocol on idle_.
    idle_.fetch_add(kSearcherOne, std::memory_order_seq_cst);
    w.searching = true;
    return true;
}

void Scheduler::stop_searching(Worker& w) noexcept {
    if (!w.searching) return;
    w.searching = false;
    // seq_cst: part of the Dekker protocol on idle_.
    const std::uint64_t prev = idle_.fetch_sub(kSearcherOne, std::memory_order_seq_cst);
    // The last searcher found work: there may be more, so wake another to look.
    if (searchers_of(prev) == 1) notify_one();
}

bool Scheduler::spin_found_work(const Worker& w) const noexcept {
    // seq_cst loads, as work_available()'s (they are the same checks, minus S2's).
    if (injected_.load(std::memory_order_seq_cst) > 0) return true;
    if (w.queue.approx_size() > 0 || w.woken.approx_size() != 0 || w.inbox.maybe_nonempty() ||
        w.spawned.maybe_nonempty_sc())
        return true;
    if (next_deadline_.load(std::memory_order_seq_cst) <= now_ns()) return true;
    return stop_.load(std::memory_order_seq_cst);
}

bool Scheduler::spin_for_work(Worker& w) noexcept {
    // S4. acquire/release on the flag orders nothing else: it only keeps spinners to one.
    if (!w.searching || opts_.idle_spin_us == 0 || opts_.virtual_time || single_ ||
        // relaxed: a hint that skips the exchange below, which decides
        spinning_.load(std::memory_order_relaxed) ||
        spinning_.exchange(true, std::memory_order_acquire))  // acquire: pairs with the release store below
        return false;
    bump(w.m_spins);
    for (Worker::Watch& x : w.watch) x.since = -1;  // sized by the constructor (no allocation here)
    const std::int64_t until = steady_ns() + static_cast<std::int64_t>(opts_.idle_spin_us) * 1000;
    bool found = false;
    bool steal = false;  // what it found is in another worker's run queue (search() takes it)
    for (;;) {
        if (io_->active()) poll_io_now(w);  // non-blocking; woken tasks join our wake area
        if (spin_found_work(w)) {
            found = true;
            break;
        }
        // S2. relaxed (the load): a hint; the exchange decides. acquire: pairs with the
        // release store in notify_one(), after the producer's push.
        if (help_wanted_.load(std::memory_order_relaxed) && help_wanted_.exchange(false, std::memory_order_acquire)) {
            for (const auto& v : workers_)
                if (v.get() != &w && v->queue.worth_stealing()) found = steal = true;  // search() steals it
            if (found) break;
        }
        const std::int64_t now = steady_ns();
        // S6: a run queue whose head has not moved for kStealPatienceNs: its owner runs
        // a long task, and the tasks behind it are worth taking however few they are.
        for (std::size_t i = 0; i < workers_.size(); ++i) {
            Worker& v = *workers_[i];
            if (&v == &w) continue;
            Worker::Watch& x = w.watch[i];
            if (v.queue.approx_size() == 0) {
                x.since = -1;
                continue;
            }
            const std::uint32_t head = v.queue.head_index();
            if (x.since < 0 || head != x.head) {
                x.head = head;
                x.since = now;
            } else if (now - x.since >= kStealPatienceNs) {
                v.queue.mark_stealable();
                x.since = -1;
                found = steal = true;  // search() steals it
            }
        }
        if (found || now >= until) break;
        for (int i = 0; i < 64; ++i) cpu_relax();
    }
    spinning_.store(false, std::memory_order_release);  // release: pairs with the exchange above
    if (!found) return false;  // S1: park() stops the search
    bump(w.m_spin_hits);
    // S3: stop searching; wake another worker only for work this one cannot run next.
    w.searching = false;
    // seq_cst: part of the Dekker protocol on idle_ (as stop_searching()).
    const std::uint64_t prev = idle_.fetch_sub(kSearcherOne, std::memory_order_seq_cst);
    // A steal is left to search(), whose stop_searching() chains (counting the queue it
    // is about to take from here woke a worker for nothing: found in review).
    if (searchers_of(prev) == 1 && !steal) {
        bool more = w.queue.approx_size() + w.woken.approx_size() > 1 || injected_.load(std::memory_order_seq_cst) > 0;
        for (std::size_t i = 0; i < workers_.size() && !more; ++i)
            more = workers_[i].get() != &w && workers_[i]->queue.worth_stealing();
        if (more) notify_one();
    }
    return true;
}

bool Scheduler::work_available(const Worker& self, bool last) const noexcept {
    // seq_cst loads: the load half of the Dekker pairs (see notify_one / inject).
    if (injected_.load(std::memory_order_seq_cst) > 0) return true;
    // What this worker could take: its own queues, every run queue (thieves steal them),
    // and a spawn stack the stall monitor marked (worth_stealing()). Another worker's
    // inbox or unmarked stack it cannot take: counting them kept it awake and spinning,
    // and the monitor, which then marked stacks and rescued inboxes only while a worker
    // slept, never did either (found in review: a child stranded for ever on the stack
    // of a spawner that spun while its inbox held a migrated task).
    // `last` (this worker is the last to go idle, so the virtual clock may jump or the
    // deadlock check run): every inbox and every stack counts. A task handed to a worker
    // that is parking (still in sleepers_, it will see it) must hold the clock. A stack
    // cannot: a worker never announces itself asleep with its own stack non-empty (the
    // check under idle_mx_), so a task in another's stack means that worker is awake; it
    // counts anyway, as it costs nothing here.
    for (const auto& w : workers_) {
        const bool mine = w.get() == &self;
        // Another worker's run queue only if a thief may take it ("Stealing" in
        // worker.cpp); its owner is awake and runs it. The producer that makes it worth
        // stealing (the push, or the mark) calls notify_one() after (the Dekker pair);
        // a short queue behind a long task is marked by the monitor (then notify_one()).
        if ((mine || last) ? w->queue.approx_size() > 0 : w->queue.worth_stealing()) return true;
        if ((mine || last) && w->inbox.maybe_nonempty()) return true;
        if ((mine || last || w->spawned.worth_stealing()) && w->spawned.maybe_nonempty_sc()) return true;
    }
    if (!self.overflow.empty() || self.woken.approx_size() != 0) return true;
    // seq_cst: events a poller took and has not dispatched yet (note_io_taken).
    if (io_pending_.load(std::memory_order_seq_cst) > 0) return true;
    if (!opts_.virtual_time && next_deadline_.load(std::memory_order_seq_cst) <= now_ns()) return true;
    return stop_.load(std::memory_order_seq_cst);
}

void Scheduler::park(Worker& w) {
    std::unique_lock lk(idle_mx_);
    if (w.searching) {
        w.searching = false;
        // seq_cst: part of the Dekker protocol on idle_.
        idle_.fetch_sub(kSearcherOne, std::memory_order_seq_cst);
    }
    // Whether we are the last to go idle (the clock and the deadlock check below), as
    // work_available() reads it; sleepers_ only changes under idle_mx_.
    const bool last = sleepers_.size() + 1 == workers_.size();
    if (work_available(w, last)) return;
    // Virtual time with tasks waiting on I/O: before the clock may jump, the last idle
    // worker polls the driver for kVirtualIoGraceNs of real time, and the jump waits
    // until a whole grace has passed with no worker parking or waking and no I/O
    // dispatched (io_signature_locked), so a socket that real I/O makes ready within
    // the grace beats a virtual timeout. The grace is the scheduler's, not a worker's:
    // any worker may end it.
    std::int64_t io_grace_left = -1;  // >= 0: sleep that long (real ns), then look again
    if (opts_.virtual_time && sleepers_.size() + 1 == workers_.size() &&
        blocking_running_.load(std::memory_order_seq_cst) == 0 &&  // seq_cst: see blocking_done()
        io_->waiting() > 0) {
        const std::uint64_t sig = io_signature_locked(w);
        const std::int64_t real = steady_ns();
        if (vt_grace_start_ == 0 || sig != vt_grace_sig_) {
            vt_grace_start_ = real;
            vt_grace_sig_ = sig;
        }
        if (real - vt_grace_start_ < kVirtualIoGraceNs) io_grace_left = kVirtualIoGraceNs - (real - vt_grace_start_);
    }
    if (io_grace_left < 0 && opts_.virtual_time && sleepers_.size() + 1 == workers_.size() &&
        blocking_running_.load(std::memory_order_seq_cst) == 0) {  // seq_cst: see blocking_done()
        vt_grace_start_ = 0;
        // Everyone else sleeps and nothing can arrive but from outside: jump the clock.
        if (advance_virtual_clock()) {
            lk.unlock();
            fire_due_timers(w);
            return;
        }
        // The clock cannot move and nothing else can arrive but from outside: under
        // virtual time the deadlock check is immediate.
        if (deadlock_ns_ > 0) check_deadlock_locked();
    }
    w.sleeping = true;
    sleepers_.push_back(&w);
    // relaxed: the seq_cst RMW on idle_ below orders it before the futex wait.
    w.wake_word.store(0, std::memory_order_relaxed);
    // seq_cst: announce the sleeper before the re-checks (Dekker with producers, and
    // with add_timer's read of idle_ after it stores next_deadline_).
    idle_.fetch_add(kSleeperOne, std::memory_order_seq_cst);
    // seq_cst: the store half of the Dekker pair with migrate() (it claims an inbox
    // position, then reads `parked`); work_available() re-reads the inbox after it.
    w.parked.store(true, std::memory_order_seq_cst);
    // relaxed: metrics.
    bump(w.m_parks);
    std::int64_t timeout = io_grace_left;
    if (!opts_.virtual_time) {
        // seq_cst: read after the announcement above (Dekker with add_timer).
        const std::int64_t d = next_deadline_.load(std::memory_order_seq_cst);
        if (d != INT64_MAX && (timer_owner_ == nullptr || d < timer_owner_deadline_)) {
            timer_owner_ = &w;
            timer_owner_deadline_ = d;
            timeout = std::max<std::int64_t>(0, d - now_ns());
        }
    }
    // Real time: the last worker to park, with no timer pending, watches for a
    // deadlock (see "Deadlock detection" in registry.cpp).
    bool watch = false;
    std::uint64_t watch_sig = 0;
    std::int64_t watch_start = 0;
    if (deadlock_ns_ > 0 && !opts_.virtual_time && timeout < 0 && sleepers_.size() == workers_.size() &&
        io_->waiting() == 0 &&
        ext_count_.load(std::memory_order_seq_cst) > 0 &&  // seq_cst: read once per park, not a hot path
        blocking_running_.load(std::memory_order_seq_cst) == 0 &&  // seq_cst: as above
        next_deadline_.load(std::memory_order_seq_cst) == INT64_MAX) {  // seq_cst: as above
        watch = true;
        watch_sig = park_signature_locked();
        watch_start = now_ns();
        timeout = deadlock_ns_;
    }
    lk.unlock();
    if (!work_available(w, last)) idle_wait(w, timeout);
    // relaxed: only a heuristic for migrate() from here on (its exact check is the
    // seq_cst pair above, and a stale `true` only makes it keep the task).
    w.parked.store(false, std::memory_order_relaxed);
    lk.lock();
    if (w.sleeping && watch && sleepers_.size() == workers_.size() && park_signature_locked() == watch_sig &&
        now_ns() - watch_start >= deadlock_ns_) {
        // Nobody woke us and no worker parked or was woken for deadlock_timeout: no
        // task ran in that time. The check validates what plain threads may be doing.
        check_deadlock_locked();
    }
    if (w.sleeping) {  // timed out or re-check found work: nobody took us off the list
        w.sleeping = false;
        sleepers_.erase(std::find(sleepers_.begin(), sleepers_.end(), &w));
        // seq_cst: part of the Dekker protocol on idle_.
        idle_.fetch_sub(kSleeperOne, std::memory_order_seq_cst);
    } else {
        // relaxed: metrics.
        bump(w.m_unparks);
    }
    Worker* successor = nullptr;
    if (timer_owner_ == &w) {
        timer_owner_ = nullptr;
        // We leave while timers are pending: another sleeper must take the timer
        // role, or a due timer would wait for someone to finish running.
        // seq_cst: as in add_timer.
        if (!opts_.virtual_time && next_deadline_.load(std::memory_order_seq_cst) != INT64_MAX && !sleepers_.empty()) {
            successor = sleepers_.back();
            sleepers_.pop_back();
            successor->sleeping = false;
            // seq_cst: part of the Dekker protocol on idle_.
            idle_.fetch_sub(kSleeperOne, std::memory_order_seq_cst);
        }
    }
    lk.unlock();
    if (successor != nullptr) wake_worker(*successor);
    dispatch_io(w);
    // seq_cst: Dekker with monitor_main(): our sleeper count left idle_ (an RMW, by us
    // or by our waker) before this load; the monitor stores monitor_idle_ before it
    // re-reads idle_. One of the two sees the other.
    if (monitor_idle_.load(std::memory_order_seq_cst) && monitor_idle_.exchange(false, std::memory_order_seq_cst))
        wake_monitor();
    if (!opts_.virtual_time) fire_due_timers(w);
}

void Scheduler::poke_idle_worker() noexcept {
    std::unique_lock lk(idle_mx_);
    if (sleepers_.size() != workers_.size()) return;  // someone is awake: it will park and check
    Worker* s = take_sleeper();
    idle_.fetch_sub(kSleeperOne, std::memory_order_seq_cst);  // seq_cst: Dekker on idle_
    lk.unlock();
    wake_worker(*s);
}

}  // namespace spindle::detail
