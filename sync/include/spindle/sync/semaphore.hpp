// spindle/sync/semaphore.hpp — asyncio.Semaphore and BoundedSemaphore, safe across
// cores.
//
// Semantics (CPython 3.11 asyncio.Semaphore, exactly, at one worker):
//   * locked() is value() == 0 or any queued waiter not cancelled; acquire() takes a
//     permit at once iff !locked() — newcomers wait for earlier waiters to start
//     even when permits are free.
//   * release() adds a permit and gives it straight to the first waiter not yet
//     woken (value() does not rise then). A woken waiter, once it resumes, wakes the
//     next one if permits are still free.
//   * A waiter cancelled before it was woken leaves the queue; one woken but
//     cancelled before it resumed puts its permit back and wakes the next.
//   * BoundedSemaphore::release() above the initial value throws
//     std::invalid_argument (asyncio's ValueError).
//
// State word state_:
//   bits 0..30   value (free permits), < 2^31
//   bit  31      kGiving: a releaser's give-back window is open (S2)
//   bits 32..63  active: queued waiters not cancelled and not yet resumed
// A waker reserves a permit (value - 1) before granting a cell and gives it back if
// no waiter was there; the waiter re-checks the state after taking its cell, so the
// two cannot miss each other (Dekker on state_ and the queue's enq_).
// Lifetime (a waiter may destroy the Semaphore as soon as its acquire returns, even
// while the release() that let it go still runs; wait_queue.hpp G4):
//   S1 release() with waiters counted never puts its permit in value: it holds it
//      (the state word unchanged) and grants a cell with it, and touches nothing of
//      *this after that grant. A permit in value could be taken meanwhile by a waiter
//      that resumes with permits free and wakes the next, down to the last one, which
//      may then return and destroy *this before release() reads state_ again.
//      Its bound check then reads a word no CAS validated: a give-back (S2) checks
//      the bound again on the word its CAS replaces, and release() throws if value
//      reached it meanwhile (nothing written: no grant, no kGiving).
//   S2 when the grant finds no cell (every counted waiter already woken and not yet
//      resumed, the rest not queued yet), the permit goes back to value and enq_ and
//      state_ are read again (the ABA check in give_to_waiter); meanwhile a woken
//      waiter could pass that permit on to the last waiter, which could return and
//      destroy *this. So the give-back sets kGiving (bit 31, above every value) in
//      the same CAS, and clears it (release) as its last touch of *this; whoever takes
//      a permit (try_acquire, queue, a granted waiter's return) and finds kGiving in
//      the word its RMW read waits for the clear before its acquire returns. One
//      giver at a time holds the bit (a second waits its short, non-blocking window
//      out). A permit that did not come through that window cannot make anyone's
//      return depend on it, so nobody else waits. (So S2 covers acquires that return
//      a permit; a cancelled acquire, which returns none, does not wait for a giver.) (Found by the multi-waiter
//      tests/sync/lifetime_test.cpp: TSan, SemaphoreDestroyedByItsLastAcquirer...)
//
// THREAD SAFETY: acquire/scoped inside a task; release/try_acquire/locked/value
// from any thread.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>

#include "spindle/runtime/detail/wait_queue.hpp"
#include "spindle/sync/detail/sync_wait.hpp"
#include "spindle/sync/scoped.hpp"

namespace spindle {

/// asyncio.Semaphore, safe across cores: a counter of permits that tasks acquire by
/// suspending. Strictly FIFO: release() gives its permit straight to the longest
/// waiter, and a newcomer queues while an earlier waiter has not yet resumed, even
/// with permits free. A cancelled or timed-out waiter never loses or doubles a permit.
/// The value is limited to 2^31 - 1. acquire()/scoped() inside a task;
/// release()/try_acquire()/locked()/value() from any thread.
class Semaphore : private detail::WaitQueueOwner {
public:
    /// std::invalid_argument if value < 0 (or >= 2^31).
    explicit Semaphore(std::ptrdiff_t value = 1);
    ~Semaphore();
    Semaphore(const Semaphore&) = delete;
    Semaphore& operator=(const Semaphore&) = delete;

    /// `co_await sem.acquire()`: takes a permit at once unless locked(), else queues
    /// (FIFO) until one is given to it; CancelledError if the task is cancelled first
    /// (a permit granted meanwhile is put back and passed on).
    class AcquireAwaiter : private detail::ResumeHook {
    public:
        /// An awaiter that acquires a permit of `s`.
        explicit AcquireAwaiter(Semaphore& s) noexcept : sem_(&s) {}
        /// Copies an awaiter that has not been awaited yet (before use only).
        AcquireAwaiter(const AcquireAwaiter& o) noexcept : sem_(o.sem_) {}  // before use only
        AcquireAwaiter& operator=(const AcquireAwaiter&) = delete;
        bool await_ready() noexcept {
            if (!detail::coop_consume()) return false;  // budget spent: yield first
            fast_ = sem_->try_acquire();
            return fast_;
        }
        bool await_suspend(std::coroutine_handle<> h);
        void await_resume();

    private:
        bool before_resume(detail::TaskHeader& task) noexcept override;
        bool queue(std::coroutine_handle<> h);  // slow path; true = suspended

        Semaphore* sem_;
        detail::SyncWait w_;
        bool fast_ = false;
        bool queued_ = false;
        bool coop_ = false;
        bool acquired_ = false;
    };

    /// `co_await sem.acquire()`: waits for a permit (asyncio.Semaphore.acquire()).
    AcquireAwaiter acquire() noexcept { return AcquireAwaiter(*this); }
    /// `auto permit = co_await sem.scoped();` — acquires; the ScopedRelease guard
    /// releases the permit when it dies (asyncio's `async with sem:`).
    detail::ScopedAwaiter<Semaphore, AcquireAwaiter> scoped() noexcept { return {*this, AcquireAwaiter(*this)}; }
    /// Takes a permit if acquire() would not wait (!locked()); true if it did.
    bool try_acquire() noexcept;
    /// Adds a permit, given straight to the longest waiter if any (value() does not
    /// rise then). Never blocks.
    /// @throws std::invalid_argument  BoundedSemaphore: above the initial value.
    /// @throws std::overflow_error  Semaphore: the value would exceed 2^31 - 1.
    void release();
    /// True when acquire() would wait: no free permit, or a queued waiter not
    /// cancelled and not yet resumed (asyncio's Semaphore.locked()).
    [[nodiscard]] bool locked() const noexcept;
    /// The free permits now (a snapshot; permits handed to woken waiters are not free).
    [[nodiscard]] std::ptrdiff_t value() const noexcept;
    /// Queued waiters (approximate; diagnostics).
    [[nodiscard]] std::uint64_t approx_waiters() const noexcept { return q_.approx_size(); }

protected:
    /// For BoundedSemaphore: release() throws rather than exceed `bound`.
    Semaphore(std::ptrdiff_t value, std::ptrdiff_t bound);

private:
    // S2: a releaser's give-back window is open (bit 31: value < 2^31 never reaches it).
    static constexpr std::uint64_t kGiving = std::uint64_t{1} << 31;
    static constexpr std::uint64_t kValueMask = kGiving - 1;
    static constexpr std::uint64_t kActiveOne = std::uint64_t{1} << 32;
    static std::uint64_t value_of(std::uint64_t s) noexcept { return s & kValueMask; }
    static std::uint64_t active_of(std::uint64_t s) noexcept { return s >> 32; }
    static bool locked_state(std::uint64_t s) noexcept { return value_of(s) == 0 || active_of(s) != 0; }

    void on_waiter_cancelled() noexcept override;
    [[nodiscard]] detail::WaitDescription describe_wait(const detail::WaitQueue& q) const noexcept override;
    void wake_up_next() noexcept;       // reserve a free permit if someone is counted, then give it
    // We hold a permit outside value: grant it or give it back. release_bound: it is
    // release()'s new permit; false (nothing done) if giving it back would exceed bound_.
    bool give_to_waiter(std::uint64_t reserved, bool release_bound) noexcept;
    void put_back() noexcept;  // value + 1 without the bound check, then wake
    [[noreturn]] void throw_over_bound() const;  // release() above the bound: asyncio's ValueError
    std::uint64_t wait_giving(int spins) const noexcept;  // one step of waiting for kGiving to clear
    void after_giving() const noexcept;                   // waits until kGiving is clear (S2)

    std::atomic<std::uint64_t> state_;
    const std::uint64_t bound_;  // release() refuses to exceed it
    const bool bounded_;         // BoundedSemaphore: invalid_argument, else overflow_error
    // The worker its grants wake waiters onto (a wake hint; 0: none yet): see
    // give_to_waiter() and "Home" in runtime/src/worker.cpp. relaxed: a hint.
    std::atomic<std::uint16_t> home_{0};
    detail::WaitQueue q_;
};

/// asyncio.BoundedSemaphore: a Semaphore whose release() above the initial value
/// throws std::invalid_argument (asyncio's ValueError).
class BoundedSemaphore final : public Semaphore {
public:
    /// `value` permits, which is also the bound; std::invalid_argument if value < 0
    /// (or >= 2^31).
    explicit BoundedSemaphore(std::ptrdiff_t value = 1) : Semaphore(value, value) {}
};

}  // namespace spindle
