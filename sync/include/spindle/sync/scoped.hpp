// spindle/sync/scoped.hpp — the guard returned by `co_await x.scoped()` (asyncio's
// `async with x:`): releases on destruction, also while an exception unwinds.
#pragma once

#include <utility>

namespace spindle {

template <class Primitive>
class [[nodiscard]] ScopedRelease {
public:
    explicit ScopedRelease(Primitive& p) noexcept : p_(&p) {}
    ScopedRelease(ScopedRelease&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
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
