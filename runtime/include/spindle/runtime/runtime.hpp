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
    /// The value in milliseconds.
    std::int64_t ms = 0;
    /// Zero.
    constexpr Millis() noexcept = default;
    /// `v` milliseconds (implicit, so that `deadlock_timeout = 100` works).
    constexpr Millis(std::int64_t v) noexcept : ms(v) {}  // NOLINT(google-explicit-constructor)
    /// Any std::chrono duration, truncated to whole milliseconds (implicit: `100ms`, `2s`).
    template <class R, class P>
    constexpr Millis(std::chrono::duration<R, P> d) noexcept  // NOLINT(google-explicit-constructor)
        : ms(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) {}
    /// The value as std::chrono::milliseconds.
    [[nodiscard]] constexpr std::chrono::milliseconds get() const noexcept { return std::chrono::milliseconds(ms); }
    /// True when the duration is positive (for an option, 0 means off).
    constexpr explicit operator bool() const noexcept { return ms > 0; }
};

/// How a Runtime is built.
///
/// An aggregate, meant for designated initializers
/// (`RuntimeOptions{.workers = 4, .virtual_time = true}`). The Runtime constructor
/// throws std::invalid_argument for more than 1024 workers or a negative
/// deadlock_timeout.
struct RuntimeOptions {
    /// Worker threads; 0 = the CPUs the process may run on (its affinity mask, as Go
    /// and Tokio count them; else std::thread::hardware_concurrency()). At most 1024.
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
    /// Idle spinning (2+ workers, real time): a worker that runs out of work and finds
    /// nothing to steal keeps looking for up to this many microseconds — I/O polled
    /// without blocking, the global queue, due timers, another worker's surplus —
    /// before it sleeps, one such worker at a time (Go's spinning M). Work that arrives
    /// meanwhile starts without a wake-up: a sleeping worker costs a futex or eventfd
    /// wake, and on a VM a halted vCPU's wake-up (tens of microseconds). The price: up
    /// to this much CPU time after each burst of work, on one core; a runtime with
    /// nothing to do sleeps. 0 = sleep at once. At most 10,000.
    std::uint32_t idle_spin_us = 50;
};

/// Counters summed over workers on read (Runtime::metrics()); each is a count since
/// the Runtime was built, read as a relaxed snapshot.
struct RuntimeMetrics {
    std::uint64_t tasks_spawned = 0;    ///< Tasks spawned (from a task or from outside).
    std::uint64_t tasks_completed = 0;  ///< Spawned tasks that finished (any outcome).
    std::uint64_t steals = 0;  ///< Successful steals by an idle worker (each takes half a queue).
    std::uint64_t parks = 0;     ///< A worker went to sleep.
    std::uint64_t unparks = 0;   ///< A worker was woken by another thread.
    std::uint64_t injections = 0;  ///< Tasks queued from outside the workers (spawns and wakes).
    std::uint64_t timers_fired = 0;  ///< Timers that woke their task.
    std::uint64_t stall_rescues = 0;  ///< Woken tasks moved to an idle worker after waiting 250 us.
    std::uint64_t migrations = 0;  ///< Tasks woken while running on one worker, handed to their waker's.
    /// Joins that found their task not yet started on their own worker and ran it inline
    /// (2+ workers; the awaiting task did not park).
    std::uint64_t inline_joins = 0;
    /// Idle spins (RuntimeOptions::idle_spin_us): times a worker spun before sleeping.
    std::uint64_t idle_spins = 0;
    /// Idle spins that found work (the others slept after the whole spin).
    std::uint64_t idle_spin_hits = 0;
    std::size_t workers = 0;  ///< The number of worker threads.
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
    explicit JoinAwaiterBase(TaskHeader* t, bool owns = false) noexcept : target(t), owns_ref(owns) {}
    TaskHeader* target;
    TaskHeader* self = nullptr;
    std::uint64_t token = 0;
    bool suspended = false;
    // The awaiter holds a reference of its own, taken over from an rvalue handle (the
    // handle is left empty): nobody else can use it, so an inline child that no one
    // else owns may start and complete without locked instructions ("Exclusive
    // children" in runtime/src/worker.cpp). Dropped by the awaiter's destructor.
    bool owns_ref = false;
    // on_cancel() forwarded a cancellation of the awaiting task to `target` (1), or
    // found `target` already complete so that nothing could be forwarded (2). A forward
    // that `target` never observed — it was complete, or running and finished without
    // reaching a suspension point (another worker had started it) — is delivered to the
    // awaiting task instead, as asyncio does when `fut_waiter.cancel()` returns False
    // (finish_resume()). Else a task that only spawns and joins lost its cancellation
    // whenever the other worker had started the child (CI, TSan).
    std::uint8_t forwarded = 0;

    bool await_ready() const noexcept { return target->complete(); }
    /// Parks the awaiting task `h` until `target` completes (noop_coroutine()), or
    /// resumes it at once (`h`) when `target` completed meanwhile; or, with 2+ workers,
    /// runs a `target` that has not started inline on this worker, by symmetric
    /// transfer (its body; "Inline joins" in runtime/src/worker.cpp).
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> h);
    /// Registers as a joiner of `target` and arms the awaiting task's wait (resumed at
    /// `h`); false if `target` completed first (nothing registered).
    bool park_on_target(std::coroutine_handle<> h) noexcept;
    /// Delivers a pending cancellation. Inline: nearly every join (an inline one, or a
    /// parked one with nothing forwarded) has nothing to deliver, and skips the call.
    void finish_resume() {
        if (suspended || forwarded != 0) [[unlikely]]
            finish_resume_slow();
    }
    void finish_resume_slow();
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
///
/// The task's coroutine frame — with its by-value parameters — lives until the task has
/// completed *and* every handle is gone; a locals' destructors run when the body ends.
/// An unnamed task that completes on another worker than the one it last parked on may
/// keep its frame a little longer: until that worker's next batch boundary or idle
/// (microseconds; "Unlisting" in runtime/src/registry.cpp). So do not block a worker
/// thread on something that a finished task's parameter holds (blocking belongs in
/// to_thread); Runtime::shutdown() and run() return only after every frame is gone.
template <class T>
class JoinHandle {
public:
    /// An empty handle: valid() is false; cancel(), done(), cancelled(), id(), name()
    /// and co_await throw std::logic_error on it (as on a moved-from handle).
    JoinHandle() noexcept = default;
    /// Internal (spawn): wraps task `t`, adopting one of its references.
    explicit JoinHandle(detail::TaskHeader* t) noexcept : t_(t) {}  // adopts one ref
    /// Another handle to the same task.
    JoinHandle(const JoinHandle& o) noexcept : t_(o.t_) {
        if (t_ != nullptr) t_->add_ref();
    }
    /// Takes over `o`'s task; `o` becomes empty.
    JoinHandle(JoinHandle&& o) noexcept : t_(std::exchange(o.t_, nullptr)) {}
    /// Refers to `o`'s task from now on (copy or move); the old task is dropped, not cancelled.
    JoinHandle& operator=(JoinHandle o) noexcept {
        std::swap(t_, o.t_);
        return *this;
    }
    ~JoinHandle() {
        if (t_ != nullptr) t_->release();
    }

    /// False for an empty (default-constructed or moved-from) handle.
    [[nodiscard]] bool valid() const noexcept { return t_ != nullptr; }
    /// Requests cancellation; false when the task already finished.
    bool cancel() { return checked("cancel")->cancel(); }
    /// True once the task has finished: returned, thrown or cancelled (asyncio's Task.done()).
    [[nodiscard]] bool done() const { return checked("done")->complete(); }
    /// True when the task finished by cancellation.
    [[nodiscard]] bool cancelled() const {
        auto* t = checked("cancelled");
        return t->complete() && t->was_cancelled();
    }
    /// The task's id, as in Runtime::dump() and default names (`task-<id>`): unique
    /// within its runtime, not consecutive.
    [[nodiscard]] std::uint64_t id() const { return checked("id")->id(); }
    /// The name given to spawn, else `task-<id>` (asyncio's Task.get_name()).
    [[nodiscard]] std::string name() const;

    /// `co_await handle`: waits until the task finishes, then returns its value (a copy,
    /// or moved out when Move, for an rvalue handle) or rethrows its exception, a
    /// CancelledError included. Cancelling the awaiting task cancels the awaited one
    /// too and keeps waiting for it, as asyncio does.
    template <bool Move>
    struct Awaiter : detail::JoinAwaiterBase {
        using detail::JoinAwaiterBase::JoinAwaiterBase;
        Awaiter(const Awaiter&) = delete;
        Awaiter& operator=(const Awaiter&) = delete;
        ~Awaiter() {
            if (this->owns_ref) this->target->release();
        }
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
    /// Awaits the task, any number of times; the value is copied. std::logic_error
    /// on an empty handle, outside a task, or inside the awaited task itself.
    Awaiter<false> operator co_await() const& { return Awaiter<false>{checked("co_await")}; }
    /// Awaits the task through an rvalue handle, which it consumes: the handle is empty
    /// from here on (its reference goes with the awaiter, dropped when the await ends),
    /// and the value is moved out of the task (a copy of the handle that awaits it
    /// afterwards gets the moved-from value). As with any move, no other thread or
    /// task may use this handle object meanwhile (a copy of it, made before, may).
    Awaiter<true> operator co_await() && {
        detail::TaskHeader* t = checked("co_await");
        t_ = nullptr;
        return Awaiter<true>{t, true};
    }

    /// Internal.
    [[nodiscard]] detail::TaskHeader* header() const noexcept { return t_; }

private:
    detail::TaskHeader* checked(const char* what) const {
        if (t_ == nullptr) [[unlikely]]
            throw_empty(what);
        return t_;
    }
    [[noreturn, gnu::cold, gnu::noinline]] static void throw_empty(const char* what) {
        throw std::logic_error(std::string("spindle: JoinHandle::") + what + " on an empty (moved-from) handle");
    }
    detail::TaskHeader* t_ = nullptr;
};

namespace detail {
std::string task_display_name(const TaskHeader& t);

template <class T>
JoinHandle<T> spawn_on(Scheduler* s, Task<T>&& task, std::string_view name, CompletionHook* hook = nullptr) {
    auto h = task.release("spawn");
    TaskHeader& t = h.promise();
    t.resume_ = h;  // its first resumption, and its frame until its final suspension
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
    /// Starts the workers (and, with 2+ workers, the stall monitor thread).
    /// @param opts  the options; see RuntimeOptions.
    /// @throws std::invalid_argument  more than 1024 workers, or a negative
    ///         deadlock_timeout.
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
    /// destructor; spindle::run calls it after the main task). std::logic_error when
    /// called from one of the workers.
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
    /// Every named task is listed, and every task that has suspended at least once;
    /// an unnamed task that has not yet finished its first slice (queued before its
    /// first run, or in it) is only counted, on a last line
    ///   (+3 unnamed tasks not listed: queued before its first run, or running it)
    /// so that short tasks never touch the registry (RuntimeOptions::debug lists
    /// every task from its spawn).
    ///
    /// Any thread, any time. It costs nothing when not called: it only reads state
    /// the runtime keeps anyway (the live-task registry, the timer heap, each task's
    /// wait word and wait_cell_, the joiners lists). While it runs it holds the
    /// registry locks (tasks being listed or completing wait a moment), each joiners lock
    /// briefly, and for each task parked on a primitive, pins EBR and tags the task's
    /// wait_cell_ so that the task cannot leave its wait — hence the primitive cannot
    /// be destroyed — during the few loads describing it (a task that resumes then
    /// spins for those few loads). A line may be slightly stale (a task that moved
    /// on meanwhile); it never reads freed memory.
    [[nodiscard]] std::string dump() const;
    /// Counters kept per worker (relaxed, uncontended), summed on read.
    [[nodiscard]] RuntimeMetrics metrics() const;
    /// The number of worker threads (`workers = 0` resolved to the hardware's count).
    [[nodiscard]] std::size_t workers() const noexcept;
    /// The options in effect: as given, with defaults resolved (workers,
    /// max_blocking_threads) and debug set by SPINDLE_DEBUG=1.
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

/// The runtime's clock: the time since the current task's Runtime was built, virtual
/// under virtual_time, else steady_clock. Called outside a task: 0.
std::chrono::nanoseconds now();

}  // namespace spindle
