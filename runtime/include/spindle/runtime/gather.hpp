// spindle/runtime/gather.hpp — gather (tuple and vector forms) and TaskGroup.
//
// Choice documented in the README: gather's children run concurrently; when one
// fails (an exception, CancelledError included), gather cancels the others, waits
// until every child has finished, then rethrows the first failure (by completion
// time). Cancelling the task that awaits gather cancels every child, waits for
// them, and throws CancelledError. So no child ever outlives gather.
//
// TaskGroup (asyncio.TaskGroup): the first child that fails with an exception other
// than CancelledError cancels its siblings at once; `co_await group.join()` waits
// for every child and rethrows that first failure. A cancelled join() cancels every
// child, waits, and throws CancelledError — or, if a child had already failed, that
// failure. A TaskGroup destroyed without join()
// cancels the children still running (they finish detached). Completed children are
// kept (their frames and results) until the group is destroyed.
#pragma once

#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <variant>
#include <vector>

#include "spindle/runtime/errors.hpp"
#include "spindle/runtime/runtime.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle {

namespace detail {

/// The children of a gather or TaskGroup, and the wait of their parent.
/// THREAD SAFETY: add/cancel_all/wait from the parent task; on_done from any worker.
/// Lifetime: refcounted; each live child holds a ref (dropped in on_done).
class ChildSet final : public CompletionHook {
public:
    /// count_cancelled: a cancelled child counts as a failure (gather) or not (TaskGroup).
    /// cancel_on_failure: the first failure cancels the siblings at once.
    ChildSet(bool count_cancelled, bool cancel_on_failure) noexcept;
    ChildSet(const ChildSet&) = delete;
    ChildSet& operator=(const ChildSet&) = delete;

    template <class T>
    JoinHandle<T> spawn(Task<T>&& t, std::string_view name) {
        add_ref();
        pending_.fetch_add(1, std::memory_order_relaxed);  // relaxed: on_done's RMWs order it
        JoinHandle<T> h;
        try {
            h = spawn_on(nullptr, std::move(t), name, this);
        } catch (...) {
            pending_.fetch_sub(1, std::memory_order_relaxed);  // relaxed: never published
            release();
            throw;
        }
        std::lock_guard lk(mx_);
        h.header()->add_ref();
        children_.push_back(h.header());
        return h;
    }

    void cancel_all() noexcept;
    /// The parent waits until no child is pending, or (wake_on_failure) one failed.
    struct Wait;
    Wait wait(bool wake_on_failure) noexcept;

    [[nodiscard]] bool failed() const noexcept { return failed_.load(std::memory_order_acquire); }  // acquire: pairs with on_done
    [[nodiscard]] bool all_done() const noexcept { return pending_.load(std::memory_order_acquire) == 0; }  // acquire: pairs with on_done
    [[nodiscard]] std::exception_ptr first_failure() const;

    void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }  // relaxed: from an existing ref
    void release() noexcept;
    /// Drops the parent's ref: cancels what still runs (a TaskGroup without join).
    void abandon() noexcept;

private:
    ~ChildSet();
    static void on_done_fn(CompletionHook* self, TaskHeader& child) noexcept;

    mutable std::mutex mx_;
    std::vector<TaskHeader*> children_;  // under mx_; each holds a ref
    std::exception_ptr failure_;         // under mx_
    TaskHeader* waiter_ = nullptr;       // under mx_: the parent, while armed
    std::uint64_t waiter_token_ = 0;     // under mx_
    bool wake_on_failure_ = false;       // under mx_
    std::atomic<std::size_t> pending_{0};
    std::atomic<bool> failed_{false};
    std::atomic<int> refs_{1};           // the parent + one per live child
    const bool count_cancelled_;
    const bool cancel_on_failure_;

public:
    enum class WaitResult { kReady, kWoken, kCancelled };
    struct Wait : WaitNode {
        ChildSet* set;
        bool wake_on_failure;
        TaskHeader* self = nullptr;
        bool suspended = false;
        bool await_ready() const noexcept;
        bool await_suspend(std::coroutine_handle<> h);
        /// kReady: did not suspend; kWoken: a child's completion woke us;
        /// kCancelled: the wait was cancelled (the cancellation is consumed).
        WaitResult await_resume() noexcept;
    };
};

/// Waits for every child; cancellation of the parent while waiting cancels the
/// children and is re-raised after they finished. Rethrows the first failure.
Task<void> finish_children(ChildSet& set, bool stop_on_failure);

template <class T>
using gather_value_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class T>
gather_value_t<T> take_result(JoinHandle<T>& h) {
    auto& p = promise_of<T>(h.header());
    if constexpr (std::is_void_v<T>) {
        p.result_ref();
        return {};
    } else {
        return std::move(p.result_ref());
    }
}

struct ChildSetRef {
    ChildSet* p;
    explicit ChildSetRef(ChildSet* s) noexcept : p(s) {}
    ChildSetRef(const ChildSetRef&) = delete;
    ChildSetRef& operator=(const ChildSetRef&) = delete;
    ~ChildSetRef() { p->release(); }
};

}  // namespace detail

/// Runs the tasks concurrently; their values as a vector, in order (asyncio.gather).
/// When one child fails (an exception, CancelledError included), the others are
/// cancelled, every child is waited for, and the first failure (by completion time)
/// is rethrown. Cancelling the awaiting task cancels every child, waits for them and
/// throws CancelledError. No child outlives gather. A void child yields std::monostate.
template <class T>
Task<std::vector<detail::gather_value_t<T>>> gather(std::vector<Task<T>> tasks) {
    detail::ChildSetRef set(new detail::ChildSet(/*count_cancelled=*/true, /*cancel_on_failure=*/false));
    std::vector<JoinHandle<T>> hs;
    hs.reserve(tasks.size());
    for (auto& t : tasks) hs.push_back(set.p->spawn(std::move(t), {}));
    tasks.clear();
    co_await detail::finish_children(*set.p, /*stop_on_failure=*/true);
    std::vector<detail::gather_value_t<T>> out;
    out.reserve(hs.size());
    for (auto& h : hs) out.push_back(detail::take_result(h));
    co_return out;
}

/// Runs the tasks concurrently; their values as a tuple (void -> std::monostate).
/// Failure and cancellation as in the vector form: the first failure cancels the
/// others and is rethrown once every child has finished.
template <class... Ts>
Task<std::tuple<detail::gather_value_t<Ts>...>> gather(Task<Ts>... tasks) {
    detail::ChildSetRef set(new detail::ChildSet(/*count_cancelled=*/true, /*cancel_on_failure=*/false));
    std::tuple<JoinHandle<Ts>...> hs{set.p->spawn(std::move(tasks), {})...};
    co_await detail::finish_children(*set.p, /*stop_on_failure=*/true);
    co_return std::apply([](auto&... h) { return std::tuple<detail::gather_value_t<Ts>...>{detail::take_result(h)...}; },
                         hs);
}

/// asyncio.TaskGroup: structured concurrency for the tasks spawned through it.
///
/// The first child that fails with an exception other than CancelledError cancels its
/// siblings at once; `co_await group.join()` waits for every child and rethrows that
/// first failure. A cancelled join() cancels every child, waits, and throws
/// CancelledError (unless a child failed: that failure is rethrown instead).
/// Completed children are kept (their frames and results) until the group is
/// destroyed.
class TaskGroup {
public:
    /// An empty group.
    TaskGroup() : set_(new detail::ChildSet(/*count_cancelled=*/false, /*cancel_on_failure=*/true)) {}
    /// Cancels the children still running (none after a join()); they finish detached.
    ~TaskGroup() { set_->abandon(); }
    TaskGroup(const TaskGroup&) = delete;
    TaskGroup& operator=(const TaskGroup&) = delete;

    /// Spawns a child (inside a task), named `name` like spindle::spawn.
    template <class T>
    JoinHandle<T> spawn(Task<T> task, std::string_view name = {}) {
        return set_->spawn(std::move(task), name);
    }
    /// Waits for every child; rethrows the first failure.
    Task<void> join() { return detail::finish_children(*set_, /*stop_on_failure=*/false); }

private:
    detail::ChildSet* set_;
};

}  // namespace spindle
