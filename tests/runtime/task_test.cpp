// Task<T>: values, void, move-only values, exceptions across co_await, laziness,
// misuse of moved-from / already-run tasks, deep and long chains of nested awaits.
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "runtime_test_util.hpp"

using namespace std::chrono_literals;
using spindle::Task;
using spindle::testing::DropCounter;

namespace {

struct CustomError : std::runtime_error {
    explicit CustomError(const std::string& m, int c) : std::runtime_error(m), code(c) {}
    int code;
};

Task<int> value_after_yield(int v) {
    co_await spindle::yield_now();
    co_return v;
}

Task<int> immediate(int v) { co_return v; }

Task<void> set_after_yield(bool& flag) {
    co_await spindle::yield_now();
    flag = true;
}

Task<void> set_now(bool& flag) {
    flag = true;
    co_return;
}

Task<std::unique_ptr<int>> make_boxed(int v) {
    co_await spindle::yield_now();
    co_return std::make_unique<int>(v);
}

Task<std::string> concat(std::string a, std::string b) {
    co_await spindle::yield_now();
    co_return a + b;
}

Task<int> throw_after_yield(std::string msg, int code) {
    co_await spindle::yield_now();
    throw CustomError(msg, code);
}

Task<int> add_one_through(int depth, std::string msg) {
    if (depth == 0) co_return co_await throw_after_yield(msg, 7);
    co_return 1 + co_await add_one_through(depth - 1, msg);
}

Task<void> void_thrower() {
    co_await spindle::yield_now();
    throw std::out_of_range("void task failed");
}

Task<long> recursive_sum(int n) {
    if (n == 0) co_return 0;
    co_return n + co_await recursive_sum(n - 1);
}

Task<int> holds_counter(DropCounter c, int v) {
    (void)c;
    co_return v;
}

Task<std::string> own_name() {
    co_await spindle::yield_now();
    co_return spindle::current_task_name();
}

static_assert(!std::is_copy_constructible_v<Task<int>>, "Task is move-only");
static_assert(std::is_nothrow_move_constructible_v<Task<int>>);
static_assert(std::is_same_v<Task<>, Task<void>>, "T defaults to void");

}  // namespace

CO_TEST(Task, ReturnsValue) {
    const int base = 40;
    EXPECT_EQ(co_await value_after_yield(base + 1), base + 1);
    EXPECT_EQ(co_await immediate(base + 2), base + 2);
    EXPECT_EQ(co_await concat("spin", "dle"), std::string("spindle"));
}

CO_TEST(Task, VoidTaskRunsItsBody) {
    bool flag = false;
    co_await set_after_yield(flag);
    EXPECT_TRUE(flag);
}

CO_TEST(Task, IsLazyUntilAwaited) {
    bool flag = false;
    Task<void> t = set_now(flag);
    EXPECT_TRUE(t.valid());
    co_await spindle::yield_now();
    EXPECT_FALSE(flag) << "a Task must not run before it is awaited or spawned";
    co_await t;
    EXPECT_TRUE(flag);
}

CO_TEST(Task, UnstartedTaskDestroyedWithoutRunningFreesFrame) {
    std::atomic<int> dropped{0};
    bool flag = false;
    {
        Task<int> t = holds_counter(DropCounter(dropped), 1);
        Task<void> u = set_now(flag);
        EXPECT_EQ(dropped.load(), 0);
    }
    EXPECT_EQ(dropped.load(), 1) << "destroying an unstarted Task destroys its frame";
    EXPECT_FALSE(flag);
    co_return;
}

CO_TEST(Task, FrameDestroyedAfterAwait) {
    std::atomic<int> dropped{0};
    int v = co_await holds_counter(DropCounter(dropped), 5);
    EXPECT_EQ(v, 5);
    EXPECT_EQ(dropped.load(), 1);
}

CO_TEST(Task, MoveOnlyValue) {
    std::unique_ptr<int> p = co_await make_boxed(11);
    CO_ASSERT_TRUE(p != nullptr);
    EXPECT_EQ(*p, 11);

    auto h = spindle::spawn(make_boxed(12));
    std::unique_ptr<int> q = co_await std::move(h);
    CO_ASSERT_TRUE(q != nullptr);
    EXPECT_EQ(*q, 12);
}

CO_TEST(Task, ExceptionCrossesNestedAwaits) {
    bool caught = false;
    try {
        (void)co_await add_one_through(3, "deep failure");
    } catch (const CustomError& e) {
        caught = true;
        EXPECT_STREQ(e.what(), "deep failure");
        EXPECT_EQ(e.code, 7);
    }
    EXPECT_TRUE(caught);

    bool void_caught = false;
    try {
        co_await void_thrower();
    } catch (const std::out_of_range& e) {
        void_caught = true;
        EXPECT_STREQ(e.what(), "void task failed");
    }
    EXPECT_TRUE(void_caught);
}

CO_TEST(Task, ExceptionCrossesJoinHandle) {
    auto h = spindle::spawn(throw_after_yield("from a spawned task", 3));
    bool caught = false;
    try {
        (void)co_await h;
    } catch (const CustomError& e) {
        caught = true;
        EXPECT_STREQ(e.what(), "from a spawned task");
        EXPECT_EQ(e.code, 3);
    }
    EXPECT_TRUE(caught);
    EXPECT_TRUE(h.done());
    EXPECT_FALSE(h.cancelled()) << "failing with an exception is not being cancelled";
}

CO_TEST(Task, AwaitingMovedFromTaskThrowsLogicError) {
    Task<int> a = immediate(3);
    Task<int> b = std::move(a);
    EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): testing the moved-from state
    EXPECT_FALSE(static_cast<bool>(a));
    bool threw = false;
    try {
        (void)co_await a;  // NOLINT(bugprone-use-after-move)
    } catch (const std::logic_error&) {
        threw = true;
    }
    EXPECT_TRUE(threw) << "co_await of a moved-from Task must throw std::logic_error";
    EXPECT_EQ(co_await b, 3) << "the moved-to Task still works";

    Task<void> v;  // default-constructed: empty
    bool threw_void = false;
    try {
        co_await std::move(v);
    } catch (const std::logic_error&) {
        threw_void = true;
    }
    EXPECT_TRUE(threw_void);
}

CO_TEST(Task, AwaitingTaskTwiceThrowsLogicError) {
    Task<int> t = value_after_yield(4);
    EXPECT_EQ(co_await t, 4);
    bool threw = false;
    try {
        (void)co_await t;
    } catch (const std::logic_error&) {
        threw = true;
    }
    EXPECT_TRUE(threw) << "a Task that already ran cannot be awaited again";
}

CO_TEST(Task, SpawningMovedFromTaskThrowsLogicError) {
    Task<int> a = immediate(1);
    Task<int> b = std::move(a);
    bool threw = false;
    try {
        auto h = spindle::spawn(std::move(a));  // NOLINT(bugprone-use-after-move)
        (void)h;
    } catch (const std::logic_error&) {
        threw = true;
    }
    EXPECT_TRUE(threw);
    EXPECT_EQ(co_await spindle::spawn(std::move(b)), 1);
}

CO_TEST(Task, MoveAssignmentDestroysPreviousFrame) {
    std::atomic<int> dropped{0};
    {
        Task<int> t = holds_counter(DropCounter(dropped), 1);
        t = holds_counter(DropCounter(dropped), 2);
        EXPECT_EQ(dropped.load(), 1) << "the replaced, never-started frame is destroyed";
        EXPECT_EQ(co_await t, 2);
        EXPECT_EQ(dropped.load(), 1) << "an awaited lvalue Task keeps its finished frame";
    }
    EXPECT_EQ(dropped.load(), 2) << "~Task destroys the finished frame";
}

// Symmetric transfer: a deep chain of nested awaits must not recurse on the stack.
// g++ only turns symmetric transfer into a tail call at -O2 and without sanitizer
// instrumentation (the sanitizer builds use -O1 + ASan/TSan, where every transfer
// nests a stack frame), so under sanitizers the chains are kept short: they still
// check the values, not the stack property.
CO_TEST(Task, DeepRecursionOfNestedAwaits) {
    const int depth = spindle::testing::kSanitized ? 1'000 : 20'000;
    const long expected = static_cast<long>(depth) * (depth + 1) / 2;
    EXPECT_EQ(co_await recursive_sum(depth), expected);
}

// Many awaits of tasks that complete without suspending: each resumption must be a
// tail call (symmetric transfer), or the worker's stack overflows.
CO_TEST(Task, LongLoopOfSynchronousAwaits) {
    const int n = spindle::testing::kSanitized ? 1'000 : 300'000;
    long sum = 0;
    for (int i = 0; i < n; ++i) sum += co_await immediate(i);
    EXPECT_EQ(sum, static_cast<long>(n) * (n - 1) / 2);
}

CO_TEST(Task, NamesOfSpawnedTasks) {
    auto named = spindle::spawn(immediate(1), "worker-x");
    EXPECT_EQ(named.name(), "worker-x");
    auto unnamed = spindle::spawn(immediate(2));
    EXPECT_EQ(unnamed.name(), "task-" + std::to_string(unnamed.id()));
    EXPECT_NE(named.id(), unnamed.id());
    EXPECT_EQ(co_await named + co_await unnamed, 3);
    auto self_named = spindle::spawn(own_name(), "reporter");
    EXPECT_EQ(co_await self_named, "reporter");
    auto self_unnamed = spindle::spawn(own_name());
    EXPECT_EQ(co_await self_unnamed, "task-" + std::to_string(self_unnamed.id()));
}
