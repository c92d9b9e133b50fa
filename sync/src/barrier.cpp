// sync/src/barrier.cpp — asyncio.Barrier: on one worker asyncio's algorithm on a
// Condition, step for step; on more workers a direct barrier (D1-D4 in barrier.hpp).
#include "spindle/sync/barrier.hpp"

#include <algorithm>
#include <stdexcept>
#include <thread>

#include "spindle/runtime/errors.hpp"
#include "spindle/sync/detail/sync_wait.hpp"


namespace spindle {

namespace {
constexpr const char* kAbortedMsg = "spindle::BrokenBarrierError: Barrier aborted";
constexpr const char* kBrokenMsg = "spindle::BrokenBarrierError: Abort or reset of barrier";
}  // namespace

Barrier::Barrier(std::size_t parties) : parties_(parties), q_(this) {
    if (parties == 0) throw std::invalid_argument("spindle::Barrier: parties must be > 0");
    cond_.barrier_ = this;
}

Barrier::~Barrier() = default;

Barrier::Engine Barrier::engine(const char* what) {
    // acquire: pairs with the CAS below (the engine another thread chose).
    Engine e = engine_.load(std::memory_order_acquire);
    if (e != kUnchosen) return e;
    const Engine want = detail::single_worker(detail::waiting_task(what)) ? kAsyncio : kDirect;
    // acq_rel: publishes the choice; failure acquire: the winner's choice is taken.
    if (engine_.compare_exchange_strong(e, want, std::memory_order_acq_rel, std::memory_order_acquire)) return want;
    return e;
}

std::size_t Barrier::n_waiting() const noexcept {
    // A snapshot: asyncio's n_waiting reads the count in the filling state; the
    // direct engine has no drain.
    // relaxed (both): a racy snapshot, nothing is published through it.
    if (engine_.load(std::memory_order_relaxed) == kDirect) return count_.load(std::memory_order_relaxed);
    return state() == State::kFilling ? count_.load(std::memory_order_relaxed) : 0;  // relaxed: as above
}

bool Barrier::broken() const noexcept {
    // relaxed (both): a snapshot.
    if (engine_.load(std::memory_order_relaxed) == kDirect) return broken_.load(std::memory_order_relaxed);
    return state() == State::kBroken;
}

detail::WaitDescription Barrier::describe_wait(const detail::WaitQueue& /*q*/) const noexcept {
    return {"Barrier", this, n_waiting()};
}

// ───────────────────────────── wait / reset / abort ─────────────────────────────


Task<void> Barrier::reset() {
    if (engine("Barrier::reset") == kAsyncio) {
        co_await reset_asyncio();
        co_return;
    }
    (void)detail::waiting_task("Barrier::reset");
    break_round(/*broken_after=*/false);
}

Task<void> Barrier::abort() {
    if (engine("Barrier::abort") == kAsyncio) {
        co_await abort_asyncio();
        co_return;
    }
    (void)detail::waiting_task("Barrier::abort");
    break_round(/*broken_after=*/true);
}

void Barrier::break_round(bool broken_after) {
    const bool o = mx_.lock();
    std::uint64_t end = 0;
    try {
        end = break_round_locked();
    } catch (...) {
        mx_.unlock(o);
        throw;
    }
    broken_.store(broken_after, std::memory_order_relaxed);  // relaxed: under mx_
    mx_.unlock(o);
    if (end != 0) (void)q_.grant_before(end);  // G4: nothing of *this after the grant
}

// ───────────────────────────── direct engine ─────────────────────────────

std::uint64_t Barrier::break_round_locked() {
    // relaxed: under mx_.
    const std::size_t n = count_.load(std::memory_order_relaxed);
    if (n == 0) return 0;
    broken_rounds_.emplace_back(gen_, n);  // may throw (then nothing changed)
    // relaxed: published to each waiter of the round by the cell CAS that releases it
    // (this grant's, or a later granter's, which took mx_ after our unlock), which the
    // waiter acquires in install()/outcome() (D2); others read it under mx_.
    broken_pending_.store(broken_rounds_.size(), std::memory_order_relaxed);
    ++gen_;
    count_.store(0, std::memory_order_relaxed);  // relaxed: under mx_
    return q_.enqueued();  // D1: every cell of the closed round lies below
}

bool Barrier::round_broke_locked(std::uint64_t gen) const noexcept {
    return std::any_of(broken_rounds_.begin(), broken_rounds_.end(), [gen](const auto& r) { return r.first == gen; });
}

void Barrier::leave_closed_round_locked(std::uint64_t gen) noexcept {
    auto it = std::find_if(broken_rounds_.begin(), broken_rounds_.end(), [gen](const auto& r) { return r.first == gen; });
    if (it == broken_rounds_.end()) return;  // the round passed
    if (--it->second == 0) {
        broken_rounds_.erase(it);
        // relaxed: under mx_ (a waiter that reads a stale non-zero value takes mx_).
        broken_pending_.store(broken_rounds_.size(), std::memory_order_relaxed);
    }
}

/// Parks the task in the cell it took under mx_ (SyncWait's protocol).
class Barrier::DirectWait {
public:
    DirectWait(Barrier& b, detail::SyncWait& w) noexcept : b_(&b), w_(&w) {}
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) noexcept { return w_->park(b_->q_, h); }
    void await_resume() const noexcept {}

private:
    Barrier* b_;
    detail::SyncWait* w_;
};

// The direct engine's wait is inline here (one frame per wait); the asyncio engine's
// is wait_asyncio() below.
Task<std::size_t> Barrier::wait() {
    if (engine("Barrier::wait") == kAsyncio) co_return co_await wait_asyncio();
    detail::TaskHeader& self = detail::waiting_task("Barrier::wait");
    bool o = mx_.lock();
    if (broken_.load(std::memory_order_relaxed)) {  // relaxed: under mx_
        mx_.unlock(o);
        throw BrokenBarrierError(kAbortedMsg);
    }
    // relaxed: under mx_.
    const std::size_t index = count_.load(std::memory_order_relaxed);
    if (index + 1 == parties_) {
        // The last arrival closes the round and wakes exactly its cells (D1).
        const std::uint64_t end = q_.enqueued();
        ++gen_;
        count_.store(0, std::memory_order_relaxed);  // relaxed: under mx_
        mx_.unlock(o);
        (void)q_.grant_before(end);
        co_return index;
    }
    const std::uint64_t my_gen = gen_;
    detail::SyncWait w;
    w.self = &self;
    try {
        w.pos = q_.enqueue();  // D1: the cell is taken in the round we count in
    } catch (...) {
        mx_.unlock(o);
        throw;
    }
    count_.store(index + 1, std::memory_order_relaxed);  // relaxed: under mx_
    mx_.unlock(o);

    co_await DirectWait(*this, w);
    bool granted = true;
    if (w.suspended) granted = w.finish(q_);
    else q_.remove(w.pos);  // a deposit: the round closed before we slept

    bool broke = false;
    // relaxed: our cell's acquire (install/outcome) already ordered break_round_locked()'s
    // store before this load (D2); zero means our granted round passed.
    if (!granted || broken_pending_.load(std::memory_order_relaxed) != 0) {
        o = mx_.lock();
        if (!granted && gen_ == my_gen) {
            // D4: cancelled while the round is open: stop counting.
            count_.store(count_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);  // relaxed: under mx_
        } else if (round_broke_locked(my_gen)) {
            broke = true;
            leave_closed_round_locked(my_gen);  // D3
        }
        mx_.unlock(o);
    }
    if (!granted) {
        (void)self.consume_cancel();
        throw CancelledError{};
    }
    if (w.suspended && self.consume_cancel()) throw CancelledError{};
    if (broke) throw BrokenBarrierError(kBrokenMsg);
    co_return index;
}

// ───────────────────────────── asyncio engine ─────────────────────────────

Task<void> Barrier::block() {
    // Not while draining or resetting.
    co_await cond_.wait_for([this] { return state() != State::kDraining && state() != State::kResetting; });
    if (state() == State::kBroken) throw BrokenBarrierError(kAbortedMsg);
}

Task<void> Barrier::wait_filled() {
    co_await cond_.wait_for([this] { return state() != State::kFilling; });
    if (state() == State::kBroken || state() == State::kResetting) throw BrokenBarrierError(kBrokenMsg);
}

void Barrier::exit_() noexcept {
    // relaxed: under cond_'s lock.
    if (count_.load(std::memory_order_relaxed) == 0) {
        if (state() == State::kResetting || state() == State::kDraining) set_state(State::kFilling);
        cond_.notify_all();
    }
}

Task<std::size_t> Barrier::wait_asyncio() {
    auto guard = co_await cond_.scoped();
    co_await block();
    // relaxed: under cond_'s lock.
    const std::size_t index = count_.fetch_add(1, std::memory_order_relaxed);
    try {
        if (index + 1 == parties_) {
            set_state(State::kDraining);  // the last arrival releases everyone
            cond_.notify_all();
        } else {
            co_await wait_filled();
        }
    } catch (...) {
        count_.fetch_sub(1, std::memory_order_relaxed);  // relaxed: under cond_'s lock
        exit_();
        throw;
    }
    count_.fetch_sub(1, std::memory_order_relaxed);  // relaxed: under cond_'s lock
    exit_();
    co_return index;
}

Task<void> Barrier::reset_asyncio() {
    auto guard = co_await cond_.scoped();
    // relaxed: under cond_'s lock.
    if (count_.load(std::memory_order_relaxed) > 0) {
        if (state() != State::kResetting) set_state(State::kResetting);
    } else {
        set_state(State::kFilling);
    }
    cond_.notify_all();
}

Task<void> Barrier::abort_asyncio() {
    auto guard = co_await cond_.scoped();
    set_state(State::kBroken);
    cond_.notify_all();
}

}  // namespace spindle
