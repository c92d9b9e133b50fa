/*
 * tests/model/semaphore.pml — a Promela model of spindle's waiter queue (queue.pml:
 * runtime/src/wait_queue.cpp), its segment reclamation through EBR
 * (runtime/src/ebr.cpp, abstracted to its grace-period guarantee), the shared
 * waiter protocol (sync/src/sync_wait.cpp) and the Semaphore on top of it
 * (sync/src/semaphore.cpp). tests/model/README.md maps every step to the C++.
 *
 * Checked (spin -a; cc -DSAFETY pan.c; ./pan):
 *   - no double grant: a waiter is scheduled at most once per wait, and at most
 *     INIT tasks hold a permit at any moment; value never exceeds INIT;
 *   - no lost wake-up: no reachable state where some waiter is parked forever
 *     (pan reports it as an invalid end state), and when every waiter finished:
 *     value == INIT, nactive == 0, front_ == enq_, every cell REMOVED or left at the front (R6);
 *   - no access to a freed segment: every dereference of a segment (its cells,
 *     its id/next while walking) asserts the segment has not been freed;
 *   - R2: a walk never starts from a segment past the one it looks for.
 *   - S1/S2 (semaphore.hpp): release() with waiters counted grants with its permit
 *     in hand; a give-back holds `giving` (kGiving) until its re-check is done, and
 *     acquirers that saw it wait for the clear: no deadlock (invalid end state), and
 *     a legitimate release is never refused by the give-back's bound re-check.
 *     (Destruction itself is not modelled: S2's lifetime argument is in the header.)
 *
 * Bounds: NW waiters doing ITER acquire/release rounds each on a Semaphore(INIT);
 * waiter 0 may be cancelled once (when CANCEL is 1). Segments of SEG = 2 cells, so
 * front_ crosses segments and segments are retired and freed during the run.
 *
 * Broken variants (each must be rejected):
 *   BUG_NO_RECHECK  the waiter does not re-check the state after taking its cell
 *                   (it decides to wait from the failed try_acquire alone)
 *   BUG_GIVEBACK_ABA wake_up_next returns once its give-back CAS succeeds, as the
 *                   code did before the fix (the ABA described in semaphore.cpp)
 *   BUG_CANCEL_NO_WAKE a waiter cancelled in the queue leaves without looking at
 *                   the state, as the code did before the fix
 *   BUG_PENDING_SKIPS_WAKE the cancelled waiter's has_pending_grant() always says
 *                   yes (the wake is left to a granted waiter that may not exist)
 *   BUG_EARLY_RETIRE advance_front retires the segment before moving head_/tail_
 *                   (violates R3: a reader can load head_ and walk a freed segment)
 */

#ifndef NW
#define NW 3
#endif
#ifndef ITER
#define ITER 1
#endif
#ifndef INIT
#define INIT 1
#endif
#ifndef CANCEL
#define CANCEL 1
#endif

byte value = INIT;

#include "queue.pml"

bool giving = 0;   /* Semaphore::state_ bit 31, kGiving (S2) */

/* Semaphore::give_to_waiter: we hold a permit outside value (sv/sa: the word we
 * took it from, or the word release() read). Grant it; else give it back taking
 * kGiving (S2), re-check (the ABA on enq_) and clear kGiving as the last step.
 * rel: release()'s new permit (its bound is re-checked at the give-back). */
inline give_to_waiter(me, g, h, i, e, sg, q, sv, sa, ok, e0, mv, rel) {
    e0 = enq;                                      /* q_.enqueued() */
    grant(me, g, h, i, e, sg, q);
    if
    :: g -> skip                                   /* S1: nothing of *this after it */
    :: else ->
        /* the give-back CAS: one giver at a time (wait for kGiving to clear) */
        atomic {
            !giving ->
            /* a legitimate release is never refused by the bound re-check */
            assert(!(rel && value >= INIT));
            if :: value == sv && nactive == sa -> mv = 0 :: else -> mv = 1 fi;
            value++; giving = 1; assert(value <= INIT)
        };
        do
#ifdef BUG_GIVEBACK_ABA
        :: !mv -> break
#else
        /* the word can be back to `reserved` after a waiter queued (active + 1)
         * and another was cancelled (active - 1): done only if nobody took a
         * cell since before our grant read enq_ */
        :: !mv && enq <= e0 -> break
#endif
        :: else ->
            atomic {
                if
                :: value == 0 || nactive == 0 -> ok = 0
                :: else -> value--; sv = value; sa = nactive; ok = 1     /* reserve again */
                fi
            };
            if :: !ok -> break :: else fi;
            e0 = enq;
            grant(me, g, h, i, e, sg, q);
            if :: g -> break :: else fi;             /* the grantee waits for our clear */
            atomic { if :: value == sv && nactive == sa -> mv = 0 :: else -> mv = 1 fi; value++; assert(value <= INIT) }
        od;
        giving = 0                                 /* fetch_and(~kGiving): last touch */
    fi
}

/* Semaphore::wake_up_next: reserve a free permit if someone is counted, give it */
inline wake_up_next(me, g, h, i, e, sg, q, sv, sa, ok, e0, mv) {
    atomic {
        if
        :: value == 0 || nactive == 0 -> ok = 0
        :: else -> value--; sv = value; sa = nactive; ok = 1     /* reserve */
        fi
    };
    if
    :: ok -> give_to_waiter(me, g, h, i, e, sg, q, sv, sa, ok, e0, mv, 0)
    :: else
    fi
}

/* Semaphore::release (S1): with nobody counted the CAS puts the permit in value;
 * with waiters counted (on a word read without validation: it may be stale) the
 * permit stays in hand and goes to give_to_waiter. */
inline release(me, g, h, i, e, sg, q, sv, sa, ok, e0, mv) {
    do
    :: atomic { sv = value; sa = nactive };      /* the relaxed load / a failed CAS */
       if
       :: sa != 0 -> give_to_waiter(me, g, h, i, e, sg, q, sv, sa, ok, e0, mv, 1); break
       :: else ->
           atomic { if :: value == sv && nactive == sa -> value++; ok = 1; assert(value <= INIT) :: else -> ok = 0 fi };
           if :: ok -> break :: else fi
       fi
    od
}

/* after_giving (S2): an acquirer whose RMW saw kGiving waits for the clear before
 * its acquire returns (here: before it counts as a holder) */
inline after_giving(gv) {
    if :: gv -> (!giving) :: else fi
}

proctype Waiter(byte me) {
    byte it = 0;
    byte i, sg, h, f, e, v, nx, q, sv, sa, i2, sg2, e0;
    bool ok, last, g, got, installed, suspended, cwa, granted, cc, mv, gv, pg;
    do
    :: it < ITER ->
        in_acq[me] = 1;
        suspended = 0;
        /* await_ready: try_acquire */
        atomic { if :: value > 0 && nactive == 0 -> value--; got = 1; gv = giving :: else -> got = 0 fi };
        if
        :: got -> after_giving(gv)
        :: else ->
            /* queue(): take a cell, then re-check the state (Dekker with release) */
            enqueue(me, i, sg);
#ifdef BUG_NO_RECHECK
            atomic { nactive++; got = 0 };
#else
            atomic {
                if
                :: value > 0 && nactive == 0 -> value--; got = 1; gv = giving
                :: else -> nactive++; got = 0
                fi
            };
#endif
            if
            :: got ->
                /* abandon: the cell goes REMOVED; a deposit found there is put back */
                atomic { CHK(i); v = cells[i]; cells[i] = REMOVED };
                advance_front(me, h, f, sg, nx, e, last, ok);
                if
                :: v == DEPOSIT ->
                    atomic { value++; sa = nactive; assert(value <= INIT) };
                    if :: sa != 0 -> wake_up_next(me, g, h, i2, e, sg2, q, sv, sa, ok, e0, mv) :: else fi
                :: else
                fi;
                after_giving(gv)
            :: else ->
                /* SyncWait::park */
                wait_cell[me] = i;
                atomic { CHK(i); if :: cells[i] == EMPTY -> cells[i] = WAITBASE + me; installed = 1 :: else -> installed = 0 fi };
                if
                :: !installed -> wait_cell[me] = NONE      /* a deposit: granted, no suspension */
                :: else ->
                    /* arm, then cancelled_while_arming */
                    atomic { if :: cancel_req[me] -> cwa = 1 :: else -> armed[me] = 1; cwa = 0 fi };
                    suspended = 1;
                    if
                    :: cwa ->
                        atomic { CHK(i); if :: cells[i] == WAITBASE + me -> cells[i] = CANCELLED; ok = 1 :: else -> ok = 0 fi };
                        if :: ok -> atomic { nactive-- }; schedule(me) :: else fi
                    :: else
                    fi;
                    /* parked until scheduled */
                    atomic { sched[me] -> sched[me] = 0 }
                fi;
                /* await_resume */
                if
                :: suspended ->
                    /* finish(): wait_cell_ = null, claim (disarm), outcome, remove */
                    wait_cell[me] = NONE;
                    armed[me] = 0;
                    atomic { CHK(i); v = cells[i] };
                    granted = (v != CANCELLED);
                    remove(me, i, h, f, sg, nx, e, last, ok)
                :: else ->
                    granted = 1;
                    remove(me, i, h, f, sg, nx, e, last, ok)
                fi;
                atomic { cc = cancel_req[me]; if :: suspended || !granted -> cancel_req[me] = 0 :: else fi };
                if
                :: !granted ->                             /* cancelled in the queue */
#ifndef BUG_CANCEL_NO_WAKE
                    /* a newcomer may have queued behind our stale `active` count
                     * while permits were free: look again now that we are uncounted,
                     * unless a granted waiter has yet to resume (its epilogue wakes) */
                    has_pending_grant(me, pg, h, i2, e, sg2, v);
#ifdef BUG_PENDING_SKIPS_WAKE
                    pg = 1;
#endif
                    if
                    :: !pg -> wake_up_next(me, g, h, i2, e, sg2, q, sv, sa, ok, e0, mv)
                    :: else
                    fi;
#endif
                    got = 0
                :: granted && suspended && cc ->
                    /* woken but cancelled before it resumed: permit back, wake next */
                    atomic { value++; nactive--; assert(value <= INIT) };
                    wake_up_next(me, g, h, i2, e, sg2, q, sv, sa, ok, e0, mv);
                    got = 0
                :: else ->
                    atomic { nactive--; sv = value; gv = giving };
                    if :: sv > 0 -> wake_up_next(me, g, h, i2, e, sg2, q, sv, sa, ok, e0, mv) :: else fi;
                    after_giving(gv);
                    got = 1
                fi
            fi
        fi;
        in_acq[me] = 0;
        if
        :: got ->
            atomic { holders++; assert(holders <= INIT) };
            holders--;
            /* release() */
            release(me, g, h, i2, e, sg2, q, sv, sa, ok, e0, mv)
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
    assert(value == INIT && nactive == 0 && holders == 0);
    assert(front == enq);
    k = 0;
    do
    :: k < enq -> assert(cells[k] == REMOVED || left[k]); k++
    :: else -> break
    od
}
