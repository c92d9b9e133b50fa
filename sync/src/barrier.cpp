// sync/src/barrier.cpp — asyncio.Barrier on spindle's Condition, step for step.
#include "spindle/sync/barrier.hpp"

#include <stdexcept>

namespace spindle {

Barrier::Barrier(std::size_t parties) : parties_(parties) {
    if (parties == 0) throw std::invalid_argument("spindle::Barrier: parties must be > 0");
    cond_.barrier_ = this;
}

std::size_t Barrier::n_waiting() const noexcept {
    // relaxed: a snapshot (asyncio's n_waiting reads the count in the filling state).
    return state() == State::kFilling ? count_.load(std::memory_order_relaxed) : 0;
}

bool Barrier::broken() const noexcept { return state() == State::kBroken; }

Task<void> Barrier::block() {
    // Not while draining or resetting.
    co_await cond_.wait_for([this] { return state() != State::kDraining && state() != State::kResetting; });
    if (state() == State::kBroken) throw BrokenBarrierError("spindle::BrokenBarrierError: Barrier aborted");
}

Task<void> Barrier::wait_filled() {
    co_await cond_.wait_for([this] { return state() != State::kFilling; });
    if (state() == State::kBroken || state() == State::kResetting)
        throw BrokenBarrierError("spindle::BrokenBarrierError: Abort or reset of barrier");
}

void Barrier::exit_() noexcept {
    // relaxed: under cond_'s lock.
    if (count_.load(std::memory_order_relaxed) == 0) {
        if (state() == State::kResetting || state() == State::kDraining) set_state(State::kFilling);
        cond_.notify_all();
    }
}

Task<std::size_t> Barrier::wait() {
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

Task<void> Barrier::reset() {
    auto guard = co_await cond_.scoped();
    // relaxed: under cond_'s lock.
    if (count_.load(std::memory_order_relaxed) > 0) {
        if (state() != State::kResetting) set_state(State::kResetting);
    } else {
        set_state(State::kFilling);
    }
    cond_.notify_all();
}

Task<void> Barrier::abort() {
    auto guard = co_await cond_.scoped();
    set_state(State::kBroken);
    cond_.notify_all();
}

}  // namespace spindle
