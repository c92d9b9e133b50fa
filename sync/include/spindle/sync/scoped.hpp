// spindle/sync/scoped.hpp — the guard returned by `co_await x.scoped()` (asyncio's
// `async with x:`): releases on destruction, also while an exception unwinds.
#pragma once

#include <utility>

namespace spindle {

/// The guard that `co_await x.scoped()` returns (asyncio's `async with x:`).
///
/// For a Lock, Semaphore or Condition: it holds what was acquired and calls
/// `release()` on destruction, also while an exception unwinds. Move-only. A `release()` that throws
/// there (someone else released the lock: a misuse) calls std::terminate, where
/// asyncio's `async with` would raise.
template <class Primitive>
class [[nodiscard]] ScopedRelease {
public:
    /// Adopts an acquisition of `p` that the caller already made.
    explicit ScopedRelease(Primitive& p) noexcept : p_(&p) {}
    /// Takes over `o`'s acquisition; `o` then owns nothing.
    ScopedRelease(ScopedRelease&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    /// Releases what this guard owns (reset()), then takes over `o`'s acquisition.
    ScopedRelease& operator=(ScopedRelease&& o) noexcept {
        if (this != &o) {
            reset();
            p_ = std::exchange(o.p_, nullptr);
        }
        return *this;
    }
    ScopedRelease(const ScopedRelease&) = delete;
    ScopedRelease& operator=(const ScopedRelease&) = delete;
    ~ScopedRelease() { reset(); }

    /// Releases now (once).
    void reset() {
        if (p_ != nullptr) std::exchange(p_, nullptr)->release();
    }
    /// Gives up ownership without releasing.
    Primitive* dismiss() noexcept { return std::exchange(p_, nullptr); }
    /// True until reset(), dismiss() or a move away.
    [[nodiscard]] bool owns() const noexcept { return p_ != nullptr; }

private:
    Primitive* p_;
};

namespace detail {
/// Wraps a primitive's acquire awaiter so that co_await yields a ScopedRelease.
template <class Primitive, class Awaiter>
struct ScopedAwaiter : Awaiter {
    ScopedAwaiter(Primitive& p, Awaiter a) : Awaiter(std::move(a)), prim(&p) {}
    Primitive* prim;
    ScopedRelease<Primitive> await_resume() {
        Awaiter::await_resume();
        return ScopedRelease<Primitive>(*prim);
    }
};
}  // namespace detail

}  // namespace spindle
