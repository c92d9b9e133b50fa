// sync/src/queue.cpp — the T-independent core of Queue/LifoQueue/PriorityQueue.
// See spindle/sync/queue.hpp for the semantics and the invariants D1–D4.
#include "spindle/sync/queue.hpp"

#include "spindle/runtime/detail/tsan.hpp"

#include <stdexcept>
#include <string>

namespace spindle::detail {

namespace {
std::size_t checked_maxsize(std::ptrdiff_t m) {
    if (m < 0)
        throw std::invalid_argument("spindle::Queue: maxsize must be >= 0 (0 = unbounded), got " + std::to_string(m));
    return static_cast<std::size_t>(m);
}
}  // namespace

QueueCore::QueueCore(std::ptrdiff_t maxsize) : maxsize_(checked_maxsize(maxsize)) {
    finished_.set();  // nothing unfinished yet (asyncio: self._finished.set())
}

QueueCore::~QueueCore() = default;

std::size_t QueueCore::qsize() const noexcept {
    Guard g(*this);
    return n_ > r_get_ ? n_ - r_get_ : 0;
}

bool QueueCore::full() const noexcept {
    Guard g(*this);
    return maxsize_ != 0 && n_ + r_put_ >= maxsize_;
}

std::string QueueCore::debug_state() const {
    Guard g(*this);
    return "stored=" + std::to_string(n_) + " handed=" + std::to_string(r_get_) +
           " slots_reserved=" + std::to_string(r_put_) + " live_getters=" + std::to_string(live_get_) +
           " live_putters=" + std::to_string(live_put_) + " unfinished=" + std::to_string(unfinished_) +
           (shut_locked() ? " shutdown" : "");
}

bool QueueCore::is_shutdown() const noexcept {
    Guard g(*this);
    return shut_locked();
}

void QueueCore::task_done() {
    Guard g(*this);
    if (unfinished_ == 0) throw std::invalid_argument("spindle::Queue::task_done() called too many times");
    if (--unfinished_ == 0) finished_.set();  // under the lock: ordered with stored_locked()'s clear()
}

void QueueCore::stored_locked() noexcept {
    ++n_;
    if (unfinished_++ == 0) finished_.clear();
}

bool QueueCore::claim_item_locked() noexcept {
    if (n_ == 0) return false;  // woken by shutdown(), or immediate shutdown dropped the items
    if (r_get_ > 0) --r_get_;   // ours (or another woken getter's: the counts are fungible)
    return true;                // else a left-over: a woken-but-cancelled getter returned one
}

QueueCore::Shortfall QueueCore::grant(Side& side, std::int64_t k) noexcept {
    while (k > 0) {
        const std::uint64_t seen = side.q.enqueued();
        k -= static_cast<std::int64_t>(side.q.grant_first(static_cast<std::size_t>(k)));
        if (k == 0) break;
        // Short. Reservations are fungible, so another granter may have taken "our"
        // waiter's cell while we scanned only the cells that existed when we
        // started: if cells were added since, scan again (D3).
        if (side.q.enqueued() == seen) return {k, seen};
    }
    return {};
}

void QueueCore::deliver_slow(Grants g) noexcept {
    for (;;) {
        const Shortfall get = grant(getters_, g.getters);
        const Shortfall put = grant(putters_, g.putters);
        if (get.missing == 0 && put.missing == 0) return;
        // D3: every cell that existed was looked at and none could take the grant:
        // a counted waiter was cancelled and its on_waiter_cancelled() has not
        // taken it off `live` yet. Undo the reservation and give the count back
        // (the callback will take it off).
        Guard lk(*this);
        // Clamped: an immediate shutdown() may have dropped the reservations already.
        r_get_ -= std::min(r_get_, static_cast<std::size_t>(get.missing));
        live_get_ += get.missing;
        r_put_ -= std::min(r_put_, static_cast<std::size_t>(put.missing));
        live_put_ += put.missing;
        // A waiter that queued since (it saw the reservation hide the item or the
        // slot) is served now; otherwise stop: dispatching again on the count that
        // the callback is about to take off would only scan in vain.
        if ((get.missing != 0 && getters_.q.enqueued() != get.seen) ||
            (put.missing != 0 && putters_.q.enqueued() != put.seen)) {
            g = dispatch_locked();
        } else {
            return;
        }
    }
}

QueueCore::Grants QueueCore::shut_down_locked(std::size_t discarded) noexcept {
    lock_.spare = 1;  // the shutdown flag (shut_locked())
    if (discarded > 0) {  // immediate: the items are gone, and so are the getters' claims
        n_ = 0;
        r_get_ = 0;
        unfinished_ -= std::min(discarded, unfinished_);
        if (unfinished_ == 0) finished_.set();  // release join() (3.13)
    }
    // Wake every counted waiter. live only changes by deltas that each match an
    // event (a cell queued, a reservation, a cancellation callback, a give-back),
    // so a count below 0 (a cancellation callback that ran while a reservation held
    // the waiter's count) is left for the give-back that will follow (D3).
    Grants g{std::max<std::int64_t>(live_get_, 0), std::max<std::int64_t>(live_put_, 0)};
    live_get_ -= g.getters;
    live_put_ -= g.putters;
    return g;
}

void QueueCore::wake_all(Grants g) noexcept {
    // No waiter queues after shutdown(): a shortfall is a cancellation in flight
    // whose callback will take the count back off `live` (D3).
    const Shortfall get = grant(getters_, g.getters);
    const Shortfall put = grant(putters_, g.putters);
    if (get.missing == 0 && put.missing == 0) return;
    Guard lk(*this);
    live_get_ += get.missing;
    live_put_ += put.missing;
}

WaitPosition QueueCore::enqueue_locked(Side& s) {
    WaitPosition p = s.q.enqueue();
    ++*s.live;
    return p;
}

void QueueCore::Side::on_waiter_cancelled() noexcept {
    Guard g(*core);
    --*live;  // may go below 0 for a moment when a reservation took the count (D3)
}

}  // namespace spindle::detail
