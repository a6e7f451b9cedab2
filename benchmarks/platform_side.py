"""The platform's side of a run: sends callbacks like WeCom (re-sending what was not acknowledged)
and receives craftlink's outbound calls on the WeCom API fake, timestamping each arrival."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from benchmarks.wecom_traffic import CORP_ID, Callback
from handlers.clock import SystemClock
from tests.fakes.wecom_api import FakeWeCom


class TimedList(list[dict[str, Any]]):
    """A list that remembers when each item arrived (monotonic seconds)."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def append(self, item: dict[str, Any]) -> None:
        self.times.append(time.monotonic())
        super().append(item)


def timed_fake() -> FakeWeCom:
    fake = FakeWeCom(SystemClock(), corp_id=CORP_ID)
    fake.sent = TimedList()
    return fake


def shown(body: dict[str, Any]) -> str:
    kind = body.get("msgtype", "")
    if kind in ("text", "markdown"):
        return str(body[kind]["content"])
    if kind == "template_card":
        card = body[kind]
        return "\n".join([card["main_title"]["title"], card.get("sub_title_text", "")])
    return f"[{kind}]"


@dataclass
class Delivery:
    """What the platform saw for each callback: acknowledged or not, and how long each try took."""

    acked: dict[str, float] = field(default_factory=dict)  # msg id -> ack latency of the try that succeeded
    sent_at: dict[str, float] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)  # HTTP status (0 = connection failed) -> count
    tries: int = 0


async def post_one(http: aiohttp.ClientSession, port: int, cb: Callback, out: Delivery) -> bool:
    started = time.monotonic()
    out.tries += 1
    try:
        async with http.post(f"http://127.0.0.1:{port}/wecom/callback", params=cb.query, data=cb.body) as r:
            await r.read()
            status = r.status
    except (TimeoutError, aiohttp.ClientError, OSError):
        status = 0
    out.statuses[status] = out.statuses.get(status, 0) + 1
    if status == 200:
        out.acked[cb.msg_id] = time.monotonic() - started
        out.sent_at.setdefault(cb.msg_id, started)
        return True
    return False


async def deliver(http: aiohttp.ClientSession, ports: Sequence[int], callbacks: Iterable[Callback], out: Delivery,
                  *, concurrency: int = 16) -> list[Callback]:
    """Post each callback once (round-robin over ``ports``); return those not acknowledged."""
    queue: asyncio.Queue[tuple[int, Callback]] = asyncio.Queue()
    for i, cb in enumerate(callbacks):
        queue.put_nowait((ports[i % len(ports)], cb))
    failed: list[Callback] = []

    async def worker() -> None:
        while not queue.empty():
            port, cb = queue.get_nowait()
            if not await post_one(http, port, cb, out):
                failed.append(cb)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return failed


async def deliver_with_retries(http: aiohttp.ClientSession, ports: Sequence[int], callbacks: list[Callback],
                               out: Delivery, *, rounds: int = 30, pause_s: float = 0.5) -> list[Callback]:
    """As the platform does: re-send what was not acknowledged, a bounded number of rounds."""
    pending = callbacks
    for _ in range(rounds):
        pending = await deliver(http, ports, pending, out)
        if not pending:
            break
        await asyncio.sleep(pause_s)
    return pending
