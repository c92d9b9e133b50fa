// spindle/runtime/detail/biased_lock.hpp — a spin lock that costs the thread using it
// most no locked instruction. Shipped but internal: do not depend on it.
//
// ─────────────────────────────── Why ───────────────────────────────
// A Queue's put and get each take a short spin lock (queue.hpp, "Design"). An exchange
// is a locked instruction, ~6-8 ns on the 2-core VM, and a put/get pair paid two per
// item: 70-80% of queue_mpsc's time with every task on one worker (perf, RESULTS.md). On
// the common shape — producers and consumer run on one worker, since a wake stays next
// to its waker (issue 12) — one thread takes the lock millions of times in a row. That
// thread becomes the lock's *bias owner* and takes it with plain stores and loads; any
// other thread pays for both sides once, with membarrier(2) (asym_fence.hpp in the
// runtime's sources), and takes the bias away. JVM biased locking, with the revocation
// made cheap by an asymmetric fence instead of a safepoint.
//
// ─────────────────────────────── Protocol ───────────────────────────────
// Fields: locked_ (the shared lock: an exchange), owner_in_ (the bias owner holds or is
// taking the lock), bias_ = id << 1 | armed: armed = id is the bias owner; unarmed = id
// took the shared lock last (a candidate), run_ = how many times in a row it did.
//   owner path (bias_ == me|armed, read as a hint):
//       owner_in_ = 1; light fence; if bias_ == me|armed still: holds it
//       else owner_in_ = 0 (release) and take the shared path
//   shared path (anyone): exchange locked_ until it was 0 (TTAS with backoff); then,
//       holding it, read bias_:
//       armed for another thread -> revoke: bias_ = me (unarmed); heavy fence; wait
//                                  until owner_in_ == 0; run_ = 1
//       armed for me             -> nothing (the owner path saw a shared holder)
//       me (unarmed)             -> ++run_; at kRebiasAfter: bias_ = me|armed
//       another candidate        -> bias_ = me; run_ = 1
//   unlock: the owner path stores owner_in_ = 0, the shared path locked_ = 0 (release).
// Invariants:
//   B1 (mutual exclusion) bias_ is written only under locked_. While it is armed for T,
//      a shared holder other than T does not proceed before it has revoked: stored bias_
//      un-armed, fenced (heavy), and seen owner_in_ == 0. An owner-path holder stored
//      owner_in_, fenced (light), then read bias_ armed for itself. light + heavy make a
//      Dekker pair (asym_fence.hpp): of an owner attempt and a revocation, at least one
//      sees the other's store, so either the revoker waits for that owner to leave, or
//      the owner sees bias_ un-armed and backs off to the shared path. Only T's own
//      shared acquisition can arm it for T again. (The owner path need not read
//      locked_: a shared holder other than T either found bias_ un-armed or revoked.)
//      Without membarrier both fences are seq_cst fences (the symmetric mode).
//   B2 (no deadlock) The owner path never waits: it backs off to the shared path, whose
//      holder waits only for owner_in_, which an owner holds for its critical section.
//   B3 (publication) Shared holders pass the lock by the exchange of locked_ (acquire)
//      and its release store. A revoker reads owner_in_ with an acquire load that sees
//      the owner's release store of 0 (its unlock, or its back-off: a plain store
//      continues no release sequence, so the back-off must be a release too). An owner
//      path follows, in its own thread, the shared acquisition that armed the bias, and
//      no other thread held the lock in between (it would have revoked): each holder's
//      critical section happens before the next's.
//   B4 (cost) A revocation (a membarrier, ~1-5 us) happens at most once per
//      kRebiasAfter acquisitions: the bias is re-armed only after that many shared
//      acquisitions in a row by one thread. Threads that alternate never arm it and pay
//      one exchange each, as before, plus a load and a store on the same line.
// Identity: a 63-bit serial per thread (biased_lock_self(), from a 64-bit counter:
// never reused). Memory: the lock owns nothing.
#pragma once

#include <atomic>
#include <cassert>
#include <cstdint>

#include "spindle/runtime/detail/tsan.hpp"

#if defined(__SANITIZE_THREAD__)
#define SPINDLE_DETAIL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SPINDLE_DETAIL_TSAN 1
#endif
#endif

namespace spindle::detail {

// The annotations pair the inline (user-compiled) half of the lock with the library's
// half for a user's TSan build against an uninstrumented library (tsan.hpp). In spindle's
// own TSan build everything is instrumented and they are left out
// (SPINDLE_DETAIL_TSAN_WHOLE_TREE, cmake/SpindleSanitizers.cmake): with them, TSan would
// not notice a release or acquire missing from the lock's own atomics (B3).
inline void biased_lock_tsan_acquire(const void* p) noexcept {
#ifndef SPINDLE_DETAIL_TSAN_WHOLE_TREE
    tsan_acquire(p);
#else
    (void)p;
#endif
}
inline void biased_lock_tsan_release(const void* p) noexcept {
#ifndef SPINDLE_DETAIL_TSAN_WHOLE_TREE
    tsan_release(p);
#else
    (void)p;
#endif
}

/// The calling thread's id for BiasedLock (non-zero, never reused). Out of line: the
/// lock is taken from coroutine bodies, which must not touch thread-locals directly
/// (task_header.hpp, "thread-locals and coroutines that migrate").
std::uint64_t biased_lock_self() noexcept;
/// Whether biased locks use membarrier in this process (registers it on the first call;
/// false where it is refused, under valgrind, or with SPINDLE_NO_MEMBARRIER=1).
bool biased_lock_asymmetric() noexcept;

class BiasedLock {
public:
    /// Shared acquisitions in a row by one thread that make it the bias owner (B4).
    static constexpr std::uint16_t kRebiasAfter = 4096;

    BiasedLock() noexcept : asym_(biased_lock_asymmetric()) {}
    /// Tests: `asymmetric` true only once biased_lock_asymmetric() returned true.
    explicit BiasedLock(bool asymmetric) noexcept : asym_(asymmetric) {}
    BiasedLock(const BiasedLock&) = delete;
    BiasedLock& operator=(const BiasedLock&) = delete;

    /// Takes the lock (spins); returns the token unlock() needs (true: the owner path).
    [[nodiscard]] bool lock() const noexcept {
        const std::uint64_t me = biased_lock_self() << 1 | 1U;
        // relaxed: a hint; re-read after the fence (B1).
        if (bias_.load(std::memory_order_relaxed) == me) [[likely]] {
            // relaxed: only this thread writes it true. Taken again by its holder: the
            // owner path does not deadlock as a spin lock would, so say it here.
            assert(!owner_in_.load(std::memory_order_relaxed) && "BiasedLock taken again by its holder");
#ifdef SPINDLE_DETAIL_TSAN
            // ThreadSanitizer does not support fences (-Wtsan): the store and the fence as
            // one seq_cst RMW, and a seq_cst load (the symmetric mode's pair, B1).
            owner_in_.exchange(true, std::memory_order_seq_cst);
            if (bias_.load(std::memory_order_seq_cst) == me) {
#else
            // relaxed: ordered before the load below by the fence (B1).
            owner_in_.store(true, std::memory_order_relaxed);
            light_fence();
            // relaxed: ordered after the store by the fence (B1); what the previous
            // holder wrote is ours already (B3).
            if (bias_.load(std::memory_order_relaxed) == me) {
#endif
                // The inline unlock() is compiled into the user's code, and so is this;
                // the annotation pairs them for a TSan that sees one side only (above).
                biased_lock_tsan_acquire(this);
                return true;
            }
            // release: B3 (a revoker may read this store instead of our last unlock's).
            owner_in_.store(false, std::memory_order_release);
        }
        lock_shared(me);
        return false;
    }
    /// Releases the lock taken by the lock() that returned `owner`.
    void unlock(bool owner) const noexcept {
        biased_lock_tsan_release(this);
        // release: pairs with a revoker's acquire load of owner_in_ (B3).
        if (owner) owner_in_.store(false, std::memory_order_release);
        else locked_.store(false, std::memory_order_release);  // release: pairs with lock_shared()'s acquire exchange
    }

    /// Tests and diagnostics: the calling thread is the armed bias owner (racy).
    [[nodiscard]] bool biased_to_me() const noexcept {
        // relaxed: a snapshot.
        return bias_.load(std::memory_order_relaxed) == (biased_lock_self() << 1 | 1U);
    }

private:
    void lock_shared(std::uint64_t me_armed) const noexcept;
    /// lock_shared() holding locked_: revokes, counts or arms the bias (the protocol).
    void settle_bias(std::uint64_t me_armed) const noexcept;
#ifndef SPINDLE_DETAIL_TSAN
    void light_fence() const noexcept {
        if (asym_) std::atomic_signal_fence(std::memory_order_seq_cst);  // compiler only (B1)
        else std::atomic_thread_fence(std::memory_order_seq_cst);
    }
#endif

    // Layout: owner_in_ shares its 4-byte word only with locked_, which the owner path
    // never reads, so the loads that follow its store (asym_, bias_, the Queue's spare)
    // never touch the bytes of a store in flight. A precaution: a scratch loop on the
    // 2-core VM measured no store-forwarding stall either way.
    mutable std::atomic<std::uint64_t> bias_{0};  // id << 1 | armed; written under locked_
    const bool asym_;                             // membarrier mode (light fence: compiler only)

public:
    /// A byte its user may keep under the lock, on the lock's line (the Queue's
    /// shutdown flag: its hot fields then fit one cache line).
    std::uint8_t spare = 0;

private:
    mutable std::uint16_t run_ = 0;              // under locked_: bias_'s candidate's run
    mutable std::atomic<bool> owner_in_{false};  // the bias owner holds or is taking it
    mutable std::atomic<bool> locked_{false};    // the shared lock
};
static_assert(sizeof(BiasedLock) == 16, "the Queue's hot line holds the lock and six words");

}  // namespace spindle::detail
