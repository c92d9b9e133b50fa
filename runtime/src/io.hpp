// runtime/src/io.hpp — the I/O driver: one epoll set per runtime, polled by one worker
// at a time (Tokio's shared driver). Never installed; io.cpp has the code.
//
// ───────────────────────────── Design ─────────────────────────────
// Who polls. A worker with nothing to run parks (idle.cpp); while any fd is
// registered, the first parking worker that takes the poll lock blocks in
// epoll_wait instead of on its futex word (with the timer timeout it would have
// used), and the others park on their futex as before. Waking a worker that is in
// epoll_wait goes through an eventfd in the set (wake_worker(), Dekker on in_poll
// and wake_word). A worker also polls without blocking at each batch boundary
// (when it can take the poll lock), so readiness is seen while every worker is
// busy; with one worker that is once per pass over the ready queue, where asyncio's
// loop calls select(). There is no I/O thread.
// A worker that parks while another holds the poll lock (or before any fd was
// registered) sleeps on its futex; if the holder then runs a long task instead of
// polling, the stall monitor (monitor.cpp) wakes a sleeper, which parks again and
// takes the lock (hand_over_polling). Events taken from epoll count as work until
// they are dispatched (Scheduler::io_pending_), so the virtual clock and the
// deadlock check never run past them.
// Where woken tasks run. The poller dispatches the events itself (after it left
// park's bookkeeping): each woken task is scheduled from that worker, so it lands in
// that worker's wake area (2+ workers) or at the tail of its queue (one worker,
// asyncio's order) — next to the data the poller just touched.
//
// Slots. An fd's registration is an IoSlot in a slab that only grows (chunks of
// kChunk slots, never freed before the driver): epoll's user data names a slot by
// index and generation, so an event that a poller holds for a slot that was freed
// (and maybe reused) meanwhile is recognised as stale and dropped, and touching the
// slot is never a use-after-free. Registration is edge-triggered for read and write
// at once (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET), added once, never modified.
//
// Invariants (each IoSlot, under its lock):
//   - gen changes exactly when the slot is freed; an event or a waiter whose gen
//     differs is stale and does nothing;
//   - ticks[d] only grows; the driver bumps it for every event of direction d;
//   - a waiter is in list d iff node.linked; it is linked only with its wait armed,
//     and unlinked by the driver (which claims its wait and schedules the task on
//     success), by detach() (same), or by the task itself when it resumes;
//   - a task is scheduled only after the slot lock is released (lock order: idle_mx_,
//     under which a deadlock check may read the slots, before any slot lock);
//   - waiting_ counts linked waiters (deadlock detection and virtual time treat a
//     task waiting on I/O as one that the outside world can wake).
// No lost wake-up: a waiter links itself only after checking, under the lock,
// that ticks[d] still equals the tick read before its failed system call; the
// driver bumps the tick and takes the list under the same lock.
// Reclamation: slots are recycled through a free list (gen bumped); the driver
// object is reference counted (the scheduler and each registration), so a socket
// that outlives its runtime can still deregister.
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "scheduler.hpp"
#include "spindle/runtime/detail/io.hpp"

namespace spindle::detail {

struct IoSlot {
    SpinLock mx;
    std::atomic<std::uint64_t> ticks[2] = {0, 0};  // bumped under mx; read anywhere
    // An event reported hang-up, end of stream or an error (sticky until the slot is
    // reused): a short read no longer means the socket is drained (io_read_closed).
    std::atomic<bool> hup{false};
    IoWaiterNode* head[2] = {nullptr, nullptr};    // under mx
    IoWaiterNode* tail[2] = {nullptr, nullptr};    // under mx
    std::uint32_t gen = 0;                          // under mx
    std::uint32_t index = 0;                        // fixed
    int fd = -1;                                    // under mx
};

class IoDriver {
public:
    explicit IoDriver(Scheduler* sched);
    ~IoDriver();
    IoDriver(const IoDriver&) = delete;
    IoDriver& operator=(const IoDriver&) = delete;

    void add_ref() noexcept {
        // relaxed: a new reference is made from an existing one.
        refs_.fetch_add(1, std::memory_order_relaxed);
    }
    void release() noexcept {
        // acq_rel: the last releaser sees every other owner's writes before deleting.
        if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
    }

    /// Registers `fd`; returns its slot (ticks 0) and its generation in `gen`.
    IoSlot* attach(int fd, std::uint32_t* gen);
    /// Deregisters (before the fd is closed) and wakes the slot's waiters.
    /// `fd_closing`: the caller closes the fd right after, and it has no other
    /// descriptor: the close leaves the epoll set, so no EPOLL_CTL_DEL is made.
    void detach(IoSlot* slot, std::uint32_t gen, bool fd_closing = false) noexcept;
    /// Wakes the slot's waiters, leaving it registered.
    void wake_waiters(IoSlot* slot, std::uint32_t gen) noexcept;

    /// Whether any fd is registered (workers poll only then).
    [[nodiscard]] bool active() const noexcept {
        // relaxed: a heuristic; a registration made after the check is seen by the
        // next poll (its task is still running, so its worker will park or reach a
        // batch boundary after it).
        return registered_.load(std::memory_order_relaxed) > 0;
    }
    /// Tasks waiting on I/O right now.
    [[nodiscard]] std::int64_t waiting() const noexcept {
        // seq_cst: read by the deadlock check next to its other seq_cst counters.
        return waiting_.load(std::memory_order_seq_cst);
    }
    bool try_lock_poll() noexcept {
        // acquire: pairs with unlock_poll()'s release (the previous poller's epoll use).
        return !poll_locked_.load(std::memory_order_relaxed) && !poll_locked_.exchange(true, std::memory_order_acquire);
    }
    void unlock_poll() noexcept {
        // relaxed (both): the holder is the only writer; the stall monitor reads the
        // count as a hint (polls()).
        polls_.store(polls_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        // release: pairs with try_lock_poll()'s acquire.
        poll_locked_.store(false, std::memory_order_release);
    }
    /// How many polls have ended (a park's, a batch boundary's, a spinning worker's):
    /// the stall monitor hands the poller's role over only when this has not moved
    /// for a round.
    [[nodiscard]] std::uint64_t polls() const noexcept {
        // relaxed: a hint; see unlock_poll().
        return polls_.load(std::memory_order_relaxed);
    }
    /// Under the poll lock: waits up to timeout_ns (-1: no limit, 0: just look) and
    /// returns the number of events stored in `out` (the eventfd's already drained).
    int poll(std::vector<epoll_event>& out, std::int64_t timeout_ns) noexcept;
    /// Bumps ticks and schedules the woken waiters, from the calling worker.
    void dispatch(const epoll_event* ev, int n) noexcept;
    [[nodiscard]] bool poll_locked() const noexcept {
        // relaxed: a hint (the stall monitor's hand_over_polling).
        return poll_locked_.load(std::memory_order_relaxed);
    }
    /// Interrupts the epoll_wait of the poller (eventfd).
    void notify() noexcept;

    /// Runtime::dump(): every task waiting on an fd, with the fd and the direction
    /// (each slot read under its lock; pointers only to compare).
    struct WaitInfo {
        const TaskHeader* task;
        int fd;
        IoDir dir;
    };
    void collect_waiters(std::vector<WaitInfo>& out) const;

    Scheduler* scheduler() const noexcept { return sched_; }
    // Linked waiters (see the invariants).
    std::atomic<std::int64_t> waiting_{0};

private:
    static constexpr std::uint32_t kChunkBits = 8;
    static constexpr std::uint32_t kChunk = 1U << kChunkBits;
    static constexpr std::uint32_t kMaxChunks = 1U << 14;  // 4M fds
    static constexpr std::uint64_t kWakeToken = UINT64_MAX;

    IoSlot* slot_at(std::uint32_t index) const noexcept;
    /// Unlinks and wakes every waiter of the slot (and frees it with `free_slot`);
    /// false if `gen` is stale.
    enum class Free : std::uint8_t { no, yes, keep_epoll };
    bool take_waiters(IoSlot* slot, std::uint32_t gen, Free free_slot) noexcept;

    Scheduler* sched_;
    int epfd_ = -1;
    int evfd_ = -1;
    std::atomic<int> refs_{1};
    std::atomic<std::int64_t> registered_{0};
    std::atomic<bool> poll_locked_{false};
    std::atomic<std::uint64_t> polls_{0};  // written under the poll lock (unlock_poll)
    mutable std::mutex slab_mx_;
    std::vector<std::uint32_t> free_;     // under slab_mx_
    std::uint32_t next_index_ = 0;        // under slab_mx_
    std::unique_ptr<std::atomic<IoSlot*>[]> chunks_;
};

}  // namespace spindle::detail
