#!/usr/bin/env python3
"""Expected traces of the one-worker queue tests in tests/sync/queue_test.cpp
(suite SyncQueueAsyncio): each function is the asyncio program that the C++ test of
the same name mirrors statement for statement (spawn = create_task, yield_now =
sleep(0), h.cancel() = task.cancel()). These are the situations where asyncio's Queue
is already fair, so spindle's direct hand-off (DESIGN.md section 2) must give the same
trace. Runs on CPython 3.11 with the virtual clock of asyncio_sync_reference.py.

Usage: python3 tests/sync/asyncio_queue_reference.py [NamePrefix]
"""
import asyncio
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from asyncio_sync_reference import VirtualLoop, T, trace  # noqa: E402
import os as _os  # noqa: E402
sys.path.insert(0, _os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "..", "support"))
from asyncio312 import wait_for  # noqa: E402  (CPython 3.12 rules: asyncio.timeout, in place)


async def QueueGettersFifo():
    q = asyncio.Queue()

    async def g(name):
        v = await q.get()
        T(f"{name}={v}")

    tasks = [asyncio.create_task(g(f"g{i}")) for i in range(3)]
    await asyncio.sleep(0)
    for i in range(3):
        q.put_nowait(i + 1)
        T("put", i + 1)
    await asyncio.gather(*tasks)
    T("size", q.qsize())


async def QueuePuttersFifo():
    q = asyncio.Queue(1)
    q.put_nowait(0)

    async def p(i):
        await q.put(i)
        T(f"p{i}+")

    tasks = [asyncio.create_task(p(i)) for i in range(1, 4)]
    await asyncio.sleep(0)
    T("full", q.full())
    for _ in range(4):
        v = await q.get()
        T("got", v)
    await asyncio.gather(*tasks)
    T("size", q.qsize())


async def QueueJoin():
    q = asyncio.Queue()

    async def worker():
        while True:
            v = await q.get()
            await asyncio.sleep(0.01)
            T("done", v)
            q.task_done()

    w = asyncio.create_task(worker())
    for i in range(3):
        await q.put(i)
    await q.join()
    T("joined")
    w.cancel()
    try:
        await w
    except asyncio.CancelledError:
        T("worker-cancelled")


async def QueueCancelWokenGetter():
    q = asyncio.Queue()

    async def g(name):
        try:
            v = await q.get()
        except asyncio.CancelledError:
            T(f"{name}-cancelled")
            raise
        T(f"{name}={v}")

    a = asyncio.create_task(g("a"))
    b = asyncio.create_task(g("b"))
    await asyncio.sleep(0)
    q.put_nowait("x")
    a.cancel()
    await asyncio.gather(a, b, return_exceptions=True)
    T("size", q.qsize())


async def QueueCancelWaitingPutter():
    q = asyncio.Queue(1)
    q.put_nowait("a")

    async def p(v):
        try:
            await q.put(v)
        except asyncio.CancelledError:
            T(f"{v}-cancelled")
            raise
        T(f"{v}+")

    b = asyncio.create_task(p("b"))
    c = asyncio.create_task(p("c"))
    await asyncio.sleep(0)
    b.cancel()
    await asyncio.sleep(0)
    T("got", q.get_nowait())
    await asyncio.sleep(0)
    T("got", q.get_nowait())
    await asyncio.gather(b, c, return_exceptions=True)
    T("size", q.qsize())


async def QueueLifoPriority():
    lq = asyncio.LifoQueue()
    pq = asyncio.PriorityQueue()
    for v in (3, 1, 2):
        lq.put_nowait(v)
        pq.put_nowait(v)
    T("lifo", "".join(str(lq.get_nowait()) for _ in range(3)))
    T("prio", "".join(str(pq.get_nowait()) for _ in range(3)))


async def QueueTimeoutGet():
    q = asyncio.Queue()

    async def late():
        await asyncio.sleep(0.02)
        q.put_nowait("late")

    t = asyncio.create_task(late())
    try:
        await wait_for(q.get(), 0.01)
    except asyncio.TimeoutError:
        T("timeout")
    await t
    T("size", q.qsize())
    T("got", await q.get())


PROGRAMS = [v for k, v in list(globals().items())
            if k.startswith("Queue") and asyncio.iscoroutinefunction(v)]

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
