// sync/src/condition.cpp — see spindle/sync/condition.hpp.
#include "spindle/sync/condition.hpp"
#include "spindle/runtime/detail/tsan.hpp"

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <thread>


#include "spindle/runtime/errors.hpp"
#include "spindle/sync/barrier.hpp"

namespace spindle {

Condition::Condition() : lock_(&own_) {}
Condition::Condition(Lock& lock) noexcept : lock_(&lock) {}
Condition::~Condition() {
#ifndef NDEBUG
    // Destroying a condition with waiters is a contract violation (as for every
    // primitive, see WaitQueue::release_segments).
    if (head_ != nullptr) {
        std::fprintf(stderr, "spindle: Condition %p destroyed with %llu waiter(s) in its list\n",
                     static_cast<const void*>(this), static_cast<unsigned long long>(approx_waiters()));
        std::abort();
    }
#endif
}

detail::WaitDescription Condition::describe_frame_wait() const noexcept {
    // A Barrier's parties wait here: name the Barrier (alive: it owns this Condition).
    if (barrier_ != nullptr) return {"Barrier", barrier_, barrier_->n_waiting()};
    return {"Condition", this, approx_waiters()};
}


void Condition::link(detail::CondWaiter& w) noexcept {
    w.next = nullptr;
    w.prev = tail_;
    if (tail_ != nullptr) tail_->next = &w;
    else head_ = &w;
    tail_ = &w;
    w.linked = true;
    // relaxed (both): a diagnostic count, written only under the guard (so a load and
    // a store, not a locked add: that was one of a wait's few locked instructions).
    n_linked_.store(n_linked_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

void Condition::unlink(detail::CondWaiter& w) noexcept {
    if (w.prev != nullptr) w.prev->next = w.next;
    else head_ = w.next;
    if (w.next != nullptr) w.next->prev = w.prev;
    else tail_ = w.prev;
    w.linked = false;
    // relaxed (both): as in link().
    n_linked_.store(n_linked_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
}

bool Condition::leave(detail::CondWaiter& w) noexcept {
    const bool o = lock_list();
    const bool was_linked = w.linked;
    if (was_linked) unlink(w);
    unlock_list(o);
    return was_linked;
}

std::size_t Condition::grant_waiters(std::size_t n) noexcept {
    std::size_t granted = 0;
    if (n == 0) return 0;
    // C2: the granted nodes are unlinked and CASed under the guard, then chained
    // through their own `next` (ours now: unlinked, and their waiters cannot run
    // before we schedule them) and scheduled after the guard is released, so
    // nothing of *this is touched once a waiter may run.
    detail::CondWaiter* chain = nullptr;
    detail::CondWaiter** chain_end = &chain;
    const bool o = lock_list();
    detail::CondWaiter* w = head_;
    while (w != nullptr && granted < n) {
        detail::CondWaiter* next = w->next;
        // acquire: pairs with a canceller's CAS (the waiter's own writes are
        // published by the guard, which it held to link the node).
        std::uint64_t v = w->fc.cell.load(std::memory_order_acquire);
        if (detail::cell::is_waiting(v)) {
            unlink(*w);  // before the CAS: a waiter cancelled meanwhile finds itself unlinked (C3)
            // acq_rel: the arbitration against a canceller; releases the grant. strong:
            // a canceller is the only other writer, and its CANCELLED is final.
            if (w->fc.cell.compare_exchange_strong(v, detail::cell::kGranted, std::memory_order_acq_rel,
                                                   std::memory_order_acquire)) {  // failure: the canceller won
                w->granted_task = detail::cell::task_of(v);
                *chain_end = w;
                chain_end = &w->next;
                ++granted;
            }
        }
        // CANCELLED (not yet left): skipped, as asyncio skips a done future.
        w = next;
    }
    *chain_end = nullptr;
    unlock_list(o);
    // Only the winner of a cell wakes its task; a node may be freed once its task
    // runs, so `next` is read first.
    while (chain != nullptr) {
        detail::CondWaiter* next = chain->next;
        chain->granted_task->schedule();
        chain = next;
    }
    return granted;
}

namespace detail {

namespace {
constexpr std::uint8_t kNotifyStage = 0;
constexpr std::uint8_t kLockStage = 1;
constexpr std::uint8_t kFailedStage = 2;  // park_notified's release() threw after a notify took us
}  // namespace

void CondWaitEngine::check_locked() const {
    if (!c_->locked()) throw std::logic_error("spindle::Condition::wait: cannot wait on un-acquired lock");
}

bool CondWaitEngine::suspend(std::coroutine_handle<> h) {
    TaskHeader& self = waiting_task("Condition::wait");
    h_ = h;
    return park_notified(self);  // always suspends (a throw aside)
}

// asyncio's `fut = create_future(); append; self.release(); await fut`.
bool CondWaitEngine::park_notified(TaskHeader& self) {
    stage_ = kNotifyStage;  // w_ is the lock stage's only (advance() resets it there)
    Condition& c = *c_;
    node_.fc.owner = &c;
    const std::uint64_t token = self.next_token(/*sync=*/true);
    // C1: linked, WAITING already, before the lock is released, so a notify from
    // another core, which needs the lock, always finds it (asyncio gets this from
    // running on one thread). A notify that comes before we have suspended
    // schedules us while we run: the worker runs us again once we have (the hook
    // set here), and finish_notified() finds GRANTED. relaxed: published by the
    // guard's release (notifiers read it under the guard).
    node_.fc.cell.store(cell::waiting(&self, token), std::memory_order_relaxed);
    self.resume_hook_ = this;
    const bool o = c.lock_list();
    c.link(node_);
    c.unlock_list(o);
    try {
        // A user's TSan sees this release only through the annotation: it runs in the
        // library (spindle/runtime/detail/tsan.hpp); the acquirer is often the user's
        // inline acquire.
        tsan_release(&c.lock_->state_);
        c.lock_->release();
    } catch (...) {  // release() of a lock someone else released: misuse
        const bool notified = !c.leave(node_);  // else a notifier took us (and schedules us)
        if (!notified) {
            self.resume_hook_ = nullptr;
            throw;
        }
        // Scheduled while we run: suspend once to absorb that wake (the worker runs
        // us again at once; advance() then ends the wait with the error), and pass
        // the notification on (CPython 3.13).
        error_ = std::current_exception();
        stage_ = kFailedStage;
        self.resume_ = h_;  // what arm() would have set: the worker resumes it
        (void)c.grant_waiters(1);
        return true;
    }
    // F1 (wait_queue.hpp). release: as in SyncWait::park (a canceller reaches it through
    // a claim of the wait armed below; a dumper's acquire load pairs with it).
    self.wait_cell_.store(reinterpret_cast<std::atomic<std::uint64_t>*>(
                              reinterpret_cast<std::uintptr_t>(&node_.fc.cell) | TaskHeader::kFrameCell),
                          std::memory_order_release);  // release: pairs with hold_in_wait's acquire load
    (void)self.arm(nullptr, h_);
    if (self.cancelled_while_arming(token)) {
        std::uint64_t expected = cell::waiting(&self, token);
        // acq_rel: the same arbitration as a canceller's (cancel_cell_wait).
        if (node_.fc.cell.compare_exchange_strong(expected, cell::kCancelled, std::memory_order_acq_rel,
                                                  std::memory_order_acquire))  // failure: a notifier won
            self.schedule();  // back of the ready queue, as asyncio's call_soon
    }
    return true;
}

// The notification wait is over: true = notified, false = cancelled in the list.
// Leaves the list (C3).
bool CondWaitEngine::finish_notified(TaskHeader& self) noexcept {
    // seq_cst (clear_wait_cell's CAS): after it no canceller or dumper reaches the
    // cell (F2: it waits out a holder first).
    self.clear_wait_cell();
    self.disarm_sync_wait();  // harmless if a canceller claimed it
    // acquire: pairs with the notifier's/canceller's CAS.
    if (node_.fc.cell.load(std::memory_order_acquire) != cell::kCancelled) return true;  // C2: unlinked
    (void)c_->leave(node_);  // C3
    return false;
}

bool CondWaitEngine::before_resume(TaskHeader& task) noexcept { return advance(task); }

// The rest of asyncio's Condition.wait (and wait_for's loop), from the end of a
// suspension: `finally: while True: try: await self.acquire(); break; except
// CancelledError: err = ...`. Runs where the coroutine would have resumed, so at one
// worker every step lands at the same place in the run order as in asyncio.
bool CondWaitEngine::advance(TaskHeader& self) noexcept {
    Lock& l = *c_->lock_;
    if (stage_ == kFailedStage) return true;  // error_ is rethrown in await_resume
    for (;;) {
        bool have_lock = false;
        if (stage_ == kNotifyStage) {
            const bool granted = finish_notified(self);
            if (!granted) {
                (void)self.consume_cancel();
                cancelled_ = true;
            } else if (self.consume_cancel()) {  // notified, and cancelled since
                cancelled_ = true;
            }
        } else {
            have_lock = finish_lock_wait(l);
        }
        while (!have_lock) {
            if (l.try_acquire_raw()) {
                tsan_acquire(&l.state_);  // as the release above: library code
                if (tl_debug) [[unlikely]] debug_lock_acquired();
                have_lock = true;
                break;
            }
            w_.reset(&self);
            stage_ = kLockStage;
            self.resume_hook_ = this;  // as in park_notified()
            const Lock::Queued r = l.queue_waiter(w_, h_);  // enqueue aborts rather than throws
            if (r == Lock::Queued::parked) return false;
            self.resume_hook_ = nullptr;
            if (r == Lock::Queued::took) {
                if (tl_debug) [[unlikely]] debug_lock_acquired();  // queue_waiter annotated TSan
                have_lock = true;
            } else {
                have_lock = finish_lock_wait(l);  // granted before we slept
            }
        }
        // The lock is ours. A cancelled wait ends here; wait_for re-checks its
        // predicate, and waits again while it is false.
        if (cancelled_ || recheck()) return true;
        try {
            (void)park_notified(self);  // always suspends (a throw aside)
            return false;
        } catch (...) {  // release() of a lock someone else released: misuse
            error_ = std::current_exception();
            return true;
        }
    }
}

// A queued re-acquire ended (woken, or granted before it slept): true = the lock is
// ours; false = cancelled (and again: the lock is re-acquired regardless).
bool CondWaitEngine::finish_lock_wait(Lock& l) noexcept {
    if (l.finish_queued(w_)) {
        tsan_acquire(&l.state_);  // as in advance(): library code
        return true;
    }
    cancelled_ = true;
    return false;
}

void CondWaitEngine::rethrow_if_failed() {
    if (cancelled_) {
        // CPython 3.13: the wait may have consumed a notification; pass it on.
        (void)c_->grant_waiters(1);
        throw CancelledError{};
    }
    if (error_) std::rethrow_exception(error_);
}

}  // namespace detail

/// One wait (Condition::wait's awaiter).
class Condition::WaitOnce final : public detail::CondWaitEngine {
public:
    explicit WaitOnce(Condition& c) noexcept : CondWaitEngine(c) {}
    bool await_ready() const {
        check_locked();
        return false;
    }
    bool await_suspend(std::coroutine_handle<> h) { return suspend(h); }
    void await_resume() { rethrow_if_failed(); }
};

Task<bool> Condition::wait() {
    co_await WaitOnce(*this);
    co_return true;
}

void Condition::notify(std::size_t n) {
    if (!locked()) throw std::logic_error("spindle::Condition::notify: cannot notify on un-acquired lock");
    (void)grant_waiters(n);
}

void Condition::notify_all() { notify(SIZE_MAX); }

}  // namespace spindle
