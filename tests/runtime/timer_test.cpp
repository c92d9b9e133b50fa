// Timers: sleep under virtual time (deterministic) and a few real-time sanity checks.
#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "runtime_test_util.hpp"

using namespace std::chrono_literals;
using spindle::Task;
using spindle::testing::join_trace;
using spindle::testing::one_worker_virtual;

namespace {

using Trace = std::vector<std::string>;

struct Wake {
    int id;
    std::chrono::nanoseconds at;
};

Task<void> sleep_and_record(std::vector<Wake>& wakes, int id, std::chrono::nanoseconds d) {
    co_await spindle::sleep(d);
    wakes.push_back({id, spindle::now()});
}

Task<void> append(Trace& trace, std::string s) {
    trace.push_back(std::move(s));
    co_return;
}

Task<void> real_sleeper(std::mutex& mx, std::vector<std::chrono::nanoseconds>& elapsed, std::chrono::milliseconds d) {
    const auto t0 = std::chrono::steady_clock::now();
    co_await spindle::sleep(d);
    const auto dt = std::chrono::steady_clock::now() - t0;
    std::lock_guard lk(mx);
    elapsed.push_back(dt);
}

}  // namespace

CO_TEST_OPTS(Timer, VirtualSleepsFireInDeadlineOrder, one_worker_virtual()) {
    const std::vector<std::chrono::milliseconds> delays{50ms, 10ms, 40ms, 20ms, 30ms, 5ms};
    std::vector<Wake> wakes;
    const auto t0 = spindle::now();
    std::vector<spindle::JoinHandle<void>> hs;
    for (std::size_t i = 0; i < delays.size(); ++i)
        hs.push_back(spindle::spawn(sleep_and_record(wakes, static_cast<int>(i), delays[i])));
    for (auto& h : hs) co_await h;
    CO_ASSERT_EQ(wakes.size(), delays.size());
    for (std::size_t i = 1; i < wakes.size(); ++i)
        EXPECT_LT(delays[static_cast<std::size_t>(wakes[i - 1].id)], delays[static_cast<std::size_t>(wakes[i].id)]);
    for (const Wake& w : wakes)
        EXPECT_EQ(w.at - t0, delays[static_cast<std::size_t>(w.id)]) << "task " << w.id << " woke at the wrong time";
    EXPECT_EQ(spindle::now() - t0, 50ms);
}

CO_TEST_OPTS(Timer, EqualDeadlinesFireInScheduleOrder, one_worker_virtual()) {
    const int n = 32;
    std::vector<Wake> wakes;
    std::vector<spindle::JoinHandle<void>> hs;
    for (int i = 0; i < n; ++i) hs.push_back(spindle::spawn(sleep_and_record(wakes, i, 7ms)));
    for (auto& h : hs) co_await h;
    CO_ASSERT_EQ(wakes.size(), static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) EXPECT_EQ(wakes[static_cast<std::size_t>(i)].id, i);
}

// Equal deadlines reached from different start times and durations.
CO_TEST_OPTS(Timer, EqualDeadlinesFromDifferentStartsKeepScheduleOrder, one_worker_virtual()) {
    std::vector<Wake> wakes;
    // Scheduled at t=0 for t=30ms.
    auto a = spindle::spawn(sleep_and_record(wakes, 0, 30ms));
    co_await spindle::sleep(10ms);
    // Scheduled at t=10ms for t=30ms: after a.
    auto b = spindle::spawn(sleep_and_record(wakes, 1, 20ms));
    co_await spindle::sleep(10ms);
    // Scheduled at t=20ms for t=30ms: after b.
    auto c = spindle::spawn(sleep_and_record(wakes, 2, 10ms));
    co_await a;
    co_await b;
    co_await c;
    CO_ASSERT_EQ(wakes.size(), 3U);
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(wakes[static_cast<std::size_t>(i)].id, i);
        EXPECT_EQ(wakes[static_cast<std::size_t>(i)].at, wakes[0].at);
    }
}

CO_TEST_OPTS(Timer, VirtualNowAdvancesExactlyBySleptAmount, one_worker_virtual()) {
    auto t0 = spindle::now();
    co_await spindle::sleep(10s);
    EXPECT_EQ(spindle::now() - t0, 10s);
    auto t1 = spindle::now();
    co_await spindle::sleep(250ms);
    EXPECT_EQ(spindle::now() - t1, 250ms);
    auto t2 = spindle::now();
    co_await spindle::sleep(std::chrono::microseconds(3));
    EXPECT_EQ(spindle::now() - t2, 3us);
    auto t3 = spindle::now();
    co_await spindle::sleep(std::chrono::nanoseconds(1));
    EXPECT_EQ(spindle::now() - t3, 1ns);
    auto t4 = spindle::now();
    co_await spindle::sleep(std::chrono::hours(24 * 365));
    EXPECT_EQ(spindle::now() - t4, std::chrono::hours(24 * 365));
    EXPECT_EQ(spindle::now() - t0, 10s + 250ms + 3us + 1ns + std::chrono::hours(24 * 365));
}

// Fractional durations are accepted (asyncio takes floats).
CO_TEST_OPTS(Timer, FloatingPointDuration, one_worker_virtual()) {
    auto t0 = spindle::now();
    co_await spindle::sleep(std::chrono::duration<double>(0.5));
    EXPECT_EQ(spindle::now() - t0, 500ms);
}

CO_TEST_OPTS(Timer, ZeroAndNegativeSleepActAsYield, one_worker_virtual()) {
    Trace trace;
    const auto t0 = spindle::now();
    auto a = spindle::spawn(append(trace, "A"));
    co_await spindle::sleep(0ms);  // asyncio.sleep(0): goes behind A
    trace.push_back("M1");
    auto b = spindle::spawn(append(trace, "B"));
    co_await spindle::sleep(-5ms);  // negative = zero
    trace.push_back("M2");
    auto c = spindle::spawn(append(trace, "C"));
    co_await spindle::sleep(std::chrono::seconds(-100));
    trace.push_back("M3");
    co_await a;
    co_await b;
    co_await c;
    EXPECT_EQ(join_trace(trace), "A M1 B M2 C M3");
    EXPECT_EQ(spindle::now(), t0) << "a zero or negative sleep must not move the clock";
}

// A zero sleep must not wait for timers that are pending: it only yields.
CO_TEST_OPTS(Timer, ZeroSleepDoesNotWaitForPendingTimers, one_worker_virtual()) {
    std::vector<Wake> wakes;
    auto h = spindle::spawn(sleep_and_record(wakes, 1, 1s));
    co_await spindle::yield_now();  // h is now sleeping
    const auto t0 = spindle::now();
    for (int i = 0; i < 10; ++i) co_await spindle::sleep(0s);
    EXPECT_EQ(spindle::now(), t0);
    EXPECT_TRUE(wakes.empty());
    co_await h;
    CO_ASSERT_EQ(wakes.size(), 1U);
    EXPECT_EQ(wakes[0].at - t0, 1s);
}

// Two workers under virtual time: the clock only jumps when both are idle, so every
// sleeper wakes exactly at its deadline, including groups that fire together.
CO_TEST_OPTS(Timer, VirtualTimeWithTwoWorkers, (spindle::RuntimeOptions{.workers = 2, .virtual_time = true})) {
    const auto t0 = spindle::now();
    std::mutex mx;  // the sleepers run on both workers
    std::vector<std::pair<std::chrono::nanoseconds, std::chrono::nanoseconds>> wakes;  // (deadline, woke at)
    struct Local {
        static Task<void> run(std::mutex& m,
                              std::vector<std::pair<std::chrono::nanoseconds, std::chrono::nanoseconds>>& out,
                              std::chrono::seconds d) {
            const auto deadline = spindle::now() + d;
            co_await spindle::sleep(d);
            const auto at = spindle::now();
            std::lock_guard lk(m);
            out.emplace_back(deadline, at);
        }
    };
    std::vector<spindle::JoinHandle<void>> hs;
    constexpr int kGroups = 4;
    constexpr int kPerGroup = 4;  // equal deadlines: several timers fire in one batch
    for (int i = 0; i < kGroups * kPerGroup; ++i)
        hs.push_back(spindle::spawn(Local::run(mx, wakes, std::chrono::seconds((1 + i % kGroups) * 60))));
    for (auto& h : hs) co_await h;
    CO_ASSERT_EQ(wakes.size(), static_cast<std::size_t>(kGroups * kPerGroup));
    for (const auto& [deadline, at] : wakes) EXPECT_EQ(at, deadline) << "woke late under virtual time";
    EXPECT_GE(spindle::now() - t0, std::chrono::seconds(kGroups * 60));
}

CO_TEST_OPTS(Timer, NowOutsideATaskIsZero, one_worker_virtual()) {
    // Inside a task: the runtime's clock. On a thread that runs no task (here a
    // to_thread pool thread): 0, as runtime.hpp documents.
    const auto t0 = spindle::now();
    co_await spindle::sleep(1s);
    EXPECT_EQ(spindle::now() - t0, 1s);
    const auto outside = co_await spindle::to_thread([] { return spindle::now(); });
    EXPECT_EQ(outside, std::chrono::nanoseconds(0));
}

TEST(Timer, NowOnAPlainThreadIsZero) { EXPECT_EQ(spindle::now(), std::chrono::nanoseconds(0)); }

// Real time: a sleep lasts at least its duration (no upper bound asserted: CI is slow).
CO_TEST_OPTS(Timer, RealSleepLastsAtLeastItsDuration, (spindle::RuntimeOptions{.workers = 1})) {
    const auto wall0 = std::chrono::steady_clock::now();
    const auto rt0 = spindle::now();
    co_await spindle::sleep(5ms);
    EXPECT_GE(std::chrono::steady_clock::now() - wall0, 5ms);
    EXPECT_GE(spindle::now() - rt0, 5ms);
}

CO_TEST(Timer, RealSleepsInParallelAllLastAtLeastTheirDuration) {
    std::mutex mx;
    std::vector<std::chrono::nanoseconds> elapsed;
    std::vector<spindle::JoinHandle<void>> hs;
    for (int i = 0; i < 16; ++i)
        hs.push_back(spindle::spawn(real_sleeper(mx, elapsed, std::chrono::milliseconds(2 + i % 4))));
    for (auto& h : hs) co_await h;
    CO_ASSERT_EQ(elapsed.size(), 16U);
    for (auto e : elapsed) EXPECT_GE(e, 2ms);
}

// Real time, one worker: whenever the worker gets to them, due timers fire in
// deadline order.
CO_TEST_OPTS(Timer, RealTimeTimersFireInDeadlineOrder, (spindle::RuntimeOptions{.workers = 1})) {
    std::vector<Wake> wakes;
    // 10 ms apart, so that even a worker descheduled for a while between arming two
    // of them keeps the deadlines in this order.
    auto a = spindle::spawn(sleep_and_record(wakes, 3, 30ms));
    auto b = spindle::spawn(sleep_and_record(wakes, 1, 10ms));
    auto c = spindle::spawn(sleep_and_record(wakes, 2, 20ms));
    co_await a;
    co_await b;
    co_await c;
    CO_ASSERT_EQ(wakes.size(), 3U);
    EXPECT_EQ(wakes[0].id, 1);
    EXPECT_EQ(wakes[1].id, 2);
    EXPECT_EQ(wakes[2].id, 3);
}

TEST(Timer, TimersFiredMetric) {
    spindle::Runtime rt(one_worker_virtual());
    const auto before = rt.metrics().timers_fired;
    struct Local {
        static Task<void> body() {
            std::vector<spindle::JoinHandle<void>> hs;
            for (int i = 0; i < 5; ++i) hs.push_back(spindle::spawn(sleeper(i)));
            co_await spindle::sleep(0s);  // a zero sleep arms no timer
            for (auto& h : hs) co_await h;
        }
        static Task<void> sleeper(int i) { co_await spindle::sleep(std::chrono::milliseconds(i + 1)); }
    };
    rt.block_on(Local::body());
    EXPECT_EQ(rt.metrics().timers_fired - before, 5U);
}
