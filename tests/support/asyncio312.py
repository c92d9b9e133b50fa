"""CPython 3.12's asyncio.timeout / asyncio.wait_for, for the Python side of spindle's
trace and differential tests (they run on CPython 3.11, whose asyncio.wait_for wraps the
operation in a task and whose Timeout compares `uncancel() == 0`).

DESIGN.md: `spindle::wait_for(op, d)` is `async with asyncio.timeout(d): return await op`
with 3.12's Timeout: the operation is awaited in place; on expiry the task is cancelled
in place and the CancelledError that leaves the block becomes TimeoutError, unless
another cancellation was requested since the block was entered.
"""
import asyncio
from asyncio import events, exceptions, tasks


class Timeout:
    """CPython 3.12's asyncio.timeouts.Timeout, statement for statement (states reduced
    to what __aexit__ reads)."""

    def __init__(self, when):
        self._when = when
        self._handler = None
        self._task = None
        self._cancelling = 0
        self._expiring = False

    def _reschedule(self, when):
        loop = events.get_running_loop()
        if when is None:
            self._handler = None
        elif when <= loop.time():
            self._handler = loop.call_soon(self._on_timeout)
        else:
            self._handler = loop.call_at(when, self._on_timeout)

    async def __aenter__(self):
        self._task = tasks.current_task()
        self._cancelling = self._task.cancelling()
        self._reschedule(self._when)
        return self

    async def __aexit__(self, exc_type, exc_val, exc_tb):
        if self._handler is not None:
            self._handler.cancel()
            self._handler = None
        if self._expiring:
            self._expiring = False
            if self._task.uncancel() <= self._cancelling and exc_type is not None:
                if issubclass(exc_type, exceptions.CancelledError):
                    raise TimeoutError from exc_val
        return None

    def _on_timeout(self):
        self._task.cancel()
        self._expiring = True
        self._handler = None


def timeout(delay):
    loop = events.get_running_loop()
    return Timeout(None if delay is None else loop.time() + delay)


async def wait_for(aw, delay):
    """spindle::wait_for: `async with timeout(delay): return await aw`."""
    async with timeout(delay):
        return await aw
