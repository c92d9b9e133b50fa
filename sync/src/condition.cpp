// sync/src/condition.cpp — see spindle/sync/condition.hpp.
#include "spindle/sync/condition.hpp"
#include "spindle/runtime/detail/tsan.hpp"

#include <cstddef>
#include <exception>
#include <stdexcept>

#include "spindle/runtime/errors.hpp"
#include "spindle/sync/barrier.hpp"

namespace spindle {

Condition::Condition() : lock_(&own_), q_(this) {}
Condition::Condition(Lock& lock) noexcept : lock_(&lock), q_(this) {}
Condition::~Condition() = default;

detail::WaitDescription Condition::describe_wait(const detail::WaitQueue& q) const noexcept {
    // A Barrier's parties wait here: name the Barrier (alive: it owns this Condition).
    if (barrier_ != nullptr) return {"Barrier", barrier_, barrier_->n_waiting()};
    return {"Condition", this, q.approx_size()};
}

namespace detail {

namespace {
constexpr std::uint8_t kNotifyStage = 0;
constexpr std::uint8_t kLockStage = 1;
}  // namespace

void CondWaitEngine::check_locked() const {
    if (!c_->locked()) throw std::logic_error("spindle::Condition::wait: cannot wait on un-acquired lock");
}

bool CondWaitEngine::suspend(std::coroutine_handle<> h) {
    TaskHeader& self = waiting_task("Condition::wait");
    w_.self = &self;
    h_ = h;
    if (park_notified(self)) return true;
    return !advance(self);  // notified before we slept
}

// asyncio's `fut = create_future(); append; self.release(); await fut`.
bool CondWaitEngine::park_notified(TaskHeader& self) {
    w_.reset(&self);
    stage_ = kNotifyStage;
    // Queue before releasing: a notify from another core, which needs the lock, then
    // always finds us (asyncio gets this from running on one thread).
    w_.pos = c_->q_.enqueue();
    try {
        // A user's TSan sees this release only through the annotation: it runs in the
        // library (spindle/runtime/detail/tsan.hpp); the acquirer is often the user's
        // inline acquire.
        tsan_release(&c_->lock_->state_);
        c_->lock_->release();
    } catch (...) {
        (void)c_->q_.abandon(w_.pos);
        throw;
    }
    // Before the wait is armed: the worker that runs us next (after a notification or
    // a cancellation) calls before_resume() instead of resuming the coroutine.
    self.resume_hook_ = this;
    if (w_.park(c_->q_, h_)) return true;
    self.resume_hook_ = nullptr;
    return false;
}

bool CondWaitEngine::before_resume(TaskHeader& task) noexcept { return advance(task); }

// The rest of asyncio's Condition.wait (and wait_for's loop), from the end of a
// suspension: `finally: while True: try: await self.acquire(); break; except
// CancelledError: err = ...`. Runs where the coroutine would have resumed, so at one
// worker every step lands at the same place in the run order as in asyncio.
bool CondWaitEngine::advance(TaskHeader& self) noexcept {
    Lock& l = *c_->lock_;
    for (;;) {
        bool have_lock = false;
        if (stage_ == kNotifyStage) {
            bool granted = true;
            if (w_.suspended) granted = w_.finish(c_->q_);
            else c_->q_.remove(w_.pos);  // notified before we slept
            if (!granted) {
                (void)self.consume_cancel();
                cancelled_ = true;
            } else if (w_.suspended && self.consume_cancel()) {
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
            if (park_notified(self)) return false;
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
        (void)c_->q_.grant_first(1);
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
    (void)q_.grant_first(n);
}

void Condition::notify_all() { notify(SIZE_MAX); }

}  // namespace spindle
