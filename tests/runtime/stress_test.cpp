// Scale and stress shapes (label "stress"). Sizes are multiplied by
// SPINDLE_STRESS_SCALE (CMake cache, default 1) and divided by 10 under sanitizers;
// every test also runs under a ctest TIMEOUT, so a lost wake-up fails as a timeout.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "runtime_test_util.hpp"

using namespace std::chrono_literals;
using spindle::CancelledError;
using spindle::JoinHandle;
using spindle::Runtime;
using spindle::RuntimeOptions;
using spindle::Task;
using spindle::testing::stress_size;

namespace {

constexpr auto kBound = 20s;  // bound on any single wait: a bug fails instead of hanging

Task<std::uint64_t> identity(std::uint64_t v) { co_return v; }

Task<int> value_after_yield(int v) {
    co_await spindle::yield_now();
    co_return v;
}

std::uint64_t burn(std::uint64_t x, int iters) {
    for (int i = 0; i < iters; ++i) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return x;
}

}  // namespace

// WORKLOADS.md "spawn_join": spawn 1,000,000 tasks from one task, then await all.
CO_TEST(Stress, SpawnOneMillionFromOneTaskThenAwaitAll) {
    const std::size_t n = stress_size(1'000'000);
    std::vector<JoinHandle<std::uint64_t>> hs;
    hs.reserve(n);
    for (std::size_t i = 0; i < n; ++i) hs.push_back(spindle::spawn(identity(i)));
    std::uint64_t sum = 0;
    for (auto& h : hs) sum += co_await h;
    EXPECT_EQ(sum, static_cast<std::uint64_t>(n) * (n - 1) / 2);
    std::size_t done = 0;
    for (auto& h : hs) done += h.done() ? 1 : 0;
    EXPECT_EQ(done, n);
}

// One task spawns CPU-bound tasks on its own worker; the other worker can only get
// them by stealing (200 tasks fit in the spawner's local queue, so none overflow to
// the global queue). Every task records the thread it ran on.
TEST(Stress, StealingUnderImbalance) {
    Runtime rt(RuntimeOptions{.workers = 2});
    struct Shared {
        std::mutex mx;
        std::set<std::thread::id> ids;
        std::atomic<bool> two_seen{false};
        std::chrono::steady_clock::time_point deadline;
    };
    struct Local {
        static Task<std::uint64_t> cpu(Shared& s, int work) {
            std::uint64_t x = burn(static_cast<std::uint64_t>(work), work);
            {
                std::lock_guard lk(s.mx);
                s.ids.insert(std::this_thread::get_id());
                if (s.ids.size() >= 2) s.two_seen.store(true);
            }
            // Keep this worker busy until the other one shows up (bounded), so that a
            // fast worker cannot run everything before the thief wakes.
            while (!s.two_seen.load() && std::chrono::steady_clock::now() < s.deadline) x = burn(x, 64);
            co_return x;
        }
        static Task<std::uint64_t> body(Shared& s) {
            s.deadline = std::chrono::steady_clock::now() + kBound;
            std::vector<JoinHandle<std::uint64_t>> hs;
            for (int i = 0; i < 200; ++i) hs.push_back(spindle::spawn(cpu(s, 2000 + i)));
            std::uint64_t acc = 0;
            for (auto& h : hs) acc ^= co_await h;
            co_return acc;
        }
    };
    Shared sh;
    (void)rt.block_on(Local::body(sh));
    EXPECT_EQ(sh.ids.size(), 2U) << "both worker threads must have run some of the tasks";
    EXPECT_GT(rt.metrics().steals, 0U);
}

// All workers park, then a plain thread wakes them with Runtime::spawn; no wake-up may
// be lost. After every other round the test thread waits (bounded) until the worker
// that ran the round's task has announced itself parked again, so the next spawn
// lands on a fully idle runtime; the other rounds race the spawn with the parking.
void park_then_spawn_rounds(const RuntimeOptions& opts, std::size_t rounds) {
    Runtime rt(opts);
    struct Local {
        static Task<void> signal(std::shared_ptr<std::promise<std::size_t>> p, std::size_t i) {
            p->set_value(i);
            co_return;
        }
    };
    std::size_t settled = 0;
    for (std::size_t i = 0; i < rounds; ++i) {
        const auto parks_before = rt.metrics().parks;
        auto p = std::make_shared<std::promise<std::size_t>>();
        auto f = p->get_future();
        (void)rt.spawn(Local::signal(std::move(p), i));
        if (f.wait_for(kBound) != std::future_status::ready) {
            ADD_FAILURE() << "lost wake-up: round " << i << " never ran\n" << rt.dump();
            return;
        }
        ASSERT_EQ(f.get(), i);
        if (i % 2 == 1) {
            const auto limit = std::chrono::steady_clock::now() + 1s;
            while (rt.metrics().parks == parks_before && std::chrono::steady_clock::now() < limit)
                std::this_thread::yield();
            settled += rt.metrics().parks != parks_before ? 1 : 0;
        }
    }
    EXPECT_GT(settled, 0U) << "the workers never parked between rounds";
}

TEST(Stress, ParkedWorkersWokenBySpawnFromPlainThread) {
    park_then_spawn_rounds(RuntimeOptions{.workers = 2}, stress_size(10'000));
}

TEST(Stress, ParkedSingleWorkerWokenBySpawnFromPlainThread) {
    park_then_spawn_rounds(RuntimeOptions{.workers = 1}, stress_size(10'000));
}

TEST(Stress, ParkedVirtualTimeWorkerWokenBySpawnFromPlainThread) {
    park_then_spawn_rounds(RuntimeOptions{.workers = 1, .virtual_time = true}, stress_size(5'000));
}

// The wake goes to a parked *task* (asleep in a real-time sleep) through cancel()
// from a plain thread, while every worker is idle.
TEST(Stress, ParkedTaskWokenByCancelFromPlainThread) {
    Runtime rt(RuntimeOptions{.workers = 2});
    struct Local {
        static Task<void> sleeper(std::shared_ptr<std::promise<void>> started,
                                  std::shared_ptr<std::promise<bool>> out) {
            started->set_value();
            try {
                co_await spindle::sleep(1h);
                out->set_value(false);
            } catch (const CancelledError&) {
                out->set_value(true);
                throw;
            }
        }
    };
    const std::size_t rounds = stress_size(2'000);
    for (std::size_t i = 0; i < rounds; ++i) {
        auto started = std::make_shared<std::promise<void>>();
        auto out = std::make_shared<std::promise<bool>>();
        auto fs = started->get_future();
        auto fo = out->get_future();
        auto h = rt.spawn(Local::sleeper(started, out));
        ASSERT_EQ(fs.wait_for(kBound), std::future_status::ready) << "round " << i;
        EXPECT_TRUE(h.cancel());
        ASSERT_EQ(fo.wait_for(kBound), std::future_status::ready) << "lost cancel wake-up in round " << i;
        EXPECT_TRUE(fo.get());
    }
}

// block_on from the test thread, round after round: each is an injection plus an
// external join.
TEST(Stress, BlockOnRounds) {
    Runtime rt(RuntimeOptions{.workers = 2});
    const std::size_t rounds = stress_size(5'000);
    for (std::size_t i = 0; i < rounds; ++i)
        ASSERT_EQ(rt.block_on(value_after_yield(static_cast<int>(i))), static_cast<int>(i));
}

// WORKLOADS.md "yield_many", scaled down: 200 tasks each yield many times.
CO_TEST(Stress, ManyTasksYieldingOnTwoWorkers) {
    const int tasks = 200;
    const int yields = static_cast<int>(stress_size(1'000));
    std::atomic<std::int64_t> total{0};
    struct Local {
        static Task<void> yielder(std::atomic<std::int64_t>& t, int n) {
            for (int i = 0; i < n; ++i) {
                co_await spindle::yield_now();
                // relaxed: a count, read after every yielder is joined (the join orders it).
                t.fetch_add(1, std::memory_order_relaxed);
            }
        }
    };
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < tasks; ++i) hs.push_back(spindle::spawn(Local::yielder(total, yields)));
    for (auto& h : hs) co_await h;
    EXPECT_EQ(total.load(), static_cast<std::int64_t>(tasks) * yields);
}

// WORKLOADS.md "fib_spawn", smaller: every call spawns both children and joins them.
CO_TEST(Stress, FibSpawn) {
    struct Local {
        static Task<std::uint64_t> fib(int n) {
            if (n < 2) co_return static_cast<std::uint64_t>(n);
            auto a = spindle::spawn(fib(n - 1));
            auto b = spindle::spawn(fib(n - 2));
            co_return co_await a + co_await b;
        }
    };
    const int n = spindle::testing::kSanitized ? 16 : 22;
    std::uint64_t x = 0;
    std::uint64_t y = 1;
    for (int i = 0; i < n; ++i) {
        const std::uint64_t z = x + y;
        x = y;
        y = z;
    }
    EXPECT_EQ(co_await Local::fib(n), x);
}

// Cancels race with tasks that are just starting, arming their sleep, or parked.
TEST(Stress, CancelStormFromPlainThread) {
    Runtime rt(RuntimeOptions{.workers = 2});
    const std::size_t n = stress_size(20'000);
    std::atomic<int> finished_sleep{0};
    struct Local {
        static Task<void> sleeper(std::atomic<int>& f) {
            co_await spindle::yield_now();
            co_await spindle::sleep(1h);
            f.fetch_add(1);
        }
    };
    std::vector<JoinHandle<void>> hs;
    hs.reserve(n);
    std::thread spawner([&] {
        for (std::size_t i = 0; i < n; ++i) hs.push_back(rt.spawn(Local::sleeper(finished_sleep)));
    });
    spawner.join();
    std::thread canceller([&] {
        for (auto& h : hs) EXPECT_TRUE(h.cancel() || h.done());
    });
    canceller.join();
    struct Wait {
        static Task<int> all(std::vector<JoinHandle<void>>& v) {
            int cancelled = 0;
            for (auto& h : v) {
                try {
                    co_await h;
                } catch (const CancelledError&) {
                    ++cancelled;
                }
            }
            co_return cancelled;
        }
    };
    EXPECT_EQ(rt.block_on(Wait::all(hs)), static_cast<int>(n));
    EXPECT_EQ(finished_sleep.load(), 0);
    for (auto& h : hs) EXPECT_TRUE(h.cancelled());
}

// Many short real-time timers on two workers: all fire, none early.
CO_TEST(Stress, ManyShortRealTimers) {
    const int n = static_cast<int>(stress_size(2'000));
    std::atomic<int> early{0};
    std::atomic<int> fired{0};
    struct Local {
        static Task<void> sleeper(std::atomic<int>& e, std::atomic<int>& f, std::chrono::microseconds d) {
            const auto t0 = std::chrono::steady_clock::now();
            co_await spindle::sleep(d);
            if (std::chrono::steady_clock::now() - t0 < d) e.fetch_add(1);
            f.fetch_add(1);
        }
    };
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < n; ++i)
        hs.push_back(spindle::spawn(Local::sleeper(early, fired, std::chrono::microseconds(50 + (i * 37) % 2000))));
    for (auto& h : hs) co_await h;
    EXPECT_EQ(fired.load(), n);
    EXPECT_EQ(early.load(), 0);
}

// Joins racing with completions on the other worker.
CO_TEST(Stress, JoinRacesCompletion) {
    const int n = static_cast<int>(stress_size(20'000));
    struct Local {
        static Task<int> maybe_yield(int i) {
            if (i % 3 == 0) co_await spindle::yield_now();
            co_return i;
        }
        static Task<long> joiner(JoinHandle<int> h) { co_return co_await h; }
    };
    std::vector<JoinHandle<long>> joiners;
    joiners.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) joiners.push_back(spindle::spawn(Local::joiner(spindle::spawn(Local::maybe_yield(i)))));
    long sum = 0;
    for (auto& j : joiners) sum += co_await j;
    EXPECT_EQ(sum, static_cast<long>(n) * (n - 1) / 2);
}

// Completion skips the join lock while no joiner ever registered (kJoined clear) and
// takes it otherwise (task_header.hpp). Three joiners per task register at every
// point of its run, before, during and after its completion, on both workers; a
// joiner missed by the fast path hangs (ctest TIMEOUT), a wrong outcome shows in
// the sums.
CO_TEST(Stress, SeveralJoinersRaceTheCompletionFastPath) {
    const int n = static_cast<int>(stress_size(6'000));
    struct Local {
        static Task<std::uint64_t> work(int i) {
            // 0..63 rounds of burn: completions land anywhere among the joins.
            co_return burn(static_cast<std::uint64_t>(i), (i * 37) % 64) % 1000 + static_cast<std::uint64_t>(i);
        }
        static Task<std::uint64_t> joiner(JoinHandle<std::uint64_t> h, bool yield_first) {
            if (yield_first) co_await spindle::yield_now();
            co_return co_await h;
        }
    };
    std::vector<JoinHandle<std::uint64_t>> joiners;
    joiners.reserve(static_cast<std::size_t>(n) * 3);
    std::uint64_t expect = 0;
    for (int i = 0; i < n; ++i) {
        auto h = spindle::spawn(Local::work(i));
        expect += 3 * (burn(static_cast<std::uint64_t>(i), (i * 37) % 64) % 1000 + static_cast<std::uint64_t>(i));
        for (int k = 0; k < 3; ++k) joiners.push_back(spindle::spawn(Local::joiner(h, k == 1)));
    }
    std::uint64_t sum = 0;
    for (auto& j : joiners) sum += co_await j;
    EXPECT_EQ(sum, expect);
}
