// tests/support/co_test.hpp — the project's names for <spindle/testing.hpp> (the shipped
// coroutine-test helper, target spindle::testing), so every test proves it each run.
//
//   CO_TEST(Suite, Name) { co_await spindle::yield_now(); CO_ASSERT_EQ(a, b); }   // 2 workers
//   CO_TEST_OPTS(Suite, Name, (spindle::RuntimeOptions{.workers = 1, .virtual_time = true})) {...}
//
// The body is a Task<void> run on a fresh runtime (spindle::testing::run_test: a
// failure names the test on a DeadlockError, an escaping exception or a hang).
// CO_ASSERT_* report a fatal failure and `co_return`; EXPECT_* work as usual.
#pragma once

#include <spindle/testing.hpp>

#define CO_TEST_OPTS(suite, name, opts) SPINDLE_TEST_OPTS(suite, name, opts)
#define CO_TEST(suite, name) SPINDLE_TEST_OPTS(suite, name, (::spindle::RuntimeOptions{.workers = 2}))
#define CO_ASSERT_TRUE(c) SPINDLE_ASSERT_TRUE(c)
#define CO_ASSERT_EQ(a, b) SPINDLE_ASSERT_EQ(a, b)
