// spindle/runtime/detail/fault_injection.hpp — test-only fault injection. Shipped
// but internal; always compiled (one thread_local load per coroutine-frame
// allocation), so the test suite exercises the very library it ships.
#pragma once

namespace spindle::detail::fault {

/// The n-th coroutine-frame allocation from now on the calling thread throws
/// std::bad_alloc (n >= 1; the frame's coroutine call throws it, like a real out of
/// memory). 0 disarms. Affects only the calling thread.
void fail_frame_allocation_after(int n) noexcept;

/// Allocations left before the injected failure (0: disarmed or already fired).
[[nodiscard]] int frame_allocation_countdown() noexcept;

}  // namespace spindle::detail::fault
