// spindle/runtime/detail/wait_queue.hpp — the one fair, abortable, lock-free waiter
// queue under every synchronization primitive. Shipped but internal.
//
// ───────────────────────────── Algorithm ─────────────────────────────
// CQS (Koval, Khalanskiy, Alistarh, "CQS: A Formally-Verified Framework for Fair and
// Abortable Synchronization", PLDI 2023): an infinite array of cells, stored as a
// linked list of fixed-size segments; a waiter takes the next cell index with one
// fetch-add on enq_, and a waiter that gives up is cancelled *in its cell* by CAS.
// Differences from the paper, and why:
//   * asyncio's waiters stay in the deque until their task resumes (they remove
//     themselves in a `finally`), and asyncio's Lock looks only at the *first*
//     waiter, while Semaphore/Condition scan for the first waiter not yet done. To
//     reproduce that exactly at one worker, a cell keeps its outcome (GRANTED,
//     CANCELLED) until its waiter has resumed and left it (marked it REMOVED, or,
//     at the front, moved front_ over it: R6); the queue's front_ only moves over
//     cells whose waiter left, and granting scans from front_ (the
//     primitive chooses "first WAITING" or "front only"). Asyncio's deque scans the
//     same cells, so the cost is the same.
//   * Memory is reclaimed without a GC by epoch-based reclamation (ebr.hpp): a
//     segment is unlinked when front_ moves past its last cell (every waiter of its cells
//     has left, so none refers to it) and retired to EBR; every traversal pins.
//
// ───────────────────────────── Cell states ─────────────────────────────
//   EMPTY      index taken by a waiter that has not installed itself yet
//   WAITING    the waiter's task header pointer | (16-bit wait tag << 48)
//   DEPOSIT    granted before the waiter installed itself (elimination): the waiter
//              finds it and does not suspend
//   GRANTED    granted while waiting; the granter scheduled the task
//   CANCELLED  cancelled while waiting; the canceller scheduled the task
//   REMOVED    the waiter left (after reading its outcome); front_ may pass it
//              (a waiter whose cell is at front_ leaves by moving front_ instead: R6)
// Transitions: EMPTY->WAITING (waiter), EMPTY->DEPOSIT (granter), EMPTY->REMOVED
// (waiter abandons), WAITING->GRANTED (granter), WAITING->CANCELLED (canceller or
// the waiter itself), {DEPOSIT,GRANTED,CANCELLED}->REMOVED (the waiter, once, unless
// it leaves at the front by moving front_ over its cell: R6; the cell then keeps its
// outcome below front_, where nobody reads it again).
//
// Grant scans (grant_first) skip settled cells:
//   G3 A cell that is DEPOSIT, GRANTED, CANCELLED or REMOVED never becomes EMPTY or
//      WAITING again, so once a scan has seen every cell below index k settled, no
//      later scan needs to look there: scan_ keeps such a k (a hint, raised by a
//      plain store: racing granters may move it back, which only lengthens a scan,
//      since every value written stays true; scans start at max(front_, scan_)). Without it a waiter that is slow to
//      resume after its grant holds front_ back and every grant rescans the cells
//      behind it. The cells between front_ and scan_ are still in linked segments
//      (they are not REMOVED past front_), so the walk to scan_ is safe under R4.
//   G4 A grant touches the queue object (its hints) only before its first CAS that
//      can release a waiter (EMPTY->DEPOSIT or WAITING->GRANTED); after it, only
//      cells, in segments that EBR keeps alive while the granter is pinned (the
//      destructor retires them through EBR too). A released waiter may return and
//      destroy the primitive at once (a task that owns an Event on its frame, set()
//      from another worker: the waiter that finds the deposit never suspends), and
//      the granter is still inside grant(). The primitive's own code must likewise
//      touch nothing of itself after the grant (Event::set, Barrier::wait/reset/abort).
//   G5 G4 does not cover a primitive whose waiters can leave without a grant: an
//      Event's waiter that sees the flag returns, and may destroy the Event, while
//      set() is still about to read this queue's front and end. Such a primitive
//      keeps its queue on the heap (create/destroy: the memory is retired through
//      EBR), pins before the store that lets waiters go, and reads the queue pointer
//      before it; everything set() touches after that store is then EBR-protected.
//
// The single arbitration between a grant and a cancellation is the CAS on the cell:
// whoever moves it out of WAITING wins and is the only party that schedules the task.
// So a grant is never lost (the loser sees it in the cell) and never given twice.
// A canceller reaches the cell through TaskHeader::wait_cell_, never through the
// awaiter (which may already be gone), and compares the full WAITING value including
// the tag of the wait it claimed, so it cannot cancel a later wait of the same task
// (a 16-bit tag: the task would have to complete 65,536 waits during the canceller's
// few instructions; if that ever happened the effect is a spurious CancelledError,
// never a lost or doubled grant).
//
// ───────────────────────────── Reclamation ─────────────────────────────
// Invariants:
//   R1 front_ <= every index whose waiter has not left its cell (a waiter leaves by
//      marking the cell REMOVED, or, at the front, by moving front_ over it: R6);
//      cells below front_ are never read again except by threads pinned before they
//      were unlinked.
//   R2 head_ is the segment of front_ or an older one not yet retired; tail_ likewise
//      for enq_; both only move forward (CAS on segment id).
//   R3 a segment is retired only after head_ and tail_ both moved past it, by the
//      one thread whose CAS moved front_ onto the next segment's first cell.
//   R4 a waiter dereferences its own cell only before it leaves it (R1 keeps its
//      segment alive until then); everyone else dereferences cells only while
//      pinned (EBR), having loaded the segment pointer after pinning.
//   R5 front_ is moved only over REMOVED cells, and over a cell whose waiter leaves
//      at the front (R6). A remove() behind the front stores REMOVED, then reads
//      front_ (both seq_cst; abandon()'s exchange is seq_cst too, and it always runs
//      advance_front); if front_ reached its cell meanwhile it moves it by CAS (a
//      mover may see the REMOVED cell too). A mover CASes front_ forward, then reads
//      the next cell (both seq_cst). By the single total order one of the two sees
//      the other, so a cell behind front_ is passed by the remover at the front (or
//      whoever follows it), never stranded. The remover at the front passes its own
//      cell without pinning (its segment is alive until front_ passes it) unless the
//      cell ends a segment or another cell lies behind it (then advance_front,
//      pinned).
//   R6 A remove() that reads front_ == its own index (seq_cst) moves front_ over the
//      cell with a seq_cst store and leaves the cell as it is (DEPOSIT, GRANTED or
//      CANCELLED): nobody else moves front_ over a cell that is not REMOVED (R5), so
//      front_ stays there until this store, and no reader looks below front_ again
//      (grants and walks start at front_ or above it; is_removed() answers true for
//      an index below front_). One locked instruction where marking the cell and
//      moving front_ took two. The store is also the store half of R5's Dekker pair
//      with a remover behind it, and of L4's with the Lock (is_removed reads front_
//      before the cell). Not for the last cell of a segment: passing it retires the
//      segment, which advance_front does, pinned (R3).
//
// THREAD SAFETY: every member may be called from any thread; suspend-side calls
// for one WaitPosition come from its single waiter.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "spindle/runtime/detail/task_header.hpp"

namespace spindle::detail {

class WaitQueue;

/// What Runtime::dump() says about the primitive a task is parked on.
struct WaitDescription {
    const char* kind = "WaitQueue";  // a string literal: "Lock", "Semaphore", "Queue.get", ...
    const void* address = nullptr;   // the primitive the user knows (not the queue)
    std::uint64_t waiters = 0;       // its current number of waiters (racy snapshot)
};

/// The primitive that owns a WaitQueue: told when a canceller cancels a waiter
/// (asyncio's fut.cancel(): the waiter stops counting at once). Must not block.
struct WaitQueueOwner {
    virtual void on_waiter_cancelled() noexcept = 0;

    /// For Runtime::dump(): which primitive a task parked in `q` (one of this owner's
    /// queues) waits on. Called from any thread, concurrently with every operation on
    /// the primitive, while a waiter of `q` is still inside its wait (so the primitive
    /// is alive: the dumper holds that waiter in its wait; see wait_queue.cpp,
    /// describe_cell_wait). Must only read atomics and must not block. The default
    /// names the queue generically and counts the cells between its front and end.
    [[nodiscard]] virtual WaitDescription describe_wait(const WaitQueue& q) const noexcept;

protected:
    ~WaitQueueOwner() = default;
};

namespace cell {
constexpr std::uint64_t kEmpty = 0;
constexpr std::uint64_t kDeposit = 1;
constexpr std::uint64_t kGranted = 2;
constexpr std::uint64_t kCancelled = 3;
constexpr std::uint64_t kRemoved = 4;
constexpr std::uint64_t kMaxSpecial = 4;
constexpr unsigned kTagShift = 48;
inline std::uint64_t waiting(const TaskHeader* t, std::uint64_t token) noexcept {
    return reinterpret_cast<std::uintptr_t>(t) | (((token >> TaskHeader::kEpochShift) & 0xFFFFU) << kTagShift);
}
inline TaskHeader* task_of(std::uint64_t v) noexcept {
    return reinterpret_cast<TaskHeader*>(v & ((std::uint64_t{1} << kTagShift) - 1));
}
inline bool is_waiting(std::uint64_t v) noexcept { return v > kMaxSpecial; }
}  // namespace cell

/// The owner of FrameCells (Condition's waiter list): what a canceller and a
/// dumper call, through the cell, while they hold its task inside its wait.
struct FrameCellOwner {
    /// A canceller won the cell (WAITING -> CANCELLED). Must not block.
    virtual void on_frame_cell_cancelled() noexcept = 0;
    /// For Runtime::dump(), as WaitQueueOwner::describe_wait (atomics only).
    [[nodiscard]] virtual WaitDescription describe_frame_wait() const noexcept = 0;

protected:
    ~FrameCellOwner() = default;
};

/// A sync wait's cell kept in the waiter's own frame (in its awaiter) instead of a
/// WaitQueue segment, for a primitive that keeps its waiters in a list of its own
/// (Condition: the list is guarded by the condition's lock). The cell has the
/// segment cells' states and arbitration (EMPTY/WAITING/GRANTED/CANCELLED, one CAS
/// out of WAITING decides between a granter and a canceller), but its memory is the
/// frame's, so nobody may touch it once its task has left the wait:
///   F1 the task publishes it in wait_cell_ tagged with TaskHeader::kFrameCell;
///   F2 a canceller or a dumper first tags wait_cell_ with kCellInspected (CAS), so
///      the task, whose clear_wait_cell() waits out that tag, cannot leave the wait
///      (and free the frame) while they read or CAS the cell (cancel_cell_wait,
///      describe_cell_wait);
///   F3 a granter reaches the cell through the owner's list, under the owner's
///      guard. Its winning CAS does not let the waiter go (a WAITING task runs only
///      once scheduled, and there is no deposit state), so it may touch the frame up
///      to the schedule() that wakes the task, and never after.
struct FrameCell {
    std::atomic<std::uint64_t> cell{cell::kEmpty};  // wait_cell_ points here (tagged)
    FrameCellOwner* owner = nullptr;
};

struct Segment {
    static constexpr std::uint32_t kCells = 56;
    static constexpr std::uintptr_t kAlign = 512;  // allocation alignment (see wait_queue.cpp)
    explicit Segment(std::uint64_t i, WaitQueue* q) noexcept : id(i), queue(q) {}
    const std::uint64_t id;                // cells [id * kCells, (id + 1) * kCells)
    WaitQueue* const queue;
    std::atomic<Segment*> next{nullptr};   // set once by CAS
    std::atomic<std::uint64_t> cells[kCells] = {};
};
static_assert(sizeof(Segment) < Segment::kAlign, "a segment must fit its alignment (cell -> segment by masking)");

inline Segment* segment_of(const std::atomic<std::uint64_t>* c) noexcept {
    return reinterpret_cast<Segment*>(reinterpret_cast<std::uintptr_t>(c) & ~(Segment::kAlign - 1));
}

/// Where a waiter sits: its cell (the segment is found by masking, the queue index
/// from the segment's id), one pointer in every waiting awaiter. Valid until the
/// waiter leaves its cell (remove(): REMOVED, or front_ moved over it): read index()
/// before that.
struct WaitPosition {
    std::atomic<std::uint64_t>* c = nullptr;
    std::atomic<std::uint64_t>& cell() const noexcept { return *c; }
    [[nodiscard]] std::uint64_t index() const noexcept {
        const Segment* s = segment_of(c);
        return s->id * Segment::kCells + static_cast<std::uint64_t>(c - s->cells);
    }
};

class WaitQueue {
public:
    explicit WaitQueue(WaitQueueOwner* owner);
    ~WaitQueue();
    WaitQueue(const WaitQueue&) = delete;
    WaitQueue& operator=(const WaitQueue&) = delete;

    /// A queue on the heap whose memory, like its segments', is freed through EBR
    /// (G5): for a primitive whose releasing call goes on using the queue after a
    /// waiter it released may have destroyed the primitive. Pair with destroy().
    static WaitQueue* create(WaitQueueOwner* owner);
    /// Ends a queue made by create(): the destructor's checks and segment retirement
    /// now, the memory once no pinned thread can hold it.
    static void destroy(WaitQueue* q) noexcept;

    // ── suspend side ──
    /// Takes the next cell (EMPTY, or DEPOSIT if a granter got there first).
    WaitPosition enqueue();
    /// EMPTY -> WAITING for `t`'s next wait (token from TaskHeader::next_token()).
    /// False when the cell holds a DEPOSIT: granted already, do not suspend.
    bool install(const WaitPosition& p, TaskHeader& t, std::uint64_t token) noexcept;
    /// The waiter does not want the cell after all (took a fast path). Marks it
    /// REMOVED; returns true if it held a DEPOSIT (the caller received a grant).
    bool abandon(const WaitPosition& p) noexcept;
    /// The waiter itself cancels its wait: true if it won (WAITING -> CANCELLED).
    bool self_cancel(const WaitPosition& p, const TaskHeader& t, std::uint64_t token) noexcept;
    /// After the waiter resumed: GRANTED, DEPOSIT or CANCELLED.
    static std::uint64_t outcome(const WaitPosition& p) noexcept;
    /// The waiter leaves: at the front it moves front_ over its cell (R6), behind it
    /// it marks the cell REMOVED; front_ then moves over removed cells (R5).
    void remove(const WaitPosition& p) noexcept;

    // ── grant side ──
    /// Grants up to `n` of the first WAITING (or EMPTY: deposit) cells from the
    /// front, in order, skipping cells already granted/cancelled/removed
    /// (Semaphore, Condition, Event). Returns how many were granted.
    std::size_t grant_first(std::size_t n = 1) noexcept { return grant(n, UINT64_MAX); }
    /// Grants every WAITING (or EMPTY: deposit) cell whose index is below `end`, in
    /// order, skipping settled cells; cells taken at or after `end` are left alone
    /// (a Barrier round: `end` = enqueued() read when the round closed, so waiters of
    /// the next round, which take their cells later, stay queued). Returns how many.
    std::size_t grant_before(std::uint64_t end) noexcept { return grant(SIZE_MAX, end); }
    /// asyncio Lock's _wake_up_first: looks at the front waiter (the first cell not
    /// REMOVED; GRANTED/DEPOSIT cells there belong to a waiter that already took the
    /// lock and is leaving, so they are passed too) and grants it if it is WAITING or
    /// EMPTY. A CANCELLED front stops it: `blocked` is that cell's index.
    struct FrontGrant {
        bool granted = false;
        std::uint64_t blocked = UINT64_MAX;
    };
    FrontGrant grant_front() noexcept;
    /// Whether a cell between front_ and enq_ is GRANTED or DEPOSIT: a waiter that was
    /// granted and has not left yet (it still has its resumption ahead). A snapshot.
    [[nodiscard]] bool has_pending_grant() noexcept;
    /// Whether cell `index` has been REMOVED (or passed by front_).
    [[nodiscard]] bool is_removed(std::uint64_t index) noexcept;

    /// enq_ now (seq_cst): cells handed out so far. A granter that reserved for
    /// waiters it counted compares it before and after a grant to see whether a
    /// waiter took a cell meanwhile (Semaphore::wake_up_next, whose state word alone
    /// can ABA; Queue's short grant scans, D3 in queue.hpp).
    [[nodiscard]] std::uint64_t enqueued() const noexcept { return enq_.load(std::memory_order_seq_cst); }
    /// Racy count of cells between front_ and enq_ (for diagnostics).
    [[nodiscard]] std::uint64_t approx_size() const noexcept;
    [[nodiscard]] WaitQueueOwner* owner() const noexcept { return owner_; }

private:
    std::size_t grant(std::size_t limit, std::uint64_t bound) noexcept;
    void release_segments() noexcept;
    /// Pinned walk over the cells from front_ to enq_; visit(index, cell) returns true
    /// to stop. (grant_front, has_pending_grant; defined in wait_queue.cpp.)
    template <class Visit>
    void walk_from_front(Visit&& visit) noexcept;
    Segment* find(Segment* from, std::uint64_t id) noexcept;
    Segment* new_segment(std::uint64_t id) noexcept;
    void advance_front() noexcept;
    static void move_forward(std::atomic<Segment*>& ptr, Segment* to) noexcept;

    WaitQueueOwner* const owner_;
    alignas(64) std::atomic<std::uint64_t> enq_{0};    // next index to hand out (fetch_add)
    std::atomic<Segment*> tail_;                        // hint: segment of enq_ (R2)
    alignas(64) std::atomic<std::uint64_t> front_{0};  // oldest cell whose waiter has not left (R1)
    std::atomic<Segment*> head_;                        // segment of front_ (R2)
    std::atomic<std::uint64_t> scan_{0};               // G3: cells below are settled
    // The worker (index + 1, 0: not a worker) that made the latest grant (a DEPOSIT
    // or a wake): a waiter that finds a deposit moves next to its granter
    // (SyncWait::park), and a Lock acquire knows whether the waiter it would queue
    // behind runs next on its own worker (Lock::AcquireAwaiter::handing_over).
    // Written before the grant's CAS, which publishes it; a hint (granters may race).
    std::atomic<std::uint16_t> grant_hint_{0};
    bool heap_ = false;  // made by create(): its memory is EBR-protected (G5)

public:
    /// The granting worker of the latest grant (see grant_hint_).
    [[nodiscard]] std::uint16_t grant_hint() const noexcept {
        // relaxed: a hint; for a deposit, published by the depositor's acq_rel CAS and
        // acquired by install()'s failed CAS that saw the DEPOSIT.
        return grant_hint_.load(std::memory_order_relaxed);
    }
};

inline WaitDescription WaitQueueOwner::describe_wait(const WaitQueue& q) const noexcept {
    return WaitDescription{"WaitQueue", this, q.approx_size()};
}

/// Runtime::dump()'s view of a task's sync wait. If `t` is parked in a cell (its
/// wait_cell_ is set), pins EBR, holds the task inside its wait for a few
/// instructions (TaskHeader::kCellInspected), asks the queue's owner to describe
/// itself and reads the cell; true then. False when `t` is not in a sync wait.
/// `cell_value` receives the cell (WAITING for `t`, or the outcome already written).
bool describe_cell_wait(TaskHeader& t, WaitDescription& out, std::uint64_t& cell_value) noexcept;

/// Installed as TaskHeader's sync-cancellation path: the canceller holds the claim
/// of `token`'s wait; cancels the cell if it is still WAITING and schedules the task.
void cancel_cell_wait(TaskHeader& t, std::uint64_t token) noexcept;

}  // namespace spindle::detail
