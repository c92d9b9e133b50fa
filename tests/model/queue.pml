/*
 * tests/model/queue.pml — the part shared by the models: the waiter queue
 * (runtime/src/wait_queue.cpp), EBR-reclaimed segments (runtime/src/ebr.cpp,
 * abstracted to its grace period), the task header's wait/cancel fields, and a
 * canceller (cancel_cell_wait). Included by semaphore.pml and lock.pml, which
 * define NW (waiters), the primitive's state and on_waiter_cancelled first.
 */


#define SEG 2
#define NCELLS 6          /* >= NW * ITER */
#define NSEG 4            /* NCELLS / SEG + 1: the segment after the last one */
#define NP (NW + 1)       /* pinning threads: the waiters and the canceller */
#define NONE 255

/* cell states (wait_queue.hpp, namespace cell); WAITING(p) = WAITBASE + p */
#define EMPTY 0
#define DEPOSIT 1
#define GRANTED 2
#define CANCELLED 3
#define REMOVED 4
#define WAITBASE 5

byte cells[NCELLS];
bool left[NCELLS];        /* the waiter left its cell by moving front_ over it (R6) */
byte enq = 0;             /* WaitQueue::enq_ */
byte front = 0;           /* WaitQueue::front_ */
byte head = 0;            /* WaitQueue::head_ (a segment id) */
byte tail = 0;            /* WaitQueue::tail_ */

/* EBR, abstracted: a segment retired at "time" rgen is freed as soon as every
 * thread pinned before rgen has unpinned — the earliest moment real EBR may free
 * it, so any access the real protocol could make after a free is caught. */
byte gen = 1;
bool pinned[NP];
byte pin_gen[NP];
byte seg_rgen[NSEG];      /* 0 = not retired */
bool seg_freed[NSEG];
hidden byte fk;
hidden byte fj;
hidden byte fok;

/* the primitive's count of queued waiters not cancelled and not yet resumed
 * (`active` in the C++; `active` is a Promela keyword) */
byte nactive = 0;

/* TaskHeader, per waiter */
bool sched[NW];           /* scheduled (woken) and not yet resumed */
byte wait_cell[NW];       /* TaskHeader::wait_cell_ (a cell index) */
bool armed[NW];           /* the wait can be claimed by a canceller */
bool cancel_req[NW];      /* a cancellation is pending */
bool in_acq[NW];          /* inside acquire(): where a cancellation is delivered */

byte holders = 0;
byte ndone = 0;

#define CHK(c) assert(!seg_freed[(c) / SEG])

inline try_free() {
    fk = 0;
    do
    :: fk < NSEG ->
        if
        :: seg_rgen[fk] != 0 && !seg_freed[fk] ->
            fok = 1; fj = 0;
            do
            :: fj < NP -> if :: pinned[fj] && pin_gen[fj] < seg_rgen[fk] -> fok = 0 :: else fi; fj++
            :: else -> break
            od;
            if :: fok -> seg_freed[fk] = 1 :: else fi
        :: else
        fi;
        fk++
    :: else -> break
    od;
    fk = 0; fj = 0; fok = 0
}

inline pin(me) { d_step { pinned[me] = 1; pin_gen[me] = gen } }
inline unpin(me) { d_step { pinned[me] = 0; pin_gen[me] = 0; try_free() } }
inline retire(s) { d_step { gen++; seg_rgen[s] = gen; try_free() } }

/* find(from, id): walks next pointers; reads each segment's id and next. */
inline walk(cur, to) {
    assert(cur <= to);
    do
    :: atomic { cur < to -> CHK(cur * SEG); cur++ }
    :: else -> break
    od;
    CHK(cur * SEG)
}

/* move_forward: a CAS loop that only moves forward == an atomic max */
#define MOVE_FORWARD(ptr, to) atomic { if :: ptr < to -> ptr = to :: else fi }

inline schedule(q) { atomic { assert(!sched[q]); sched[q] = 1 } }

/* WaitQueue::enqueue */
inline enqueue(me, i, sg) {
    pin(me);
    atomic { i = enq; enq++ };
    assert(i < NCELLS);
    sg = tail;
    atomic { CHK(sg * SEG); if :: sg > i / SEG -> sg = head :: else fi };
    walk(sg, i / SEG);
    MOVE_FORWARD(tail, sg);
    unpin(me)
}

/* WaitQueue::advance_front */
inline advance_front(me, h, f, sg, nx, v, last, ok) {
    pin(me);
    do
    :: h = head;
       f = front;
       if :: f >= enq -> break :: else fi;
       sg = h;
       walk(sg, f / SEG);
       atomic { CHK(f); v = cells[f] };
       if :: v != REMOVED -> break :: else fi;
       last = (f % SEG == SEG - 1);
       if :: last -> nx = sg; walk(nx, sg + 1) :: else fi;
       atomic { if :: front == f -> front = f + 1; ok = 1 :: else -> ok = 0 fi };
       if
       :: ok && last ->
#ifdef BUG_EARLY_RETIRE
           retire(sg);
           MOVE_FORWARD(tail, nx);
           MOVE_FORWARD(head, nx)
#else
           MOVE_FORWARD(tail, nx);
           MOVE_FORWARD(head, nx);
           retire(sg)
#endif
       :: else
       fi
    od;
    unpin(me)
}

/* WaitQueue::remove(i): R6 — a waiter whose cell is at front_ (and does not end its
 * segment) leaves by moving front_ over it with a store, the cell keeping its
 * outcome; otherwise it marks the cell REMOVED. Then advance_front passes any
 * REMOVED cells behind (the C++ moves its own cell without pinning where it can and
 * calls advance_front only if a cell lies behind: a subset of these interleavings). */
inline remove(me, i, h, f, sg, nx, v, last, ok) {
    f = front;
    if
    :: f == i && (i % SEG != SEG - 1) ->
        /* R6's claim: nobody else moves front_ over a cell that is not REMOVED */
        atomic { assert(front == i); front = i + 1; left[i] = 1 };
#ifndef BUG_R6_NO_ADVANCE
        advance_front(me, h, f, sg, nx, v, last, ok)
#else
        skip
#endif
    :: else ->
        atomic { CHK(i); cells[i] = REMOVED };
        advance_front(me, h, f, sg, nx, v, last, ok)
    fi
}

/* WaitQueue::grant(1) == grant_first(1): g = granted? */
inline grant(me, g, h, i, e, sg, q) {
    g = 0;
    pin(me);
    h = head;
    i = front;
    e = enq;
    sg = h;
    do
    :: i < e ->
        walk(sg, i / SEG);
        q = NONE;
        atomic {
            CHK(i);
            if
            :: cells[i] == EMPTY -> cells[i] = DEPOSIT; g = 1
            :: cells[i] >= WAITBASE -> q = cells[i] - WAITBASE; cells[i] = GRANTED; g = 1
            :: else
            fi
        };
        if :: q != NONE -> schedule(q) :: else fi;
        if :: g -> break :: else -> i++ fi
    :: else -> break
    od;
    unpin(me)
}


/* WaitQueue::grant_front (the Lock): granted = 1, or blocked = the index of a
 * CANCELLED front cell (NONE if none) */
inline grant_front(me, g, blocked, h, i, e, sg, q, v) {
    g = 0;
    blocked = NONE;
    pin(me);
    h = head;
    i = front;
    e = enq;
    sg = h;
    do
    :: i < e ->
        walk(sg, i / SEG);
        q = NONE;
        atomic {
            CHK(i);
            v = cells[i];
            if
            :: v == EMPTY -> cells[i] = DEPOSIT; g = 1
            :: v >= WAITBASE -> q = v - WAITBASE; cells[i] = GRANTED; g = 1
            :: else
            fi
        };
        if :: q != NONE -> schedule(q) :: else fi;
        if
        :: g -> break
        :: !g && v == CANCELLED -> blocked = i; break
        :: else -> i++               /* REMOVED, or GRANTED/DEPOSIT of a leaving holder */
        fi
    :: else -> break
    od;
    unpin(me)
}

/* WaitQueue::has_pending_grant (the Semaphore's cancelled waiter): a pinned walk from
 * front_ to enq_ (walk_from_front: head_, front_, enq_, then each cell); found = a
 * GRANTED or DEPOSIT cell. A cell whose waiter left at the front (R6) keeps GRANTED,
 * so a walk that read front_ before that waiter's store may report a grant whose
 * waiter has already gone: the model checks that this stale answer loses no wake. */
inline has_pending_grant(me, found, h, i, e, sg, v) {
    found = 0;
    pin(me);
    h = head;
    i = front;
    e = enq;
    sg = h;
    do
    :: i < e ->
        walk(sg, i / SEG);
        atomic { CHK(i); v = cells[i] };
        if
        :: v == GRANTED || v == DEPOSIT -> found = 1; break
        :: else -> i++
        fi
    :: else -> break
    od;
    unpin(me)
}

/* WaitQueue::is_removed */
inline is_removed(me, idx, r, h, sg) {
    pin(me);
    h = head;
    if
    :: idx < front -> r = 1
    :: else ->
        sg = h;
        walk(sg, idx / SEG);
        atomic { CHK(idx); r = (cells[idx] == REMOVED) }
    fi;
    unpin(me)
}

/* JoinHandle::cancel on waiter 0: request, claim the armed wait, cancel_cell_wait */
proctype Canceller() {
    byte c;
    bool claimed, won;
end:
    atomic { in_acq[0] -> cancel_req[0] = 1; claimed = armed[0]; armed[0] = 0 };
    if
    :: claimed ->
        pin(NW);
        c = wait_cell[0];
        if
        :: c != NONE ->
            atomic { CHK(c); if :: cells[c] == WAITBASE + 0 -> cells[c] = CANCELLED; won = 1 :: else fi };
            if :: won -> atomic { nactive-- } :: else fi   /* owner's on_waiter_cancelled */
        :: else
        fi;
        unpin(NW);
        if :: won -> schedule(0) :: else fi
    :: else
    fi
}

