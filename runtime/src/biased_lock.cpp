// runtime/src/biased_lock.cpp — the out-of-line parts of BiasedLock (see
// spindle/runtime/detail/biased_lock.hpp for the protocol and invariants B1-B4).
#include "spindle/runtime/detail/biased_lock.hpp"

#include "asym_fence.hpp"
#include "scheduler_internal.hpp"

#include <thread>

namespace spindle::detail {

namespace {
// relaxed (its RMW): only uniqueness matters.
std::atomic<std::uint64_t> g_next_self{0};
constinit thread_local std::uint64_t tl_self = 0;
}  // namespace

std::uint64_t biased_lock_self() noexcept {
    std::uint64_t s = tl_self;
    if (s == 0) [[unlikely]] {
        // relaxed: a serial, never reused (2^63 threads before it could wrap).
        s = g_next_self.fetch_add(1, std::memory_order_relaxed) + 1;
        tl_self = s;
    }
    return s;
}

bool biased_lock_asymmetric() noexcept { return asym::mode() == asym::Mode::kMembarrier; }

void BiasedLock::lock_shared(std::uint64_t me_armed) const noexcept {
    // Test-and-test-and-set with exponential backoff: under contention between cores the
    // waiters stop hammering the line the holder needs (measured on the lent 16-core
    // machine, queue_mpsc pinned to 2 CPUs: 236-377 -> 177-204 ns/item).
    // acquire: pairs with unlock()'s release store of locked_ (B3).
    if (locked_.exchange(true, std::memory_order_acquire)) {
        unsigned backoff = 1;
        for (;;) {
            do {
                for (unsigned i = 0; i < backoff; ++i) cpu_relax();
                if (backoff < 64) backoff <<= 1;
                else std::this_thread::yield();  // the holder may have been preempted
                // relaxed: only a hint; the exchange below decides.
            } while (locked_.load(std::memory_order_relaxed));
            // acquire: as above.
            if (!locked_.exchange(true, std::memory_order_acquire)) break;
        }
    }
    settle_bias(me_armed);
    // As in lock(): for a TSan that sees one side only; after the wait for an owner, so
    // that it follows the owner's annotated release.
    biased_lock_tsan_acquire(this);
}

void BiasedLock::settle_bias(std::uint64_t me_armed) const noexcept {
    const std::uint64_t me = me_armed & ~std::uint64_t{1};
    // relaxed (loads and stores of bias_ below): written only under locked_, which orders
    // them; the owner path's reads are ordered by the fences (B1).
    const std::uint64_t b = bias_.load(std::memory_order_relaxed);
    if ((b & 1U) != 0U) {
        // Armed for us: unreachable as the protocol stands (our owner path takes the
        // shared path only after reading bias_ not armed for us, and only our own shared
        // acquisition arms it for us); nothing to revoke if it ever happens.
        if (b == me_armed) return;
        // Revoke (B1): un-arm, then the heavy side of the Dekker pair, then wait for an
        // owner that got in before it could see us.
        bias_.store(me, std::memory_order_relaxed);
        run_ = 1;
        asym::heavy(asym_ ? asym::Mode::kMembarrier : asym::Mode::kSymmetric);
        unsigned spins = 0;
        // acquire: pairs with the owner's release stores of owner_in_ (B3).
        while (owner_in_.load(std::memory_order_acquire)) {
            if (++spins < 128) cpu_relax();
            else std::this_thread::yield();
        }
        return;
    }
    if (b == me) {
        if (++run_ >= kRebiasAfter) bias_.store(me_armed, std::memory_order_relaxed);  // B4
        return;
    }
    bias_.store(me, std::memory_order_relaxed);  // relaxed: under locked_ (a new candidate)
    run_ = 1;
}

}  // namespace spindle::detail
