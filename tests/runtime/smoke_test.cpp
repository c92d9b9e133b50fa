#include "co_test.hpp"

using namespace std::chrono_literals;

namespace {
spindle::Task<int> add(int a, int b) {
    co_await spindle::yield_now();
    co_return a + b;
}
}  // namespace

CO_TEST(Smoke, AwaitNestedTask) {
    int v = co_await add(1, 2);
    EXPECT_EQ(v, 3);
}

CO_TEST(Smoke, SpawnAndJoin) {
    auto h = spindle::spawn(add(2, 3));
    EXPECT_EQ(co_await h, 5);
    EXPECT_EQ(co_await h, 5);  // awaitable more than once
    EXPECT_TRUE(h.done());
}

CO_TEST_OPTS(Smoke, VirtualSleep, spindle::testing::one_worker_virtual()) {
    auto t0 = spindle::now();
    co_await spindle::sleep(10s);
    EXPECT_EQ(spindle::now() - t0, 10s);
}

TEST(Smoke, RunReturnsValue) {
    EXPECT_EQ(spindle::run(add(20, 22)), 42);
}
