// tests/support/co_test.hpp — run a coroutine body as a gtest test.
//
//   CO_TEST(Suite, Name) { co_await spindle::yield_now(); CO_ASSERT_EQ(a, b); }
//   CO_TEST_OPTS(Suite, Name, (spindle::RuntimeOptions{.workers = 1, .virtual_time = true})) {...}
//
// The body is a Task<void> run with spindle::run on a fresh runtime. gtest's
// ASSERT_* return from the function, which a coroutine cannot do, so CO_ASSERT_*
// record the failure and `co_return`. EXPECT_* work as usual inside the body.
#pragma once

#include <gtest/gtest.h>

#include <spindle/spindle.hpp>

namespace spindle::testing {
inline RuntimeOptions one_worker_virtual() { return RuntimeOptions{.workers = 1, .virtual_time = true}; }
}  // namespace spindle::testing

#define CO_TEST_OPTS(suite, name, opts)                                   \
    static ::spindle::Task<void> suite##_##name##_body();                \
    TEST(suite, name) { ::spindle::run(suite##_##name##_body(), (opts)); } \
    static ::spindle::Task<void> suite##_##name##_body()

#define CO_TEST(suite, name) CO_TEST_OPTS(suite, name, (::spindle::RuntimeOptions{.workers = 2}))

#define CO_ASSERT_TRUE(c)                      \
    do {                                       \
        bool co_assert_ok_ = static_cast<bool>(c); \
        EXPECT_TRUE(co_assert_ok_) << #c;      \
        if (!co_assert_ok_) co_return;         \
    } while (0)
#define CO_ASSERT_EQ(a, b)               \
    do {                                 \
        bool co_assert_ok_ = ((a) == (b)); \
        EXPECT_EQ(a, b);                 \
        if (!co_assert_ok_) co_return;   \
    } while (0)
