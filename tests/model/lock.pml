/*
 * tests/model/lock.pml — a Promela model of spindle's Lock (sync/src/lock.cpp,
 * invariants L1–L4 in sync/include/spindle/sync/lock.hpp) on the waiter queue of
 * queue.pml: the state word locked | reserved | active, the reserved-bit hand-off
 * to the front waiter, and L4's drop-then-re-check of a CANCELLED front.
 * tests/model/README.md maps every step to the C++.
 *
 * Checked: mutual exclusion (holders <= 1); L1 (locked and reserved never both set,
 * checked at every write of the word); a grant always finds `reserved` set when the
 * grantee takes the lock (the C++ aborts otherwise); no deposit in a cell abandoned
 * by the fast path (lock.cpp's comment); no lost wake-up (invalid end states, and
 * at the end: unlocked, unreserved, active == 0, every cell REMOVED or left at the front); no access to
 * a freed segment.
 *
 * Broken variants:
 *   BUG_NO_L4_RECHECK  hand_off drops `reserved` on a CANCELLED front and returns
 *                      without re-checking the cell (L4)
 *   BUG_LOCK_NO_RESCAN hand_off returns when its scan found nothing to grant and
 *                      no CANCELLED front, as the code did before the fix (a
 *                      waiter that queued behind the scan is left parked)
 *   BUG_NO_CANCEL_WAKE a waiter cancelled in the queue leaves without
 *                      wake_up_first (L3's "if not locked: wake the first")
 */

#ifndef NW
#define NW 3
#endif
#ifndef ITER
#define ITER 1
#endif
#ifndef CANCEL
#define CANCEL 1
#endif

/* Lock::state_ : locked (bit 0) | reserved (bit 1) | active << 32 */
bool locked = 0;
bool reserved = 0;

#include "queue.pml"

#define L1 assert(!(locked && reserved))

/* Lock::try_reserve: (unlocked, unreserved, active > 0) -> reserved */
inline try_reserve(ok) {
    atomic { if :: !locked && !reserved && nactive > 0 -> reserved = 1; ok = 1 :: else -> ok = 0 fi; L1 }
}

/* Lock::hand_off, with `reserved` held */
inline hand_off(me, g, blocked, h, i, e, sg, q, v, r, ok) {
    do
    :: grant_front(me, g, blocked, h, i, e, sg, q, v);
       if :: g -> break :: else fi;            /* the grantee turns reserved into locked */
       atomic { assert(reserved); reserved = 0 };
#ifdef BUG_NO_L4_RECHECK
       break
#else
       if
       :: blocked == NONE ->
#ifdef BUG_LOCK_NO_RESCAN
           break
#else
           /* nothing to grant and nothing blocking: a waiter that queued after
            * our scan read enq_ (it saw `reserved` and counted itself) is now
            * waiting for nobody; take the reservation back and scan again */
           try_reserve(ok);
           if :: !ok -> break :: else fi
#endif
       :: else ->
       is_removed(me, blocked, r, h, sg);
       if :: !r -> break :: else fi;
       try_reserve(ok);
       if :: !ok -> break :: else fi
       fi
#endif
    od
}

/* Lock::wake_up_first */
inline wake_up_first(me, g, blocked, h, i, e, sg, q, v, r, ok) {
    try_reserve(ok);
    if :: ok -> hand_off(me, g, blocked, h, i, e, sg, q, v, r, ok) :: else fi
}

proctype Waiter(byte me) {
    byte it = 0;
    byte i, sg, h, f, e, v, nx, q, i2, sg2, blocked, pl, pr, pa;
    bool ok, last, g, got, installed, suspended, cwa, granted, cc, r;
    do
    :: it < ITER ->
        in_acq[me] = 1;
        suspended = 0;
        /* await_ready: try_acquire (the whole word must be 0: L2) */
        atomic { if :: !locked && !reserved && nactive == 0 -> locked = 1; got = 1 :: else -> got = 0 fi };
        if
        :: got -> skip
        :: else ->
            /* queue(): take a cell, then re-check the state */
            enqueue(me, i, sg);
            atomic {
                if
                :: !locked && !reserved && nactive == 0 -> locked = 1; got = 1
                :: else -> nactive++; got = 0
                fi
            };
            if
            :: got ->
                /* abandon: no deposit can be here (a grant needs `reserved`: L2) */
                atomic { CHK(i); assert(cells[i] != DEPOSIT); cells[i] = REMOVED };
                advance_front(me, h, f, sg, nx, e, last, ok)
            :: else ->
                /* SyncWait::park */
                wait_cell[me] = i;
                atomic { CHK(i); if :: cells[i] == EMPTY -> cells[i] = WAITBASE + me; installed = 1 :: else -> installed = 0 fi };
                if
                :: !installed -> wait_cell[me] = NONE      /* a deposit: granted, no suspension */
                :: else ->
                    atomic { if :: cancel_req[me] -> cwa = 1 :: else -> armed[me] = 1; cwa = 0 fi };
                    suspended = 1;
                    if
                    :: cwa ->
                        atomic { CHK(i); if :: cells[i] == WAITBASE + me -> cells[i] = CANCELLED; ok = 1 :: else -> ok = 0 fi };
                        if :: ok -> atomic { nactive-- }; schedule(me) :: else fi
                    :: else
                    fi;
                    atomic { sched[me] -> sched[me] = 0 }
                fi;
                /* await_resume */
                if
                :: suspended ->
                    /* finish_keep: wait_cell_ = null, claim (disarm), outcome */
                    wait_cell[me] = NONE;
                    armed[me] = 0;
                    atomic { CHK(i); v = cells[i] };
                    granted = (v != CANCELLED)
                :: else -> granted = 1
                fi;
                atomic { cc = cancel_req[me] && suspended; if :: cc -> cancel_req[me] = 0 :: else fi };
                if
                :: granted && !cc ->
                    /* L3: reserved -> locked, active - 1, then leave the queue */
                    atomic { assert(reserved && !locked); reserved = 0; locked = 1; nactive--; L1 };
                    remove(me, i, h, f, sg, nx, e, last, ok);
                    got = 1
                :: granted && cc ->
                    /* woken but cancelled before it resumed: keep `reserved`, hand on */
                    atomic { nactive-- };
                    remove(me, i, h, f, sg, nx, e, last, ok);
                    atomic { assert(reserved) };
                    hand_off(me, g, blocked, h, i2, e, sg2, q, v, r, ok);
                    got = 0
                :: !granted ->
                    /* cancelled in the queue (already uncounted): leave, then
                     * asyncio's `if not locked: wake_up_first()` */
                    cancel_req[me] = 0;
                    remove(me, i, h, f, sg, nx, e, last, ok);
#ifndef BUG_NO_CANCEL_WAKE
                    wake_up_first(me, g, blocked, h, i2, e, sg2, q, v, r, ok);
#endif
                    got = 0
                fi
            fi
        fi;
        in_acq[me] = 0;
        if
        :: got ->
            atomic { holders++; assert(holders <= 1) };
            holders--;
            /* release(): fetch_and(~locked); with waiters (prev != locked): slow path */
            atomic { pl = locked; pr = reserved; pa = nactive; locked = 0 };
            assert(pl && !pr);
            if :: pa != 0 -> wake_up_first(me, g, blocked, h, i2, e, sg2, q, v, r, ok) :: else fi
        :: else
        fi;
        it++
    :: else -> break
    od;
    ndone++
}

init {
    byte k;
    atomic {
        k = 0;
        do
        :: k < NCELLS -> cells[k] = EMPTY; k++
        :: else -> break
        od;
        k = 0;
        do
        :: k < NW -> wait_cell[k] = NONE; run Waiter(k); k++
        :: else -> break
        od;
#if CANCEL
        run Canceller();
#endif
    }
    (ndone == NW);
    assert(!locked && !reserved && nactive == 0 && holders == 0);
    assert(front == enq);
    k = 0;
    do
    :: k < enq -> assert(cells[k] == REMOVED || left[k]); k++
    :: else -> break
    od
}
