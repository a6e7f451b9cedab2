"""Live board: a version counter that case transitions bump, and the server-sent events stream on it.

``Services.on_case_change`` is called inside the transaction that moves a case, before its commit, so
a board fetched at that very moment would not show the move yet. The hub therefore publishes a
change only after a short settle delay, and coalesces bursts (one dispatch moves a case twice).
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

SETTLE_S = 0.3  # long enough for the worker's commit to land; short enough to feel live
HEARTBEAT_S = 25.0  # proxies drop silent connections; a comment line keeps the stream open


class BoardHub:
    """Wakes every open board when any case moved."""

    def __init__(self, *, settle_s: float = SETTLE_S) -> None:
        self.version = 0
        self.settle_s = settle_s
        self._cond: asyncio.Condition | None = None
        self._pending: asyncio.TimerHandle | None = None
        self.closed = False

    def _condition(self) -> asyncio.Condition:
        if self._cond is None:  # created lazily: it must belong to the running loop
            self._cond = asyncio.Condition()
        return self._cond

    def changed(self) -> None:
        """Called from handlers (synchronously, mid-transaction): schedule one publish."""
        if self._pending is not None or self.closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # a CLI command moved a case: no board in this process
        self._pending = loop.call_later(self.settle_s, lambda: asyncio.ensure_future(self._publish()))

    async def _publish(self) -> None:
        self._pending = None
        cond = self._condition()
        async with cond:
            self.version += 1
            cond.notify_all()

    async def wait(self, seen: int, timeout: float) -> int:
        """Return the version once it differs from ``seen`` (or ``seen`` after ``timeout``)."""
        cond = self._condition()
        async with cond:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):  # not wait_for: see bot/pipeline/pump.py
                    await cond.wait_for(lambda: self.version != seen or self.closed)
            return self.version

    async def close(self) -> None:
        """Let every stream end, so shutdown does not wait for open boards."""
        self.closed = True
        if self._pending is not None:
            self._pending.cancel()
        cond = self._condition()
        async with cond:
            cond.notify_all()


async def stream(request: web.Request, hub: BoardHub) -> web.StreamResponse:
    """``text/event-stream``: an ``change`` event each time a case moved; the page then re-fetches."""
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                       "X-Accel-Buffering": "no"})
    await resp.prepare(request)
    seen = hub.version
    await resp.write(b"retry: 5000\n\n")
    while not hub.closed:
        version = await hub.wait(seen, HEARTBEAT_S)
        if hub.closed:
            break
        try:
            if version != seen:
                seen = version
                await resp.write(f"event: change\ndata: {version}\n\n".encode())
            else:
                await resp.write(b": keep-alive\n\n")
        except (ConnectionResetError, RuntimeError):
            break  # the browser went away
    return resp
