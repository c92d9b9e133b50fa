// spindle/sync/barrier.hpp — asyncio.Barrier, built (as asyncio's is) on a Condition.
//
// States: filling, draining, resetting, broken. wait() returns the arrival index
// 0..parties-1; the last arrival releases everyone (draining); reset() breaks the
// current round for waiters (BrokenBarrierError) and refills; abort() breaks the
// barrier for good. reset() and abort() are awaitables, as in asyncio (they take the
// barrier's internal lock). Barrier(0) throws std::invalid_argument.
//
// THREAD SAFETY: wait/reset/abort inside a task; parties/n_waiting/broken from any
// thread (racy snapshots of state guarded by the internal lock).
#pragma once

#include <atomic>
#include <cstddef>
#include <stdexcept>

#include "spindle/runtime/task.hpp"
#include "spindle/sync/condition.hpp"

namespace spindle {

/// A Barrier wait failed because the barrier was aborted or reset
/// (asyncio.BrokenBarrierError).
struct BrokenBarrierError : std::runtime_error {
    BrokenBarrierError() : std::runtime_error("spindle::BrokenBarrierError: barrier aborted or reset") {}
    using std::runtime_error::runtime_error;
};

/// asyncio.Barrier, safe across cores: `parties` tasks wait until all have arrived.
///
/// Then all go on together and the barrier refills for the next round. Built, as
/// asyncio's is, on a Condition (filling, draining, resetting and broken states).
/// wait()/reset()/abort() inside a task;
/// parties()/n_waiting()/broken() from any thread (racy snapshots).
class Barrier {
public:
    /// A barrier for `parties` tasks; std::invalid_argument if parties is 0.
    explicit Barrier(std::size_t parties);
    Barrier(const Barrier&) = delete;
    Barrier& operator=(const Barrier&) = delete;

    /// Waits for `parties` tasks; returns this task's arrival index, 0..parties-1
    /// (asyncio's Barrier.wait()). A task arriving while the previous round drains
    /// (or a reset completes) waits for that to end first. BrokenBarrierError if the
    /// barrier is aborted, or reset while this task waits.
    Task<std::size_t> wait();
    /// Returns the barrier to the empty state; current waiters get BrokenBarrierError.
    /// Also repairs an aborted barrier. Awaitable: it takes the barrier's internal lock.
    Task<void> reset();
    /// Breaks the barrier: current and future wait() calls throw BrokenBarrierError
    /// (until reset()). Awaitable: it takes the barrier's internal lock.
    Task<void> abort();

    /// The number of tasks needed to pass the barrier.
    [[nodiscard]] std::size_t parties() const noexcept { return parties_; }
    /// Tasks waiting in the filling state (0 while draining, resetting or broken).
    [[nodiscard]] std::size_t n_waiting() const noexcept;
    /// True while the barrier is broken: after abort(), until reset().
    [[nodiscard]] bool broken() const noexcept;

private:
    enum class State : int { kFilling, kDraining, kResetting, kBroken };
    Task<void> block();
    Task<void> wait_filled();
    void exit_() noexcept;
    void set_state(State s) noexcept {
        // relaxed: written under cond_'s lock; the atomic is only for racy readers.
        state_.store(s, std::memory_order_relaxed);
    }
    [[nodiscard]] State state() const noexcept {
        // relaxed: callers hold cond_'s lock, or want a snapshot.
        return state_.load(std::memory_order_relaxed);
    }

    Condition cond_;
    const std::size_t parties_;
    std::atomic<State> state_{State::kFilling};  // under cond_'s lock
    std::atomic<std::size_t> count_{0};          // under cond_'s lock
};

}  // namespace spindle
