// gather: tuple and vector forms, concurrency, failure and cancellation (semantics
// documented at the top of gather.hpp: the first failure by completion time cancels
// the others, gather waits for all of them, then rethrows).
#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <variant>
#include <vector>

#include "runtime_test_util.hpp"

using namespace std::chrono_literals;
using spindle::CancelledError;
using spindle::Task;
using spindle::testing::one_worker_virtual;

namespace {

struct Probe {
    bool started = false;
    bool cancelled = false;
    bool finished = false;
};

Task<int> value_after(std::chrono::milliseconds d, int v) {
    co_await spindle::sleep(d);
    co_return v;
}

Task<void> void_after(std::chrono::milliseconds d, bool& done) {
    co_await spindle::sleep(d);
    done = true;
}

Task<std::string> string_after(std::chrono::milliseconds d, std::string s) {
    co_await spindle::sleep(d);
    co_return s;
}

Task<std::unique_ptr<int>> boxed(int v) {
    co_await spindle::yield_now();
    co_return std::make_unique<int>(v);
}

Task<int> probed_sleep(Probe& p, std::chrono::milliseconds d, int v) {
    p.started = true;
    try {
        co_await spindle::sleep(d);
    } catch (const CancelledError&) {
        p.cancelled = true;
        throw;
    }
    p.finished = true;
    co_return v;
}

Task<int> fail_after(std::chrono::milliseconds d, std::string msg) {
    co_await spindle::sleep(d);
    throw std::runtime_error(msg);
}

Task<int> square_after_yields(int i) {
    for (int k = 0; k < i % 5; ++k) co_await spindle::yield_now();
    co_return i* i;
}

Task<void> count_after_yield(std::atomic<int>& n) {
    co_await spindle::yield_now();
    n.fetch_add(1);
}

}  // namespace

CO_TEST_OPTS(Gather, TupleOfMixedTypesVoidIsMonostate, one_worker_virtual()) {
    bool void_done = false;
    auto result =
        co_await spindle::gather(value_after(3ms, 41), void_after(1ms, void_done), string_after(2ms, "s"), boxed(6));
    static_assert(std::is_same_v<decltype(result), std::tuple<int, std::monostate, std::string, std::unique_ptr<int>>>);
    EXPECT_EQ(std::get<0>(result), 41);
    EXPECT_TRUE(void_done);
    EXPECT_EQ(std::get<2>(result), "s");
    CO_ASSERT_TRUE(std::get<3>(result) != nullptr);
    EXPECT_EQ(*std::get<3>(result), 6);
}

CO_TEST_OPTS(Gather, ChildrenRunConcurrently, one_worker_virtual()) {
    const auto t0 = spindle::now();
    auto [a, b, c] = co_await spindle::gather(value_after(30ms, 1), value_after(10ms, 2), value_after(20ms, 3));
    EXPECT_EQ(a, 1);
    EXPECT_EQ(b, 2);
    EXPECT_EQ(c, 3);
    EXPECT_EQ(spindle::now() - t0, 30ms) << "children must overlap: the total is the longest, not the sum";
}

CO_TEST_OPTS(Gather, VectorFormKeepsArgumentOrder, one_worker_virtual()) {
    const int n = 100;
    std::vector<Task<int>> tasks;
    for (int i = 0; i < n; ++i) tasks.push_back(square_after_yields(i));
    std::vector<int> out = co_await spindle::gather(std::move(tasks));
    CO_ASSERT_EQ(out.size(), static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) EXPECT_EQ(out[static_cast<std::size_t>(i)], i * i);
}

CO_TEST_OPTS(Gather, VectorFormEmpty, one_worker_virtual()) {
    std::vector<int> out = co_await spindle::gather(std::vector<Task<int>>{});
    EXPECT_TRUE(out.empty());
}

CO_TEST_OPTS(Gather, VectorOfVoid, one_worker_virtual()) {
    std::atomic<int> n{0};
    std::vector<Task<void>> tasks;
    for (int i = 0; i < 10; ++i) tasks.push_back(count_after_yield(n));
    auto out = co_await spindle::gather(std::move(tasks));
    static_assert(std::is_same_v<decltype(out), std::vector<std::monostate>>);
    EXPECT_EQ(out.size(), 10U);
    EXPECT_EQ(n.load(), 10);
}

CO_TEST_OPTS(Gather, FirstExceptionPropagatesAfterOthersCancelledOrFinished, one_worker_virtual()) {
    Probe slow;
    Probe quick;
    const auto t0 = spindle::now();
    bool caught = false;
    try {
        (void)co_await spindle::gather(probed_sleep(slow, 1h, 1), fail_after(10ms, "boom"),
                                       probed_sleep(quick, 5ms, 2));
    } catch (const std::runtime_error& e) {
        caught = true;
        EXPECT_STREQ(e.what(), "boom");
        // Nothing outlives gather: when the error comes out, the others are done.
        EXPECT_TRUE(slow.cancelled) << "the still-running child must have been cancelled";
        EXPECT_FALSE(slow.finished);
        EXPECT_TRUE(quick.finished);
        EXPECT_FALSE(quick.cancelled);
    }
    EXPECT_TRUE(caught);
    EXPECT_EQ(spindle::now() - t0, 10ms);
}

CO_TEST_OPTS(Gather, FirstFailureIsByCompletionTimeNotArgumentOrder, one_worker_virtual()) {
    std::string what;
    try {
        (void)co_await spindle::gather(fail_after(20ms, "late"), fail_after(10ms, "early"));
    } catch (const std::runtime_error& e) {
        what = e.what();
    }
    EXPECT_EQ(what, "early");
}

CO_TEST_OPTS(Gather, VectorFormFailure, one_worker_virtual()) {
    std::vector<Task<int>> tasks;
    std::vector<Probe> probes(5);
    for (auto& p : probes) tasks.push_back(probed_sleep(p, 1h, 0));
    tasks.push_back(fail_after(1ms, "vector boom"));
    std::string what;
    try {
        (void)co_await spindle::gather(std::move(tasks));
    } catch (const std::runtime_error& e) {
        what = e.what();
    }
    EXPECT_EQ(what, "vector boom");
    for (const auto& p : probes) EXPECT_TRUE(p.cancelled);
}

// A child that ends cancelled counts as a failure for gather (asyncio.gather without
// return_exceptions raises CancelledError then).
CO_TEST_OPTS(Gather, CancelledChildFailsGather, one_worker_virtual()) {
    struct Local {
        static Task<int> cancels_itself() {
            co_await spindle::yield_now();
            throw CancelledError{};
        }
    };
    Probe other;
    bool cancelled = false;
    try {
        (void)co_await spindle::gather(Local::cancels_itself(), probed_sleep(other, 1h, 1));
    } catch (const CancelledError&) {
        cancelled = true;
    }
    EXPECT_TRUE(cancelled);
    EXPECT_TRUE(other.cancelled);
}

CO_TEST_OPTS(Gather, CancellingTheAwaiterCancelsChildren, one_worker_virtual()) {
    Probe a;
    Probe b;
    Probe c;
    struct Local {
        static Task<int> body(Probe& x, Probe& y, Probe& z) {
            auto [p, q, r] =
                co_await spindle::gather(probed_sleep(x, 1h, 1), probed_sleep(y, 2h, 2), probed_sleep(z, 3h, 3));
            co_return p + q + r;
        }
    };
    const auto t0 = spindle::now();
    auto h = spindle::spawn(Local::body(a, b, c));
    co_await spindle::yield_now();  // h starts gather and parks
    co_await spindle::yield_now();  // the children start and park
    CO_ASSERT_TRUE(a.started && b.started && c.started);
    EXPECT_TRUE(h.cancel());
    bool cancelled = false;
    try {
        (void)co_await h;
    } catch (const CancelledError&) {
        cancelled = true;
    }
    EXPECT_TRUE(cancelled);
    EXPECT_TRUE(h.cancelled());
    EXPECT_TRUE(a.cancelled);
    EXPECT_TRUE(b.cancelled);
    EXPECT_TRUE(c.cancelled);
    EXPECT_EQ(spindle::now(), t0);
}

CO_TEST(Gather, ManyChildrenOnTwoWorkers) {
    const int n = 2000;
    std::vector<Task<int>> tasks;
    for (int i = 0; i < n; ++i) tasks.push_back(square_after_yields(i));
    auto out = co_await spindle::gather(std::move(tasks));
    CO_ASSERT_EQ(out.size(), static_cast<std::size_t>(n));
    long long sum = 0;
    long long expected = 0;
    for (int i = 0; i < n; ++i) {
        sum += out[static_cast<std::size_t>(i)];
        expected += static_cast<long long>(i) * i;
        EXPECT_EQ(out[static_cast<std::size_t>(i)], i * i);
    }
    EXPECT_EQ(sum, expected);
}
