// sync/src/event.cpp — see spindle/sync/event.hpp.
#include "spindle/sync/event.hpp"

#include <cstddef>

#include "spindle/runtime/detail/ebr.hpp"
#include "spindle/runtime/errors.hpp"

namespace spindle {

Event::Event() : q_(detail::WaitQueue::create(this)) {}
Event::~Event() { detail::WaitQueue::destroy(q_); }

bool Event::is_set() const noexcept {
    // acquire: pairs with set()'s exchange (what the setter wrote before set()).
    return value_.load(std::memory_order_acquire);
}

void Event::set() noexcept {
    // G5 (wait_queue.hpp): once the flag is stored a waiter may return and destroy
    // *this, so the queue pointer is read first and the queue is pinned across.
    detail::ebr::Guard pin;
    detail::WaitQueue* const q = q_;
    // seq_cst: the store half of the Dekker pair with a waiter that took its cell
    // and then reads the flag; releases the setter's writes.
    if (value_.exchange(true, std::memory_order_seq_cst)) return;
    (void)q->grant_first(SIZE_MAX);  // every waiter not yet woken, FIFO
}

void Event::clear() noexcept {
    // seq_cst: ordered with set() and waiters' reads of the flag.
    value_.store(false, std::memory_order_seq_cst);
}

bool Event::WaitAwaiter::await_suspend(std::coroutine_handle<> h) {
    w_.self = &detail::waiting_task("Event::wait");
    w_.pos = ev_->q_->enqueue();
    // seq_cst: the load half of the Dekker pair with set().
    if (ev_->value_.load(std::memory_order_seq_cst)) {
        (void)ev_->q_->abandon(w_.pos);
        return false;
    }
    w_.queued = true;
    return w_.park(*ev_->q_, h);
}

bool Event::WaitAwaiter::await_resume() {
    if (!w_.queued) return true;
    bool granted = true;
    if (w_.suspended) granted = w_.finish(*ev_->q_);
    else ev_->q_->remove(w_.pos);  // a deposit: set() found us before we slept
    if (!granted) {
        (void)w_.self->consume_cancel();
        throw CancelledError{};
    }
    if (w_.suspended && w_.self->consume_cancel()) throw CancelledError{};
    return true;
}

}  // namespace spindle
