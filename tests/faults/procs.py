"""Fixtures for fault scenarios that run craftlink as a real process on loopback."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks import serverproc
from benchmarks.platform_side import timed_fake
from storage.db import create_engine
from storage.models import InboxMessage, InboxState, OutboxMessage, OutboxState
from tests.fakes.wecom_api import FakeWeCom


@dataclass
class Rig:
    db_url: str
    tmp: Path
    fake: FakeWeCom
    engine: AsyncEngine
    http: aiohttp.ClientSession

    def server(self, name: str = "a", port: int | None = None, *, extra: str = "",
               env: dict[str, str] | None = None) -> serverproc.Proc:
        """A ``craftlink serve`` process; ``extra`` is appended to its config, ``env`` to its environment."""
        port = port or serverproc.free_port()
        cfg = serverproc.write_config(self.tmp / f"{name}.toml", db_url=self.db_url, port=port,
                                      wecom_api=self.fake.base_url, media_dir=self.tmp / "media", instance=name,
                                      extra=extra)
        return serverproc.craftlink(cfg, port=port, log=self.tmp / f"{name}.log", env=env)

    async def counts(self) -> tuple[int, int, int]:
        """(inbox rows, inbox rows pending, outbox rows pending)."""
        async with self.engine.connect() as conn:
            inbox = await conn.scalar(select(func.count()).select_from(InboxMessage))
            pending = await conn.scalar(select(func.count()).select_from(InboxMessage).where(
                InboxMessage.state == InboxState.PENDING.value))
            out = await conn.scalar(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.state == OutboxState.PENDING.value))
        return int(inbox or 0), int(pending or 0), int(out or 0)

    async def settled(self, expected_inbox: int, timeout_s: float) -> bool:
        """Wait (bounded) until every expected message is stored and handled and nothing waits to go out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                inbox, pending, out = await self.counts()
            except Exception:  # the database may be coming back
                inbox, pending, out = -1, -1, -1
            if inbox >= expected_inbox and pending == 0 and out == 0:
                return True
            await asyncio.sleep(0.25)
        return False

    async def outbox_by_user(self) -> tuple[Counter[str], Counter[str]]:
        """(outbox rows per address, rows per address that were claimed more than once)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(OutboxMessage.address, OutboxMessage.attempts).where(
                OutboxMessage.channel == "wecom"))).all()
        return Counter(a for a, _ in rows), Counter(a for a, n in rows if n > 1)

    def received_by_user(self) -> Counter[str]:
        return Counter(str(b["touser"]) for b in self.fake.sent)


async def rig(db_url: str, tmp: Path) -> AsyncIterator[Rig]:
    fake = timed_fake()
    await fake.start()
    engine = create_engine(db_url)
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
    try:
        yield Rig(db_url, tmp, fake, engine, http)
    finally:
        await http.close()
        await engine.dispose()
        await fake.close()
