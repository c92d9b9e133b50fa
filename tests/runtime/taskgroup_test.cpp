// TaskGroup (asyncio.TaskGroup): join waits for every child; the first failure
// cancels the siblings and join rethrows it; cancelled children are not failures.
#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime_test_util.hpp"

using namespace std::chrono_literals;
using spindle::CancelledError;
using spindle::Task;
using spindle::TaskGroup;
using spindle::testing::one_worker_virtual;

namespace {

struct Probe {
    bool started = false;
    bool cancelled = false;
    bool finished = false;
};

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

Task<void> fail_after(std::chrono::milliseconds d, std::string msg) {
    co_await spindle::sleep(d);
    throw std::runtime_error(msg);
}

Task<void> count_after(std::chrono::milliseconds d, std::atomic<int>& n) {
    co_await spindle::sleep(d);
    n.fetch_add(1);
}

}  // namespace

CO_TEST_OPTS(TaskGroup, JoinWaitsForAllChildren, one_worker_virtual()) {
    std::atomic<int> done{0};
    const auto t0 = spindle::now();
    TaskGroup g;
    g.spawn(count_after(30ms, done));
    g.spawn(count_after(10ms, done));
    g.spawn(count_after(20ms, done));
    co_await g.join();
    EXPECT_EQ(done.load(), 3);
    EXPECT_EQ(spindle::now() - t0, 30ms) << "children run concurrently and join waits for the last";
}

CO_TEST_OPTS(TaskGroup, JoinWithNoChildren, one_worker_virtual()) {
    TaskGroup g;
    const auto t0 = spindle::now();
    co_await g.join();
    EXPECT_EQ(spindle::now(), t0);
}

CO_TEST_OPTS(TaskGroup, ChildHandlesGiveValuesAfterJoin, one_worker_virtual()) {
    Probe a;
    Probe b;
    TaskGroup g;
    auto ha = g.spawn(probed_sleep(a, 5ms, 10), "child-a");
    auto hb = g.spawn(probed_sleep(b, 1ms, 20));
    EXPECT_EQ(ha.name(), "child-a");
    co_await g.join();
    EXPECT_TRUE(ha.done());
    EXPECT_TRUE(hb.done());
    EXPECT_EQ(co_await ha + co_await hb, 30);
}

CO_TEST_OPTS(TaskGroup, FirstFailureCancelsSiblingsAndJoinRethrows, one_worker_virtual()) {
    Probe slow;
    Probe quick;
    const auto t0 = spindle::now();
    TaskGroup g;
    g.spawn(probed_sleep(slow, 1h, 1));
    g.spawn(fail_after(10ms, "group boom"));
    g.spawn(probed_sleep(quick, 5ms, 2));
    std::string what;
    try {
        co_await g.join();
    } catch (const std::runtime_error& e) {
        what = e.what();
        EXPECT_TRUE(slow.cancelled) << "join rethrows only after every child finished";
    }
    EXPECT_EQ(what, "group boom");
    EXPECT_TRUE(slow.cancelled);
    EXPECT_FALSE(slow.finished);
    EXPECT_TRUE(quick.finished);
    EXPECT_FALSE(quick.cancelled);
    EXPECT_EQ(spindle::now() - t0, 10ms);
}

// The failure cancels the siblings at once, even while the parent has not reached
// join() yet (asyncio: the group's tasks are cancelled when the first one fails).
CO_TEST_OPTS(TaskGroup, FailureCancelsSiblingsBeforeJoin, one_worker_virtual()) {
    Probe slow;
    TaskGroup g;
    g.spawn(probed_sleep(slow, 1h, 1));
    g.spawn(fail_after(1ms, "early"));
    co_await spindle::sleep(10ms);  // the failure happens meanwhile
    EXPECT_TRUE(slow.cancelled);
    std::string what;
    try {
        co_await g.join();
    } catch (const std::runtime_error& e) {
        what = e.what();
    }
    EXPECT_EQ(what, "early");
}

CO_TEST_OPTS(TaskGroup, FirstFailureWinsOverFailuresCausedByCancellation, one_worker_virtual()) {
    struct Local {
        static Task<void> fails_when_cancelled() {
            try {
                co_await spindle::sleep(1h);
            } catch (const CancelledError&) {
                throw std::runtime_error("second");
            }
        }
    };
    TaskGroup g;
    g.spawn(Local::fails_when_cancelled());
    g.spawn(fail_after(10ms, "first"));
    std::string what;
    try {
        co_await g.join();
    } catch (const std::runtime_error& e) {
        what = e.what();
    }
    EXPECT_EQ(what, "first");
}

CO_TEST_OPTS(TaskGroup, CancelledChildrenAreNotFailures, one_worker_virtual()) {
    Probe victim;
    Probe sibling;
    const auto t0 = spindle::now();
    TaskGroup g;
    auto hv = g.spawn(probed_sleep(victim, 1h, 1));
    auto hs = g.spawn(probed_sleep(sibling, 20ms, 2));
    co_await spindle::yield_now();
    EXPECT_TRUE(hv.cancel());
    bool threw = false;
    try {
        co_await g.join();
    } catch (...) {
        threw = true;
    }
    EXPECT_FALSE(threw) << "a cancelled child is not a failure of the group";
    EXPECT_TRUE(hv.cancelled());
    EXPECT_TRUE(victim.cancelled);
    EXPECT_TRUE(sibling.finished) << "a cancelled child must not cancel its siblings";
    EXPECT_FALSE(sibling.cancelled);
    EXPECT_EQ(co_await hs, 2);
    EXPECT_EQ(spindle::now() - t0, 20ms);
}

CO_TEST_OPTS(TaskGroup, ChildRaisingCancelledErrorIsNotAFailure, one_worker_virtual()) {
    struct Local {
        static Task<void> cancels_itself() {
            co_await spindle::yield_now();
            throw CancelledError{};
        }
    };
    Probe sibling;
    TaskGroup g;
    auto h = g.spawn(Local::cancels_itself());
    g.spawn(probed_sleep(sibling, 5ms, 1));
    bool threw = false;
    try {
        co_await g.join();
    } catch (...) {
        threw = true;
    }
    EXPECT_FALSE(threw);
    EXPECT_TRUE(h.cancelled());
    EXPECT_TRUE(sibling.finished);
}

CO_TEST_OPTS(TaskGroup, CancellingTheJoinerCancelsChildren, one_worker_virtual()) {
    Probe a;
    Probe b;
    struct Local {
        static Task<void> body(Probe& x, Probe& y) {
            TaskGroup g;
            g.spawn(probed_sleep(x, 1h, 1));
            g.spawn(probed_sleep(y, 2h, 2));
            co_await g.join();
        }
    };
    const auto t0 = spindle::now();
    auto h = spindle::spawn(Local::body(a, b));
    co_await spindle::yield_now();
    co_await spindle::yield_now();
    CO_ASSERT_TRUE(a.started && b.started);
    EXPECT_TRUE(h.cancel());
    bool cancelled = false;
    try {
        co_await h;
    } catch (const CancelledError&) {
        cancelled = true;
    }
    EXPECT_TRUE(cancelled);
    EXPECT_TRUE(h.cancelled());
    EXPECT_TRUE(a.cancelled);
    EXPECT_TRUE(b.cancelled);
    EXPECT_EQ(spindle::now(), t0);
}

// Documented in gather.hpp: a TaskGroup destroyed without join() cancels its children.
CO_TEST_OPTS(TaskGroup, DestroyedWithoutJoinCancelsChildren, one_worker_virtual()) {
    Probe p;
    spindle::JoinHandle<int> h;
    {
        TaskGroup g;
        h = g.spawn(probed_sleep(p, 1h, 1));
        co_await spindle::yield_now();
        CO_ASSERT_TRUE(p.started);
    }
    bool cancelled = false;
    try {
        (void)co_await h;
    } catch (const CancelledError&) {
        cancelled = true;
    }
    EXPECT_TRUE(cancelled);
    EXPECT_TRUE(p.cancelled);
}

CO_TEST(TaskGroup, ManyChildrenOnTwoWorkers) {
    std::atomic<int> done{0};
    const int n = 1000;
    TaskGroup g;
    struct Local {
        static Task<void> child(std::atomic<int>& d) {
            co_await spindle::yield_now();
            d.fetch_add(1);
        }
    };
    for (int i = 0; i < n; ++i) g.spawn(Local::child(done));
    co_await g.join();
    EXPECT_EQ(done.load(), n);
}

CO_TEST(TaskGroup, FailureOnTwoWorkersCancelsSiblings) {
    struct Local {
        static Task<void> sleeper() { co_await spindle::sleep(1h); }
        static Task<void> failer() {
            co_await spindle::yield_now();
            throw std::logic_error("fail");
        }
    };
    const int n = 50;
    TaskGroup g;
    std::vector<spindle::JoinHandle<void>> hs;
    for (int i = 0; i < n; ++i) hs.push_back(g.spawn(Local::sleeper()));
    g.spawn(Local::failer());
    bool caught = false;
    try {
        co_await g.join();
    } catch (const std::logic_error&) {
        caught = true;
    }
    EXPECT_TRUE(caught);
    for (auto& h : hs) {
        EXPECT_TRUE(h.done());
        EXPECT_TRUE(h.cancelled());
    }
}

// A named child keeps its name and its completion hook in one block (TaskHeader::side_,
// a NamedHook): both must survive, for a child that fails (the hook collects the
// failure and cancels the sibling) and for one that succeeds.
CO_TEST_OPTS(TaskGroup, NamedChildrenKeepTheirNamesAndTheGroupSeesTheirOutcome, one_worker_virtual()) {
    Probe p;
    TaskGroup g;
    auto ok = g.spawn(probed_sleep(p, 50ms, 7), "sleeper");
    auto bad = g.spawn(fail_after(10ms, "named failure"), "failer");
    EXPECT_EQ(ok.name(), "sleeper");
    EXPECT_EQ(bad.name(), "failer");
    try {
        co_await g.join();
        ADD_FAILURE() << "join must rethrow the named child's failure";
    } catch (const std::runtime_error& e) {
        EXPECT_STREQ(e.what(), "named failure");
    }
    EXPECT_TRUE(p.cancelled) << "the failure, seen through the hook, cancels the named sibling";
    EXPECT_EQ(ok.name(), "sleeper");
    EXPECT_EQ(bad.name(), "failer");
}
