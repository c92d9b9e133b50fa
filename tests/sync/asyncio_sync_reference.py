#!/usr/bin/env python3
"""Expected traces of the one-worker tests in tests/sync/*_test.cpp (suites Sync*Asyncio).

Each function below is the asyncio program that a C++ test of the same name mirrors
statement for statement (spawn = create_task, yield_now = sleep(0), h.cancel() =
task.cancel(), "call_soon(f)" = spawning a task that calls f). Run on CPython 3.11's
asyncio with a virtual clock (the loop's time() is a counter that select(timeout)
advances by `timeout`: asyncio only calls select with a timeout when nothing is ready,
exactly when spindle's virtual clock jumps). DESIGN.md: at one worker spindle's
Lock/Semaphore/Event/Condition/Barrier behave exactly as CPython 3.11's, except that
Condition.wait follows CPython 3.13 (a wait() that ends by an exception calls
notify(1) on its way out) -- so Condition.wait/_notify below are 3.13's, patched into
asyncio.locks.Condition (which asyncio.Barrier uses, as spindle's Barrier uses
spindle's Condition).

Usage: python3 tests/sync/asyncio_sync_reference.py [NamePrefix]
Prints one line per program: "Name: trace". Tokens are "key=value" (bools as 0/1).
"""
import asyncio
import asyncio.locks as locks
from asyncio import exceptions
import sys
import os as _os  # noqa: E402
sys.path.insert(0, _os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "..", "support"))
from asyncio312 import wait_for  # noqa: E402  (CPython 3.12 rules: asyncio.timeout, in place)

trace = []


def T(key, value=None):
    if value is None:
        trace.append(str(key))
    else:
        if isinstance(value, bool):
            value = int(value)
        trace.append(f"{key}={value}")


class VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self):
        super().__init__()
        self._vt = 0.0
        real_select = self._selector.select

        def select(timeout=None):
            if timeout is None and not self._ready:
                raise RuntimeError("deadlock: nothing ready and no timer")
            if timeout:
                self._vt += timeout
            return real_select(0)

        self._selector.select = select

    def time(self):
        return self._vt


# ---- CPython 3.13's Condition.wait / notify (DESIGN.md section 2) ----
async def _wait_313(self):
    if not self.locked():
        raise RuntimeError('cannot wait on un-acquired lock')
    fut = self._get_loop().create_future()
    self.release()
    try:
        try:
            self._waiters.append(fut)
            try:
                await fut
                return True
            finally:
                self._waiters.remove(fut)
        finally:
            err = None
            while True:
                try:
                    await self.acquire()
                    break
                except exceptions.CancelledError as e:
                    err = e
            if err is not None:
                try:
                    raise err
                finally:
                    err = None
    except BaseException:
        self._notify(1)
        raise


def _notify_313(self, n=1):
    if not self.locked():
        raise RuntimeError('cannot notify on un-acquired lock')
    self._notify(n)


def _notify_impl_313(self, n):
    idx = 0
    for fut in self._waiters:
        if idx >= n:
            break
        if not fut.done():
            idx += 1
            fut.set_result(False)


locks.Condition.wait = _wait_313
locks.Condition.notify = _notify_313
locks.Condition._notify = _notify_impl_313

sleep0 = lambda: asyncio.sleep(0)  # noqa: E731
create = asyncio.create_task


def call_soon(f):
    asyncio.get_running_loop().call_soon(f)


# ════════════════════════════════ Lock ════════════════════════════════

async def LockAcquireFifo():  # test_acquire
    lock = asyncio.Lock()
    await lock.acquire()

    async def c(i):
        await lock.acquire()
        T(f"c{i}")

    t1 = create(c(1))
    t2 = create(c(2))
    await sleep0()
    T("locked", lock.locked())
    lock.release()
    T("locked", lock.locked())
    await sleep0()
    T("locked", lock.locked())
    await sleep0()
    t3 = create(c(3))
    lock.release()
    await sleep0()
    lock.release()
    await sleep0()
    T("done", t1.done() and t2.done() and t3.done())
    T("locked", lock.locked())


async def LockReservedWindow():
    lock = asyncio.Lock()

    async def holder(name):
        await lock.acquire()
        T(name + "+")
        await sleep0()
        lock.release()
        T(name + "-")

    await lock.acquire()
    a = create(holder("a"))
    await sleep0()
    lock.release()
    T("locked", lock.locked())
    try:
        lock.release()
        T("second-release-ok")
    except RuntimeError:
        T("second-release-raises")
    T("locked", lock.locked())
    b = create(holder("b"))
    await lock.acquire()  # main queues behind a and b
    T("main+")
    T("locked", lock.locked())
    lock.release()
    await a
    await b
    T("locked", lock.locked())


async def LockCancelBeforeGrant():  # test_acquire_cancel
    lock = asyncio.Lock()
    await lock.acquire()

    async def acq():
        await lock.acquire()
        T("t+")

    task = create(acq())
    call_soon(task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        T("t-cancelled")
    T("waiters", len(lock._waiters))
    T("locked", lock.locked())
    lock.release()
    T("locked", lock.locked())


async def LockCancelRace():  # test_cancel_race
    lock = asyncio.Lock()
    fa = asyncio.Event()

    async def lockit(name, blocker):
        await lock.acquire()
        T(name + "+")
        try:
            if blocker is not None:
                await blocker.wait()
        finally:
            lock.release()
            T(name + "-")

    ta = create(lockit("a", fa))
    await sleep0()
    T("locked", lock.locked())
    tb = create(lockit("b", None))
    await sleep0()
    tc = create(lockit("c", None))
    await sleep0()
    fa.set()
    tb.cancel()
    await sleep0()
    T("locked", lock.locked())
    T("a-done", ta.done())
    await sleep0()
    T("b-cancelled", tb.cancelled())
    await tc
    T("locked", lock.locked())


async def LockCancelReleaseRace():  # test_cancel_release_race
    lock = asyncio.Lock()
    counts = {"lock": 0, "call": 0}

    async def lockit(name):
        counts["call"] += 1
        await lock.acquire()
        counts["lock"] += 1
        T(name + "+")

    def trigger():
        t1.cancel()
        lock.release()

    await lock.acquire()
    t1 = create(lockit("t1"))
    t2 = create(lockit("t2"))
    t3 = create(lockit("t3"))
    await sleep0()
    call_soon(trigger)
    try:
        await t1
    except asyncio.CancelledError:
        T("t1-cancelled")
    T("lock_count", counts["lock"])
    T("call_count", counts["call"])
    T("t1c", t1.cancelled())
    T("t2d", t2.done())
    t3.cancel()
    await sleep0()
    T("t3c", t3.cancelled())


async def LockFinishedWaiterCancelled():  # test_finished_waiter_cancelled
    lock = asyncio.Lock()
    await lock.acquire()

    async def acq(name):
        await lock.acquire()
        T(name + "+")

    tb = create(acq("b"))
    await sleep0()
    tc = create(acq("c"))
    tb.cancel()
    lock.release()
    T("locked", lock.locked())
    await sleep0()
    T("locked", lock.locked())
    T("bc", tb.cancelled())
    await tc
    T("cd", tc.done())


async def LockCancelAfterGrant():
    lock = asyncio.Lock()
    await lock.acquire()

    async def acq(name):
        try:
            await lock.acquire()
        except asyncio.CancelledError:
            T(name + "-cancelled")
            raise
        T(name + "+")
        await sleep0()
        lock.release()

    tb = create(acq("b"))
    tc = create(acq("c"))
    await sleep0()
    lock.release()  # b is woken (the lock is reserved for it)
    T("locked", lock.locked())
    tb.cancel()  # ...but cancelled before it resumes
    await sleep0()
    T("locked", lock.locked())
    await sleep0()
    T("locked", lock.locked())
    try:
        await tb
    except asyncio.CancelledError:
        T("b-joined-cancelled")
    await tc
    T("locked", lock.locked())


async def LockCancelledInMiddle():
    lock = asyncio.Lock()
    await lock.acquire()

    async def acq(name):
        try:
            await lock.acquire()
        except asyncio.CancelledError:
            T(name + "-cancelled")
            raise
        T(name + "+")
        await sleep0()
        lock.release()

    ts = {n: create(acq(n)) for n in "bcde"}
    await sleep0()
    ts["c"].cancel()
    ts["d"].cancel()
    lock.release()
    for n in "bcde":
        try:
            await ts[n]
        except asyncio.CancelledError:
            T(n + "-joined-cancelled")
    T("locked", lock.locked())


async def LockCancelledFrontHoldsUp():
    lock = asyncio.Lock()
    await lock.acquire()

    async def acq(name):
        try:
            await lock.acquire()
        except asyncio.CancelledError:
            T(name + "-cancelled")
            raise
        T(name + "+")
        lock.release()

    tb = create(acq("b"))
    tc = create(acq("c"))
    await sleep0()
    tb.cancel()
    lock.release()  # b's future is done: nobody is woken yet
    T("locked", lock.locked())
    td = create(acq("d"))  # a newcomer queues behind c (c is not cancelled)
    for t in (tb, tc, td):
        try:
            await t
        except asyncio.CancelledError:
            pass
    T("locked", lock.locked())


async def LockOnlyCancelledWaitersNewcomerBarges():
    lock = asyncio.Lock()
    await lock.acquire()

    async def acq(name):
        try:
            await lock.acquire()
        except asyncio.CancelledError:
            T(name + "-cancelled")
            raise
        T(name + "+")

    tb = create(acq("b"))
    await sleep0()
    tb.cancel()
    lock.release()
    T("locked", lock.locked())
    await lock.acquire()  # every waiter is cancelled: the fast path takes it
    T("main+")
    T("locked", lock.locked())
    try:
        await tb
    except asyncio.CancelledError:
        T("b-joined-cancelled")
    T("locked", lock.locked())
    lock.release()


async def LockWaitForTimeout():
    lock = asyncio.Lock()
    await lock.acquire()
    try:
        await wait_for(lock.acquire(), 0.01)
        T("acquired")
    except asyncio.TimeoutError:
        T("timeout")
    T("waiters", len(lock._waiters or []))
    T("locked", lock.locked())

    async def release_later():
        await asyncio.sleep(0.005)
        lock.release()

    r = create(release_later())
    await wait_for(lock.acquire(), 0.01)
    T("acquired")
    T("locked", lock.locked())
    await r
    lock.release()
    T("locked", lock.locked())


# ════════════════════════════════ Semaphore ════════════════════════════════

async def SemAcquire():  # test_acquire
    sem = asyncio.Semaphore(3)
    await sem.acquire()
    await sem.acquire()
    T("locked", sem.locked())
    T("value", sem._value)

    async def c(i):
        await sem.acquire()
        T(f"c{i}")

    t1 = create(c(1))
    t2 = create(c(2))
    t3 = create(c(3))
    await sleep0()
    T("locked", sem.locked())
    T("value", sem._value)
    t4 = create(c(4))
    sem.release()
    sem.release()
    T("value", sem._value)
    T("locked", sem.locked())
    await sleep0()
    T("value", sem._value)
    T("locked", sem.locked())
    T("done", "".join(str(int(t.done())) for t in (t1, t2, t3, t4)))
    sem.release()
    await asyncio.gather(t2, t3, t4)
    T("value", sem._value)
    T("locked", sem.locked())


async def SemAcquireCancel():  # test_acquire_cancel
    sem = asyncio.Semaphore()
    await sem.acquire()

    async def acq():
        await sem.acquire()
        T("t+")

    task = create(acq())
    call_soon(task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        T("t-cancelled")
    T("value", sem._value)
    T("locked", sem.locked())
    sem.release()
    T("value", sem._value)
    T("locked", sem.locked())


async def SemCancelBeforeAwoken():  # test_acquire_cancel_before_awoken
    sem = asyncio.Semaphore(0)

    async def acq(name):
        await sem.acquire()
        T(name + "+")

    ts = [create(acq(f"t{i}")) for i in range(1, 5)]
    await sleep0()
    ts[0].cancel()
    ts[1].cancel()
    sem.release()
    T("value", sem._value)
    await sleep0()
    await sleep0()
    T("t3d", ts[2].done())
    T("t4d", ts[3].done())
    T("value", sem._value)
    T("locked", sem.locked())
    ts[2].cancel()
    ts[3].cancel()
    await sleep0()
    T("t4c", ts[3].cancelled())
    T("value", sem._value)
    T("locked", sem.locked())


async def SemAcquireHang():  # test_acquire_hang
    sem = asyncio.Semaphore(0)

    async def acq(name):
        await sem.acquire()
        T(name + "+")

    t1 = create(acq("t1"))
    t2 = create(acq("t2"))
    await sleep0()
    t1.cancel()
    sem.release()
    await sleep0()
    await sleep0()
    T("locked", sem.locked())
    T("t2d", t2.done())
    T("value", sem._value)


async def SemAcquireNoHang():  # test_acquire_no_hang
    sem = asyncio.Semaphore(1)
    handles = {}

    async def c1():
        await sem.acquire()
        T("c1+")
        await sleep0()
        sem.release()
        handles["t2"].cancel()

    async def c2():
        await sem.acquire()
        T("c2+")
        sem.release()

    t1 = create(c1())
    t2 = create(c2())
    handles["t2"] = t2
    await t1
    try:
        await t2
        T("t2-ok")
    except asyncio.CancelledError:
        T("t2-cancelled")
    T("value", sem._value)
    T("locked", sem.locked())
    await wait_for(sem.acquire(), 1.0)
    T("acquired")
    T("value", sem._value)


async def SemFifoOrder():  # test_acquire_fifo_order
    sem = asyncio.Semaphore(1)

    async def coro(tag):
        await sem.acquire()
        T(f"{tag}_1")
        await asyncio.sleep(0.01)
        sem.release()
        await sem.acquire()
        T(f"{tag}_2")
        await asyncio.sleep(0.01)
        sem.release()

    ts = [create(coro(t)) for t in ("c1", "c2", "c3")]
    for t in ts:
        await t
    T("value", sem._value)


async def SemFifoOrder2():  # test_acquire_fifo_order_2
    sem = asyncio.Semaphore(1)

    async def c1():
        await sem.acquire()
        T("1")

    async def c2():
        await sem.acquire()
        T("2")
        sem.release()
        await sem.acquire()
        T("4")

    async def c3():
        await sem.acquire()
        T("3")

    ts = [create(c1()), create(c2()), create(c3())]
    await sleep0()
    sem.release()
    sem.release()
    for t in ts:
        await t
    T("value", sem._value)


async def SemFifoOrder3():  # test_acquire_fifo_order_3
    sem = asyncio.Semaphore(0)

    async def c(i):
        await sem.acquire()
        T(str(i))

    ts = [create(c(1)), create(c(2)), create(c(3))]
    await sleep0()
    ts[0].cancel()
    await sleep0()
    sem.release()
    sem.release()
    for t in ts:
        try:
            await t
        except asyncio.CancelledError:
            T("cancelled")
    T("value", sem._value)


async def SemNewcomerWaitsForEarlierWaiters():
    sem = asyncio.Semaphore(0)

    async def acq(name):
        await sem.acquire()
        T(name + "+")

    a = create(acq("a"))
    b = create(acq("b"))
    await sleep0()
    sem.release()  # to a
    sem.release()  # to b
    sem.release()  # nobody left to wake: value 1, but a and b have not started
    T("value", sem._value)
    T("locked", sem.locked())
    c = create(acq("c"))  # queues although a permit is free
    await sleep0()
    T("value", sem._value)
    await a
    await b
    await c
    T("value", sem._value)
    T("locked", sem.locked())


async def SemCancelAfterGrantReturnsPermit():
    sem = asyncio.Semaphore(0)

    async def acq(name):
        try:
            await sem.acquire()
        except asyncio.CancelledError:
            T(name + "-cancelled")
            raise
        T(name + "+")

    a = create(acq("a"))
    b = create(acq("b"))
    await sleep0()
    sem.release()  # granted to a
    T("value", sem._value)
    a.cancel()  # before a resumes
    await sleep0()
    T("value", sem._value)
    T("locked", sem.locked())
    await sleep0()
    T("bd", b.done())
    T("value", sem._value)
    # now with nobody behind: the permit comes back
    c = create(acq("c"))
    await sleep0()
    sem.release()
    c.cancel()
    await sleep0()
    T("value", sem._value)
    T("locked", sem.locked())
    for t in (a, b, c):
        try:
            await t
        except asyncio.CancelledError:
            pass


async def _sem_wait_for_cancelled_after_inner_completed(extra_yields):
    sem = asyncio.Semaphore(0)

    async def acq():
        await wait_for(sem.acquire(), 3600)
        T("o-got")

    o = create(acq())
    await sleep0()  # o runs and queues on the semaphore (wait_for awaits in place)
    await sleep0()
    sem.release()   # granted to o
    await sleep0()  # o resumes, takes the permit and returns
    for _ in range(extra_yields):
        await sleep0()
    o.cancel()      # before o has returned from wait_for
    try:
        await o
        T("o-returned")
    except asyncio.CancelledError:
        T("o-cancelled")
    T("value", sem._value)
    T("locked", sem.locked())


async def SemWaitForCancelledAfterInnerCompleted():
    await _sem_wait_for_cancelled_after_inner_completed(0)


async def SemWaitForCancelledOneStepAfterInnerCompleted():
    await _sem_wait_for_cancelled_after_inner_completed(1)


async def BoundedSemOverRelease():
    sem = asyncio.BoundedSemaphore(2)
    try:
        sem.release()
        T("release-ok")
    except ValueError:
        T("release-raises")
    T("value", sem._value)
    await sem.acquire()
    await sem.acquire()
    T("locked", sem.locked())

    async def acq(name):
        await sem.acquire()
        T(name + "+")

    w = create(acq("w"))
    await sleep0()
    sem.release()  # granted to w: value stays 0
    T("value", sem._value)
    sem.release()  # 0 < 2: allowed
    T("value", sem._value)
    sem.release()  # 1 < 2: allowed
    T("value", sem._value)
    try:
        sem.release()
        T("release-ok")
    except ValueError:
        T("release-raises")
    T("value", sem._value)
    await w
    T("value", sem._value)


# ════════════════════════════════ Event ════════════════════════════════

async def EventWait():  # test_wait
    ev = asyncio.Event()
    T("set", ev.is_set())

    async def c(i):
        if await ev.wait():
            T(f"c{i}")

    t1 = create(c(1))
    t2 = create(c(2))
    await sleep0()
    T("trace-empty")
    t3 = create(c(3))
    ev.set()
    await sleep0()
    T("done", t1.done() and t2.done() and t3.done())


async def EventSetWakesAllFifo():
    ev = asyncio.Event()

    async def c(i):
        await ev.wait()
        T(f"w{i}")

    ts = [create(c(i)) for i in range(6)]
    await sleep0()
    T("waiters", len(ev._waiters))
    ev.set()
    T("main")
    await sleep0()
    T("main")
    T("waiters", len(ev._waiters))
    for t in ts:
        await t


async def EventWaitCancel():  # test_wait_cancel
    ev = asyncio.Event()

    async def w():
        await ev.wait()
        T("w+")

    wait = create(w())
    call_soon(wait.cancel)
    try:
        await wait
    except asyncio.CancelledError:
        T("cancelled")
    T("waiters", len(ev._waiters))
    ev.set()
    T("set", ev.is_set())


async def EventClearWithWaiters():  # test_clear_with_waiters
    ev = asyncio.Event()

    async def c1():
        if await ev.wait():
            T("c1")
        return True

    t = create(c1())
    await sleep0()
    ev.set()
    ev.clear()
    T("set", ev.is_set())
    ev.set()
    ev.set()
    T("waiters", len(ev._waiters))
    await sleep0()
    T("waiters", len(ev._waiters))
    T("done", t.done())


async def EventWokenReturnsDespiteClear():
    ev = asyncio.Event()

    async def c(i):
        await ev.wait()
        T(f"w{i}")

    ts = [create(c(i)) for i in range(3)]
    await sleep0()
    ev.set()
    ev.clear()
    late = create(c(9))  # a waiter arriving after clear() waits
    await sleep0()
    T("set", ev.is_set())
    T("late-done", late.done())
    ev.set()
    await late
    for t in ts:
        await t


async def EventCancelAfterSet():
    ev = asyncio.Event()

    async def c(name):
        try:
            await ev.wait()
        except asyncio.CancelledError:
            T(name + "-cancelled")
            raise
        T(name + "+")

    a = create(c("a"))
    b = create(c("b"))
    await sleep0()
    ev.set()
    a.cancel()  # woken but not yet resumed
    for t in (a, b):
        try:
            await t
        except asyncio.CancelledError:
            T("joined-cancelled")


async def EventCancelOneOfMany():
    ev = asyncio.Event()

    async def c(name):
        try:
            await ev.wait()
        except asyncio.CancelledError:
            T(name + "-cancelled")
            raise
        T(name + "+")

    ts = [create(c(n)) for n in "abcd"]
    await sleep0()
    ts[1].cancel()
    await sleep0()
    T("b-done", ts[1].done())
    ev.set()
    for t in ts:
        try:
            await t
        except asyncio.CancelledError:
            pass


# ════════════════════════════════ Condition ════════════════════════════════

async def CondWait():  # test_wait
    cond = asyncio.Condition()

    async def c(i):
        await cond.acquire()
        if await cond.wait():
            T(f"c{i}")

    ts = [create(c(i)) for i in (1, 2, 3)]
    await sleep0()
    T("locked", cond.locked())
    await cond.acquire()
    cond.notify()
    await sleep0()
    T("locked", cond.locked())
    cond.release()
    await sleep0()
    T("locked", cond.locked())
    cond.notify(2)
    await sleep0()
    T("locked", cond.locked())
    cond.release()
    await sleep0()
    T("locked", cond.locked())
    cond.release()
    await sleep0()
    T("locked", cond.locked())
    T("done", all(t.done() for t in ts))


async def CondWaitCancel():  # test_wait_cancel
    cond = asyncio.Condition()
    await cond.acquire()
    wait = create(cond.wait())
    call_soon(wait.cancel)
    try:
        await wait
    except asyncio.CancelledError:
        T("cancelled")
    T("waiters", len(cond._waiters))
    T("locked", cond.locked())


async def CondWaitCancelContested():  # test_wait_cancel_contested
    cond = asyncio.Condition()
    await cond.acquire()
    T("locked", cond.locked())
    wait_task = create(cond.wait())
    await sleep0()
    T("locked", cond.locked())
    await cond.acquire()
    T("locked", cond.locked())
    cond.notify()
    call_soon(wait_task.cancel)
    call_soon(cond.release)
    try:
        await wait_task
        T("wait-returned")
    except asyncio.CancelledError:
        T("wait-cancelled")
    T("locked", cond.locked())


async def CondWaitCancelAfterNotify():  # test_wait_cancel_after_notify
    cond = asyncio.Condition()
    state = {"waited": False}

    async def wait_on_cond():
        async with cond:
            state["waited"] = True
            await cond.wait()

    waiter = create(wait_on_cond())
    await sleep0()
    await cond.acquire()
    cond.notify()
    await sleep0()
    waiter.cancel()
    await sleep0()
    cond.release()
    await sleep0()
    T("cancelled", waiter.cancelled())
    T("waited", state["waited"])
    T("locked", cond.locked())


async def CondWaitFor():  # test_wait_for
    cond = asyncio.Condition()
    st = {"presult": 0, "calls": 0}

    def predicate():
        st["calls"] += 1
        return st["presult"]

    async def c1():
        await cond.acquire()
        r = await cond.wait_for(predicate)
        T("result", r)
        cond.release()

    t = create(c1())
    await sleep0()
    await cond.acquire()
    cond.notify()
    cond.release()
    await sleep0()
    T("calls", st["calls"])
    st["presult"] = 42
    await cond.acquire()
    cond.notify()
    cond.release()
    await sleep0()
    T("calls", st["calls"])
    T("done", t.done())


async def CondNotify():  # test_notify
    cond = asyncio.Condition()

    async def c(i):
        await cond.acquire()
        if await cond.wait():
            T(f"c{i}")
            cond.release()

    ts = [create(c(i)) for i in (1, 2, 3)]
    await sleep0()
    await cond.acquire()
    cond.notify(1)
    cond.release()
    await sleep0()
    T("mark")
    await cond.acquire()
    cond.notify(1)
    cond.notify(2048)
    cond.release()
    await sleep0()
    T("done", all(t.done() for t in ts))


async def CondNotifyAll():  # test_notify_all
    cond = asyncio.Condition()

    async def c(i):
        await cond.acquire()
        if await cond.wait():
            T(f"c{i}")
            cond.release()

    ts = [create(c(i)) for i in (1, 2)]
    await sleep0()
    await cond.acquire()
    cond.notify_all()
    cond.release()
    await sleep0()
    T("done", all(t.done() for t in ts))


async def CondNotifyNLongestWaiters():
    cond = asyncio.Condition()

    async def c(i):
        async with cond:
            await cond.wait()
            T(f"w{i}")

    ts = [create(c(i)) for i in range(6)]
    await sleep0()
    async with cond:
        cond.notify(2)
        T("n2")
        cond.notify(2)
        T("n2")
    await sleep0()
    T("main")
    async with cond:
        cond.notify(0)
        T("n0")
    await sleep0()
    T("main")
    async with cond:
        cond.notify_all()
        T("all")
    for t in ts:
        await t


async def CondTimeoutInBlock():  # test_timeout_in_block
    cond = asyncio.Condition()
    async with cond:
        try:
            await wait_for(cond.wait(), 0.5)
            T("returned")
        except asyncio.TimeoutError:
            T("timeout")
        T("locked", cond.locked())
        T("waiters", len(cond._waiters))
    T("locked", cond.locked())


async def CondCancelledWaitReacquiresFirst():
    cond = asyncio.Condition()

    async def w():
        async with cond:
            try:
                await cond.wait()
                T("w-returned")
            except asyncio.CancelledError:
                T("w-cancelled-locked", cond.locked())
                raise

    t = create(w())
    await sleep0()
    await cond.acquire()  # hold the lock while w is cancelled
    t.cancel()
    await sleep0()
    await sleep0()
    T("t-done", t.done())
    T("locked", cond.locked())
    cond.release()
    try:
        await t
    except asyncio.CancelledError:
        T("joined-cancelled")
    T("locked", cond.locked())


async def CondCancelledErrorWakeup():  # 3.13 test_cancelled_error_wakeup
    cond = asyncio.Condition()

    async def func():
        async with cond:
            try:
                await cond.wait_for(lambda: False)
            except asyncio.CancelledError:
                T("cancelled-locked", cond.locked())
                raise

    task = create(func())
    await sleep0()
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        T("joined-cancelled")
    T("locked", cond.locked())


async def CondCancelledErrorReacquire():  # 3.13 test_cancelled_error_re_aquire
    cond = asyncio.Condition()
    st = {"wake": False}

    async def func():
        async with cond:
            try:
                await cond.wait_for(lambda: st["wake"])
                T("returned")
            except asyncio.CancelledError:
                T("cancelled-locked", cond.locked())
                raise

    task = create(func())
    await sleep0()
    await cond.acquire()
    st["wake"] = True
    cond.notify()
    await sleep0()
    task.cancel()
    cond.release()
    try:
        await task
    except asyncio.CancelledError:
        T("joined-cancelled")
    T("locked", cond.locked())


async def _cancelled_wakeup(relock):
    cond = asyncio.Condition()
    st = {"state": 0}

    async def consumer(name):
        async with cond:
            while True:
                await cond.wait_for(lambda: st["state"] != 0)
                if st["state"] < 0:
                    T(name + "-exit")
                    return
                st["state"] -= 1
                T(name + "-consumed")

    c = [create(consumer(n)) for n in ("c0", "c1")]
    await sleep0()
    async with cond:
        st["state"] += 1
        cond.notify(1)
        if relock:
            await sleep0()
        c[0].cancel()
        try:
            await wait_for(cond.wait_for(lambda: st["state"] == 0), 0.01)
        except asyncio.TimeoutError:
            T("timeout")
        T("state", st["state"])
        st["state"] = -1
        cond.notify_all()
    await c[1]
    T("c0c", c[0].cancelled())


async def CondCancelledWakeup():  # 3.13 test_cancelled_wakeup
    await _cancelled_wakeup(False)


async def CondCancelledWakeupRelock():  # 3.13 test_cancelled_wakeup_relock
    await _cancelled_wakeup(True)


async def CondNotifiedThenCancelledPassesOn():
    cond = asyncio.Condition()

    async def w(name):
        async with cond:
            try:
                await cond.wait()
            except asyncio.CancelledError:
                T(name + "-cancelled")
                raise
            T(name + "+")

    ts = {n: create(w(n)) for n in "abc"}
    await sleep0()
    async with cond:
        cond.notify(1)  # to a
        ts["a"].cancel()  # a was notified but has not resumed
    await sleep0()
    T("main")
    await sleep0()
    T("main")
    async with cond:
        T("waiters", len(cond._waiters))
        cond.notify_all()
    for n in "abc":
        try:
            await ts[n]
        except asyncio.CancelledError:
            pass


async def CondExplicitLock():  # test_explicit_lock
    lock = asyncio.Lock()
    cond = asyncio.Condition(lock)
    T("locked", lock.locked() or cond.locked())
    async with cond:
        T("lock", lock.locked())
        T("cond", cond.locked())
    T("locked", lock.locked() or cond.locked())
    async with lock:
        T("lock", lock.locked())
        T("cond", cond.locked())
    T("locked", lock.locked() or cond.locked())


# ════════════════════════════════ Barrier ════════════════════════════════
N = 5


async def gather_all(coros):
    ts = [create(c) for c in coros]
    out = []
    for t in ts:
        out.append(await t)
    return out


async def BarrierFillingTaskByTask():  # test_filling_task_by_task
    barrier = asyncio.Barrier(3)

    async def w(name):
        i = await barrier.wait()
        T(f"{name}:{i}")

    t1 = create(w("t1"))
    await sleep0()
    T("n", barrier.n_waiting)
    t2 = create(w("t2"))
    await sleep0()
    T("n", barrier.n_waiting)
    t3 = create(w("t3"))
    await sleep0()
    T("n", barrier.n_waiting)
    for t in (t1, t2, t3):
        await t
    T("n", barrier.n_waiting)
    T("broken", barrier.broken)


async def BarrierFillingOneTaskTwice():  # test_filling_one_task_twice
    barrier = asyncio.Barrier(1)
    t1 = create(barrier.wait())
    await sleep0()
    T("n", barrier.n_waiting)
    t2 = create(barrier.wait())
    await sleep0()
    T("r1", t1.result())
    T("r2", t2.result())
    T("n", barrier.n_waiting)
    T("broken", barrier.broken)


async def BarrierIndicesAndDraining():  # test_context_manager + test_draining_state
    barrier = asyncio.Barrier(N)

    async def w(name):
        i = await barrier.wait()
        T(f"{name}:{i}:n={barrier.n_waiting}")
        return i

    res = await gather_all([w(f"t{k}") for k in range(N)])
    T("sum", sum(res))
    T("n", barrier.n_waiting)
    T("broken", barrier.broken)


async def BarrierWaitTwice():  # test_filling_tasks_wait_twice / check_return_value
    barrier = asyncio.Barrier(N)

    async def w(name):
        i = await barrier.wait()
        T(f"{name}a{i}")
        j = await barrier.wait()
        T(f"{name}b{j}")
        return j

    await gather_all([w(f"t{k}") for k in range(N)])
    T("n", barrier.n_waiting)
    T("broken", barrier.broken)


async def BarrierBlockingWhileDraining():  # test_blocking_tasks_while_draining
    barrier = asyncio.Barrier(N)
    barrier_nowaiting = asyncio.Barrier(N - 2)
    st = {"rewait": 2}

    async def coro(name):
        await barrier.wait()
        if st["rewait"] > 0:
            st["rewait"] -= 1
            i = await barrier.wait()
            T(f"{name}:r{i}")
        else:
            await barrier_nowaiting.wait()
            i = await barrier.wait()
            T(f"{name}:w{i}")

    await gather_all([coro(f"t{k}") for k in range(N)])
    T("n", barrier.n_waiting)


async def BarrierFillingCancelOne():  # test_filling_tasks_cancel_one
    barrier = asyncio.Barrier(3)

    async def coro(name):
        i = await barrier.wait()
        T(f"{name}:{i}")

    t1 = create(coro("t1"))
    await sleep0()
    T("n", barrier.n_waiting)
    t2 = create(coro("t2"))
    await sleep0()
    T("n", barrier.n_waiting)
    t1.cancel()
    await sleep0()
    T("n", barrier.n_waiting)
    try:
        await t1
    except asyncio.CancelledError:
        T("t1-cancelled")
    t3 = create(coro("t3"))
    await sleep0()
    T("n", barrier.n_waiting)
    t4 = create(coro("t4"))
    for t in (t2, t3, t4):
        await t
    T("n", barrier.n_waiting)
    T("broken", barrier.broken)


async def BarrierReset():  # test_reset_barrier
    barrier = asyncio.Barrier(1)
    create(barrier.reset())
    await sleep0()
    T("n", barrier.n_waiting)
    T("broken", barrier.broken)


async def BarrierResetWhileWaiting():  # test_reset_barrier_while_tasks_waiting
    barrier = asyncio.Barrier(N)

    async def coro(name):
        try:
            await barrier.wait()
            T(name + "-passed")
        except asyncio.BrokenBarrierError:
            T(name + "-broken")

    ts = [create(coro(f"t{k}")) for k in range(N - 1)]
    await sleep0()
    T("n", barrier.n_waiting)
    create(barrier.reset())
    for t in ts:
        await t
    T("n", barrier.n_waiting)
    T("broken", barrier.broken)
    # the barrier is usable again
    res = await gather_all([barrier.wait() for _ in range(N)])
    T("sum", sum(res))


async def BarrierResetHalfDrainingHalfBlocking():  # test_reset_..._half_draining_half_blocking
    barrier = asyncio.Barrier(N)
    blocking = N // 2
    st = {"count": 0}

    async def coro(name):
        try:
            await barrier.wait()
        except asyncio.BrokenBarrierError:
            T(name + "-r1")
            await barrier.wait()
        else:
            st["count"] += 1
            if st["count"] > blocking:
                await barrier.reset()
                await barrier.wait()
            else:
                try:
                    await barrier.wait()
                except asyncio.BrokenBarrierError:
                    T(name + "-r2")

    await gather_all([coro(f"t{k}") for k in range(N)])
    T("n", barrier.n_waiting)
    T("broken", barrier.broken)


async def BarrierResetWhileWaitingAndWaitingAgain():  # test_reset_..._waiting_and_waiting_again
    barrier = asyncio.Barrier(N)

    async def coro1(name):
        try:
            await barrier.wait()
        except asyncio.BrokenBarrierError:
            T(name + "-broken")
        finally:
            await barrier.wait()
            T(name + "-again")

    async def coro2():
        await barrier.wait()
        T("c2")

    ts = [create(coro1(f"t{k}")) for k in range(N - 1)]
    create(barrier.reset())
    await sleep0()
    create(coro2())
    for t in ts:
        await t
    T("broken", barrier.broken)
    T("n", barrier.n_waiting)


async def BarrierResetWhileDraining():  # test_reset_barrier_while_tasks_draining
    barrier = asyncio.Barrier(N)
    st = {"count": 0}

    async def coro(name):
        await barrier.wait()
        st["count"] += 1
        if st["count"] == N:
            await barrier.reset()
            await barrier.wait()
        else:
            try:
                await barrier.wait()
                T(name + "-r1")
            except Exception:
                T(name + "-r2")
        await barrier.wait()
        T(name + "-r3")

    await gather_all([coro(f"t{k}") for k in range(N)])
    T("broken", barrier.broken)
    T("n", barrier.n_waiting)


async def BarrierAbort():  # test_abort_barrier
    barrier = asyncio.Barrier(1)
    create(barrier.abort())
    await sleep0()
    T("n", barrier.n_waiting)
    T("broken", barrier.broken)
    try:
        await barrier.wait()
        T("passed")
    except asyncio.BrokenBarrierError:
        T("broken-error")
    await barrier.reset()  # reset() repairs a broken barrier
    T("broken", barrier.broken)
    T("index", await barrier.wait())


async def BarrierAbortHalfDrainingHalfBlocking():  # test_abort_..._half_draining_half_blocking
    barrier = asyncio.Barrier(N)
    blocking = N // 2
    st = {"count": 0}

    async def coro(name):
        try:
            await barrier.wait()
        except asyncio.BrokenBarrierError:
            T(name + "-r1")
        else:
            st["count"] += 1
            if st["count"] > blocking:
                await barrier.abort()
            else:
                try:
                    await barrier.wait()
                except asyncio.BrokenBarrierError:
                    T(name + "-r2")

    await gather_all([coro(f"t{k}") for k in range(N)])
    T("broken", barrier.broken)
    T("n", barrier.n_waiting)


async def BarrierAbortWhenException():  # test_abort_barrier_when_exception
    barrier = asyncio.Barrier(N)

    async def coro(name):
        try:
            i = await barrier.wait()
            if i == N // 2:
                raise RuntimeError
            await barrier.wait()
            T(name + "-r1")
        except asyncio.BrokenBarrierError:
            T(name + "-r2")
        except RuntimeError:
            await barrier.abort()
            T(name + "-aborted")

    await gather_all([coro(f"t{k}") for k in range(N)])
    T("broken", barrier.broken)
    T("n", barrier.n_waiting)


async def BarrierAbortThenReset():  # test_abort_barrier_when_exception_then_resetting
    barrier1 = asyncio.Barrier(N)
    barrier2 = asyncio.Barrier(N)

    async def coro(name):
        try:
            i = await barrier1.wait()
            if i == N // 2:
                raise RuntimeError
            await barrier1.wait()
            T(name + "-r1")
        except asyncio.BrokenBarrierError:
            T(name + "-r2")
        except RuntimeError:
            await barrier1.abort()
        i = await barrier2.wait()
        if i == N // 2:
            await barrier1.reset()
        await barrier2.wait()
        await barrier1.wait()
        T(name + "-r3")

    await gather_all([coro(f"t{k}") for k in range(N)])
    T("broken", barrier1.broken)
    T("n", barrier1.n_waiting)


async def BarrierWaitForTimeout():
    barrier = asyncio.Barrier(2)
    try:
        await wait_for(barrier.wait(), 0.01)
        T("passed")
    except asyncio.TimeoutError:
        T("timeout")
    T("n", barrier.n_waiting)
    T("broken", barrier.broken)
    t = create(barrier.wait())
    await sleep0()
    T("n", barrier.n_waiting)
    T("index", await barrier.wait())
    T("other", await t)


async def BarrierRounds():
    barrier = asyncio.Barrier(3)

    async def w(name, rounds):
        for r in range(rounds):
            i = await barrier.wait()
            T(f"{name}{r}:{i}")

    await gather_all([w(n, 3) for n in "abc"])
    T("n", barrier.n_waiting)


PROGRAMS = [v for k, v in list(globals().items())
            if k[:1].isupper() and k not in ("T", "N", "PROGRAMS", "VirtualLoop")
            and asyncio.iscoroutinefunction(v)]

if __name__ == "__main__":
    prefix = sys.argv[1] if len(sys.argv) > 1 else ""
    print("python", sys.version.split()[0])
    for f in PROGRAMS:
        if not f.__name__.startswith(prefix):
            continue
        trace.clear()
        loop = VirtualLoop()
        try:
            loop.run_until_complete(f())
        except Exception as e:  # show, do not hide
            trace.append(f"EXC:{type(e).__name__}")
        finally:
            loop.close()
        print(f"{f.__name__}: {' '.join(trace)}")
