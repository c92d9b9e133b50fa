// spindle/runtime/runtime.hpp — Runtime, RuntimeOptions, spawn, JoinHandle, run.
//
// THREAD SAFETY:
//   Runtime::spawn, JoinHandle::cancel/done/cancelled   any thread
//   Runtime::dump, Runtime::metrics                      any thread, while tasks run
//   spindle::spawn, co_await handle                     inside a task of a runtime
//   Runtime::block_on, spindle::run                      a thread that is not a worker
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "spindle/runtime/errors.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle {

namespace detail {
class Scheduler;
}

/// A duration in milliseconds that accepts both `100` and `100ms`.
struct Millis {
    std::int64_t ms = 0;
    constexpr Millis() noexcept = default;
    constexpr Millis(std::int64_t v) noexcept : ms(v) {}  // NOLINT(google-explicit-constructor)
    template <class R, class P>
    constexpr Millis(std::chrono::duration<R, P> d) noexcept  // NOLINT(google-explicit-constructor)
        : ms(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) {}
    [[nodiscard]] constexpr std::chrono::milliseconds get() const noexcept { return std::chrono::milliseconds(ms); }
    constexpr explicit operator bool() const noexcept { return ms > 0; }
};

struct RuntimeOptions {
    /// Worker threads; 0 = std::thread::hardware_concurrency(). At most 1024.
    std::size_t workers = 0;
    /// The clock jumps to the next timer whenever no task is runnable and no
    /// to_thread job is running. Makes timer tests instant and deterministic.
    bool virtual_time = false;
    /// When every task has been parked this long with nothing pending, block_on
    /// throws DeadlockError (0 = off). Under virtual time the check is immediate.
    /// "Nothing pending": no timer, no to_thread job running, nothing queued from
    /// outside, and no wake in flight from another thread (a set()/release()/cancel()
    /// from a plain thread that has begun always prevents the report). A wake that a
    /// plain thread has not begun yet cannot be foreseen: a program that waits for
    /// one must use a timeout longer than that wait (under virtual time: none at
    /// all). The error's what() is a header line and Runtime::dump(). Afterwards the
    /// tasks are still parked; the Runtime's destructor (or shutdown()) cancels them.
    /// Costs nothing while tasks run: the check runs only when the workers go idle.
    Millis deadlock_timeout = 0;
    /// Threads kept at most by to_thread's pool (0 = 64).
    std::size_t max_blocking_threads = 0;
    /// Debug mode (also SPINDLE_DEBUG=1), like asyncio's: warnings on stderr, naming
    /// the task, about a task that ran more than 100 ms without suspending, a task
    /// that finishes while still holding a Lock it acquired (counted per task; a Lock
    /// released by another task than its taker leaves the taker's count up: a false
    /// warning), and a failed task whose exception nobody observed (no JoinHandle
    /// awaited it, no gather/TaskGroup collected it) when its last handle goes.
    /// Off, it costs one predictable branch per task slice and one out-of-line call
    /// per Lock operation (inline code never reads a thread-local: task_header.hpp).
    bool debug = false;
};

/// Counters summed over workers on read.
struct RuntimeMetrics {
    std::uint64_t tasks_spawned = 0;
    std::uint64_t tasks_completed = 0;
    std::uint64_t steals = 0;
    std::uint64_t parks = 0;     // a worker went to sleep
    std::uint64_t unparks = 0;   // a worker was woken by another thread
    std::uint64_t injections = 0;  // tasks queued from outside the workers (spawns and wakes)
    std::uint64_t timers_fired = 0;  // timers that woke their task
    std::uint64_t stall_rescues = 0;  // woken tasks moved to an idle worker after waiting 250 us
    std::uint64_t migrations = 0;  // tasks woken while running on one worker, handed to their waker's
    std::size_t workers = 0;
};

template <class T = void>
class JoinHandle;

namespace detail {

/// Spawns a root frame on `s` (nullptr: the current runtime, else logic_error).
void spawn_root(Scheduler* s, TaskHeader& t, std::string_view name, CompletionHook* hook = nullptr);
/// Blocks the calling (non-worker) thread until `t` completes.
void wait_external(Scheduler& s, TaskHeader& t);
/// std::logic_error when called on one of `s`'s workers (before anything is spawned).
void check_block_on(Scheduler& s);

struct JoinAwaiterBase : WaitNode, JoinNode {
    explicit JoinAwaiterBase(TaskHeader* t) noexcept : target(t) {}
    TaskHeader* target;
    TaskHeader* self = nullptr;
    std::uint64_t token = 0;
    bool suspended = false;

    bool await_ready() const noexcept { return target->complete(); }
    bool await_suspend(std::coroutine_handle<> h);
    void finish_resume();  // delivers a pending cancellation
    void on_cancel(TaskHeader& task) noexcept override;
    static void notify_joiner(JoinNode* n) noexcept;
};

template <class T>
TaskPromise<T>& promise_of(TaskHeader* h) noexcept {
    return *static_cast<TaskPromise<T>*>(h);
}

}  // namespace detail

/// A handle to a spawned task, like an asyncio.Task: awaitable (as an lvalue, any
/// number of times: value or rethrow), cancellable, copyable; dropping every copy
/// detaches the task (it keeps running).
template <class T>
class JoinHandle {
public:
    JoinHandle() noexcept = default;
    explicit JoinHandle(detail::TaskHeader* t) noexcept : t_(t) {}  // adopts one ref
    JoinHandle(const JoinHandle& o) noexcept : t_(o.t_) {
        if (t_ != nullptr) t_->add_ref();
    }
    JoinHandle(JoinHandle&& o) noexcept : t_(std::exchange(o.t_, nullptr)) {}
    JoinHandle& operator=(JoinHandle o) noexcept {
        std::swap(t_, o.t_);
        return *this;
    }
    ~JoinHandle() {
        if (t_ != nullptr) t_->release();
    }

    [[nodiscard]] bool valid() const noexcept { return t_ != nullptr; }
    /// Requests cancellation; false when the task already finished.
    bool cancel() { return checked("cancel")->cancel(); }
    [[nodiscard]] bool done() const { return checked("done")->complete(); }
    /// True when the task finished by cancellation.
    [[nodiscard]] bool cancelled() const {
        auto* t = checked("cancelled");
        return t->complete() && t->was_cancelled();
    }
    [[nodiscard]] std::uint64_t id() const { return checked("id")->id(); }
    [[nodiscard]] std::string name() const;

    template <bool Move>
    struct Awaiter : detail::JoinAwaiterBase {
        using detail::JoinAwaiterBase::JoinAwaiterBase;
        T await_resume() {
            finish_resume();
            auto& p = detail::promise_of<T>(target);
            if constexpr (std::is_void_v<T>) {
                p.result_ref();
            } else if constexpr (Move) {
                return std::move(p.result_ref());
            } else {
                return p.result_ref();
            }
        }
    };
    Awaiter<false> operator co_await() const& { return Awaiter<false>{checked("co_await")}; }
    Awaiter<true> operator co_await() && { return Awaiter<true>{checked("co_await")}; }

    /// Internal.
    [[nodiscard]] detail::TaskHeader* header() const noexcept { return t_; }

private:
    detail::TaskHeader* checked(const char* what) const {
        if (t_ == nullptr)
            throw std::logic_error(std::string("spindle: JoinHandle::") + what + " on an empty (moved-from) handle");
        return t_;
    }
    detail::TaskHeader* t_ = nullptr;
};

namespace detail {
std::string task_display_name(const TaskHeader& t);

template <class T>
JoinHandle<T> spawn_on(Scheduler* s, Task<T>&& task, std::string_view name, CompletionHook* hook = nullptr) {
    auto h = task.release("spawn");
    TaskHeader& t = h.promise();
    t.root_ = h;
    t.resume_ = h;
    t.refs_.store(2, std::memory_order_relaxed);  // relaxed: not yet published; runtime + handle
    try {
        spawn_root(s, t, name, hook);
    } catch (...) {
        h.destroy();
        throw;
    }
    return JoinHandle<T>(&t);
}
}  // namespace detail

template <class T>
std::string JoinHandle<T>::name() const {
    return detail::task_display_name(*checked("name"));
}

/// A pool of worker threads running tasks. Destroying it cancels the tasks still
/// alive, runs them to completion and joins the workers.
class Runtime {
public:
    explicit Runtime(RuntimeOptions opts = {});
    ~Runtime();
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    /// Runs `task` on the pool and blocks until it finishes; returns its value or
    /// rethrows. Throws std::logic_error when called from one of the workers.
    template <class T>
    T block_on(Task<T> task) {
        detail::check_block_on(*sched_);
        JoinHandle<T> h = detail::spawn_on(sched_.get(), std::move(task), "main");
        detail::wait_external(*sched_, *h.header());
        auto& p = detail::promise_of<T>(h.header());
        if constexpr (std::is_void_v<T>) {
            p.result_ref();
        } else {
            return std::move(p.result_ref());
        }
    }

    /// Schedules a task from any thread.
    template <class T>
    JoinHandle<T> spawn(Task<T> task, std::string_view name = {}) {
        return detail::spawn_on(sched_.get(), std::move(task), name);
    }

    /// Cancels every live task and waits until all have finished (called by the
    /// destructor; spindle::run calls it after the main task).
    void shutdown();

    /// One line per live task, by id:
    ///   task 5 "producer": running | ready
    ///   task 7 "worker-a": parked on Lock 0x5581c3a0 (1 waiter)
    ///   task 9 "main": parked on JoinHandle of task 7 "worker-a"
    ///   task 3 "ticker": sleeping until 1.500s (now 0.200s)       (runtime clock)
    /// plus "parked on to_thread", and "parked (gather, TaskGroup or another wait)".
    /// A parked task on a primitive names its kind (Lock, Semaphore,
    /// BoundedSemaphore, Event, Condition, Barrier, or what a WaitQueueOwner's
    /// describe_wait says, e.g. Queue.get), its address and its number of waiters.
    ///
    /// Any thread, any time. It costs nothing when not called: it only reads state
    /// the runtime keeps anyway (the live-task registry, the timer heap, each task's
    /// wait word and wait_cell_, the joiners lists). While it runs it holds the
    /// registry locks (spawns and completions wait a moment), each joiners lock
    /// briefly, and for each task parked on a primitive, pins EBR and tags the task's
    /// wait_cell_ so that the task cannot leave its wait — hence the primitive cannot
    /// be destroyed — during the few loads describing it (a task that resumes then
    /// spins for those few loads). A line may be slightly stale (a task that moved
    /// on meanwhile); it never reads freed memory.
    [[nodiscard]] std::string dump() const;
    /// Counters kept per worker (relaxed, uncontended), summed on read.
    [[nodiscard]] RuntimeMetrics metrics() const;
    [[nodiscard]] std::size_t workers() const noexcept;
    [[nodiscard]] const RuntimeOptions& options() const noexcept;

private:
    std::unique_ptr<detail::Scheduler> sched_;
};

/// Spawns `task` on the current runtime (inside a task). std::logic_error outside.
template <class T>
JoinHandle<T> spawn(Task<T> task, std::string_view name = {}) {
    return detail::spawn_on(nullptr, std::move(task), name);
}

/// asyncio.run: makes a runtime, runs `task`, cancels and finishes what is left.
template <class T>
T run(Task<T> task, RuntimeOptions opts = {}) {
    Runtime rt(opts);
    if constexpr (std::is_void_v<T>) {
        rt.block_on(std::move(task));
        rt.shutdown();
    } else {
        T v = rt.block_on(std::move(task));
        rt.shutdown();
        return v;
    }
}

namespace detail {
/// Debug mode reports a task that ran longer than this without suspending
/// (default 100 ms, asyncio's slow_callback_duration). Process-wide; returns the old
/// value. For tests.
std::chrono::nanoseconds set_slow_task_threshold(std::chrono::nanoseconds d) noexcept;
}  // namespace detail

/// The name of the task the caller runs in ("task-17" when unnamed); throws
/// std::logic_error outside a task.
std::string current_task_name();

/// The runtime's clock: virtual under virtual_time, else steady_clock.
/// Inside a task, or 0 outside any runtime.
std::chrono::nanoseconds now();

}  // namespace spindle
