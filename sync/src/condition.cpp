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

/// asyncio's `await fut` inside Condition.wait: queue, release the lock, sleep.
class Condition::NotifiedAwaiter {
public:
    explicit NotifiedAwaiter(Condition& c) noexcept : c_(&c) {}
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
        w_.self = &detail::waiting_task("Condition::wait");
        // Queue before releasing: a notify from another core, which needs the lock,
        // then always finds us (asyncio gets this from running on one thread).
        w_.pos = c_->q_.enqueue();
        try {
            // A user's TSan sees this release only through the annotation: it runs in
            // the library (spindle/runtime/detail/tsan.hpp); the acquirer is often the
            // user's inline acquire.
            detail::tsan_release(&c_->lock_->state_);
            c_->lock_->release();
        } catch (...) {
            (void)c_->q_.abandon(w_.pos);
            throw;
        }
        queued_ = true;
        return w_.park(c_->q_, h);
    }
    void await_resume() {
        bool granted = true;
        if (w_.suspended) granted = w_.finish(c_->q_);
        else c_->q_.remove(w_.pos);  // notified before we slept
        if (!granted) {
            (void)w_.self->consume_cancel();
            throw CancelledError{};
        }
        if (w_.suspended && w_.self->consume_cancel()) throw CancelledError{};
    }

private:
    Condition* c_;
    detail::SyncWait w_;
    bool queued_ = false;
};

Task<bool> Condition::wait() {
    if (!locked()) throw std::logic_error("spindle::Condition::wait: cannot wait on un-acquired lock");
    std::exception_ptr err;
    try {
        co_await NotifiedAwaiter(*this);
    } catch (...) {  // CancelledError is not a std::exception: catch everything
        err = std::current_exception();
    }
    // Re-acquire the lock even if the wait was cancelled; a cancellation meanwhile
    // is remembered and re-raised (the most recent one), as in asyncio.
    for (;;) {
        try {
            co_await lock_->acquire();
            detail::tsan_acquire(&lock_->state_);  // as the release above: library code
            break;
        } catch (const CancelledError&) {
            err = std::current_exception();
        }
    }
    if (err) {
        // CPython 3.13: the wait may have consumed a notification; pass it on.
        (void)q_.grant_first(1);
        std::rethrow_exception(err);
    }
    co_return true;
}

void Condition::notify(std::size_t n) {
    if (!locked()) throw std::logic_error("spindle::Condition::notify: cannot notify on un-acquired lock");
    (void)q_.grant_first(n);
}

void Condition::notify_all() { notify(SIZE_MAX); }

}  // namespace spindle
