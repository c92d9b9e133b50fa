// runtime/src/wait_queue.cpp — see spindle/runtime/detail/wait_queue.hpp.
#include "spindle/runtime/detail/wait_queue.hpp"

#include <algorithm>

#include <cstdio>
#include <cstdlib>
#include <new>
#include <thread>

#include "spindle/runtime/detail/ebr.hpp"
#include "spindle/runtime/task.hpp"
#include "spindle/runtime/detail/tsan.hpp"

#if SPINDLE_USE_MIMALLOC
#include <mimalloc.h>
#endif

namespace spindle::detail {

namespace {

// Segments are aligned to Segment::kAlign so that a cell's segment is found by
// masking its address. sizeof(Segment) stays below kAlign: mimalloc 2.0.9's
// mi_malloc_aligned returns misaligned memory when the size is a multiple of the
// alignment (seen here: 512 of 512 -> offset 384), so we never ask for that, and we
// check the result anyway.
void* alloc_segment_memory() {
    // The global allocator when a sanitizer must see the memory (task.cpp: frames).
#if SPINDLE_USE_MIMALLOC
    void* p = frames_from_global_allocator() ? ::operator new(sizeof(Segment), std::align_val_t(Segment::kAlign))
                                             : mi_malloc_aligned(sizeof(Segment), Segment::kAlign);
    if (p == nullptr) throw std::bad_alloc();
#else
    void* p = ::operator new(sizeof(Segment), std::align_val_t(Segment::kAlign));
#endif
    if ((reinterpret_cast<std::uintptr_t>(p) & (Segment::kAlign - 1)) != 0) {
        std::fprintf(stderr, "spindle: the allocator returned a misaligned waiter-queue segment (%p)\n", p);
        std::abort();
    }
    return p;
}

void free_segment(void* p) noexcept {
    static_cast<Segment*>(p)->~Segment();
#if SPINDLE_USE_MIMALLOC
    if (!frames_from_global_allocator() || mi_is_in_heap_region(p)) {
        mi_free(p);
        return;
    }
#endif
    ::operator delete(p, std::align_val_t(Segment::kAlign));
}

}  // namespace

WaitQueue::WaitQueue(WaitQueueOwner* owner) : owner_(owner) {
    Segment* s = new (alloc_segment_memory()) Segment(0, this);
    // relaxed: the queue is not shared yet.
    head_.store(s, std::memory_order_relaxed);
    tail_.store(s, std::memory_order_relaxed);  // relaxed: not shared yet
}

WaitQueue::~WaitQueue() { release_segments(); }

void WaitQueue::release_segments() noexcept {
    // No other thread may wait in the queue now (destroying a primitive with waiters
    // is a contract violation, detected here in debug builds); a granter may still be
    // pinned inside grant() (G4, G5).
    // relaxed: no waiter can change the cells any more; a granter only reads past them.
    Segment* s = head_.load(std::memory_order_relaxed);
#ifndef NDEBUG
    const std::uint64_t end = enq_.load(std::memory_order_relaxed);  // relaxed: as above
    for (std::uint64_t i = front_.load(std::memory_order_relaxed); i < end; ++i) {  // relaxed: as above
        Segment* seg = s;
        while (seg != nullptr && seg->id != i / Segment::kCells) seg = seg->next.load(std::memory_order_relaxed);  // relaxed: as above
        if (seg == nullptr) break;
        if (cell::is_waiting(seg->cells[i % Segment::kCells].load(std::memory_order_relaxed))) {  // relaxed: as above
            std::fprintf(stderr,
                         "spindle: a synchronization primitive was destroyed while a task was still waiting on "
                         "it (the task would never wake). Keep the primitive alive until its waiters leave.\n");
            std::abort();
        }
    }
#endif
    // Through EBR, not directly: a canceller that claimed a wait which has since
    // ended may still be pinned with a pointer to a cell here (R4), and so may a
    // granter that released the last waiter (G4).
    while (s != nullptr) {
        Segment* next = s->next.load(std::memory_order_relaxed);  // relaxed: as above
        ebr::retire(s, &free_segment);
        s = next;
    }
}

namespace {
void free_queue_memory(void* p) noexcept { ::operator delete(p, std::align_val_t(alignof(WaitQueue))); }
}  // namespace

WaitQueue* WaitQueue::create(WaitQueueOwner* owner) {
    void* mem = ::operator new(sizeof(WaitQueue), std::align_val_t(alignof(WaitQueue)));
    try {
        auto* q = new (mem) WaitQueue(owner);
        q->heap_ = true;  // before the queue is shared
        return q;
    } catch (...) {
        free_queue_memory(mem);
        throw;
    }
}

void WaitQueue::destroy(WaitQueue* q) noexcept {
    if (q == nullptr) return;
    q->release_segments();
    // The object's memory through EBR as well (G5): its atomics are trivially
    // destructible and release_segments() did the rest of ~WaitQueue.
    ebr::retire(q, &free_queue_memory);
}

Segment* WaitQueue::new_segment(std::uint64_t id) noexcept {
    try {
        Segment* s = new (alloc_segment_memory()) Segment(id, this);
        tsan_release(s);  // its construction, for every thread that finds it (find())
        return s;
    } catch (...) {
        std::fprintf(stderr, "spindle: out of memory allocating a waiter-queue segment\n");
        std::abort();
    }
}

Segment* WaitQueue::find(Segment* from, std::uint64_t id) noexcept {
    Segment* s = from;
    while (s->id < id) {
        // acquire: pairs with the release CAS that linked the next segment.
        Segment* next = s->next.load(std::memory_order_acquire);
        if (next == nullptr) {
            Segment* fresh = new_segment(s->id + 1);
            // acq_rel: release publishes the fresh segment; acquire sees a winner's.
            if (s->next.compare_exchange_strong(next, fresh, std::memory_order_acq_rel, std::memory_order_acquire)) {
                next = fresh;
            } else {
                free_segment(fresh);  // never published
            }
        }
        s = next;
    }
    tsan_acquire(s);  // the segment's construction (new_segment); a user's TSan build only
    return s;
}

void WaitQueue::move_forward(std::atomic<Segment*>& ptr, Segment* to) noexcept {
    // acquire: pairs with the release CAS of other movers.
    Segment* cur = ptr.load(std::memory_order_acquire);
    // release: publishes `to` (already linked) to later readers of ptr.
    while (cur->id < to->id &&
           !ptr.compare_exchange_weak(cur, to, std::memory_order_acq_rel, std::memory_order_acquire)) {  // failure: acquire the newer segment
    }
}

WaitPosition WaitQueue::enqueue() {
    ebr::Guard g;
    // seq_cst: a primitive re-checks its state after taking the index, and a waker
    // changes the state before reading enq_ in grant(): Dekker, so one of them sees
    // the other (the waker finds the cell, or the waiter sees the new state).
    const std::uint64_t i = enq_.fetch_add(1, std::memory_order_seq_cst);
    const std::uint64_t id = i / Segment::kCells;
    // acquire: pairs with move_forward's release CAS (the segment is linked).
    Segment* start = tail_.load(std::memory_order_acquire);
    // acquire: as above. front_ <= i (our cell is not REMOVED), so head_ <= id (R2).
    if (start->id > id) start = head_.load(std::memory_order_acquire);
    Segment* s = find(start, id);
    move_forward(tail_, s);
    return WaitPosition{&s->cells[i % Segment::kCells]};
}

bool WaitQueue::install(const WaitPosition& p, TaskHeader& t, std::uint64_t token) noexcept {
    std::uint64_t expected = cell::kEmpty;
    // acq_rel: release publishes the task's writes before it waits (the granter
    // acquires them); acquire sees a deposit's grant.
    const bool ok = p.cell().compare_exchange_strong(expected, cell::waiting(&t, token), std::memory_order_acq_rel,
                                                     std::memory_order_acquire);  // failure: acquire the deposit
    if (!ok) tsan_acquire(&p.cell());  // the depositor's tsan_release (spindle/runtime/detail/tsan.hpp)
    return ok;
}

bool WaitQueue::abandon(const WaitPosition& p) noexcept {
    // Acquires a deposit's grant; releases our earlier writes before front_ may pass
    // the cell.
    // seq_cst: also the store half of R5's Dekker pair (advance_front below reads
    // front_, and a mover that CASes front_ then reads this cell must see it).
    const std::uint64_t prev = p.cell().exchange(cell::kRemoved, std::memory_order_seq_cst);
    const bool deposit = (prev == cell::kDeposit);
    if (deposit) tsan_acquire(&p.cell());  // as in install()
    advance_front();
    return deposit;
}

bool WaitQueue::self_cancel(const WaitPosition& p, const TaskHeader& t, std::uint64_t token) noexcept {
    std::uint64_t expected = cell::waiting(&t, token);
    // acq_rel: the same arbitration as a canceller's (cancel_cell_wait).
    return p.cell().compare_exchange_strong(expected, cell::kCancelled, std::memory_order_acq_rel,
                                            std::memory_order_acquire);  // failure: acquire the winner's value
}

std::uint64_t WaitQueue::outcome(const WaitPosition& p) noexcept {
    // acquire: pairs with the granter's/canceller's CAS.
    return p.cell().load(std::memory_order_acquire);
}

void WaitQueue::remove(const WaitPosition& p) noexcept {
    const std::uint64_t index = p.index();  // before the store: the segment may go after it
    const bool ends_segment = index % Segment::kCells == Segment::kCells - 1;
    // R6 (header): a waiter whose cell is at front_ leaves by moving front_ over it,
    // without marking the cell REMOVED: one locked instruction, not two. Nobody else
    // moves front_ over a cell that is not REMOVED (R5), so front_ stays at our cell
    // until we move it. Not for a cell that ends its segment (passing it retires the
    // segment: advance_front does that, pinned).
    // seq_cst (the load): the load half of R6 (front_ reached our cell; what a mover
    // wrote before it moved front_ here is ordered before our store below).
    if (!ends_segment && front_.load(std::memory_order_seq_cst) == index) {
        // seq_cst: R5's Dekker pair with a remover behind us (its REMOVED store then
        // front_ load; our store then the loads below), and L4's with the Lock
        // (is_removed reads front_ first).
        front_.store(index + 1, std::memory_order_seq_cst);
    } else {
        // Behind the front (or ending a segment): mark the cell for the mover.
        // seq_cst: our reads of the cell happen before front_ can pass it, and the
        // Lock's re-check of a CANCELLED front (is_removed) pairs with this store. It is
        // also the store half of R5's Dekker pair (with the front_ load below).
        p.cell().store(cell::kRemoved, std::memory_order_seq_cst);
        // R5 (header): only the remover whose cell is at front_ moves it. A cell behind
        // front_ is passed by whoever moves front_ up to it, so we are done here.
        // seq_cst: the load half of R5's Dekker pair with advance_front's CAS-then-load.
        std::uint64_t f = front_.load(std::memory_order_seq_cst);
        if (f != index) return;
        // Front_ reached our cell meanwhile. Another mover that sees it REMOVED may move
        // front_ too now: a CAS, not R6's store; a segment's last cell is passed pinned.
        if (ends_segment) {
            advance_front();
            return;
        }
        // seq_cst: R5, as in advance_front (a remover behind us that saw the old front_
        // has its REMOVED store, and its enq_ increment, ordered before our loads).
        // relaxed failure: someone else passed our cell; nothing is read after it.
        if (!front_.compare_exchange_strong(f, f + 1, std::memory_order_seq_cst, std::memory_order_relaxed))
            return;
    }
    // We moved front_ over our own cell without pinning. Go on pinned only if a cell
    // lies behind ours: it may be REMOVED, by a remover that saw front_ below it and
    // left the move to us.
    // seq_cst: R5; a cell taken after this load is not REMOVED (its owner will find
    // front_ at or before it).
    if (index + 1 < enq_.load(std::memory_order_seq_cst)) advance_front();
}

void WaitQueue::advance_front() noexcept {
    ebr::Guard g;
    for (;;) {
        // head_ before front_, as in grant().
        // acquire: pairs with move_forward.
        Segment* h = head_.load(std::memory_order_acquire);
        // seq_cst: R5 (another mover's progress, and the Dekker pair with remove()).
        std::uint64_t f = front_.load(std::memory_order_seq_cst);
        // seq_cst: R5 (a cell whose remover saw the old front_ lies below enq_).
        if (f >= enq_.load(std::memory_order_seq_cst)) return;
        Segment* s = find(h, f / Segment::kCells);
        // seq_cst: R5, the load half after our CAS (pairs with remove()'s REMOVED store
        // then front_ load: one of the two sees the other); also acquires the waiter's
        // writes.
        if (s->cells[f % Segment::kCells].load(std::memory_order_seq_cst) != cell::kRemoved) return;
        const bool last = (f % Segment::kCells) == Segment::kCells - 1;
        Segment* next = last ? find(s, s->id + 1) : nullptr;  // exists before front_ crosses
        // seq_cst: R5 (orders our read of the cell before the move; pairs with other
        // movers and with remove()'s front_ load). relaxed failure: the loop re-reads front_.
        if (!front_.compare_exchange_strong(f, f + 1, std::memory_order_seq_cst, std::memory_order_relaxed))
            continue;
        if (last) {
            // We moved front_ onto `next`: s is unreachable once head_/tail_ pass it (R3).
            move_forward(tail_, next);
            move_forward(head_, next);
            ebr::retire(s, &free_segment);
        }
    }
}

namespace {
// How far ahead a broadcast's grant loop prefetches waiters' headers (see grant()).
constexpr std::uint64_t kPrefetchAhead = 8;
}  // namespace

std::size_t WaitQueue::grant(std::size_t limit, std::uint64_t bound) noexcept {
    std::size_t granted = 0;
    if (limit == 0) return 0;
    ebr::Guard g;
    // head_ before front_: head_ never passes front_'s segment (R2), so the walk
    // from head_ reaches front_'s segment going forward.
    // acquire: pairs with move_forward.
    Segment* s = head_.load(std::memory_order_acquire);
    // acquire: pairs with advance_front's and remove()'s CAS and R6's store.
    std::uint64_t i = front_.load(std::memory_order_acquire);
    // Skip the cells a previous grant found settled (G3 in the header).
    // relaxed: only a lower bound; every cell below it is settled for good.
    i = std::max(i, scan_.load(std::memory_order_relaxed));
    // seq_cst: the other half of the Dekker pair described in enqueue().
    const std::uint64_t end = std::min(enq_.load(std::memory_order_seq_cst), bound);
    // G4 (header): nothing of *this is written or read after the first CAS that may
    // release a waiter; the walk after it reads only cells, in segments that EBR
    // keeps alive while we are pinned. So the hints are written before that CAS, and
    // again at the end only for a heap queue (G5: *this is EBR-protected too).
    const bool heap = heap_;  // read now: after a release *this may be gone (G4)
    bool hinted = false;
    auto write_hints = [&](std::uint64_t settled_below) noexcept {
        hinted = true;
        // relaxed: a hint (see grant_hint_), published by the grant's CAS that follows.
        grant_hint_.store(current_worker_hint(), std::memory_order_relaxed);
        // relaxed (both): a hint; the cells themselves are read with acquire. A load and
        // a store, not a CAS-max (a locked instruction on every grant): racing
        // granters may move it back, which costs only a longer scan (G3).
        if (scan_.load(std::memory_order_relaxed) < settled_below)
            scan_.store(settled_below, std::memory_order_relaxed);  // relaxed: a hint (as above)
    };
    for (; i < end; ++i) {
        s = find(s, i / Segment::kCells);
        // A broadcast (Event::set, a Queue's or Semaphore's multi-grant): fetch the
        // header of the waiter kPrefetchAhead cells on before its CAS needs it. Each
        // grant's schedule() is a locked RMW on the waiter's state_, a cache line the
        // waiter last wrote when it parked — often on another core — and a loop of them
        // otherwise pays those misses one after another. Within this segment only;
        // a prefetch never faults, so a waiter that left meanwhile costs nothing.
        if (limit - granted > 1) {
            // The cells' line two lines on, for write (the CAS below), so that the peek
            // that follows finds it here rather than shared with the core that wrote it.
            const std::uint64_t k = i + 2 * kPrefetchAhead;
            if (k / Segment::kCells == i / Segment::kCells) __builtin_prefetch(&s->cells[k % Segment::kCells], 1, 3);
            const std::uint64_t j = i + kPrefetchAhead;
            if (j < end && j / Segment::kCells == i / Segment::kCells) {
                // relaxed: only a hint for the prefetch; the cell is read again below.
                const std::uint64_t ahead = s->cells[j % Segment::kCells].load(std::memory_order_relaxed);
                if (cell::is_waiting(ahead)) __builtin_prefetch(cell::task_of(ahead), 1, 3);
            }
        }
        std::atomic<std::uint64_t>& c = s->cells[i % Segment::kCells];
        // acquire: pairs with install's release (the task's writes) and others' CAS.
        std::uint64_t v = c.load(std::memory_order_acquire);
        bool took = false;
        for (;;) {
            if (v == cell::kEmpty) {
                if (!hinted) write_hints(i);  // cells below i are settled
                tsan_release(&c);  // the waiter that finds the deposit acquires it (install/abandon)
                // acq_rel: publishes the grant to the waiter (its install acquires).
                if (c.compare_exchange_weak(v, cell::kDeposit, std::memory_order_acq_rel, std::memory_order_acquire)) {
                    took = true;
                    break;
                }
                continue;
            }
            if (cell::is_waiting(v)) {
                if (!hinted) write_hints(i);
                // acq_rel: the arbitration against a canceller; releases the grant.
                if (c.compare_exchange_weak(v, cell::kGranted, std::memory_order_acq_rel, std::memory_order_acquire)) {
                    cell::task_of(v)->schedule();  // only the winner of the cell wakes it
                    took = true;
                    break;
                }
                continue;
            }
            break;  // DEPOSIT, GRANTED, CANCELLED or REMOVED
        }
        if (took && ++granted == limit) {
            // A heap queue (G5) is EBR-protected: the hint may still move past us.
            if (heap) write_hints(i + 1);
            return granted;
        }
    }
    // Every cell below end is settled (G3); after a release only a heap queue may be
    // written (G4, G5).
    if (!hinted || heap) write_hints(i);
    return granted;
}

template <class Visit>
void WaitQueue::walk_from_front(Visit&& visit) noexcept {
    ebr::Guard g;
    // acquire: pairs with move_forward (head_ before front_, as in grant()).
    Segment* s = head_.load(std::memory_order_acquire);
    // acquire: pairs with advance_front's and remove()'s CAS and R6's store.
    std::uint64_t i = front_.load(std::memory_order_acquire);
    // seq_cst: the Dekker pair described in enqueue() (a waiter that took its cell
    // before this read is seen).
    const std::uint64_t end = enq_.load(std::memory_order_seq_cst);
    for (; i < end; ++i) {
        s = find(s, i / Segment::kCells);
        if (visit(i, s->cells[i % Segment::kCells])) return;
    }
}

WaitQueue::FrontGrant WaitQueue::grant_front() noexcept {
    FrontGrant r;
    walk_from_front([this, &r](std::uint64_t i, std::atomic<std::uint64_t>& c) {
        // seq_cst: a CANCELLED front is re-checked by the Lock after it drops its
        // reservation (Dekker with the waiter's leaving store — REMOVED, or R6's
        // front_ store — then its state read).
        std::uint64_t v = c.load(std::memory_order_seq_cst);
        for (;;) {
            if (v == cell::kEmpty) {
                // relaxed: published by the CAS below.
                grant_hint_.store(current_worker_hint(), std::memory_order_relaxed);
                tsan_release(&c);  // the waiter that finds the deposit acquires it (install/abandon)
                // acq_rel: publishes the grant to the waiter (its install acquires).
                if (c.compare_exchange_weak(v, cell::kDeposit, std::memory_order_acq_rel, std::memory_order_acquire)) {
                    r.granted = true;
                    return true;
                }
                continue;
            }
            if (cell::is_waiting(v)) {
                // relaxed: a hint (see grant_hint_); ordered for our own thread only.
                grant_hint_.store(current_worker_hint(), std::memory_order_relaxed);
                // acq_rel: the arbitration against a canceller; releases the grant.
                if (c.compare_exchange_weak(v, cell::kGranted, std::memory_order_acq_rel, std::memory_order_acquire)) {
                    cell::task_of(v)->schedule();
                    r.granted = true;
                    return true;
                }
                continue;
            }
            break;
        }
        if (v == cell::kCancelled) {
            r.blocked = i;
            return true;
        }
        // REMOVED, or GRANTED/DEPOSIT of a waiter that holds the lock and is leaving.
        return false;
    });
    return r;
}

bool WaitQueue::has_pending_grant() noexcept {
    bool found = false;
    walk_from_front([&found](std::uint64_t /*i*/, std::atomic<std::uint64_t>& c) {
        // acquire: pairs with the granter's CAS.
        const std::uint64_t v = c.load(std::memory_order_acquire);
        found = v == cell::kGranted || v == cell::kDeposit;
        return found;
    });
    return found;
}

bool WaitQueue::is_removed(std::uint64_t index) noexcept {
    ebr::Guard g;
    // acquire: pairs with move_forward (head_ before front_).
    Segment* h = head_.load(std::memory_order_acquire);
    // seq_cst: the load half of the Lock's Dekker re-check (see grant_front).
    if (index < front_.load(std::memory_order_seq_cst)) return true;
    Segment* s = find(h, index / Segment::kCells);
    // seq_cst: as above.
    return s->cells[index % Segment::kCells].load(std::memory_order_seq_cst) == cell::kRemoved;
}

std::uint64_t WaitQueue::approx_size() const noexcept {
    // relaxed: a diagnostic snapshot.
    const std::uint64_t e = enq_.load(std::memory_order_relaxed);
    const std::uint64_t f = front_.load(std::memory_order_relaxed);  // relaxed: as above
    return e > f ? e - f : 0;
}

namespace {

/// Holds `t` inside its sync wait (F2 in the header: kCellInspected) and returns the
/// cell pointer as stored (with kFrameCell if it has it), or null when the task has
/// left its wait. Another holder (a dumper) is waited out.
std::atomic<std::uint64_t>* hold_in_wait(TaskHeader& t) noexcept {
    unsigned spins = 0;
    for (;;) {
        // acquire: pairs with SyncWait::park's / the frame wait's release store of the
        // cell pointer.
        std::atomic<std::uint64_t>* c = t.wait_cell_.load(std::memory_order_acquire);
        if (c == nullptr) return nullptr;
        if ((reinterpret_cast<std::uintptr_t>(c) & TaskHeader::kCellInspected) != 0U) {
            // Another holder has it for a few loads; wait for it.
            if (++spins > 64) std::this_thread::yield();
            continue;
        }
        auto* tagged = reinterpret_cast<std::atomic<std::uint64_t>*>(reinterpret_cast<std::uintptr_t>(c) |
                                                                     TaskHeader::kCellInspected);
        // acquire: pairs with the task's store (as above); failure (relaxed): re-read.
        if (t.wait_cell_.compare_exchange_strong(c, tagged, std::memory_order_acq_rel, std::memory_order_relaxed))
            return c;
    }
}

/// Ends hold_in_wait(): puts the plain pointer back.
void release_hold(TaskHeader& t, std::atomic<std::uint64_t>* c) noexcept {
    // release: pairs with clear_wait_cell's CAS/wait_while_inspected's load: our reads
    // and CAS of the cell happen before the task can leave its wait.
    t.wait_cell_.store(c, std::memory_order_release);
}

bool is_frame_cell(const std::atomic<std::uint64_t>* c) noexcept {
    return (reinterpret_cast<std::uintptr_t>(c) & TaskHeader::kFrameCell) != 0U;
}

FrameCell& frame_cell_of(std::atomic<std::uint64_t>* c) noexcept {
    // `cell` is FrameCell's first member (standard layout): the cell's address is the
    // FrameCell's.
    return *reinterpret_cast<FrameCell*>(TaskHeader::untagged(c));
}

}  // namespace

void cancel_cell_wait(TaskHeader& t, std::uint64_t token) noexcept {
    bool won = false;
    {
        // A segment cell is dereferenced only while pinned (R4).
        ebr::Guard g;
        // acquire: pairs with the task's store before it armed. A dumper's
        // kCellInspected tag is stripped below: the cell is the same.
        std::atomic<std::uint64_t>* c = t.wait_cell_.load(std::memory_order_acquire);
        if (c == nullptr) return;
        const bool hold = is_frame_cell(c);
        if (hold) {
            // F2: the cell is in the task's frame; hold the task inside its wait. (It
            // may have moved on to another wait meanwhile: the token then fails below.)
            c = hold_in_wait(t);
            if (c == nullptr) return;
        }
        std::atomic<std::uint64_t>& cell = *TaskHeader::untagged(c);
        std::uint64_t expected = cell::waiting(&t, token);
        // acq_rel: the arbitration against a granter (see the header).
        won = cell.compare_exchange_strong(expected, cell::kCancelled, std::memory_order_acq_rel,  // acq_rel: vs the granter's CAS
                                           std::memory_order_acquire);  // failure: acquire the winner's value
        if (won) {
            if (is_frame_cell(c)) frame_cell_of(c).owner->on_frame_cell_cancelled();
            else segment_of(&cell)->queue->owner()->on_waiter_cancelled();
        }
        if (hold) release_hold(t, c);
    }
    if (won) t.schedule();  // the cell is ours: we are the only one to wake the task
}

bool describe_cell_wait(TaskHeader& t, WaitDescription& out, std::uint64_t& cell_value) noexcept {
    // Lifetimes, in order: the cell's segment is kept by the pin (R4: pinned before
    // the pointer is loaded); the primitive (owner and queue) is alive while a waiter
    // is inside its wait — destroying a primitive with waiters is a contract
    // violation — and the waiter cannot leave it (clear_wait_cell) while we hold
    // the kCellInspected tag, which we set only on a non-null wait_cell_.
    ebr::Guard g;
    std::atomic<std::uint64_t>* c = hold_in_wait(t);
    if (c == nullptr) return false;
    if (is_frame_cell(c)) {
        const FrameCell& fc = frame_cell_of(c);
        out = fc.owner->describe_frame_wait();
        // acquire: pairs with the granter's/canceller's CAS (diagnostic value).
        cell_value = fc.cell.load(std::memory_order_acquire);
    } else {
        const WaitQueue* q = segment_of(c)->queue;
        out = q->owner()->describe_wait(*q);
        // acquire: pairs with the granter's/canceller's CAS (diagnostic value).
        cell_value = c->load(std::memory_order_acquire);
    }
    // Our reads of the primitive happen before the task can leave its wait (and
    // anyone can destroy it).
    release_hold(t, c);
    return true;
}

}  // namespace spindle::detail
