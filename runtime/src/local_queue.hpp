// runtime/src/local_queue.hpp — a worker's run queues: bounded FIFO rings that the
// owner pushes at the tail and that the owner and thieves take from at the head.
// LocalQueue (256 tasks) is the run queue; WakeArea (16) holds the tasks woken by the
// task running on the worker (see "Wake area" in worker.cpp). Never installed.
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

#include <array>
#include <atomic>
#include <cstdint>

#include "spindle/runtime/detail/task_header.hpp"

namespace spindle::detail {

template <std::uint32_t Capacity>
class RingQueue {
public:
    static constexpr std::uint32_t kCapacity = Capacity;
    static_assert((kCapacity & (kCapacity - 1)) == 0, "capacity must be a power of two");

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
    alignas(64) std::atomic<std::uint32_t> tail_{0};  // owner writes; thieves read
    std::array<std::atomic<TaskHeader*>, kCapacity> slots_{};
};

using LocalQueue = RingQueue<256>;
using WakeArea = RingQueue<16>;

/// A worker's spawn slot (Go's runnext for spawns; "Spawn slot" in worker.cpp): one
/// task, put by the owner, taken by the owner or, rarely, by a thief.
/// Invariants: a task is in the slot at most once and is taken exactly once (both
/// takers exchange the slot with null); put() is owner-only and returns the task it
/// displaced, which the owner then queues. `fills` counts puts (owner writes) so the
/// stall monitor can tell a task that stays in the slot from a new one (head_index /
/// tail_index, as the rings). Memory: the slot owns nothing.
class SpawnSlot {
public:
    /// Owner: puts `t`; returns the task that was there, or null.
    TaskHeader* put(TaskHeader* t) noexcept {
        // relaxed: single writer (the owner); read only by the stall monitor's heuristic.
        fills_.store(fills_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        // acq_rel: releases t's initialization to the taker's exchange; acquires the
        // displaced task as take() would.
        return task_.exchange(t, std::memory_order_acq_rel);
    }
    /// Owner or thief: takes the task, or null.
    TaskHeader* take() noexcept {
        // relaxed: a cheap emptiness test; the exchange decides.
        if (task_.load(std::memory_order_relaxed) == nullptr) return nullptr;
        // acquire: pairs with put()'s exchange (the task's initialization).
        return task_.exchange(nullptr, std::memory_order_acquire);
    }
    [[nodiscard]] bool maybe_nonempty() const noexcept {
        // relaxed: a heuristic (park()'s re-check runs on the owner, which put it).
        return task_.load(std::memory_order_relaxed) != nullptr;
    }
    /// For the stall monitor (see RingQueue): the slot as a ring of one.
    [[nodiscard]] std::uint32_t tail_index() const noexcept {
        // relaxed: a heuristic.
        return fills_.load(std::memory_order_relaxed);
    }
    [[nodiscard]] std::uint32_t head_index() const noexcept { return tail_index() - (maybe_nonempty() ? 1U : 0U); }

private:
    alignas(64) std::atomic<TaskHeader*> task_{nullptr};
    std::atomic<std::uint32_t> fills_{0};
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
