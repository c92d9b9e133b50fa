// Misuse gets a clear exception at the call (DESIGN.md: "never undefined behaviour,
// a hang, or a lost waiter"). asyncio's RuntimeError is std::logic_error, its
// ValueError std::invalid_argument.
//
// Not tested: awaiting sleep()/yield_now() outside a task cannot be expressed (co_await
// only exists inside a coroutine, and every coroutine of spindle runs in a task).
#include <atomic>
#include <stdexcept>
#include <string>

#include "runtime_test_util.hpp"

using namespace std::chrono_literals;
using spindle::JoinHandle;
using spindle::Runtime;
using spindle::RuntimeOptions;
using spindle::Task;
using spindle::testing::DropCounter;
using spindle::testing::one_worker_virtual;

namespace {

Task<int> value_after_yield(int v) {
    co_await spindle::yield_now();
    co_return v;
}

Task<void> set_flag(bool& flag) {
    flag = true;
    co_return;
}

Task<int> holds_counter(DropCounter c) {
    (void)c;
    co_return 1;
}

}  // namespace

TEST(Misuse, SpawnOutsideARuntimeThrowsLogicError) {
    std::atomic<int> dropped{0};
    EXPECT_THROW((void)spindle::spawn(holds_counter(DropCounter(dropped))), std::logic_error);
    EXPECT_EQ(dropped.load(), 1) << "the rejected task's frame is destroyed, not leaked";
}

TEST(Misuse, BlockOnFromInsideATaskThrowsLogicError) {
    Runtime rt(RuntimeOptions{.workers = 2});
    struct Local {
        static Task<bool> body(Runtime& r) {
            try {
                (void)r.block_on(value_after_yield(1));
            } catch (const std::logic_error&) {
                co_return true;
            }
            co_return false;
        }
    };
    EXPECT_TRUE(rt.block_on(Local::body(rt))) << "block_on on a worker thread must throw std::logic_error";
}

// asyncio's run_until_complete checks "already running" before it wraps the
// coroutine in a task, so a rejected call runs nothing.
TEST(Misuse, RejectedBlockOnDoesNotRunTheTask) {
    Runtime rt(RuntimeOptions{.workers = 1});
    struct Local {
        static Task<bool> body(Runtime& r, bool& ran) {
            bool threw = false;
            try {
                r.block_on(set_flag(ran));
            } catch (const std::logic_error&) {
                threw = true;
            }
            for (int i = 0; i < 3; ++i) co_await spindle::yield_now();  // one worker: it would have run by now
            co_return threw;
        }
    };
    bool ran = false;
    EXPECT_TRUE(rt.block_on(Local::body(rt, ran)));
    EXPECT_FALSE(ran) << "block_on threw std::logic_error but still spawned and ran the task";
}

// A to_thread job runs on a plain (non-worker) thread: block_on is allowed there.
CO_TEST(Misuse, BlockOnFromAToThreadJobIsAllowed) {
    Runtime other(RuntimeOptions{.workers = 1});
    const int v = co_await spindle::to_thread([&other] { return other.block_on(value_after_yield(6)); });
    EXPECT_EQ(v, 6);
}

TEST(Misuse, ShutdownFromAWorkerThrowsLogicError) {
    Runtime rt(RuntimeOptions{.workers = 1});
    struct Local {
        static Task<bool> body(Runtime& r) {
            try {
                r.shutdown();
            } catch (const std::logic_error&) {
                co_return true;
            }
            co_return false;
        }
    };
    EXPECT_TRUE(rt.block_on(Local::body(rt)));
}

TEST(Misuse, AbsurdWorkerCountThrowsInvalidArgument) {
    EXPECT_THROW(Runtime(RuntimeOptions{.workers = 100000}), std::invalid_argument);
    EXPECT_THROW(Runtime(RuntimeOptions{.workers = 1025}), std::invalid_argument);
    std::atomic<int> dropped{0};
    EXPECT_THROW((void)spindle::run(holds_counter(DropCounter(dropped)), RuntimeOptions{.workers = 100000}),
                 std::invalid_argument);
    EXPECT_EQ(dropped.load(), 1);
}

TEST(Misuse, NegativeDeadlockTimeoutThrowsInvalidArgument) {
    EXPECT_THROW(Runtime(RuntimeOptions{.workers = 1, .virtual_time = false, .deadlock_timeout = -1}),
                 std::invalid_argument);
}

TEST(Misuse, CurrentTaskNameOutsideATaskThrowsLogicError) {
    EXPECT_THROW((void)spindle::current_task_name(), std::logic_error);
}

TEST(Misuse, EmptyJoinHandleThrowsLogicError) {
    JoinHandle<int> h;
    EXPECT_THROW((void)h.cancel(), std::logic_error);
    EXPECT_THROW((void)h.done(), std::logic_error);
    EXPECT_THROW((void)h.cancelled(), std::logic_error);
    EXPECT_THROW((void)h.name(), std::logic_error);
    EXPECT_THROW((void)h.id(), std::logic_error);
}

CO_TEST(Misuse, AwaitingAnEmptyJoinHandleThrowsLogicError) {
    JoinHandle<int> h;
    bool threw = false;
    try {
        (void)co_await h;
    } catch (const std::logic_error&) {
        threw = true;
    }
    EXPECT_TRUE(threw);
}

CO_TEST_OPTS(Misuse, TaskAwaitingItsOwnHandleThrowsLogicError, one_worker_virtual()) {
    struct Box {
        JoinHandle<int> self;
    } box;
    struct Local {
        static Task<int> body(Box& b) {
            co_await spindle::yield_now();
            try {
                co_return co_await b.self;
            } catch (const std::logic_error&) {
                co_return 1;
            }
        }
    };
    box.self = spindle::spawn(Local::body(box));
    EXPECT_EQ(co_await box.self, 1) << "awaiting one's own handle would deadlock: std::logic_error";
    box.self = {};
}
