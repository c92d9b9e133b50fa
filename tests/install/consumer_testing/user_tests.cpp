// Written as a user would, with nothing but the installed <spindle/testing.hpp>.
// install_test.cmake runs the Passing.* tests (must pass) and each Failing.* test
// alone (must fail, naming the test and saying why).
#include <spindle/testing.hpp>

using namespace std::chrono_literals;

SPINDLE_TEST(Passing, VirtualTimeAndAssertions) {
    spindle::Lock lock;
    const auto t0 = spindle::now();
    co_await spindle::sleep(10s);  // virtual time: instant
    SPINDLE_ASSERT_EQ(spindle::now() - t0, 10s) << "the clock jumps";
    co_await lock.acquire();
    SPINDLE_ASSERT_TRUE(lock.locked());
    lock.release();
    EXPECT_FALSE(lock.locked());
}

SPINDLE_TEST_OPTS(Passing, TwoWorkers, (spindle::RuntimeOptions{.workers = 2})) {
    spindle::Event e;
    auto h = spindle::spawn([](spindle::Event& ev) -> spindle::Task<int> {
        co_await ev.wait();
        co_return 7;
    }(e));
    e.set();
    SPINDLE_ASSERT_EQ(co_await h, 7);
}

// Must fail: an assertion inside the coroutine stops the body.
SPINDLE_TEST(Failing, Assertion) {
    SPINDLE_ASSERT_EQ(1 + 1, 3) << "arithmetic";
    ADD_FAILURE() << "unreachable: SPINDLE_ASSERT_EQ must co_return";
}

// Must fail: every task parked on an Event nobody sets.
SPINDLE_TEST(Failing, Deadlock) {
    spindle::Event never;
    co_await never.wait();
}

// Must fail (run with SPINDLE_TEST_DEADLINE_S=1): real time, no deadlock detection, a
// wait nothing will end; the deadline names the test, dumps its tasks and aborts.
SPINDLE_TEST_OPTS(Failing, Hang, (spindle::RuntimeOptions{.workers = 2})) {
    spindle::Event never;
    co_await never.wait();
}
