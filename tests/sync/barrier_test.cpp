// spindle::Barrier — every member, every error, and asyncio.Barrier's behaviour at one
// worker (filling, draining, resetting, broken).
//
// Suites: SyncBarrier (members, errors, misuse), SyncBarrierAsyncio (ports of CPython
// 3.11's test_locks.py BarrierTests). Every expected trace is what CPython prints for
// the program of the same name in tests/sync/asyncio_sync_reference.py (asyncio's
// Barrier on a Condition with 3.13's wait(), as spindle's is built on its Condition;
// for these programs 3.11's Condition gives the same traces).
#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

#include "sync_test_util.hpp"

using namespace std::chrono_literals;
using spindle::Barrier;
using spindle::BrokenBarrierError;
using spindle::CancelledError;
using spindle::JoinHandle;
using spindle::Task;
using spindle::synctest::Eager;
using spindle::synctest::ended_cancelled;
using spindle::synctest::nm;
using spindle::synctest::one_worker;
using spindle::synctest::Trace;

namespace {

constexpr std::size_t N = 5;

template <class F>
std::vector<JoinHandle<void>> spawn_n(std::size_t n, F make) {
    std::vector<JoinHandle<void>> hs;
    for (std::size_t k = 0; k < n; ++k) hs.push_back(spindle::spawn(make(nm("t", static_cast<long long>(k)))));
    return hs;
}

Task<void> join_all(std::vector<JoinHandle<void>>& hs) {
    for (auto& h : hs) co_await h;
}

Eager wait_outside_task(Barrier& b, bool& got) {
    (void)co_await b.wait();
    got = true;
}

}  // namespace

// ─────────────────────────────── members and errors ───────────────────────────────

TEST(SyncBarrier, ZeroPartiesThrowsInvalidArgument) {  // test_barrier_parties
    EXPECT_THROW(Barrier(0), std::invalid_argument);
    try {
        Barrier b(0);
        ADD_FAILURE() << "no exception";
    } catch (const std::invalid_argument&) {
    } catch (...) {
        ADD_FAILURE() << "wrong exception type";
    }
    Barrier b(N);
    EXPECT_EQ(b.parties(), N);
    EXPECT_EQ(b.n_waiting(), 0u);
    EXPECT_FALSE(b.broken());
}

TEST(SyncBarrier, BrokenBarrierErrorIsARuntimeError) {
    static_assert(std::is_base_of_v<std::runtime_error, BrokenBarrierError>);
    BrokenBarrierError e;
    EXPECT_NE(std::string(e.what()).size(), 0u);
}

// Waiting calls need a task: wait() on a plain thread throws std::logic_error and
// leaves the barrier as it was.
TEST(SyncBarrier, WaitOutsideATaskThrowsLogicError) {
    Barrier b(2);
    bool got = false;
    {
        Eager e = wait_outside_task(b, got);
        EXPECT_TRUE(e.finished());
        EXPECT_THROW(e.rethrow(), std::logic_error);
    }
    EXPECT_FALSE(got);
    EXPECT_EQ(b.n_waiting(), 0u) << "the failed wait still counts";
    EXPECT_FALSE(b.broken());
    // ...and the barrier works afterwards, indices from 0.
    spindle::run(
        [](Barrier& br) -> Task<void> {
            auto t = spindle::spawn(br.wait());
            co_await spindle::yield_now();
            EXPECT_EQ(br.n_waiting(), 1u);
            const std::size_t mine = co_await br.wait();
            const std::size_t other = co_await t;
            EXPECT_EQ(other, 0u);
            EXPECT_EQ(mine, 1u);
        }(b),
        one_worker());
}

// A broken barrier fails every wait at once with BrokenBarrierError until reset().
CO_TEST_OPTS(SyncBarrier, AbortBreaksCurrentAndFutureWaitsUntilReset, one_worker()) {
    Barrier b(3);
    auto w = spindle::spawn(b.wait());
    co_await spindle::yield_now();
    EXPECT_EQ(b.n_waiting(), 1u);
    co_await b.abort();
    EXPECT_TRUE(b.broken());
    EXPECT_EQ(b.n_waiting(), 0u);
    int broken_errors = 0;
    try {
        (void)co_await w;
    } catch (const BrokenBarrierError&) {
        ++broken_errors;
    }
    for (int i = 0; i < 3; ++i) {
        try {
            (void)co_await b.wait();
        } catch (const BrokenBarrierError&) {
            ++broken_errors;
        }
    }
    EXPECT_EQ(broken_errors, 4);
    co_await b.abort();  // aborting twice is fine
    EXPECT_TRUE(b.broken());
    co_await b.reset();
    EXPECT_FALSE(b.broken());
    std::vector<JoinHandle<std::size_t>> ws;
    for (int i = 0; i < 3; ++i) ws.push_back(spindle::spawn(b.wait()));
    std::vector<std::size_t> idx;
    for (auto& h : ws) idx.push_back(co_await h);
    EXPECT_EQ(idx, (std::vector<std::size_t>{0, 1, 2}));
}

// ─────────────────────────────── asyncio ports (one worker) ───────────────────────────────

// test_filling_task_by_task: n_waiting counts the filling waiters; the last arrival
// gets the highest index and runs first.
CO_TEST_OPTS(SyncBarrierAsyncio, BarrierFillingTaskByTask, one_worker()) {
    Barrier barrier(3);
    Trace T;
    auto w = [&](std::string name) {
        return [](Barrier& b, Trace& tr, std::string nme) -> Task<void> {
            const std::size_t i = co_await b.wait();
            tr(nme + ":" + std::to_string(i));
        }(barrier, T, std::move(name));
    };
    auto t1 = spindle::spawn(w("t1"));
    co_await spindle::yield_now();
    T("n", barrier.n_waiting());
    auto t2 = spindle::spawn(w("t2"));
    co_await spindle::yield_now();
    T("n", barrier.n_waiting());
    auto t3 = spindle::spawn(w("t3"));
    co_await spindle::yield_now();
    T("n", barrier.n_waiting());
    co_await t1;
    co_await t2;
    co_await t3;
    T("n", barrier.n_waiting());
    T("broken", barrier.broken());
    EXPECT_EQ(T.str(), "n=1 n=2 t3:2 n=0 t1:0 t2:1 n=0 broken=0");
}

// test_filling_one_task_twice.
CO_TEST_OPTS(SyncBarrierAsyncio, BarrierFillingOneTaskTwice, one_worker()) {
    Barrier barrier(1);
    Trace T;
    auto t1 = spindle::spawn(barrier.wait());
    co_await spindle::yield_now();
    T("n", barrier.n_waiting());
    auto t2 = spindle::spawn(barrier.wait());
    co_await spindle::yield_now();
    EXPECT_TRUE(t1.done());
    EXPECT_TRUE(t2.done());
    const std::size_t r1 = co_await t1;
    const std::size_t r2 = co_await t2;
    T("r1", r1);
    T("r2", r2);
    T("n", barrier.n_waiting());
    T("broken", barrier.broken());
    EXPECT_EQ(T.str(), "n=0 r1=0 r2=0 n=0 broken=0");
}

// test_context_manager / test_draining_state: indices 0..N-1, n_waiting() is 0 while
// draining.
CO_TEST_OPTS(SyncBarrierAsyncio, BarrierIndicesAndDraining, one_worker()) {
    Barrier barrier(N);
    Trace T;
    std::vector<JoinHandle<std::size_t>> hs;
    for (std::size_t k = 0; k < N; ++k)
        hs.push_back(spindle::spawn([](Barrier& b, Trace& tr, std::string name) -> Task<std::size_t> {
            const std::size_t i = co_await b.wait();
            tr(name + ":" + std::to_string(i) + ":n=" + std::to_string(b.n_waiting()));
            co_return i;
        }(barrier, T, nm("t", static_cast<long long>(k)))));
    std::size_t sum = 0;
    for (auto& h : hs) sum += co_await h;
    T("sum", sum);
    T("n", barrier.n_waiting());
    T("broken", barrier.broken());
    EXPECT_EQ(T.str(), "t4:4:n=0 t0:0:n=0 t1:1:n=0 t2:2:n=0 t3:3:n=0 sum=10 n=0 broken=0");
}

// test_filling_tasks_wait_twice / test_filling_tasks_check_return_value.
CO_TEST_OPTS(SyncBarrierAsyncio, BarrierWaitTwice, one_worker()) {
    Barrier barrier(N);
    Trace T;
    auto hs = spawn_n(N, [&](std::string name) {
        return [](Barrier& b, Trace& tr, std::string nme) -> Task<void> {
            const std::size_t i = co_await b.wait();
            tr(nme + "a" + std::to_string(i));
            const std::size_t j = co_await b.wait();
            tr(nme + "b" + std::to_string(j));
        }(barrier, T, std::move(name));
    });
    co_await join_all(hs);
    T("n", barrier.n_waiting());
    T("broken", barrier.broken());
    EXPECT_EQ(T.str(), "t4a4 t0a0 t1a1 t2a2 t3a3 t2b4 t3b0 t4b1 t0b2 t1b3 n=0 broken=0");
}

// test_blocking_tasks_while_draining: tasks that come back while the barrier drains
// wait for the draining to end.
CO_TEST_OPTS(SyncBarrierAsyncio, BarrierBlockingWhileDraining, one_worker()) {
    Barrier barrier(N);
    Barrier barrier_nowaiting(N - 2);
    Trace T;
    int rewait = 2;
    auto hs = spawn_n(N, [&](std::string name) {
        return [](Barrier& b, Barrier& nw, Trace& tr, int& rw, std::string nme) -> Task<void> {
            (void)co_await b.wait();
            if (rw > 0) {
                --rw;
                const std::size_t i = co_await b.wait();
                tr(nme + ":r" + std::to_string(i));
            } else {
                (void)co_await nw.wait();
                const std::size_t i = co_await b.wait();
                tr(nme + ":w" + std::to_string(i));
            }
        }(barrier, barrier_nowaiting, T, rewait, std::move(name));
    });
    co_await join_all(hs);
    T("n", barrier.n_waiting());
    EXPECT_EQ(T.str(), "t2:w4 t3:w0 t4:r1 t0:r2 t1:w3 n=0");
}

// test_filling_tasks_cancel_one: a cancelled waiter leaves (n_waiting drops; asyncio's
// indices are then handed out again).
CO_TEST_OPTS(SyncBarrierAsyncio, BarrierFillingCancelOne, one_worker()) {
    Barrier barrier(3);
    Trace T;
    auto coro = [&](std::string name) {
        return [](Barrier& b, Trace& tr, std::string nme) -> Task<void> {
            const std::size_t i = co_await b.wait();
            tr(nme + ":" + std::to_string(i));
        }(barrier, T, std::move(name));
    };
    auto t1 = spindle::spawn(coro("t1"));
    co_await spindle::yield_now();
    T("n", barrier.n_waiting());
    auto t2 = spindle::spawn(coro("t2"));
    co_await spindle::yield_now();
    T("n", barrier.n_waiting());
    t1.cancel();
    co_await spindle::yield_now();
    T("n", barrier.n_waiting());
    const bool was_cancelled = co_await ended_cancelled(t1);
    if (was_cancelled) T("t1-cancelled");
    auto t3 = spindle::spawn(coro("t3"));
    co_await spindle::yield_now();
    T("n", barrier.n_waiting());
    auto t4 = spindle::spawn(coro("t4"));
    co_await t2;
    co_await t3;
    co_await t4;
    T("n", barrier.n_waiting());
    T("broken", barrier.broken());
    EXPECT_EQ(T.str(), "n=1 n=2 n=1 t1-cancelled n=2 t4:2 t2:1 t3:1 n=0 broken=0");
}

// test_reset_barrier.
CO_TEST_OPTS(SyncBarrierAsyncio, BarrierReset, one_worker()) {
    Barrier barrier(1);
    Trace T;
    auto r = spindle::spawn(barrier.reset());
    co_await spindle::yield_now();
    T("n", barrier.n_waiting());
    T("broken", barrier.broken());
    EXPECT_EQ(T.str(), "n=0 broken=0");
    co_await r;
}

// test_reset_barrier_while_tasks_waiting: reset() breaks the current waiters with
// BrokenBarrierError; the barrier is then usable again.
CO_TEST_OPTS(SyncBarrierAsyncio, BarrierResetWhileWaiting, one_worker()) {
    Barrier barrier(N);
    Trace T;
    auto hs = spawn_n(N - 1, [&](std::string name) {
        return [](Barrier& b, Trace& tr, std::string nme) -> Task<void> {
            try {
                (void)co_await b.wait();
                tr(nme + "-passed");
            } catch (const BrokenBarrierError&) {
                tr(nme + "-broken");
            }
        }(barrier, T, std::move(name));
    });
    co_await spindle::yield_now();
    T("n", barrier.n_waiting());
    auto r = spindle::spawn(barrier.reset());
    co_await join_all(hs);
    T("n", barrier.n_waiting());
    T("broken", barrier.broken());
    std::vector<JoinHandle<std::size_t>> ws;
    for (std::size_t k = 0; k < N; ++k) ws.push_back(spindle::spawn(barrier.wait()));
    std::size_t sum = 0;
    for (auto& h : ws) sum += co_await h;
    T("sum", sum);
    EXPECT_EQ(T.str(), "n=4 t0-broken t1-broken t2-broken t3-broken n=0 broken=0 sum=10");
    co_await r;
}

// test_reset_barrier_when_tasks_half_draining_half_blocking.
CO_TEST_OPTS(SyncBarrierAsyncio, BarrierResetHalfDrainingHalfBlocking, one_worker()) {
    Barrier barrier(N);
    Trace T;
    const int blocking = N / 2;
    int count = 0;
    auto hs = spawn_n(N, [&](std::string name) {
        return [](Barrier& b, Trace& tr, int& cnt, int blk, std::string nme) -> Task<void> {
            bool broke = false;
            try {
                (void)co_await b.wait();
            } catch (const BrokenBarrierError&) {
                broke = true;
            }
            if (broke) {
                tr(nme + "-r1");
                (void)co_await b.wait();
                co_return;
            }
            ++cnt;
            if (cnt > blk) {
                co_await b.reset();
                (void)co_await b.wait();
            } else {
                try {
                    (void)co_await b.wait();
                } catch (const BrokenBarrierError&) {
                    tr(nme + "-r2");
                }
            }
        }(barrier, T, count, blocking, std::move(name));
    });
    co_await join_all(hs);
    T("n", barrier.n_waiting());
    T("broken", barrier.broken());
    EXPECT_EQ(T.str(), "t2-r1 t3-r1 n=0 broken=0");
}

// test_reset_barrier_while_tasks_waiting_and_waiting_again.
CO_TEST_OPTS(SyncBarrierAsyncio, BarrierResetWhileWaitingAndWaitingAgain, one_worker()) {
    Barrier barrier(N);
    Trace T;
    auto hs = spawn_n(N - 1, [&](std::string name) {
        return [](Barrier& b, Trace& tr, std::string nme) -> Task<void> {
            try {
                (void)co_await b.wait();
            } catch (const BrokenBarrierError&) {
                tr(nme + "-broken");
            }
            (void)co_await b.wait();  // asyncio: in a `finally`
            tr(nme + "-again");
        }(barrier, T, std::move(name));
    });
    auto r = spindle::spawn(barrier.reset());
    co_await spindle::yield_now();
    auto c2 = spindle::spawn([](Barrier& b, Trace& tr) -> Task<void> {
        (void)co_await b.wait();
        tr("c2");
    }(barrier, T));
    co_await join_all(hs);
    T("broken", barrier.broken());
    T("n", barrier.n_waiting());
    EXPECT_EQ(T.str(),
              "t0-broken t1-broken t2-broken t3-broken t2-again t3-again c2 t0-again t1-again broken=0 n=0");
    co_await r;
    co_await c2;
}

// test_reset_barrier_while_tasks_draining.
CO_TEST_OPTS(SyncBarrierAsyncio, BarrierResetWhileDraining, one_worker()) {
    Barrier barrier(N);
    Trace T;
    int count = 0;
    auto hs = spawn_n(N, [&](std::string name) {
        return [](Barrier& b, Trace& tr, int& cnt, std::string nme) -> Task<void> {
            (void)co_await b.wait();
            ++cnt;
            if (cnt == static_cast<int>(N)) {
                co_await b.reset();
                (void)co_await b.wait();
            } else {
                try {
                    (void)co_await b.wait();
                    tr(nme + "-r1");
                } catch (const std::exception&) {
                    tr(nme + "-r2");
                }
            }
            (void)co_await b.wait();
            tr(nme + "-r3");
        }(barrier, T, count, std::move(name));
    });
    co_await join_all(hs);
    T("broken", barrier.broken());
    T("n", barrier.n_waiting());
    EXPECT_EQ(T.str(), "t2-r1 t4-r1 t0-r1 t1-r1 t0-r3 t1-r3 t2-r3 t3-r3 t4-r3 broken=0 n=0");
}

// test_abort_barrier (+ a wait on the broken barrier, and reset() repairing it).
CO_TEST_OPTS(SyncBarrierAsyncio, BarrierAbort, one_worker()) {
    Barrier barrier(1);
    Trace T;
    auto a = spindle::spawn(barrier.abort());
    co_await spindle::yield_now();
    T("n", barrier.n_waiting());
    T("broken", barrier.broken());
    try {
        (void)co_await barrier.wait();
        T("passed");
    } catch (const BrokenBarrierError&) {
        T("broken-error");
    }
    co_await barrier.reset();
    T("broken", barrier.broken());
    const std::size_t i = co_await barrier.wait();
    T("index", i);
    EXPECT_EQ(T.str(), "n=0 broken=1 broken-error broken=0 index=0");
    co_await a;
}

// test_abort_barrier_when_tasks_half_draining_half_blocking.
CO_TEST_OPTS(SyncBarrierAsyncio, BarrierAbortHalfDrainingHalfBlocking, one_worker()) {
    Barrier barrier(N);
    Trace T;
    const int blocking = N / 2;
    int count = 0;
    auto hs = spawn_n(N, [&](std::string name) {
        return [](Barrier& b, Trace& tr, int& cnt, int blk, std::string nme) -> Task<void> {
            try {
                (void)co_await b.wait();
            } catch (const BrokenBarrierError&) {
                tr(nme + "-r1");
                co_return;
            }
            ++cnt;
            if (cnt > blk) {
                co_await b.abort();
            } else {
                try {
                    (void)co_await b.wait();
                } catch (const BrokenBarrierError&) {
                    tr(nme + "-r2");
                }
            }
        }(barrier, T, count, blocking, std::move(name));
    });
    co_await join_all(hs);
    T("broken", barrier.broken());
    T("n", barrier.n_waiting());
    EXPECT_EQ(T.str(), "t2-r1 t3-r1 t4-r2 t0-r2 broken=1 n=0");
}

// test_abort_barrier_when_exception.
CO_TEST_OPTS(SyncBarrierAsyncio, BarrierAbortWhenException, one_worker()) {
    Barrier barrier(N);
    Trace T;
    auto hs = spawn_n(N, [&](std::string name) {
        return [](Barrier& b, Trace& tr, std::string nme) -> Task<void> {
            bool runtime_error = false;
            try {
                const std::size_t i = co_await b.wait();
                if (i == N / 2) throw std::runtime_error("boom");
                (void)co_await b.wait();
                tr(nme + "-r1");
            } catch (const BrokenBarrierError&) {
                tr(nme + "-r2");
            } catch (const std::runtime_error&) {
                runtime_error = true;
            }
            if (runtime_error) {
                co_await b.abort();
                tr(nme + "-aborted");
            }
        }(barrier, T, std::move(name));
    });
    co_await join_all(hs);
    T("broken", barrier.broken());
    T("n", barrier.n_waiting());
    EXPECT_EQ(T.str(), "t2-aborted t3-r2 t4-r2 t0-r2 t1-r2 broken=1 n=0");
}

// test_abort_barrier_when_exception_then_resetting.
CO_TEST_OPTS(SyncBarrierAsyncio, BarrierAbortThenReset, one_worker()) {
    Barrier barrier1(N);
    Barrier barrier2(N);
    Trace T;
    auto hs = spawn_n(N, [&](std::string name) {
        return [](Barrier& b1, Barrier& b2, Trace& tr, std::string nme) -> Task<void> {
            bool runtime_error = false;
            try {
                const std::size_t i = co_await b1.wait();
                if (i == N / 2) throw std::runtime_error("boom");
                (void)co_await b1.wait();
                tr(nme + "-r1");
            } catch (const BrokenBarrierError&) {
                tr(nme + "-r2");
            } catch (const std::runtime_error&) {
                runtime_error = true;
            }
            if (runtime_error) co_await b1.abort();
            const std::size_t i = co_await b2.wait();
            if (i == N / 2) co_await b1.reset();
            (void)co_await b2.wait();
            (void)co_await b1.wait();
            tr(nme + "-r3");
        }(barrier1, barrier2, T, std::move(name));
    });
    co_await join_all(hs);
    T("broken", barrier1.broken());
    T("n", barrier1.n_waiting());
    EXPECT_EQ(T.str(), "t3-r2 t4-r2 t0-r2 t1-r2 t3-r3 t4-r3 t0-r3 t1-r3 t2-r3 broken=0 n=0");
}

// asyncio.wait_for(barrier.wait(), t) timing out: the waiter leaves (n_waiting drops),
// the barrier is not broken, and the next round fills normally.
CO_TEST_OPTS(SyncBarrierAsyncio, BarrierWaitForTimeout, one_worker()) {
    Barrier barrier(2);
    Trace T;
    try {
        (void)co_await spindle::wait_for(barrier.wait(), 10ms);
        T("passed");
    } catch (const spindle::TimeoutError&) {
        T("timeout");
    }
    T("n", barrier.n_waiting());
    T("broken", barrier.broken());
    auto t = spindle::spawn(barrier.wait());
    co_await spindle::yield_now();
    T("n", barrier.n_waiting());
    const std::size_t mine = co_await barrier.wait();
    T("index", mine);
    const std::size_t other = co_await t;
    T("other", other);
    EXPECT_EQ(T.str(), "timeout n=0 broken=0 n=1 index=1 other=0");
}

// Reuse across rounds: each round hands out 0..parties-1 once.
CO_TEST_OPTS(SyncBarrierAsyncio, BarrierRounds, one_worker()) {
    Barrier barrier(3);
    Trace T;
    std::vector<JoinHandle<void>> hs;
    for (const char* n : {"a", "b", "c"})
        hs.push_back(spindle::spawn([](Barrier& b, Trace& tr, std::string name) -> Task<void> {
            for (int r = 0; r < 3; ++r) {
                const std::size_t i = co_await b.wait();
                tr(name + std::to_string(r) + ":" + std::to_string(i));
            }
        }(barrier, T, n)));
    co_await join_all(hs);
    T("n", barrier.n_waiting());
    EXPECT_EQ(T.str(), "c0:2 a0:0 b0:1 a1:2 b1:0 c1:1 b2:2 c2:0 a2:1 n=0");
}

// ─────────────────── the direct engine (two workers; barrier.hpp D1-D4) ───────────────────
// On more than one worker a Barrier is a round counter, one WaitQueue and a spin lock
// (no Condition, no drain). These tests pin its semantics: the same indices, errors,
// cancellation and timeouts as asyncio's, without the one-worker trace.

namespace {

spindle::RuntimeOptions two_workers() { return spindle::RuntimeOptions{.workers = 2}; }

/// Yields until `b` counts `n` arrivals in the open round (an explicit event: the
/// arrivals are what the test waits for; no sleep).
Task<void> until_waiting(Barrier& b, std::size_t n) {
    while (b.n_waiting() != n) co_await spindle::yield_now();
}

Task<std::size_t> wait_once(Barrier& b) { co_return co_await b.wait(); }

/// 0 = returned an index, 1 = BrokenBarrierError, 2 = CancelledError, 3 = TimeoutError.
Task<int> wait_outcome(Barrier& b, std::chrono::nanoseconds timeout = std::chrono::nanoseconds::max()) {
    try {
        if (timeout == std::chrono::nanoseconds::max()) (void)co_await b.wait();
        else (void)co_await spindle::wait_for(b.wait(), timeout);
        co_return 0;
    } catch (const BrokenBarrierError&) {
        co_return 1;
    } catch (const CancelledError&) {
        co_return 2;
    } catch (const spindle::TimeoutError&) {
        co_return 3;
    }
}

}  // namespace

// Every round hands out each index 0..parties-1 once: round r is made of every task's
// r-th wait (a task cannot reach its (r+1)-th wait before round r has passed).
CO_TEST_OPTS(SyncBarrierDirect, RoundsHandOutEachIndexOnce, two_workers()) {
    constexpr std::size_t kParties = 16;
    constexpr std::size_t kRounds = 300;
    Barrier b(kParties);
    std::vector<std::atomic<int>> seen(kRounds * kParties);
    std::vector<JoinHandle<void>> hs;
    for (std::size_t p = 0; p < kParties; ++p)
        hs.push_back(spindle::spawn([](Barrier& br, std::vector<std::atomic<int>>& sn) -> Task<void> {
            for (std::size_t r = 0; r < kRounds; ++r) {
                const std::size_t i = co_await br.wait();
                if (i < kParties) sn[r * kParties + i].fetch_add(1);
                else ADD_FAILURE() << "index " << i;
            }
        }(b, seen)));
    co_await join_all(hs);
    std::size_t bad = 0;
    for (auto& s : seen) bad += s.load() == 1 ? 0 : 1;
    EXPECT_EQ(bad, 0u);
    EXPECT_EQ(b.n_waiting(), 0u);
    EXPECT_FALSE(b.broken());
}

// A cancelled waiter stops counting while its round is open (asyncio: its `finally`
// takes it off the count), so the round still needs `parties` live arrivals.
CO_TEST_OPTS(SyncBarrierDirect, CancelledWaiterStopsCounting, two_workers()) {
    Barrier b(3);
    auto w1 = spindle::spawn(wait_once(b));
    co_await until_waiting(b, 1);
    auto w2 = spindle::spawn(wait_once(b));
    co_await until_waiting(b, 2);
    w2.cancel();
    const bool c = co_await ended_cancelled(std::move(w2));
    EXPECT_TRUE(c);
    EXPECT_EQ(b.n_waiting(), 1u);
    auto w3 = spindle::spawn(wait_once(b));
    co_await until_waiting(b, 2);
    const std::size_t mine = co_await b.wait();
    const std::size_t i1 = co_await w1;
    const std::size_t i3 = co_await w3;
    EXPECT_EQ(mine, 2u);
    EXPECT_EQ(i1 + i3, 1u) << "the two others hold 0 and 1";
    EXPECT_EQ(b.n_waiting(), 0u);
}

// A wait_for that times out leaves the barrier as it was.
CO_TEST_OPTS(SyncBarrierDirect, TimeoutLeavesTheCountAsItWas, two_workers()) {
    Barrier b(2);
    const int r = co_await wait_outcome(b, 5ms);
    EXPECT_EQ(r, 3);
    EXPECT_EQ(b.n_waiting(), 0u);
    EXPECT_FALSE(b.broken());
    auto other = spindle::spawn(wait_once(b));
    co_await until_waiting(b, 1);
    const std::size_t mine = co_await b.wait();
    const std::size_t theirs = co_await other;
    EXPECT_EQ(mine, 1u);
    EXPECT_EQ(theirs, 0u);
}

// reset() breaks the open round (its waiters get BrokenBarrierError) and refills.
CO_TEST_OPTS(SyncBarrierDirect, ResetBreaksTheOpenRoundAndRefills, two_workers()) {
    Barrier b(4);
    std::vector<JoinHandle<int>> hs;
    for (int k = 0; k < 3; ++k) {
        hs.push_back(spindle::spawn(wait_outcome(b)));
        co_await until_waiting(b, static_cast<std::size_t>(k) + 1);
    }
    co_await b.reset();
    EXPECT_FALSE(b.broken());
    EXPECT_EQ(b.n_waiting(), 0u);
    for (auto& h : hs) {
        const int r = co_await h;
        EXPECT_EQ(r, 1) << "a waiter of the reset round";
    }
    // The next round starts from index 0.
    std::vector<JoinHandle<std::size_t>> next;
    for (int k = 0; k < 3; ++k) next.push_back(spindle::spawn(wait_once(b)));
    co_await until_waiting(b, 3);
    const std::size_t mine = co_await b.wait();
    EXPECT_EQ(mine, 3u);
    std::size_t sum = 0;
    for (auto& h : next) sum += co_await h;
    EXPECT_EQ(sum, 0u + 1u + 2u);
}

// abort() breaks current and future waits until reset(); reset() repairs it.
CO_TEST_OPTS(SyncBarrierDirect, AbortBreaksUntilReset, two_workers()) {
    Barrier b(2);
    auto w = spindle::spawn(wait_outcome(b));
    co_await until_waiting(b, 1);
    co_await b.abort();
    EXPECT_TRUE(b.broken());
    const int r = co_await w;
    EXPECT_EQ(r, 1);
    const int later = co_await wait_outcome(b);
    EXPECT_EQ(later, 1) << "a wait on an aborted barrier fails at once";
    co_await b.reset();
    EXPECT_FALSE(b.broken());
    auto w2 = spindle::spawn(wait_once(b));
    co_await until_waiting(b, 1);
    const std::size_t mine = co_await b.wait();
    const std::size_t theirs = co_await w2;
    EXPECT_EQ(mine + theirs, 1u);
}

// Waiting still needs a task, and the first call picks the engine only then.
TEST(SyncBarrierDirect, WaitOutsideATaskThrowsThenWorksOnTwoWorkers) {
    Barrier b(2);
    bool got = false;
    {
        Eager e = wait_outside_task(b, got);
        EXPECT_THROW(e.rethrow(), std::logic_error);
    }
    EXPECT_FALSE(got);
    const std::size_t sum = spindle::run(
        [](Barrier& br) -> Task<std::size_t> {
            auto t = spindle::spawn(wait_once(br));
            co_await until_waiting(br, 1);
            const std::size_t mine = co_await br.wait();
            co_return mine + co_await t;
        }(b),
        two_workers());
    EXPECT_EQ(sum, 1u);
}

// The races the direct engine arbitrates, on two workers: waiters that time out while
// their round closes (D4), resets that break rounds while waiters arrive and leave
// (D2, D3). Nothing may hang, no index may repeat within a passed round, and a clean
// round afterwards must still work from index 0.
CO_TEST_OPTS(SyncBarrierDirect, TimeoutsAndResetsRacingRoundsLoseNothing, two_workers()) {
    constexpr std::size_t kParties = 3;
    const int iters = spindle::synctest::kSanitized ? 300 : 3000;
    Barrier b(kParties);
    std::atomic<int> passed{0}, broken{0}, timeouts{0};
    std::atomic<bool> stop{false};
    std::vector<JoinHandle<void>> hs;
    for (std::size_t p = 0; p < kParties + 1; ++p)
        hs.push_back(spindle::spawn(
            [](Barrier& br, std::atomic<int>& ps, std::atomic<int>& bk, std::atomic<int>& to, int n,
               std::size_t me) -> Task<void> {
                for (int k = 0; k < n; ++k) {
                    // Even tasks are sometimes late, so that odd ones time out, some
                    // just as a late arrival closes their round.
                    if (me % 2 == 0 && k % 4 == static_cast<int>(me))
                        for (int y = 0; y < 20; ++y) co_await spindle::yield_now();
                    // Odd tasks use a timeout short enough to race the round closing.
                    const auto limit = (me % 2 == 1) ? std::chrono::nanoseconds(k % 2 == 0 ? 1us : 5us) : std::chrono::nanoseconds::max();
                    const int r = co_await wait_outcome(br, limit);
                    (r == 0 ? ps : r == 1 ? bk : to).fetch_add(1);
                }
            }(b, passed, broken, timeouts, iters, p)));
    auto resetter = spindle::spawn([](Barrier& br, std::atomic<bool>& st) -> Task<void> {
        while (!st.load()) {
            co_await br.reset();
            for (int k = 0; k < 50; ++k) co_await spindle::yield_now();
        }
    }(b, stop));
    // Four tasks on a barrier of three: the fourth's arrivals keep rounds closing even
    // when a timed-out waiter leaves one short; the resetter breaks the rest.
    for (auto& h : hs) co_await h;
    stop.store(true);
    co_await resetter;
    EXPECT_EQ(passed.load() + broken.load() + timeouts.load(), static_cast<int>(kParties + 1) * iters);
    EXPECT_GT(passed.load(), 0);
    EXPECT_EQ(b.n_waiting(), 0u) << "every wait ended: nobody may still count (D4)";
    co_await b.reset();
    EXPECT_EQ(b.n_waiting(), 0u);
    std::vector<JoinHandle<std::size_t>> last;
    for (std::size_t k = 0; k + 1 < kParties; ++k) last.push_back(spindle::spawn(wait_once(b)));
    co_await until_waiting(b, kParties - 1);
    const std::size_t mine = co_await b.wait();
    EXPECT_EQ(mine, kParties - 1);
    for (auto& h : last) (void)co_await h;
    EXPECT_EQ(b.n_waiting(), 0u);
}
