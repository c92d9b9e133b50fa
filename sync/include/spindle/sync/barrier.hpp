// spindle/sync/barrier.hpp — asyncio.Barrier, safe across cores.
//
// States: filling, draining, resetting, broken. wait() returns the arrival index
// 0..parties-1; the last arrival releases everyone; reset() breaks the current round
// for its waiters (BrokenBarrierError) and refills; abort() breaks the barrier for
// good (until reset()). reset() and abort() are awaitables, as in asyncio.
// Barrier(0) throws std::invalid_argument.
//
// Two engines, chosen by the first call (wait, reset or abort) from the runtime of
// the calling task, and kept for the barrier's life:
//   * one worker: asyncio's own algorithm, step for step, on a Condition (its lock
//     and its queue), so every trace matches CPython's — a task that arrives while
//     the previous round drains waits for the drain (a second park per round).
//   * two or more workers: a direct barrier (a round counter, one WaitQueue and a
//     few-instruction spin lock; no Condition, no Lock, no drain). The last arrival
//     closes the round and grants exactly that round's cells (grant_before), so a
//     task of the next round queues at once behind them. Invariants:
//       D1 count_, gen_ and broken_ change only under mx_; a waiter takes its cell
//          (enqueue) under mx_ in the round it counted itself in, so the cells of
//          round g all lie below the enqueued() that the closer of round g reads
//          under mx_, and those of round g+1 at or above it.
//       D2 a waiter whose cell is granted learns whether its round passed or broke
//          from broken_rounds_ (under mx_), which a reset()/abort() fills before it
//          grants; the grant's cell CAS publishes the entry, so a waiter that reads
//          broken_pending_ == 0 after its grant knows its round passed (no lock).
//       D3 every waiter counted in a round that broke takes one off that round's
//          entry when it leaves (granted or cancelled); the last one erases it.
//       D4 a cancelled waiter (its cell CANCELLED) stops counting only if its round
//          is still open; a closed round passed or broke with it counted (asyncio:
//          the count drops only when the cancelled task runs its `finally`).
//     The observable differences from one worker are those of timing on more than
//     one core: no drain (n_waiting() counts the next round's arrivals at once),
//     and a reset() while a round drains does not break waiters already released.
//
// THREAD SAFETY: wait/reset/abort inside a task; parties/n_waiting/broken from any
// thread (racy snapshots).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <utility>
#include <vector>

#include "spindle/runtime/detail/biased_lock.hpp"
#include "spindle/runtime/task.hpp"
#include "spindle/runtime/detail/wait_queue.hpp"
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
/// Then all go on together and the barrier refills for the next round. On one worker
/// it is asyncio's algorithm on a Condition, trace for trace; on more workers a direct
/// barrier without the Condition's lock convoy (see the header comment).
/// wait()/reset()/abort() inside a task;
/// parties()/n_waiting()/broken() from any thread (racy snapshots).
class Barrier final : private detail::WaitQueueOwner {
public:
    /// A barrier for `parties` tasks; std::invalid_argument if parties is 0.
    explicit Barrier(std::size_t parties);
    ~Barrier();
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
    enum Engine : std::uint8_t { kUnchosen, kAsyncio, kDirect };
    /// The engine, chosen by the first call from the calling task's runtime.
    Engine engine(const char* what);

    // ── asyncio engine (one worker) ──
    Task<std::size_t> wait_asyncio();
    Task<void> reset_asyncio();
    Task<void> abort_asyncio();
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

    // ── direct engine (two or more workers; D1-D4 in the header comment) ──
    class DirectWait;
    /// reset()/abort() on the direct engine: closes the open round as broken, wakes its
    /// waiters, and leaves the barrier broken (abort) or not (reset).
    void break_round(bool broken_after);
    /// Under mx_: closes the open round as broken (if anyone waits in it); returns
    /// the cell bound to grant after unlocking (0: nobody to wake).
    std::uint64_t break_round_locked();
    /// Under mx_: a waiter of round `gen` leaves after its round closed (D3).
    void leave_closed_round_locked(std::uint64_t gen) noexcept;
    /// Under mx_: whether round `gen` broke (an entry of broken_rounds_).
    [[nodiscard]] bool round_broke_locked(std::uint64_t gen) const noexcept;
    void on_waiter_cancelled() noexcept override {}
    [[nodiscard]] detail::WaitDescription describe_wait(const detail::WaitQueue& q) const noexcept override;

    Condition cond_;
    const std::size_t parties_;
    std::atomic<State> state_{State::kFilling};  // asyncio engine: under cond_'s lock
    // Read by every wait, written almost never: kept off the spin lock's line, which
    // the arrivals of both workers write.
    alignas(64) std::atomic<Engine> engine_{kUnchosen};  // set once (CAS)
    std::atomic<std::size_t> broken_pending_{0};        // direct: broken_rounds_.size()
    alignas(64) detail::BiasedLock mx_;                 // direct engine's spin lock (biased)
    std::atomic<std::size_t> count_{0};                 // arrivals: under cond_'s lock / mx_
    std::atomic<bool> broken_{false};                   // direct: under mx_ (atomic for snapshots)
    std::uint64_t gen_ = 0;                             // direct: the open round, under mx_
    // direct: rounds that broke with waiters still to leave: (round, waiters left), under mx_
    std::vector<std::pair<std::uint64_t, std::size_t>> broken_rounds_;
    detail::WaitQueue q_;  // direct: the round's waiters
};

}  // namespace spindle
