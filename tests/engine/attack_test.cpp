// tests/engine/attack_test.cpp — targeted attacks on the lock-free core (label "stress").
//
// Each test targets one bug (see the comment above it). They are small and short: 2-4
// workers, plain std::threads as cancellers/setters. Found at a401073 (all fixed since:
// Lock's `reserved` bit, sync-tagged wait tokens, the join re-arm, EBR-retired segments
// in ~WaitQueue, the timer-owner hand-over); before the fixes:
//   LockMutualExclusionUnderCancel          failed every run (double grant)
//   LockMutualExclusionUnderWaitForTimeouts failed ~2 runs in 3 (same bug, timeouts only)
//   SemaphoreBoundUnderCancel               passes (control)
//   CancelVsGrantThenNodeWait, CancelVsEventSetThenNodeWait
//                                           pass: the race they aim at has a window of a
//                                           few instructions; it was shown with stall hooks
//                                           in a scratch copy (build-attack/diag-hooks.patch)
//   JoinCancelReadsAwaiterAfterUnlock       passed in a plain build; failed under
//                                           ThreadSanitizer every run (read of a freed frame)
//   DueTimerFiresWhileAWorkerIsIdle         failed every run (timer ownership lost)
//   WokenTasksRunWhileTheirWakerSpins...    skipped before the stall monitor (a LIFO-slot trade-off);
//                                           fails without it for 1, 4, 16 and 40 woken tasks
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "co_test.hpp"

using namespace std::chrono_literals;
using spindle::CancelledError;
using spindle::Event;
using spindle::JoinHandle;
using spindle::Lock;
using spindle::Runtime;
using spindle::RuntimeOptions;
using spindle::Semaphore;
using spindle::Task;

namespace {

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr int kSanDiv = 8;
#else
constexpr int kSanDiv = 1;
#endif

inline void relax() {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
}

std::uint64_t xs(std::uint64_t& s) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
}

// Waits (from a plain thread) until `h` is done, at most `limit`.
template <class T>
bool wait_done(const JoinHandle<T>& h, std::chrono::milliseconds limit) {
    const auto t0 = std::chrono::steady_clock::now();
    while (!h.done()) {
        if (std::chrono::steady_clock::now() - t0 > limit) return false;
        std::this_thread::sleep_for(200us);
    }
    return true;
}

// ───────────────────── 1. Lock: mutual exclusion under cancellation ─────────────────────
// Lock::AcquireAwaiter::await_resume left its cell (finish -> q.remove: REMOVED, or front_
// moved over it, wait_queue.hpp R6) before
// it sets the locked bit. In that window a waiter C that was cancelled in the queue runs
// `if (!l.locked()) l.wake_up_first();`: grant_front skips the granted waiter's REMOVED
// cell (and C's own) and grants the next waiter H. The granted waiter G and H then both
// "take the reserved lock" with an unconditional (s - active) | locked CAS.
// Also: a DEPOSIT in an uncounted cell is a reservation invisible to try_acquire (see
// the report): a newcomer barges when cancellations bring `active` to 0.
struct LockStorm {
    Lock lock;
    std::atomic<int> in_cs{0};
    std::atomic<long> violations{0};
    std::atomic<long> bad_release{0};
    std::atomic<long> cancels{0};
    std::atomic<long> acquired{0};
};

Task<void> lock_worker(LockStorm& s, int iters, bool with_sleep) {
    for (int i = 0; i < iters; ++i) {
        bool got = false;
        try {
            co_await s.lock.acquire();
            got = true;
        } catch (const CancelledError&) {
            s.cancels.fetch_add(1, std::memory_order_relaxed);
        }
        if (got) {
            if (s.in_cs.fetch_add(1) != 0) s.violations.fetch_add(1);
            for (int k = 0; k < 40; ++k) relax();
            s.in_cs.fetch_sub(1);
            try {
                s.lock.release();
            } catch (const std::logic_error&) {
                s.bad_release.fetch_add(1);
            }
            s.acquired.fetch_add(1, std::memory_order_relaxed);
        }
        if (with_sleep) {
            try {
                co_await spindle::sleep(1us);
            } catch (const CancelledError&) {
                s.cancels.fetch_add(1, std::memory_order_relaxed);
            }
        }
    }
}

Task<void> lock_storm(int ntasks, int iters, bool with_sleep, int rounds) {
    for (int round = 0; round < rounds; ++round) {
        LockStorm s;
        std::vector<JoinHandle<void>> hs;
        for (int i = 0; i < ntasks; ++i) hs.push_back(spindle::spawn(lock_worker(s, iters, with_sleep)));
        std::atomic<bool> stop{false};
        std::thread canceller([&] {
            std::uint64_t rng = 0x1234567ULL + static_cast<std::uint64_t>(round);
            std::uint64_t k = 0;
            while (!stop.load(std::memory_order_relaxed)) {
                (void)hs[xs(rng) % hs.size()].cancel();
                if (++k % 8 == 0) std::this_thread::yield();
            }
        });
        for (auto& h : hs) {
            try {
                co_await h;
            } catch (...) {
            }
        }
        stop.store(true);
        canceller.join();
        const long v = s.violations.load();
        const long b = s.bad_release.load();
        EXPECT_EQ(v, 0) << "round " << round << ": two tasks inside the Lock at once (double grant); acquired="
                        << s.acquired.load() << " cancels=" << s.cancels.load();
        EXPECT_EQ(b, 0) << "round " << round << ": release() of a lock we were granted threw (double grant)";
        const bool locked = s.lock.locked();
        EXPECT_FALSE(locked) << "round " << round;
        const bool took = s.lock.try_acquire();
        EXPECT_TRUE(took) << "round " << round << ": lock left reserved/locked after the storm";
        if (took) s.lock.release();
        if (v != 0 || b != 0 || !took) co_return;
    }
}

CO_TEST_OPTS(EngineAttack, LockMutualExclusionUnderCancel, (RuntimeOptions{.workers = 4})) {
    co_await lock_storm(8, 20000 / kSanDiv, false, 3);
}

// The same double grant through ordinary timeouts only: wait_for(lock.acquire(), tiny).
Task<void> lock_timeout_worker(LockStorm& s, int iters) {
    for (int i = 0; i < iters; ++i) {
        bool got = false;
        try {
            co_await spindle::wait_for(s.lock.acquire(), std::chrono::microseconds(1 + i % 40));
            got = true;
        } catch (const spindle::TimeoutError&) {
            s.cancels.fetch_add(1, std::memory_order_relaxed);
        }
        if (got) {
            if (s.in_cs.fetch_add(1) != 0) s.violations.fetch_add(1);
            for (int k = 0; k < 40; ++k) relax();
            s.in_cs.fetch_sub(1);
            try {
                s.lock.release();
            } catch (const std::logic_error&) {
                s.bad_release.fetch_add(1);
            }
            s.acquired.fetch_add(1, std::memory_order_relaxed);
        }
    }
}

CO_TEST_OPTS(EngineAttack, LockMutualExclusionUnderWaitForTimeouts, (RuntimeOptions{.workers = 4})) {
    for (int round = 0; round < 4; ++round) {
        LockStorm s;
        std::vector<JoinHandle<void>> hs;
        for (int i = 0; i < 8; ++i) hs.push_back(spindle::spawn(lock_timeout_worker(s, 4000 / kSanDiv)));
        for (auto& h : hs) co_await h;
        EXPECT_EQ(s.violations.load(), 0) << "round " << round << ": double grant; acquired=" << s.acquired.load()
                                          << " timeouts=" << s.cancels.load();
        EXPECT_EQ(s.bad_release.load(), 0) << "round " << round;
        if (s.violations.load() != 0) co_return;
    }
}

// Control: Semaphore under the same storm (its grant reserves a permit in state_ before
// granting, so the REMOVED window of the Lock does not exist). Permit bound and final
// value are checked.
struct SemStorm {
    Semaphore sem{3};
    std::atomic<int> in_cs{0};
    std::atomic<long> over{0};
};
Task<void> sem_worker(SemStorm& s, int iters) {
    for (int i = 0; i < iters; ++i) {
        bool got = false;
        try {
            co_await s.sem.acquire();
            got = true;
        } catch (const CancelledError&) {
        }
        if (got) {
            if (s.in_cs.fetch_add(1) >= 3) s.over.fetch_add(1);
            for (int k = 0; k < 40; ++k) relax();
            s.in_cs.fetch_sub(1);
            s.sem.release();
        }
    }
}
Task<void> sem_storm(int ntasks, int iters) {
    SemStorm s;
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < ntasks; ++i) hs.push_back(spindle::spawn(sem_worker(s, iters)));
    std::atomic<bool> stop{false};
    std::thread canceller([&] {
        std::uint64_t rng = 77;
        std::uint64_t k = 0;
        while (!stop.load(std::memory_order_relaxed)) {
            (void)hs[xs(rng) % hs.size()].cancel();
            if (++k % 8 == 0) std::this_thread::yield();
        }
    });
    for (auto& h : hs) {
        try {
            co_await h;
        } catch (...) {
        }
    }
    stop.store(true);
    canceller.join();
    EXPECT_EQ(s.over.load(), 0) << "more than 3 holders of a Semaphore(3)";
    const auto v = s.sem.value();
    EXPECT_EQ(v, 3) << "permits lost or created";
    const bool locked = s.sem.locked();
    EXPECT_FALSE(locked);
}

CO_TEST_OPTS(EngineAttack, SemaphoreBoundUnderCancel, (RuntimeOptions{.workers = 4})) {
    co_await sem_storm(10, 20000 / kSanDiv);
}

// ───── 2. TaskHeader::cancel reads wait_node_ after claiming a sync wait (TSan) ─────
// cancel() wins the claim of a sync wait that was already granted (the granter does not
// claim), finds wait_cell_ == nullptr (the task is in finish()) and then reads the
// plain field wait_node_ — while the task, which is NOT frozen by that claim, goes on
// and arms its next wait (a sleep here), writing wait_node_. A data race; if the read
// sees the new node, the canceller calls sleep.on_cancel() without holding its claim
// (a spurious wake-up of a wait it does not own).
CO_TEST_OPTS(EngineAttack, CancelVsGrantThenNodeWait, (RuntimeOptions{.workers = 4})) {
    co_await lock_storm(8, 6000 / kSanDiv, true, 2);
}

// Event flavour of the same race, with a dedicated setter thread (grants from outside).
Task<void> event_loop(Event& ev, std::atomic<bool>& stop, std::atomic<long>& n, std::atomic<int>& started) {
    started.fetch_add(1);
    while (!stop.load(std::memory_order_relaxed)) {
        try {
            const bool r = co_await ev.wait();
            (void)r;
        } catch (const CancelledError&) {
        }
        try {
            co_await spindle::sleep(1ns);
        } catch (const CancelledError&) {
        }
        n.fetch_add(1, std::memory_order_relaxed);
    }
}

TEST(EngineAttack, CancelVsEventSetThenNodeWait) {
    Runtime rt(RuntimeOptions{.workers = 2});
    Event ev;
    std::atomic<bool> stop{false};
    std::atomic<long> n{0};
    std::atomic<int> started{0};
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < 3; ++i) hs.push_back(rt.spawn(event_loop(ev, stop, n, started)));
    // Cancel only tasks that run: one cancelled before its first run never runs its
    // body (asyncio), and on a loaded machine that would leave n at 0.
    while (started.load() < 3) std::this_thread::yield();
    std::thread setter([&] {
        while (!stop.load()) {
            ev.set();
            ev.clear();
        }
    });
    std::thread canceller([&] {
        std::uint64_t rng = 99;
        while (!stop.load()) (void)hs[xs(rng) % hs.size()].cancel();
    });
    std::this_thread::sleep_for(kSanDiv > 1 ? 3s : 1500ms);
    stop.store(true);
    setter.join();
    canceller.join();
    ev.set();
    for (auto& h : hs) EXPECT_TRUE(wait_done(h, 10s));
    EXPECT_GT(n.load(), 0);
}

// ───── 3. JoinAwaiterBase::on_cancel reads `token` after unlock_joiners (TSan) ─────
// The canceller re-arms the joiner's wait under the target's join lock, unlocks, and
// then reads this->token. Once unlocked, the target's completion can claim that wait,
// schedule the joiner, which resumes and destroys the awaiter (here: the nested frame
// holding it is freed) — the read is a use-after-free. TSan reports it as a race with
// the free; in a plain build it is silent.
Task<void> long_sleeper() { co_await spindle::sleep(30s); }
Task<void> inner_join(JoinHandle<void> h) { co_await h; }
Task<void> outer_join(JoinHandle<void> h, std::atomic<bool>& entered) {
    entered.store(true);
    try {
        co_await inner_join(std::move(h));
    } catch (const CancelledError&) {
    }
}

TEST(EngineAttack, JoinCancelReadsAwaiterAfterUnlock) {
    Runtime rt(RuntimeOptions{.workers = 2});
    for (int i = 0; i < 20; ++i) {
        auto b = rt.spawn(long_sleeper());
        std::atomic<bool> entered{false};
        auto t = rt.spawn(outer_join(b, entered));
        // Cancel once t runs (a cancel before it first runs would never reach b, as
        // in asyncio); t is about to await b or already does, and either way the
        // cancellation must be forwarded to b.
        while (!entered.load()) std::this_thread::yield();
        EXPECT_TRUE(t.cancel());
        EXPECT_TRUE(wait_done(t, 10s));
        EXPECT_TRUE(wait_done(b, 10s));
    }
}

// ───── 4. Timer ownership is dropped when the timer owner is woken for work ─────
// In real time one parked worker (timer_owner_) sleeps with a timeout; every other
// parked worker sleeps with none. inject()/notify_one() wake sleepers_.back(). The owner
// is at the back whenever it woke on its own timeout, fired a timer and parked again
// (it re-takes the role for the next deadline and is pushed last). The new task then
// lands on the owner, which clears timer_owner_ and runs it; nobody hands the role to
// the remaining sleeper, whose futex wait has no timeout. If that task runs for a while
// without suspending, the next due timer is not fired although a worker is idle.
Task<void> set_after(std::atomic<bool>& flag, std::chrono::milliseconds d) {
    co_await spindle::sleep(d);
    flag.store(true);
}
Task<void> nap(std::chrono::milliseconds d) { co_await spindle::sleep(d); }
Task<void> spin_until(std::atomic<bool>& flag, std::chrono::milliseconds cap, std::atomic<long>& took_ms) {
    const auto t0 = std::chrono::steady_clock::now();
    while (!flag.load() && std::chrono::steady_clock::now() - t0 < cap) relax();
    took_ms.store(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
    co_return;
}

TEST(EngineAttack, DueTimerFiresWhileAWorkerIsIdle) {
    Runtime rt(RuntimeOptions{.workers = 2});
    int late = 0;
    long worst = 0;
    for (int attempt = 0; attempt < 6; ++attempt) {
        std::atomic<bool> flag{false};
        std::atomic<long> took{0};
        std::this_thread::sleep_for(5ms);                  // both workers park
        auto a1 = rt.spawn(nap(10ms));                     // the owner wakes for this one ...
        auto a2 = rt.spawn(set_after(flag, 60ms));         // ... and re-parks as owner of this one, last
        std::this_thread::sleep_for(30ms);
        auto b = rt.spawn(spin_until(flag, 1000ms, took)); // lands on sleepers_.back() = the owner
        EXPECT_TRUE(wait_done(b, 10s));
        EXPECT_TRUE(wait_done(a2, 10s));
        EXPECT_TRUE(wait_done(a1, 10s));
        if (took.load() > 400) ++late;
        worst = std::max(worst, took.load());
    }
    EXPECT_EQ(late, 0) << "a due timer was not fired for " << worst
                       << " ms while the other worker slept (timer ownership lost)";
}

// ───── 5. Woken tasks stuck behind a waker that keeps running ─────
// ev.set() on worker W puts the woken tasks in W's wake area and notifies nobody (up
// to 16; more spill into W's run queue with a notify); the area is not stealable.
// While the setter keeps W busy without suspending, the woken tasks would wait for
// ever although the other worker is idle (Tokio's LIFO slot does). The stall monitor
// must move them to the idle worker. Before the monitor this test was skipped as a
// known trade-off (one task, the LIFO slot); with the 16-task area and no monitor it
// fails for every k below.
Task<void> event_waiter(Event& ev, std::atomic<int>& ran) {
    const bool r = co_await ev.wait();
    (void)r;
    ran.fetch_add(1);
}
Task<void> set_and_spin(Event& ev, std::atomic<int>& ran, int k, std::atomic<long>& took_ms) {
    ev.set();
    const auto t0 = std::chrono::steady_clock::now();
    while (ran.load() < k && std::chrono::steady_clock::now() - t0 < 5000ms) relax();
    took_ms.store(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
    co_return;
}
std::size_t count_of(const std::string& s, const std::string& what) {
    std::size_t n = 0;
    for (std::size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
    return n;
}

TEST(EngineAttack, WokenTasksRunWhileTheirWakerSpinsAndAWorkerIsIdle) {
    Runtime rt(RuntimeOptions{.workers = 2});
    for (const int k : {1, 4, 16, 40}) {
        Event ev;
        std::atomic<int> ran{0};
        std::atomic<long> took{0};
        std::vector<JoinHandle<void>> ws;
        for (int i = 0; i < k; ++i) ws.push_back(rt.spawn(event_waiter(ev, ran)));
        // Every waiter parked on ev (an explicit state, read from the dump).
        const auto t0 = std::chrono::steady_clock::now();
        while (count_of(rt.dump(), "parked on Event") < static_cast<std::size_t>(k)) {
            ASSERT_LT(std::chrono::steady_clock::now() - t0, 10s) << rt.dump();
            std::this_thread::yield();
        }
        const std::uint64_t rescued_before = rt.metrics().stall_rescues;
        auto s = rt.spawn(set_and_spin(ev, ran, k, took));
        EXPECT_TRUE(wait_done(s, 20s));
        for (auto& w : ws) EXPECT_TRUE(wait_done(w, 20s));
        EXPECT_EQ(ran.load(), k);
        // The setter spun until every woken task had run elsewhere: bounded by the
        // monitor (a 250 us wait, then its next look, 1 ms apart at most), not by the
        // spin's 5 s cap.
        EXPECT_LT(took.load(), 4000) << "k=" << k << ": woken tasks waited " << took.load()
                                     << " ms behind a spinning waker while a worker was idle";
        EXPECT_GT(rt.metrics().stall_rescues, rescued_before) << "k=" << k;
    }
}

}  // namespace
