// spindle/runtime/task.hpp — Task<T>: a lazy, move-only coroutine.
//
// `co_await task` runs the task inside the awaiting task (symmetric transfer, no
// scheduling); `spawn(task)` makes it a task of its own. Frames are allocated with
// mimalloc. Awaiting a moved-from Task, or one that already ran, throws
// std::logic_error.
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <new>
#include <optional>
#include <string>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "spindle/runtime/detail/task_header.hpp"

namespace spindle {

template <class T = void>
class Task;

namespace detail {

void* allocate_frame(std::size_t n);
void deallocate_frame(void* p, std::size_t n) noexcept;
/// From now on frames come from the global allocator (operator new), whatever the
/// library was built with: what a sanitizer can see. Called at static initialization
/// by every translation unit compiled with ThreadSanitizer or AddressSanitizer (below).
void use_global_allocator() noexcept;
[[nodiscard]] bool frames_from_global_allocator() noexcept;

// A user's build with -fsanitize=thread or -fsanitize=address (in CMAKE_CXX_FLAGS, not
// spindle's own SPINDLE_SANITIZE) against a Release spindle: frames must come from the
// allocator the sanitizer intercepts, or a frame freed on one worker and reused on the
// other by mimalloc is reported as a data race (TSan) or hides a use-after-free (ASan).
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SPINDLE_DETAIL_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define SPINDLE_DETAIL_SANITIZED 1
#endif
#endif
#ifdef SPINDLE_DETAIL_SANITIZED
inline const bool sanitizer_registered = (use_global_allocator(), true);
#endif
/// Completion of a spawned (root) task: outcome, joiners, registry, references.
/// Returns the coroutine to transfer to: the task that ran this one inline and awaits
/// it, or noop_coroutine().
std::coroutine_handle<> on_root_complete(TaskHeader& t) noexcept;

struct TaskFinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
        auto& p = h.promise();
        if (p.continuation_) return p.continuation_;
        if (p.sched_ != nullptr) {
            // A spawned task's frame, for destroy_frame(): resume_ is free from here on
            // (no wait is armed after the final suspension), so the header needs no
            // field of its own for it.
            p.resume_ = h;
            return on_root_complete(p);  // may destroy the frame
        }
        return std::noop_coroutine();
    }
    void await_resume() const noexcept {}
};

struct TaskPromiseBase : TaskHeader {
    std::coroutine_handle<> continuation_;  // the awaiting coroutine, for a nested Task

    static void* operator new(std::size_t n) { return allocate_frame(n); }
    static void operator delete(void* p, std::size_t n) noexcept { deallocate_frame(p, n); }

    std::suspend_always initial_suspend() const noexcept { return {}; }
    TaskFinalAwaiter final_suspend() const noexcept { return {}; }
    void unhandled_exception() noexcept { exception_ = std::current_exception(); }

    void rethrow_if_failed() const {
        if (exception_) {
            // relaxed: read by the last owner, after release()'s acquire (count or decrement).
            exception_observed_.store(true, std::memory_order_relaxed);
            std::rethrow_exception(exception_);
        }
    }
};

template <class T>
struct TaskPromise final : TaskPromiseBase {
    std::optional<T> value_;
    Task<T> get_return_object() noexcept;
    template <class U = T>
        requires std::is_convertible_v<U&&, T>
    void return_value(U&& v) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
        value_.emplace(std::forward<U>(v));
    }
    T& result_ref() {
        rethrow_if_failed();
        return *value_;
    }
};

template <>
struct TaskPromise<void> final : TaskPromiseBase {
    Task<void> get_return_object() noexcept;
    void return_void() const noexcept {}
    void result_ref() const { rethrow_if_failed(); }
};

}  // namespace detail

/// A lazy, move-only coroutine that produces a T (a coroutine object in asyncio terms).
///
/// A function returning Task<T> may use co_await and co_return. Its body does not
/// start until the Task is awaited or spawned: `co_await task` runs it inside the
/// awaiting task (symmetric transfer, no scheduling); `spawn(std::move(task))` makes
/// it a task of its own. A Task runs at most once. Frames are allocated with mimalloc
/// (with operator new in a build without it, or when a sanitizer is on); out of
/// memory is std::bad_alloc at the call. Destroying a Task that never ran destroys its
/// frame without running the body.
template <class T>
class [[nodiscard]] Task {
public:
    /// The C++ coroutine promise (internal).
    using promise_type = detail::TaskPromise<T>;
    /// The type of the value `co_await task` yields.
    using value_type = T;
    /// The coroutine handle type owned by a Task.
    using handle_type = std::coroutine_handle<promise_type>;

    /// An empty Task (valid() is false).
    Task() noexcept = default;
    /// Internal (the promise's get_return_object): takes ownership of frame `h`.
    explicit Task(handle_type h) noexcept : h_(h) {}
    /// Takes over `o`'s frame; `o` becomes empty.
    Task(Task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
    /// Destroys the frame held (if any), then takes over `o`'s; `o` becomes empty.
    Task& operator=(Task&& o) noexcept {
        if (this != &o) {
            if (h_) h_.destroy();
            h_ = std::exchange(o.h_, {});
        }
        return *this;
    }
    Task(const Task&) = delete;
    Task& operator=(const Task&) = delete;
    ~Task() {
        if (h_) h_.destroy();
    }

    /// True while the Task owns a frame (false when empty, moved-from or released).
    [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(h_); }
    /// valid().
    explicit operator bool() const noexcept { return valid(); }

    /// `co_await task`: runs the task's body inside the awaiting task, by symmetric
    /// transfer, and returns its value or rethrows its exception.
    struct Awaiter {
        /// The awaited Task's frame (the Task keeps ownership).
        handle_type h;
        bool await_ready() const noexcept { return false; }
        std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
            h.promise().continuation_ = awaiting;
            return h;
        }
        T await_resume() {
            if constexpr (std::is_void_v<T>) {
                h.promise().result_ref();
            } else {
                return std::move(h.promise().result_ref());
            }
        }
    };

    /// Runs the task in the awaiting coroutine (lvalue: the Task keeps the frame).
    /// std::logic_error if the Task is empty (moved-from) or already ran.
    Awaiter operator co_await() & { return Awaiter{checked("co_await")}; }
    /// Runs a temporary Task in the awaiting coroutine; the rules of the lvalue form.
    Awaiter operator co_await() && { return Awaiter{checked("co_await")}; }

    /// Releases ownership of the frame (used by spawn); std::logic_error, naming
    /// `what`, if the Task is empty or already ran.
    handle_type release(const char* what) {
        checked(what);
        return std::exchange(h_, {});
    }

private:
    // The check is on every spawn and await: the test inline, the throw out of line.
    handle_type checked(const char* what) const {
        if (!h_ || h_.done() || h_.promise().continuation_ || h_.promise().started_) [[unlikely]]
            throw_unusable(what, !h_);
        return h_;
    }
    [[noreturn, gnu::cold, gnu::noinline]] static void throw_unusable(const char* what, bool empty) {
        if (empty) throw std::logic_error(std::string("spindle: ") + what + " of an empty (moved-from) Task");
        throw std::logic_error(std::string("spindle: ") + what + " of a Task that already ran");
    }
    handle_type h_;
};

namespace detail {
template <class T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
    return Task<T>{std::coroutine_handle<TaskPromise<T>>::from_promise(*this)};
}
inline Task<void> TaskPromise<void>::get_return_object() noexcept {
    return Task<void>{std::coroutine_handle<TaskPromise<void>>::from_promise(*this)};
}
}  // namespace detail

}  // namespace spindle
