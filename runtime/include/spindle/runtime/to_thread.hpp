// spindle/runtime/to_thread.hpp — asyncio.to_thread: run blocking code on a separate
// thread pool while the workers stay free.
//
// Cancelling the awaiting task resumes it at once with CancelledError; the callable
// keeps running on its thread (a thread cannot be interrupted) and its result is
// dropped — as in asyncio. Under virtual time, the clock does not move while a
// to_thread job runs.
#pragma once

#include <atomic>
#include <exception>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

#include "spindle/runtime/detail/blocking.hpp"
#include "spindle/runtime/errors.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle {

namespace detail {

template <class F, class R>
struct ThreadJob final : BlockingJob {
    explicit ThreadJob(F&& fn) : f(std::move(fn)) {}
    F f;
    std::conditional_t<std::is_void_v<R>, bool, std::optional<R>> value{};
    std::exception_ptr error;
    TaskHeader* task = nullptr;  // holds a ref until run() is done with it
    std::uint64_t token = 0;
    std::atomic<int> refs{2};    // the awaiter + the pool thread

    void release() noexcept {
        // acq_rel: the last owner must see the other's writes before deleting.
        if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
    }
    void run() noexcept override {
        try {
            if constexpr (std::is_void_v<R>) {
                std::invoke(f);
            } else {
                value.emplace(std::invoke(f));
            }
        } catch (...) {
            error = std::current_exception();
        }
        TaskHeader* t = task;
        if (t->claim(token)) t->schedule();  // the claim publishes value/error (acq_rel)
        blocking_done(*t);
        t->release();
        release();
    }
};

template <class F>
struct ToThreadAwaiter : WaitNode {
    using R = std::invoke_result_t<F&>;
    explicit ToThreadAwaiter(F fn) : f(std::move(fn)) {}
    ToThreadAwaiter(ToThreadAwaiter&& o) noexcept : f(std::move(o.f)), job(std::exchange(o.job, nullptr)) {}
    ToThreadAwaiter& operator=(ToThreadAwaiter&&) = delete;
    ~ToThreadAwaiter() {
        if (job != nullptr) job->release();
    }

    F f;
    ThreadJob<F, R>* job = nullptr;
    TaskHeader* self = nullptr;

    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
        self = &require_task("to_thread");
        job = new ThreadJob<F, R>(std::move(f));
        job->task = self;
        self->add_ref();
        job->token = self->arm(this, h);
        try {
            submit_blocking(*self, job);
        } catch (...) {
            (void)self->claim(job->token);
            self->release();
            job->refs.store(1, std::memory_order_relaxed);  // relaxed: the pool never saw it
            throw;
        }
        if (self->cancelled_while_arming(job->token)) self->schedule();  // requeue (asyncio order)
        return true;
    }
    R await_resume() {
        if (self->consume_cancel()) throw CancelledError{};
        // Take the exception out, so its last reference dies here, not on the pool thread.
        if (job->error) std::rethrow_exception(std::exchange(job->error, nullptr));
        if constexpr (!std::is_void_v<R>) return std::move(*job->value);
    }
};

}  // namespace detail

/// Runs `f()` on the runtime's blocking pool; the value, or f's exception rethrown.
template <class F>
detail::ToThreadAwaiter<std::decay_t<F>> to_thread(F&& f) {
    return detail::ToThreadAwaiter<std::decay_t<F>>(std::forward<F>(f));
}

}  // namespace spindle
