"""One writer at a time inside this process on SQLite, with the inbox intake served first.

SQLite has one write lock per database. Without this gate, the intake's commit and the worker's and
sender's transactions all take ``BEGIN IMMEDIATE`` and whoever loses waits in SQLite's busy handler,
which *sleeps* (up to 100 ms a try) instead of waking when the lock frees: under load, callback
acknowledgements waited hundreds of milliseconds behind handling transactions (see
docs/benchmarks.md). The gate queues writers in the event loop instead, hands the lock over the
moment it is released, and lets a waiting intake commit go before any waiting handler transaction,
so an acknowledgement waits for at most one transaction in flight.

On PostgreSQL writers don't block each other this way and the gate is switched off.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class WriteGate:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._busy = False
        self._high: deque[asyncio.Future[None]] = deque()
        self._low: deque[asyncio.Future[None]] = deque()

    @asynccontextmanager
    async def hold(self, *, first: bool = False) -> AsyncIterator[None]:
        """Hold the write turn for a transaction; ``first`` jumps ahead of ordinary waiters."""
        if not self.enabled:
            yield
            return
        if self._busy or self._high or (not first and self._low):
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            (self._high if first else self._low).append(fut)
            try:
                await fut  # the releaser handed the turn over to us: _busy stays True
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._release()  # handed over just as we were cancelled: pass it on
                raise
        self._busy = True
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        for queue in (self._high, self._low):
            while queue:
                fut = queue.popleft()
                if not fut.done():
                    fut.set_result(None)
                    return
        self._busy = False


NO_GATE = WriteGate(enabled=False)
