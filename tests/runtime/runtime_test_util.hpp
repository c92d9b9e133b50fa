// tests/runtime/runtime_test_util.hpp — small helpers shared by the runtime tests.
#pragma once

#include <atomic>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "co_test.hpp"

namespace spindle::testing {

/// True in sanitizer builds, where everything runs ~10x slower: stress sizes shrink.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif

/// `n` scaled by SPINDLE_STRESS_SCALE, divided by 10 under sanitizers (at least 1).
constexpr std::size_t stress_size(std::size_t n) {
    std::size_t s = n * static_cast<std::size_t>(SPINDLE_STRESS_SCALE);
    if (kSanitized) s /= 10;
    return s == 0 ? 1 : s;
}

/// Increments a counter when destroyed (unless moved from). Passed by value into a
/// coroutine it lives in the frame, so it tells when the frame was destroyed.
class DropCounter {
public:
    explicit DropCounter(std::atomic<int>& c) noexcept : c_(&c) {}
    DropCounter(DropCounter&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
    DropCounter& operator=(DropCounter&&) = delete;
    DropCounter(const DropCounter&) = delete;
    DropCounter& operator=(const DropCounter&) = delete;
    ~DropCounter() {
        if (c_ != nullptr) c_->fetch_add(1);
    }

private:
    std::atomic<int>* c_;
};

/// Appends name0, name1, ... to `trace`, yielding after each (asyncio:
/// `for i in range(n): trace.append(f"{name}{i}"); await asyncio.sleep(0)`).
/// Single-worker tests only (the trace is not synchronized).
inline Task<void> yielder(std::vector<std::string>& trace, std::string name, int n) {
    for (int i = 0; i < n; ++i) {
        trace.push_back(name + std::to_string(i));
        co_await yield_now();
    }
}

inline std::string join_trace(const std::vector<std::string>& t) {
    std::string out;
    for (const auto& s : t) {
        if (!out.empty()) out += ' ';
        out += s;
    }
    return out;
}

}  // namespace spindle::testing
