// runtime/src/timers.cpp — timers (sleep, wait_for) and the clock: the heap
// (add_timer, remove_timer, disarm_timeout, fire_due_timers), waking the worker that
// sleeps for the earliest deadline (wake_timer_owner), now_ns() and the virtual clock.
//
// ───────────────────────────── Design ─────────────────────────────
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
// The clock: real time since epoch_, or under virtual time vclock_, which only the
// last worker to go idle advances (advance_virtual_clock, under idle_mx_; lock order:
// idle_mx_ before timer_mx_).
#include "scheduler_internal.hpp"

#include "spindle/runtime/time.hpp"

#include <algorithm>
#include <thread>
#include <utility>

namespace spindle::detail {

std::int64_t now_ns(const TaskHeader& t) noexcept { return t.sched_->now_ns(); }
void add_timer(TaskHeader& t, TimerEntry& e) noexcept { t.sched_->add_timer(e); }
void remove_timer(TaskHeader& t, TimerEntry& e) noexcept { t.sched_->remove_timer(e); }
bool disarm_timeout(TaskHeader& t, TimeoutEntry& e) noexcept { return t.sched_->disarm_timeout(e); }

std::int64_t Scheduler::now_ns() const noexcept {
    // acquire: pairs with the release store in advance_virtual_clock().
    if (opts_.virtual_time) return vclock_.load(std::memory_order_acquire);
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - epoch_).count();
}

namespace {
bool timer_less(const TimerEntry* a, const TimerEntry* b) noexcept {
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}
}  // namespace

void Scheduler::add_timer(TimerEntry& e) noexcept {
    bool new_top = false;
    {
        std::lock_guard lk(timer_mx_);
        e.seq = timer_seq_++;
        std::size_t i = heap_.size();
        heap_.push_back(&e);
        while (i > 0) {
            const std::size_t parent = (i - 1) / 2;
            if (!timer_less(heap_[i], heap_[parent])) break;
            std::swap(heap_[i], heap_[parent]);
            heap_[i]->index = static_cast<std::uint32_t>(i);
            i = parent;
        }
        heap_[i]->index = static_cast<std::uint32_t>(i);
        new_top = (i == 0);
        // seq_cst: Dekker with park()'s read of next_deadline_ after announcing itself.
        if (new_top) next_deadline_.store(e.deadline, std::memory_order_seq_cst);
    }
    if (new_top && !opts_.virtual_time) wake_timer_owner();
}

void Scheduler::wake_timer_owner() noexcept {
    // seq_cst: see add_timer.
    if (sleepers_of(idle_.load(std::memory_order_seq_cst)) == 0) return;
    std::unique_lock lk(idle_mx_);
    Worker* target = nullptr;
    if (timer_owner_ != nullptr) {
        if (timer_owner_deadline_ <= next_deadline_.load(std::memory_order_seq_cst)) return;  // seq_cst: as above
        target = timer_owner_;
    } else if (!sleepers_.empty()) {
        target = sleepers_.back();
    }
    if (target == nullptr) return;
    if (target->sleeping) {
        target->sleeping = false;
        sleepers_.erase(std::find(sleepers_.begin(), sleepers_.end(), target));
        // seq_cst: part of the Dekker protocol on idle_.
        idle_.fetch_sub(kSleeperOne, std::memory_order_seq_cst);
    }
    lk.unlock();
    wake_worker(*target);
}

namespace {
void heap_remove_at(std::vector<TimerEntry*>& heap, std::size_t i) noexcept {
    heap[i]->index = TimerEntry::kNotQueued;
    TimerEntry* last = heap.back();
    heap.pop_back();
    if (i == heap.size()) return;
    heap[i] = last;
    last->index = static_cast<std::uint32_t>(i);
    // sift up
    while (i > 0) {
        const std::size_t parent = (i - 1) / 2;
        if (!timer_less(heap[i], heap[parent])) break;
        std::swap(heap[i], heap[parent]);
        heap[i]->index = static_cast<std::uint32_t>(i);
        heap[parent]->index = static_cast<std::uint32_t>(parent);
        i = parent;
    }
    // sift down
    for (;;) {
        const std::size_t l = 2 * i + 1;
        const std::size_t r = l + 1;
        std::size_t m = i;
        if (l < heap.size() && timer_less(heap[l], heap[m])) m = l;
        if (r < heap.size() && timer_less(heap[r], heap[m])) m = r;
        if (m == i) break;
        std::swap(heap[i], heap[m]);
        heap[i]->index = static_cast<std::uint32_t>(i);
        heap[m]->index = static_cast<std::uint32_t>(m);
        i = m;
    }
}
}  // namespace

void Scheduler::remove_timer(TimerEntry& e) noexcept {
    std::lock_guard lk(timer_mx_);
    if (e.index == TimerEntry::kNotQueued) return;
    heap_remove_at(heap_, e.index);
    // seq_cst: see add_timer.
    next_deadline_.store(heap_.empty() ? INT64_MAX : heap_[0]->deadline, std::memory_order_seq_cst);
}

bool Scheduler::disarm_timeout(TimeoutEntry& e) noexcept {
    {
        std::lock_guard lk(timer_mx_);
        if (e.index != TimerEntry::kNotQueued) {
            heap_remove_at(heap_, e.index);
            // seq_cst: see add_timer.
            next_deadline_.store(heap_.empty() ? INT64_MAX : heap_[0]->deadline, std::memory_order_seq_cst);
            return false;
        }
    }
    // Fired: the firer set kFiring under timer_mx_ and is cancelling us outside it (a
    // few instructions, a wake at most). acquire: pairs with its release store.
    unsigned spins = 0;
    std::uint8_t st = 0;
    // acquire: pairs with fire_due_timers' release store of kFired/kFiredIdle.
    while ((st = e.fire_state.load(std::memory_order_acquire)) == TimeoutEntry::kFiring) {
        if (++spins < 64) cpu_relax();
        else std::this_thread::yield();
    }
    return st == TimeoutEntry::kFired;
}

std::int64_t Scheduler::earliest_deadline() const noexcept {
    std::lock_guard lk(timer_mx_);
    return heap_.empty() ? INT64_MAX : heap_[0]->deadline;
}

bool Scheduler::advance_virtual_clock() noexcept {
    const std::int64_t d = earliest_deadline();
    if (d == INT64_MAX) return false;
    // relaxed: only the last idle worker writes the clock, under idle_mx_.
    if (d > vclock_.load(std::memory_order_relaxed))
        // release: pairs with the acquire load in now_ns().
        vclock_.store(d, std::memory_order_release);
    return true;
}

void Scheduler::fire_due_timers(Worker& w) noexcept {
    // seq_cst: see add_timer.
    // (No clock read while no timer is pending: this runs at every batch boundary.)
    const std::int64_t next = next_deadline_.load(std::memory_order_seq_cst);
    if (next == INT64_MAX || next > now_ns()) return;
    std::vector<Worker::Fired>& fired = w.fired;
    {
        std::lock_guard lk(timer_mx_);
        const std::int64_t now = now_ns();
        while (!heap_.empty() && heap_[0]->deadline <= now) {
            TimerEntry* e = heap_[0];
            heap_remove_at(heap_, 0);
            // Still under timer_mx_: the awaiter cannot leave before we are done with e.
            // A won claim freezes the task until we schedule it, so its header stays
            // valid after we unlock. A TimeoutEntry stays alive until we store kFired
            // (disarm_timeout waits for it), and its task cannot complete before.
            if (e->cancels) {
                auto* te = static_cast<TimeoutEntry*>(e);
                // relaxed: disarm_timeout reads it only through the release/acquire
                // pair on kFired (it first finds the entry gone under timer_mx_).
                te->fire_state.store(TimeoutEntry::kFiring, std::memory_order_relaxed);
                fired.push_back({e->task, te});
            } else if (e->task->claim(e->token)) {
                fired.push_back({e->task, nullptr});
            }
        }
        // seq_cst: see add_timer.
        next_deadline_.store(heap_.empty() ? INT64_MAX : heap_[0]->deadline, std::memory_order_seq_cst);
    }
    // Outside timer_mx_: waking may take idle_mx_, and park() takes timer_mx_ under
    // idle_mx_ (one lock order: idle_mx_ before timer_mx_). Deadline order.
    // relaxed: metrics; counted before the tasks are woken (one may run on another
    // worker at once; whoever sees it run sees it counted).
    bump(w.m_timers, fired.size());
    for (const Worker::Fired& f : fired) {
        if (f.timeout == nullptr) {
            f.task->schedule();
            continue;
        }
        // In place, counted (the scope tells it from others) — unless a cancellation
        // is already pending: the task was woken with it and will deliver it first
        // (asyncio: its wake-up is queued before this timer's callback, so it leaves
        // the timeout block before the timer fires). Counting ours too would make one
        // CancelledError stand for two requests and turn the other one into a timeout.
        const bool counted = f.task->cancel_unless_pending();
        const std::uint8_t done = counted ? TimeoutEntry::kFired : TimeoutEntry::kFiredIdle;
        // release: pairs with disarm_timeout's acquire; our last touch of the entry.
        f.timeout->fire_state.store(done, std::memory_order_release);
    }
    fired.clear();
}

}  // namespace spindle::detail
