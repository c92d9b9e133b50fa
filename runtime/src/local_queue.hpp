// runtime/src/local_queue.hpp — a worker's run queues: bounded FIFO rings that the
// owner pushes at the tail and that the owner and thieves take from at the head.
// LocalQueue (256 tasks) is the run queue; WakeArea (16) holds the tasks woken by the
// task running on the worker (see "Wake area" in worker.cpp); Inbox (64) the tasks
// other workers hand over; SpawnStack (16) the tasks spawned on the worker, newest
// first (see "Spawn stack" in worker.cpp). Never installed.
//
// Algorithm: Go's per-P `runq` (runtime/proc.go: runqput, runqget, runqgrab) as also
// used by Tokio (scheduler/multi_thread/queue.rs). We depart from DESIGN.md's
// Chase–Lev deque deliberately: Chase–Lev lets the owner pop LIFO at the bottom,
// which would break "workers = 1 runs tasks strictly in FIFO order". This ring is
// FIFO for everyone; thieves take half of it in one CAS.
//
// State words:
//   head_  index of the oldest task; advanced by CAS by the owner (pop) and by thieves
//   tail_  one past the newest task; written only by the owner
// Indices are free-running uint32; size = tail - head (mod 2^32) <= kCapacity.
//
// THREAD SAFETY: push/pop/drain_half: owner only. steal_into: any other worker (the
// thief), with `into` being the thief's own queue. steal_one: any thread.
//
// Invariants:
//   1. Slots in [head, tail) hold published tasks; the owner writes slot tail before
//      the release store of tail_, so a reader that acquires tail_ sees the slot.
//   2. A slot is read by a thief before its CAS on head_ succeeds; the owner only
//      overwrites slot i after head_ passed i (it checks head_ before pushing), so a
//      thief whose CAS succeeds read the value that was there (a failed CAS retries).
//   3. Each task taken is taken by exactly one party: the one whose CAS moved head_
//      over it.
// Memory: tasks are not owned by the queue; the ring is a fixed array.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cassert>
#include <cstdint>
#include <thread>

#include "asym_fence.hpp"
#include "spindle/runtime/detail/task_header.hpp"

namespace spindle::detail {

template <std::uint32_t Capacity>
class RingQueue {
public:
    static constexpr std::uint32_t kCapacity = Capacity;
    static_assert((kCapacity & (kCapacity - 1)) == 0, "capacity must be a power of two");
    /// Run queues: a backlog this long is worth stealing whatever marks it carries (half
    /// of the run queue's is a batch of 32 or more; see worth_stealing()).
    static constexpr std::uint32_t kStealMin = kCapacity / 4;

    /// Owner: appends `t`; false when full (the caller moves work elsewhere).
    bool push(TaskHeader* t) noexcept {
        // relaxed: tail_ is written only by this thread.
        const std::uint32_t tail = tail_.load(std::memory_order_relaxed);
        // acquire: pairs with the CAS on head_ of a thief/pop, so its reads of the
        // slots it took happen before we overwrite them.
        const std::uint32_t head = head_.load(std::memory_order_acquire);
        if (tail - head >= kCapacity) return false;
        // relaxed: published by the release store of tail_ below.
        slots_[tail & kMask].store(t, std::memory_order_relaxed);
        // release: pairs with the acquire loads of tail_ in pop/steal_into.
        tail_.store(tail + 1, std::memory_order_release);
        return true;
    }

    /// Owner: takes the oldest task, or null.
    TaskHeader* pop() noexcept {
        // acquire: pairs with the CAS of thieves (so we see their head).
        std::uint32_t head = head_.load(std::memory_order_acquire);
        for (;;) {
            // relaxed: tail_ is written only by this thread.
            const std::uint32_t tail = tail_.load(std::memory_order_relaxed);
            if (head == tail) return nullptr;
            // relaxed: the slot was written by this thread.
            TaskHeader* t = slots_[head & kMask].load(std::memory_order_relaxed);
            // acq_rel: pairs with thieves' CAS on head_ and with push's acquire load.
            if (head_.compare_exchange_weak(head, head + 1, std::memory_order_acq_rel,
                                            std::memory_order_acquire))  // failure: acquire, re-read head_ (thieves' CAS)
                return t;
        }
    }

    /// Owner, when full: moves the older half into `out` (for the injector) so the
    /// ring has room again. Returns how many were moved (0 if thieves made room).
    /// `out` must hold kCapacity / 2 entries.
    std::uint32_t drain_half(TaskHeader** out) noexcept {
        // acquire: pairs with thieves' CAS on head_.
        std::uint32_t head = head_.load(std::memory_order_acquire);
        // relaxed: tail_ is written only by this thread.
        const std::uint32_t tail = tail_.load(std::memory_order_relaxed);
        const std::uint32_t n = (tail - head) / 2;
        if (n == 0) return 0;
        for (std::uint32_t i = 0; i < n; ++i)
            // relaxed: slots written by this thread.
            out[i] = slots_[(head + i) & kMask].load(std::memory_order_relaxed);
        // acq_rel: claims the batch against thieves (same protocol as pop).
        if (!head_.compare_exchange_strong(head, head + n, std::memory_order_acq_rel, std::memory_order_relaxed))
            return 0;  // a thief took some: there is room now
        return n;
    }

    /// Thief: moves about half of this queue's tasks into `into` (the thief's own,
    /// empty-enough queue) and returns one of them to run, or null.
    TaskHeader* steal_into(RingQueue& into) noexcept {
        // relaxed: into is the caller's own queue.
        const std::uint32_t dst_tail = into.tail_.load(std::memory_order_relaxed);
        // acquire: pairs with other thieves' CAS on into.head_.
        const std::uint32_t dst_head = into.head_.load(std::memory_order_acquire);
        if (dst_tail - dst_head > kCapacity / 2) return nullptr;  // we have work already
        // acquire: pairs with the owner's/thieves' CAS on head_.
        std::uint32_t head = head_.load(std::memory_order_acquire);
        for (;;) {
            // acquire: pairs with the owner's release store of tail_ (invariant 1).
            const std::uint32_t tail = tail_.load(std::memory_order_acquire);
            std::uint32_t n = tail - head;
            if (n == 0 || n > kCapacity) return nullptr;  // empty, or a torn read: give up
            n = n - n / 2;  // half, rounded up
            for (std::uint32_t i = 0; i < n; ++i)
                // relaxed: published by the acquire load of tail_; validated by the CAS.
                into.slots_[(dst_tail + i) & kMask].store(slots_[(head + i) & kMask].load(std::memory_order_relaxed),
                                                          std::memory_order_relaxed);  // relaxed: published by the release store of into.tail_
            // acq_rel: claims the n tasks (invariant 3).
            if (head_.compare_exchange_weak(head, head + n, std::memory_order_acq_rel, std::memory_order_acquire)) {
                // relaxed: the last task is handed back directly, not published.
                TaskHeader* last = into.slots_[(dst_tail + n - 1) & kMask].load(std::memory_order_relaxed);
                if (n > 1)
                    // release: publishes the copied slots to our own pop/thieves.
                    into.tail_.store(dst_tail + n - 1, std::memory_order_release);
                return last;
            }
        }
    }

    /// Any thread: takes the oldest task, or null (the same claim as pop(): the CAS on
    /// head_ decides, invariant 3).
    TaskHeader* steal_one() noexcept {
        // acquire: pairs with the owner's/thieves' CAS on head_.
        std::uint32_t head = head_.load(std::memory_order_acquire);
        for (;;) {
            // acquire: pairs with the owner's release store of tail_ (invariant 1).
            const std::uint32_t tail = tail_.load(std::memory_order_acquire);
            const std::uint32_t n = tail - head;
            if (n == 0 || n > kCapacity) return nullptr;  // empty, or a torn read: give up
            // relaxed: published by the acquire load of tail_; validated by the CAS.
            TaskHeader* t = slots_[head & kMask].load(std::memory_order_relaxed);
            // acq_rel: claims the task (invariant 3); failure: acquire, re-read head_.
            if (head_.compare_exchange_weak(head, head + 1, std::memory_order_acq_rel, std::memory_order_acquire))
                return t;
        }
    }

    /// Racy indices, for the stall monitor: a task pushed when tail() was t has left
    /// the queue once head() has passed t (free-running: compare by difference).
    [[nodiscard]] std::uint32_t head_index() const noexcept {
        // relaxed: a hint; the monitor claims tasks only through steal_one's CAS.
        return head_.load(std::memory_order_relaxed);
    }
    [[nodiscard]] std::uint32_t tail_index() const noexcept {
        // relaxed: as head_index().
        return tail_.load(std::memory_order_relaxed);
    }

    /// Run queues (issue 12: "steal what is worth stealing"): whether a thief may take
    /// from this queue. A backlog of kStealMin tasks or more, or a task that was already
    /// queued when the queue was marked stealable: by its owner when it moved a spawn
    /// here for idle workers or a poll's readiness overflowed into it (independent
    /// work), by a thief into whose queue it stole such a batch, by the stall monitor or
    /// a spinning worker when the head stopped moving (its owner runs a long task). A
    /// short queue whose owner runs it down is left alone: its tasks would run within
    /// microseconds where their data is, and tasks that contend for one primitive (a
    /// Semaphore's holders, a Barrier's round) split over two cores pay a cache-line
    /// transfer per operation (see "Stealing" in worker.cpp).
    /// The mark is an index, not a flag (found in review: a flag cleared by a thief
    /// could erase a newer mark, and one nobody cleared stayed on for a later phase of
    /// contending tasks): mark_upto_ is the tail when it was marked, and a task is
    /// marked while it sits below it. It expires by itself once the head passes it,
    /// whoever took the tasks; a steal takes half and leaves the rest marked. (After
    /// 2^31 tasks with no new mark the comparison wraps and an old mark may count once
    /// more: one steal, harmless.)
    /// seq_cst loads: park()'s re-check reads them after announcing the sleeper,
    /// against the push and mark that come before a producer's notify_one().
    [[nodiscard]] bool worth_stealing() const noexcept {
        const std::uint32_t head = head_.load(std::memory_order_seq_cst);
        const std::uint32_t n = tail_.load(std::memory_order_seq_cst) - head;
        if (n == 0 || n > kCapacity) return false;
        return n >= kStealMin || static_cast<std::int32_t>(mark_upto_.load(std::memory_order_seq_cst) - head) > 0;
    }
    /// See worth_stealing(): marks every task queued now. Any thread (a CAS-max: the
    /// owner, thieves, the monitor and a spinner mark). The marker calls notify_one()
    /// after it (whose fence orders the mark before its read of idle_), or is the thief.
    void mark_stealable() noexcept {
        // acquire: pairs with the owner's release store of tail_, so the tasks up to it
        // are published; the owner reads its own store.
        const std::uint32_t upto = tail_.load(std::memory_order_acquire);
        // relaxed: a hint, ordered for the sleeper by the notify_one() fence that follows.
        std::uint32_t cur = mark_upto_.load(std::memory_order_relaxed);
        while (static_cast<std::int32_t>(upto - cur) > 0 &&
               !mark_upto_.compare_exchange_weak(cur, upto, std::memory_order_relaxed)) {  // relaxed: as above
        }
    }

    /// Racy size, for heuristics and the idle re-check.
    [[nodiscard]] std::uint32_t approx_size() const noexcept {
        // seq_cst: used in the parking re-check, which must not be reordered with the
        // sleeper announcement (see Scheduler::park).
        const std::uint32_t head = head_.load(std::memory_order_seq_cst);
        const std::uint32_t tail = tail_.load(std::memory_order_seq_cst);
        const std::uint32_t n = tail - head;
        return n > kCapacity ? 0 : n;
    }

private:
    static constexpr std::uint32_t kMask = kCapacity - 1;
    alignas(64) std::atomic<std::uint32_t> head_{0};  // owner + thieves CAS
    std::atomic<std::uint32_t> mark_upto_{0};         // run queues: worth_stealing(); thieves' line
    alignas(64) std::atomic<std::uint32_t> tail_{0};  // owner writes; thieves read
    std::array<std::atomic<TaskHeader*>, kCapacity> slots_{};
};

using LocalQueue = RingQueue<256>;
using WakeArea = RingQueue<16>;

/// A run queue of this many tasks is worth stealing whatever marks it carries.
inline constexpr std::uint32_t kStealMin = LocalQueue::kStealMin;

/// A worker's spawn stack (2+ workers; "Spawn stack" in worker.cpp): the tasks spawned on
/// the worker and not yet started, newest on top. The owner pushes and pops the top
/// (work-first: the newest spawn runs next, so a fork-join tree runs depth-first on warm
/// frames, as in Cilk, oneTBB and TooManyCooks); thieves, the starvation rule and a full
/// stack take the bottom (the oldest task, the biggest share of a tree).
///
/// Locking: a biased lock guards the ring; each holder does a few loads and stores.
/// The owner (the worker's thread: push, pop, take, take_oldest) takes it with plain
/// stores and loads, no locked instruction; a thief (steal_oldest) pays for both sides
/// with a heavy fence (asym_fence.hpp: membarrier, ~1 us). A fork-join (fib_spawn) pushes
/// and takes back nearly every task on its own worker and is stolen from a few times per
/// run, so this moves two locked instructions per task (~11 ns here) to the rare side.
///   owner:  owner_ = 1; light fence; if thief_ == 0: holds it
///           else owner_ = 0, wait for thief_ == 0, retry (a thief has priority)
///   thief:  thieves_ (a TTAS lock among thieves); thief_ = 1; heavy fence;
///           wait for owner_ == 0: holds it
/// Invariants:
///   L1 (mutual exclusion) owner_ and thief_ form a Dekker pair: each side stores its
///      flag, fences, then loads the other's; the fences (light + heavy, or two seq_cst
///      fences in the symmetric mode) guarantee that at least one side sees the other's
///      flag, so the two are never both inside. Only one thief competes (thieves_).
///   L2 (no deadlock) the owner withdraws its flag whenever it sees a thief, and the
///      thief waits only for the owner's flag, which the owner holds for a few stores.
///   L3 (publication) each release is a release store of the releaser's flag, and each
///      side's acquiring load of the other's flag is an acquire: the ring and the tasks
///      in it are published from every holder to the next.
///   L4 a task is in at most one stack and leaves it exactly once, under the lock (so
///      it is run once); `seq` numbers grow from bottom to top, so the stall monitor can
///      tell whether the task that was at the bottom at its mark is still there
///      (head_index() = the bottom's seq, tail_index() = the next seq).
/// The stall monitor and parking workers read only the hint atomics, never the lock.
/// Memory: the stack owns nothing; a task is published to its taker by L3.
class SpawnStack {
public:
    static constexpr std::uint32_t kCapacity = 16;

    /// `m`: the fence mode (tests pass both; kMembarrier only once asym::mode() returned
    /// it, which registers the process).
    explicit SpawnStack(asym::Mode m = asym::mode()) noexcept : mode_(m) {
        assert(m == asym::Mode::kSymmetric || asym::mode() == asym::Mode::kMembarrier);
    }

    /// Owner: pushes `t`; when the stack is full, removes and returns the bottom task
    /// (the caller queues it where thieves look), else null.
    TaskHeader* push(TaskHeader* t) noexcept {
        lock();
        TaskHeader* out = nullptr;
        if (n_ == kCapacity) {
            out = slots_[lo_ % kCapacity].task;
            ++lo_;
            --n_;
        }
        slots_[(lo_ + n_) % kCapacity] = {t, next_seq_++};
        ++n_;
        // The bottom's seq moved only if the old bottom went out: onto an empty stack the
        // new task takes the seq that the empty stack's bottom hint already holds.
        if (out != nullptr) publish();
        else publish_top();
        unlock();
        return out;
    }
    /// Owner: takes the newest task, or null.
    TaskHeader* pop() noexcept {
        if (!maybe_nonempty()) return nullptr;
        lock();
        TaskHeader* t = nullptr;
        if (n_ > 0) {
            --n_;
            t = slots_[(lo_ + n_) % kCapacity].task;
            if (n_ == 0) publish();  // else the bottom stays
            else publish_top();
        }
        unlock();
        return t;
    }
    /// Owner: removes `t` if it is in the stack (anywhere: a join that runs its child
    /// inline takes it back, "Inline joins" in worker.cpp); the tasks above it move down
    /// one slot and keep their seq, so seq still grows from bottom to top. True if found.
    bool take(TaskHeader* t) noexcept {
        if (!maybe_nonempty()) return false;
        lock();
        bool found = false;
        for (std::uint32_t i = n_; i-- > 0;) {  // from the top: the newest spawns are joined first
            if (slots_[(lo_ + i) % kCapacity].task != t) continue;
            for (std::uint32_t j = i; j + 1 < n_; ++j) slots_[(lo_ + j) % kCapacity] = slots_[(lo_ + j + 1) % kCapacity];
            --n_;
            if (i == 0) publish();  // the bottom went (or the stack emptied)
            else publish_top();
            found = true;
            break;
        }
        unlock();
        return found;
    }
    /// Owner: takes the oldest task, or null.
    TaskHeader* take_oldest() noexcept {
        if (!maybe_nonempty()) return nullptr;
        lock();
        TaskHeader* t = bottom_locked();
        unlock();
        return t;
    }
    /// Any other thread (a thief): takes the oldest task, or null.
    TaskHeader* steal_oldest() noexcept {
        std::array<TaskHeader*, kCapacity / 2> one{};
        return steal(one, 1) == 1 ? one[0] : nullptr;
    }
    /// Any other thread (a thief): takes the older half of the tasks (at least one, at
    /// most kCapacity / 2), oldest first, into `out`; returns how many. One membarrier
    /// for all of them: a stack that the monitor found stuck may hold several long
    /// tasks, and taking one per mark would leave the thief idle between marks.
    std::uint32_t steal_half(std::array<TaskHeader*, kCapacity / 2>& out) noexcept { return steal(out, kCapacity / 2); }
    [[nodiscard]] bool maybe_nonempty() const noexcept {
        // relaxed: a hint (the lock decides); the owner, which alone pushes, reads its
        // own latest store, so it never parks with a task here.
        return size_.load(std::memory_order_relaxed) != 0;
    }
    /// Whether a thief may take from this stack: only a bottom that the stall monitor
    /// found stuck (its spawner runs on without suspending). A steal costs a membarrier:
    /// thieves that took each task a spawner had just pushed made spawn_join ~80x slower
    /// (up to 10 us per task: the owner interrupted by and waiting on every steal), and so
    /// did allowing it whenever the stack held two. Parallel work reaches idle workers
    /// through the run queue instead (spawn_local() moves the oldest spawn there while a
    /// worker is idle or searching).
    [[nodiscard]] bool worth_stealing() const noexcept {
        // seq_cst: park()'s re-check reads it after announcing the sleeper, against the
        // monitor's mark_stalled() then notify_one() (whose fence orders the store).
        return stalled_.load(std::memory_order_seq_cst);
    }
    /// The stall monitor: the bottom has not moved for kStallNs (worth_stealing()).
    void mark_stalled() noexcept {
        stalled_.store(true, std::memory_order_relaxed);  // relaxed: a hint for thieves
    }
    /// maybe_nonempty() for park()'s re-check of other workers' stacks (a marked stack,
    /// or any when the parker is the last awake): seq_cst, ordered after the parker's
    /// announcement in idle_ (see publish() for why no push pairs with it).
    [[nodiscard]] bool maybe_nonempty_sc() const noexcept { return size_.load(std::memory_order_seq_cst) != 0; }
    /// For the stall monitor and the starvation rule (racy hints, as RingQueue's).
    [[nodiscard]] std::uint32_t head_index() const noexcept {
        // relaxed: a hint, written under the lock.
        return bottom_seq_.load(std::memory_order_relaxed);
    }
    [[nodiscard]] std::uint32_t tail_index() const noexcept {
        // relaxed: as head_index().
        return end_seq_.load(std::memory_order_relaxed);
    }

private:
    struct Slot {
        TaskHeader* task;
        std::uint32_t seq;
    };
    std::uint32_t steal(std::array<TaskHeader*, kCapacity / 2>& out, std::uint32_t most) noexcept {
        if (!maybe_nonempty()) return 0;
        if (!steal_lock()) return 0;
        const std::uint32_t k = std::min((n_ + 1) / 2, most);
        for (std::uint32_t i = 0; i < k; ++i) out[i] = bottom_locked();
        // relaxed: a hint, as mark_stalled(); the monitor marks the stack again if what
        // is left stays stuck.
        stalled_.store(false, std::memory_order_relaxed);
        steal_unlock();
        return k;
    }
    TaskHeader* bottom_locked() noexcept {
        if (n_ == 0) return nullptr;
        TaskHeader* t = slots_[lo_ % kCapacity].task;
        ++lo_;
        --n_;
        publish();
        return t;
    }
    // The owner's side of the biased lock (L1-L3 above).
    void lock() noexcept {
        if (!try_lock_owner()) [[unlikely]]
            lock_behind_thief();
    }
    // The owner's attempt (L1): true when no thief was inside or entering.
    bool try_lock_owner() noexcept {
        // relaxed: ordered before the load below by the fence (L1).
        owner_.store(true, std::memory_order_relaxed);
        asym::light(mode_);
        // acquire: pairs with steal_unlock()'s release store (the ring, L3).
        return !thief_.load(std::memory_order_acquire);
    }
    // lock() found a thief inside or entering: let it go first (L2), then try again.
    // Out of line: the owner's path stays a few instructions in its callers (spawn, the
    // join's take), with no spin loop and no call in them.
    [[gnu::noinline, gnu::cold]] void lock_behind_thief() noexcept {
        do {
            // release: the thief may read this false instead of our last unlock()'s; a
            // plain store continues no release sequence, so it must publish our earlier
            // critical sections itself (L3).
            owner_.store(false, std::memory_order_release);
            unsigned spins = 0;
            // relaxed: a wait; try_lock_owner()'s acquire load re-validates.
            while (thief_.load(std::memory_order_relaxed))
                if (++spins > 256) std::this_thread::yield();
        } while (!try_lock_owner());
    }
    void unlock() noexcept {
        // release: pairs with steal_lock()'s acquire load of owner_ (L3).
        owner_.store(false, std::memory_order_release);
    }
    // A thief's side; false (nothing held) if the stack emptied while it queued behind
    // other thieves: no membarrier for nothing (found in review).
    bool steal_lock() noexcept {
        unsigned spins = 0;
        // acquire: pairs with steal_unlock()'s release of thieves_ (one thief at a time).
        while (thieves_.exchange(true, std::memory_order_acquire)) {
            // relaxed: wait until it looks free before trying again (TTAS).
            while (thieves_.load(std::memory_order_relaxed))
                if (++spins > 256) std::this_thread::yield();
        }
        if (!maybe_nonempty()) {
            // release: as steal_unlock().
            thieves_.store(false, std::memory_order_release);
            return false;
        }
        // relaxed: ordered before the load below by the heavy fence (L1).
        thief_.store(true, std::memory_order_relaxed);
        asym::heavy(mode_);
        spins = 0;
        // acquire: pairs with unlock()'s release store (the owner's writes to the ring, L3).
        while (owner_.load(std::memory_order_acquire))
            if (++spins > 256) std::this_thread::yield();
        return true;
    }
    void steal_unlock() noexcept {
        // release: pairs with lock()'s acquire load of thief_ (L3).
        thief_.store(false, std::memory_order_release);
        // release: pairs with the next thief's acquire exchange.
        thieves_.store(false, std::memory_order_release);
    }
    /// publish() when the bottom task is unchanged and the stack is not empty (a push
    /// onto a non-empty stack, a take above the bottom): only the size and the end move.
    void publish_top() noexcept {  // under the lock
        // relaxed: park()'s re-check (maybe_nonempty_sc()) needs no pair with a push: it
        // counts another awake worker's stack only once the monitor marked it, and a
        // marked stack was non-empty before the push (spawn_local() in worker.cpp).
        size_.store(n_, std::memory_order_relaxed);
        // relaxed: a hint for the monitor; the lock orders the ring itself.
        end_seq_.store(next_seq_, std::memory_order_relaxed);
    }
    void publish() noexcept {  // under the lock: every hint read without it
        // An empty stack is stuck no more: a monitor's mark must not make the next fresh
        // spawn a thief's target (found in review; relaxed: a hint, as mark_stalled()).
        if (n_ == 0) stalled_.store(false, std::memory_order_relaxed);
        // relaxed: a hint for the monitor, as end_seq_.
        bottom_seq_.store(n_ == 0 ? next_seq_ : slots_[lo_ % kCapacity].seq, std::memory_order_relaxed);
        publish_top();
    }

    alignas(64) std::atomic<bool> owner_{false};  // the owner holds or is taking the lock
    std::atomic<bool> thief_{false};              // a thief holds or is taking the lock
    std::atomic<bool> thieves_{false};            // the lock among thieves
    const asym::Mode mode_;                       // on the line the owner writes anyway
    std::atomic<bool> stalled_{false};            // set by the stall monitor, cleared by a steal
    std::atomic<std::uint32_t> size_{0};
    std::atomic<std::uint32_t> bottom_seq_{0};
    std::atomic<std::uint32_t> end_seq_{0};
    std::uint32_t lo_ = 0;        // under the lock: the bottom's index (free-running)
    std::uint32_t n_ = 0;         // under the lock
    std::uint32_t next_seq_ = 0;  // under the lock
    std::array<Slot, kCapacity> slots_{};  // under the lock
};

// ───────────────────────────── Inbox ─────────────────────────────
// A worker's inbox: tasks that other workers hand to it (see "Migration to the waker"
// in worker.cpp). Dmitry Vyukov's bounded MPMC queue: producers are the other
// workers; consumers are the owner (pop, at the top of next_local) and the stall
// monitor (steal_one, when the owner has not looked for kStallNs).
//
// Each cell carries a sequence number. For position p (free-running uint32):
//   seq == p          the cell is free for the producer that claims position p;
//   seq == p + 1      the cell holds the task of position p, published;
//   seq == p + kCap   the consumer took it; free for position p + kCap.
// Invariants:
//   I1. A producer claims position p by the CAS enq_ p -> p+1, only after it saw the
//       cell's seq == p (so the consumer has released it), then writes the task and
//       stores seq = p + 1 (release). Each position is claimed by exactly one producer.
//   I2. A consumer takes position p = deq_ only when it reads seq == p + 1 (acquire:
//       it sees the task) and its CAS deq_ p -> p+1 succeeds (each position is taken
//       by exactly one consumer); it then reads the task and stores seq = p + kCap
//       (release: its read happens before a producer reuses the cell).
//   I3. A claimed but not yet published position makes pop() return null (the
//       consumer never skips it) while maybe_nonempty() says true: the owner then
//       does not sleep and polls again, so the task is never stranded.
// Memory: tasks are not owned; the ring is a fixed array. push() fails when full (the
// producer keeps the task itself).
template <std::uint32_t Capacity>
class Inbox {
public:
    static constexpr std::uint32_t kCapacity = Capacity;
    static_assert((kCapacity & (kCapacity - 1)) == 0, "capacity must be a power of two");

    Inbox() noexcept {
        // relaxed: before the worker threads start (thread creation orders it).
        for (std::uint32_t i = 0; i < kCapacity; ++i) cells_[i].seq.store(i, std::memory_order_relaxed);
    }

    /// Any worker but the owner: queues `t`; false when full.
    bool push(TaskHeader* t) noexcept {
        // relaxed: the CAS below validates the claim.
        std::uint32_t pos = enq_.load(std::memory_order_relaxed);
        for (;;) {
            Cell& c = cells_[pos & kMask];
            // acquire: pairs with the consumer's release store of seq (I2): its read of
            // the previous task is done before we overwrite it.
            const std::uint32_t seq = c.seq.load(std::memory_order_acquire);
            const auto dif = static_cast<std::int32_t>(seq - pos);
            if (dif == 0) {
                // seq_cst: the claim is the store half of the Dekker pair with the owner's
                // park() (it announces `parked`, then reads enq_ via maybe_nonempty()).
                if (enq_.compare_exchange_weak(pos, pos + 1, std::memory_order_seq_cst, std::memory_order_relaxed)) {
                    // relaxed: published by the release store of seq below.
                    c.task.store(t, std::memory_order_relaxed);
                    // release: pairs with pop()'s acquire load of seq (I1).
                    c.seq.store(pos + 1, std::memory_order_release);
                    return true;
                }
                // failure (relaxed): pos was reloaded; retry.
            } else if (dif < 0) {
                return false;  // full: the cell still holds an untaken task
            } else {
                // relaxed: another producer claimed pos; re-read and retry.
                pos = enq_.load(std::memory_order_relaxed);
            }
        }
    }

    /// Owner or monitor: the oldest published task, or null (empty, or the oldest
    /// claimed position is not published yet: I3).
    TaskHeader* pop() noexcept {
        // relaxed: the CAS below validates the claim.
        std::uint32_t pos = deq_.load(std::memory_order_relaxed);
        for (;;) {
            Cell& c = cells_[pos & kMask];
            // acquire: pairs with the producer's release store of seq (I1).
            const std::uint32_t seq = c.seq.load(std::memory_order_acquire);
            const auto dif = static_cast<std::int32_t>(seq - (pos + 1));
            if (dif == 0) {
                // relaxed: the claim orders nothing by itself (the seq pair does).
                if (deq_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
                    // relaxed: published by the acquire load of seq above.
                    TaskHeader* t = c.task.load(std::memory_order_relaxed);
                    // release: pairs with push()'s acquire load of seq (I2).
                    c.seq.store(pos + kCapacity, std::memory_order_release);
                    return t;
                }
                // failure (relaxed): pos reloaded; retry.
            } else if (dif < 0) {
                return nullptr;  // empty, or the oldest claim is not published yet
            } else {
                // relaxed: another consumer took pos; re-read.
                pos = deq_.load(std::memory_order_relaxed);
            }
        }
    }
    TaskHeader* steal_one() noexcept { return pop(); }

    /// A position was claimed and not yet taken (published or not). seq_cst on enq_:
    /// the load half of the Dekker pair with push() (see park()).
    [[nodiscard]] bool maybe_nonempty() const noexcept {
        // relaxed: a stale deq_ only makes the answer "maybe" (a retry).
        return enq_.load(std::memory_order_seq_cst) != deq_.load(std::memory_order_relaxed);
    }

    /// Racy indices for the stall monitor (as RingQueue's).
    [[nodiscard]] std::uint32_t head_index() const noexcept {
        // relaxed: a hint; tasks are claimed only through pop()'s CAS.
        return deq_.load(std::memory_order_relaxed);
    }
    [[nodiscard]] std::uint32_t tail_index() const noexcept {
        // relaxed: as head_index().
        return enq_.load(std::memory_order_relaxed);
    }

private:
    static constexpr std::uint32_t kMask = kCapacity - 1;
    struct Cell {
        std::atomic<std::uint32_t> seq{0};
        std::atomic<TaskHeader*> task{nullptr};
    };
    alignas(64) std::atomic<std::uint32_t> enq_{0};  // producers CAS
    alignas(64) std::atomic<std::uint32_t> deq_{0};  // consumers CAS
    std::array<Cell, kCapacity> cells_{};
};

using WorkerInbox = Inbox<64>;

}  // namespace spindle::detail
