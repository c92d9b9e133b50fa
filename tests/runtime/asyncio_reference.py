#!/usr/bin/env python3
"""Regenerates the expected traces of tests/runtime/interleave_test.cpp.

Runs each program on CPython's asyncio with a virtual clock: the loop's time() is a
counter that select(timeout) advances by `timeout` (asyncio only calls select with a
timeout when no callback is ready, exactly when spindle's virtual clock jumps).
Usage: python3 tests/runtime/asyncio_reference.py   (CPython 3.11, as DESIGN.md says)
"""
import asyncio
import sys
import os as _os  # noqa: E402
sys.path.insert(0, _os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "..", "support"))
from asyncio312 import wait_for  # noqa: E402  (CPython 3.12 rules: asyncio.timeout, in place)

trace = []


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


def run(coro):
    loop = VirtualLoop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


async def worker(name, n):
    for i in range(n):
        trace.append(f"{name}{i}")
        await asyncio.sleep(0)


async def s(name, d):
    trace.append(name + "s")
    await asyncio.sleep(d)
    trace.append(name + "w")


async def sleep_until_cancelled(name):
    trace.append(name + "s")
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        trace.append(name + "c")
        raise


async def await_handle(name, h):
    trace.append(name + "s")
    try:
        await h
    except asyncio.CancelledError:
        trace.append(name + "c")
        raise


async def RoundRobinYieldIsAsyncioOrder():
    ts = [asyncio.create_task(worker(n, 3)) for n in "ABC"]
    for t in ts:
        await t


async def SpawnYieldAndAwaitMixed():
    trace.append("M0")
    a = asyncio.create_task(worker("A", 3))
    b = asyncio.create_task(worker("B", 1))
    trace.append("M1")
    await asyncio.sleep(0)
    trace.append("M2")
    c = asyncio.create_task(worker("C", 2))
    await a
    trace.append("M3")
    await b
    await c
    trace.append("M4")


async def SpawnDoesNotRunInline():
    a = asyncio.create_task(worker("A", 1))
    trace.append("M")
    await a


async def JoinWakesAwaiterBehindReadyTasks():
    y = asyncio.create_task(worker("Y", 8))
    a = asyncio.create_task(worker("A", 2))
    trace.append("M0")
    await a
    trace.append("M1")
    await y


async def NestedAwaitRunsInline():
    y = asyncio.create_task(worker("Y", 8))
    trace.append("M0")
    await worker("A", 2)
    trace.append("M1")
    await y


async def SleepersWakeInDeadlineThenScheduleOrder():
    ts = [asyncio.create_task(s(n, d)) for n, d in [("A", .03), ("B", .01), ("C", .02), ("D", .01)]]
    for t in ts:
        await t


async def VirtualClockWaitsForReadyTasks():
    st = asyncio.create_task(s("S", .01))
    y = asyncio.create_task(worker("Y", 6))
    await st
    await y


async def CancelSchedulesTheVictimBehindReadyTasks():
    st = asyncio.create_task(sleep_until_cancelled("S"))
    y = asyncio.create_task(worker("Y", 4))
    await asyncio.sleep(0)
    trace.append("M0")
    st.cancel()
    trace.append("M1")
    await asyncio.sleep(0)
    trace.append("M2")
    try:
        await st
    except asyncio.CancelledError:
        trace.append("M3")
    await y


async def CancelForwardedThroughJoinHandle():
    st = asyncio.create_task(sleep_until_cancelled("S"))
    ot = asyncio.create_task(await_handle("O", st))
    y = asyncio.create_task(worker("Y", 6))
    await asyncio.sleep(0)
    trace.append("M0")
    ot.cancel()
    trace.append("M1")
    try:
        await ot
    except asyncio.CancelledError:
        trace.append("M2")
    await y


async def GatherLikeCPython311():
    y = asyncio.create_task(worker("Y", 8))
    trace.append("M0")
    await asyncio.gather(worker("A", 2), worker("B", 1))
    trace.append("M1")
    await y


async def WaitForLikeCPython312():
    y = asyncio.create_task(worker("Y", 8))
    trace.append("M0")
    await wait_for(worker("A", 2), 10)
    trace.append("M1")
    await y


async def TaskGroupLikeCPython311():
    y = asyncio.create_task(worker("Y", 8))
    trace.append("M0")
    async with asyncio.TaskGroup() as g:
        g.create_task(worker("A", 2))
        g.create_task(worker("B", 1))
    trace.append("M1")
    await y


if __name__ == "__main__":
    print("python", sys.version.split()[0])
    for f in [RoundRobinYieldIsAsyncioOrder, SpawnYieldAndAwaitMixed, SpawnDoesNotRunInline,
              JoinWakesAwaiterBehindReadyTasks, NestedAwaitRunsInline,
              SleepersWakeInDeadlineThenScheduleOrder, VirtualClockWaitsForReadyTasks,
              CancelSchedulesTheVictimBehindReadyTasks, CancelForwardedThroughJoinHandle,
              GatherLikeCPython311, WaitForLikeCPython312, TaskGroupLikeCPython311]:
        trace.clear()
        run(f())
        print(f"{f.__name__}: {' '.join(trace)}")
