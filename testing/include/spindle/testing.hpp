/// @file
/// Coroutine tests with GoogleTest (CMake target spindle::testing).
///
/// ```cpp
/// #include <spindle/testing.hpp>
///
/// SPINDLE_TEST(Cache, FillsOnce) {                 // one worker, virtual time
///     spindle::Lock lock;
///     co_await spindle::sleep(5s);                   // instant: the clock jumps
///     SPINDLE_ASSERT_TRUE(co_await fill(lock)) << "first fill";
///     EXPECT_EQ(hits, 1);                            // EXPECT_* work as usual
/// }
/// SPINDLE_TEST_OPTS(Cache, Parallel, (spindle::RuntimeOptions{.workers = 4})) { ... }
/// ```
///
/// The body is a Task<void> run on a fresh Runtime (tokio's `#[tokio::test(start_paused)]`
/// for the first form: one worker and virtual time, i.e. asyncio's interleaving and
/// timers that fire as soon as nothing else can run). gtest's ASSERT_* `return` from the
/// function, which a coroutine cannot do: SPINDLE_ASSERT_* report a fatal failure and
/// `co_return` (they take `<< message` too).
///
/// A test that cannot finish fails with its name:
///   - DeadlockError (every task parked, nothing pending): SPINDLE_TEST turns deadlock
///     detection on (deadlock_timeout 1 s; with virtual time the check is immediate), and
///     any test whose RuntimeOptions set it gets the same; the failure shows the dump.
///   - a hang (real time, e.g. a task spinning, or waiting on a thread that never
///     comes): after the deadline (default 120 s; SPINDLE_TEST_DEADLINE_S=N) the test
///     prints its name and Runtime::dump() on stderr and aborts the test program.
///   - an exception escaping the body: a failure with its what().
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include <spindle/spindle.hpp>

/// The helpers behind SPINDLE_TEST and SPINDLE_TEST_OPTS (spindle/testing.hpp).
namespace spindle::testing {

/// One worker and virtual time: asyncio's interleaving, timers without waiting.
inline RuntimeOptions one_worker_virtual() { return RuntimeOptions{.workers = 1, .virtual_time = true}; }

/// SPINDLE_TEST's options: one_worker_virtual() with deadlock detection on.
inline RuntimeOptions default_test_options() {
    RuntimeOptions o = one_worker_virtual();
    o.deadlock_timeout = 1000;
    return o;
}

/// The hang deadline: SPINDLE_TEST_DEADLINE_S, else 120 s.
inline std::chrono::seconds test_deadline() {
    if (const char* s = std::getenv("SPINDLE_TEST_DEADLINE_S"); s != nullptr && std::atoi(s) > 0)
        return std::chrono::seconds(std::atoi(s));
    return std::chrono::seconds(120);
}

/// Runs `body` as the test `name` on a fresh Runtime (what the macros expand to).
inline void run_test(const char* name, Task<void> body, RuntimeOptions opts) {
    Runtime rt(opts);
    std::mutex mx;
    std::condition_variable cv;
    bool finished = false;
    const auto deadline = test_deadline();
    std::thread watchdog([&] {
        std::unique_lock lk(mx);
        if (cv.wait_for(lk, deadline, [&] { return finished; })) return;
        std::fprintf(stderr, "\nspindle test %s did not finish within %llds (a hang); its tasks:\n%s\n", name,
                     static_cast<long long>(deadline.count()), rt.dump().c_str());
        std::fflush(stderr);
        std::abort();
    });
    try {
        rt.block_on(std::move(body));
    } catch (const DeadlockError& e) {
        ADD_FAILURE() << "spindle test " << name << " deadlocked (every task parked, nothing pending):\n" << e.what();
    } catch (const std::exception& e) {
        ADD_FAILURE() << "spindle test " << name << ": an exception escaped the body: " << e.what();
    } catch (const CancelledError&) {
        ADD_FAILURE() << "spindle test " << name << ": the body was cancelled";
    } catch (...) {
        ADD_FAILURE() << "spindle test " << name << ": an exception of unknown type escaped the body";
    }
    {
        std::lock_guard lk(mx);
        finished = true;
    }
    cv.notify_one();
    watchdog.join();
}

}  // namespace spindle::testing

/// A coroutine test with the given RuntimeOptions.
#define SPINDLE_TEST_OPTS(suite, name, opts)                                                        \
    static ::spindle::Task<void> spindle_test_body_##suite##_##name();                            \
    TEST(suite, name) {                                                                           \
        ::spindle::testing::run_test(#suite "." #name, spindle_test_body_##suite##_##name(), (opts)); \
    }                                                                                             \
    static ::spindle::Task<void> spindle_test_body_##suite##_##name()

/// A coroutine test on one worker with virtual time and deadlock detection.
#define SPINDLE_TEST(suite, name) SPINDLE_TEST_OPTS(suite, name, ::spindle::testing::default_test_options())

// Fatal assertions for coroutine bodies: report like ASSERT_* and co_return.
/// Internal: the SPINDLE_ASSERT_* failure action (a fatal gtest failure, then co_return).
#define SPINDLE_CO_FATAL_FAILURE_(message) co_return GTEST_MESSAGE_(message, ::testing::TestPartResult::kFatalFailure)
/// ASSERT_TRUE for a coroutine body: on failure, a fatal failure and co_return.
#define SPINDLE_ASSERT_TRUE(c) GTEST_TEST_BOOLEAN_(c, #c, false, true, SPINDLE_CO_FATAL_FAILURE_)
/// ASSERT_FALSE for a coroutine body: on failure, a fatal failure and co_return.
#define SPINDLE_ASSERT_FALSE(c) GTEST_TEST_BOOLEAN_(!(c), #c, true, false, SPINDLE_CO_FATAL_FAILURE_)
/// ASSERT_EQ for a coroutine body: on failure, a fatal failure and co_return.
#define SPINDLE_ASSERT_EQ(a, b) \
    GTEST_PRED_FORMAT2_(::testing::internal::EqHelper::Compare, a, b, SPINDLE_CO_FATAL_FAILURE_)
/// ASSERT_NE for a coroutine body: on failure, a fatal failure and co_return.
#define SPINDLE_ASSERT_NE(a, b) GTEST_PRED_FORMAT2_(::testing::internal::CmpHelperNE, a, b, SPINDLE_CO_FATAL_FAILURE_)
/// ASSERT_LT for a coroutine body: on failure, a fatal failure and co_return.
#define SPINDLE_ASSERT_LT(a, b) GTEST_PRED_FORMAT2_(::testing::internal::CmpHelperLT, a, b, SPINDLE_CO_FATAL_FAILURE_)
/// ASSERT_LE for a coroutine body: on failure, a fatal failure and co_return.
#define SPINDLE_ASSERT_LE(a, b) GTEST_PRED_FORMAT2_(::testing::internal::CmpHelperLE, a, b, SPINDLE_CO_FATAL_FAILURE_)
/// ASSERT_GT for a coroutine body: on failure, a fatal failure and co_return.
#define SPINDLE_ASSERT_GT(a, b) GTEST_PRED_FORMAT2_(::testing::internal::CmpHelperGT, a, b, SPINDLE_CO_FATAL_FAILURE_)
/// ASSERT_GE for a coroutine body: on failure, a fatal failure and co_return.
#define SPINDLE_ASSERT_GE(a, b) GTEST_PRED_FORMAT2_(::testing::internal::CmpHelperGE, a, b, SPINDLE_CO_FATAL_FAILURE_)
