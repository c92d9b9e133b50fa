// tests/sync/sync_test_util.hpp — helpers shared by the sync tests.
//
// TOOLCHAIN NOTE: g++ 12.2 (Debian 12.2.0-14) miscompiles a co_await used directly as
// an if-condition, e.g. `if (co_await ev.wait()) f();` as the first suspension of a
// coroutine: resuming it jumps to address 0 or hangs (reproduced with a 20-line
// program and no spindle code; clang 14 is fine). gtest's EXPECT_TRUE(x) expands to
// an if-statement too. So these tests always store the result first:
// `const bool r = co_await ...; EXPECT_TRUE(r);`.
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "co_test.hpp"

namespace spindle::synctest {

/// True in sanitizer builds (everything runs several times slower: stress sizes shrink).
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif

#ifndef SPINDLE_STRESS_SCALE
#define SPINDLE_STRESS_SCALE 1
#endif

/// `n` scaled by SPINDLE_STRESS_SCALE, divided by `san_div` under sanitizers (>= 1).
constexpr std::size_t stress_size(std::size_t n, std::size_t san_div = 4) {
    std::size_t s = n * static_cast<std::size_t>(SPINDLE_STRESS_SCALE);
    if (kSanitized) s /= san_div;
    return s == 0 ? 1 : s;
}

/// prefix + i (written out: g++ 12 warns -Wrestrict, falsely, on "w" + std::to_string(i)).
inline std::string nm(const std::string& prefix, long long i) {
    std::string s = prefix;
    s += std::to_string(i);
    return s;
}

/// One worker and virtual time: asyncio's event loop, step for step.
inline RuntimeOptions one_worker() { return RuntimeOptions{.workers = 1, .virtual_time = true}; }

/// An event trace compared with CPython's (tests/sync/asyncio_sync_reference.py):
/// tokens joined by spaces; T("k", v) appends "k=v" (bools as 0/1). One worker only.
class Trace {
public:
    void operator()(std::string token) { v_.push_back(std::move(token)); }
    template <class V>
    void operator()(const std::string& key, V value) {
        if constexpr (std::is_same_v<V, bool>) {
            v_.push_back(key + "=" + (value ? "1" : "0"));
        } else if constexpr (std::is_arithmetic_v<V>) {
            v_.push_back(key + "=" + std::to_string(value));
        } else {
            v_.push_back(key + "=" + std::string(value));
        }
    }
    [[nodiscard]] std::string str() const {
        std::string out;
        for (const auto& s : v_) {
            if (!out.empty()) out += ' ';
            out += s;
        }
        return out;
    }
    [[nodiscard]] const std::vector<std::string>& tokens() const { return v_; }
    void clear() { v_.clear(); }

private:
    std::vector<std::string> v_;
};

/// Awaits `h`: true if it ended with CancelledError (asyncio: `except CancelledError`).
template <class T>
Task<bool> ended_cancelled(JoinHandle<T> h) {
    try {
        co_await h;
    } catch (const CancelledError&) {
        co_return true;
    }
    co_return false;
}

/// asyncio's `loop.call_soon(task.cancel)`: a task queued now that cancels `h`.
template <class T>
Task<void> cancel_soon(JoinHandle<T> h) {
    (void)h.cancel();
    co_return;
}

/// A coroutine that runs eagerly on the calling plain thread (not a spindle task):
/// used to show that a waiting call outside a task throws std::logic_error.
struct Eager {
    struct promise_type {
        std::exception_ptr error;
        Eager get_return_object() { return Eager{std::coroutine_handle<promise_type>::from_promise(*this)}; }
        std::suspend_never initial_suspend() noexcept { return {}; }
        std::suspend_always final_suspend() noexcept { return {}; }
        void return_void() noexcept {}
        void unhandled_exception() noexcept { error = std::current_exception(); }
    };
    explicit Eager(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
    Eager(Eager&& o) noexcept : h_(std::exchange(o.h_, {})) {}
    Eager(const Eager&) = delete;
    Eager& operator=(const Eager&) = delete;
    Eager& operator=(Eager&&) = delete;
    ~Eager() {
        if (h_) h_.destroy();
    }
    /// Ran to the end (it did not suspend).
    [[nodiscard]] bool finished() const { return h_.done(); }
    void rethrow() const {
        if (h_.promise().error) std::rethrow_exception(h_.promise().error);
    }

private:
    std::coroutine_handle<promise_type> h_;
};

}  // namespace spindle::synctest
