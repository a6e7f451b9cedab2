"""Posting callbacks: open loop at a fixed rate (latency measured from each request's *scheduled*
time, so a stalled server is not hidden by a stalled generator) or closed loop as fast as possible."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp

from benchmarks.wecom_traffic import Callback


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)  # seconds, acknowledged (200) requests only
    statuses: dict[int, int] = field(default_factory=dict)
    acked: set[str] = field(default_factory=set)
    elapsed: float = 0.0
    dropped: int = 0  # not sent because too many were outstanding (open loop)

    @property
    def ack_rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


async def _post(http: aiohttp.ClientSession, port: int, cb: Callback, res: Result, t0: float) -> None:
    try:
        async with http.post(f"http://127.0.0.1:{port}/wecom/callback", params=cb.query, data=cb.body) as r:
            await r.read()
            status = r.status
    except (TimeoutError, aiohttp.ClientError, OSError):
        status = 0
    res.statuses[status] = res.statuses.get(status, 0) + 1
    if status == 200:
        res.latencies.append(time.monotonic() - t0)
        res.acked.add(cb.msg_id)


def session(limit: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit, force_close=False),
                                 timeout=aiohttp.ClientTimeout(total=30))


async def open_loop(ports: Sequence[int], callbacks: Sequence[Callback], rate: float,
                    *, max_outstanding: int = 512) -> Result:
    """Send ``callbacks`` at ``rate`` per second, alternating ports; bounded by len(callbacks)."""
    res = Result()
    pending: set[asyncio.Task[None]] = set()
    async with session(max_outstanding) as http:
        start = time.monotonic()
        for i, cb in enumerate(callbacks):
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if len(pending) >= max_outstanding:
                res.dropped += 1
                continue
            task = asyncio.create_task(_post(http, ports[i % len(ports)], cb, res, due))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.wait(pending, timeout=60)
        res.elapsed = time.monotonic() - start
    return res


async def closed_loop(ports: Sequence[int], callbacks: Sequence[Callback], *, concurrency: int,
                      seconds: float) -> Result:
    """``concurrency`` clients each posting back to back until ``seconds`` pass or callbacks run out."""
    res = Result()
    it = iter(enumerate(callbacks))
    async with session(concurrency) as http:
        start = time.monotonic()
        end = start + seconds

        async def client() -> None:
            for i, cb in it:
                if time.monotonic() >= end:
                    return
                await _post(http, ports[i % len(ports)], cb, res, time.monotonic())

        await asyncio.gather(*(client() for _ in range(concurrency)))
        res.elapsed = time.monotonic() - start
    return res
