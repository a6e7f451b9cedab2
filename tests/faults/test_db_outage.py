"""PostgreSQL stopped for 10 s under load: callbacks are refused (503, the platform retries), none is
acknowledged and lost, and the service recovers by itself when the database comes back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from benchmarks import pgserver as pgctl
from benchmarks import serverproc
from benchmarks.platform_side import Delivery, deliver_with_retries, post_one
from benchmarks.wecom_traffic import Callback, Platform
from storage.models import InboxMessage, InboxState
from tests.faults.procs import Rig, rig

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not pgctl.available(), reason="no PostgreSQL binaries")]
OUTAGE_S = 10.0


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[Rig, pgctl.OwnPostgres]]:
    pg = pgctl.OwnPostgres()
    url = pg.start()
    try:
        async for r in rig(url, tmp_path):
            serverproc.upgrade(serverproc.write_config(
                tmp_path / "migrate.toml", db_url=url, port=1, wecom_api=r.fake.base_url, media_dir=tmp_path))
            yield r, pg
    finally:
        pg.stop()


async def test_outage_refuses_callbacks_then_recovers_without_restart(
    world: tuple[Rig, pgctl.OwnPostgres],
) -> None:
    rigx, pg = world
    platform = Platform()
    server = rigx.server("a").start()
    out = Delivery()
    unacked: list[Callback] = []
    during: dict[int, int] = {}
    ready_during = 0
    try:
        async def steady(seconds: float, tally: dict[int, int] | None = None) -> None:
            """About 50 callbacks a second, each answered or refused before the next."""
            end = time.monotonic() + seconds
            i = 0
            while time.monotonic() < end:
                cb = platform.text(f"outage{i % 20:02d}", "帮助")
                before = dict(out.statuses)
                if not await post_one(rigx.http, server.port, cb, out):
                    unacked.append(cb)
                if tally is not None:
                    for code, n in out.statuses.items():
                        if n != before.get(code, 0):
                            tally[code] = tally.get(code, 0) + 1
                i += 1
                await asyncio.sleep(0.02)

        await steady(2.0)
        assert not unacked
        pg.pause()
        outage_started = time.monotonic()
        await steady(OUTAGE_S / 2, during)
        async with rigx.http.get(f"http://127.0.0.1:{server.port}/readyz") as r:
            ready_during = r.status
        await steady(max(0.0, OUTAGE_S - (time.monotonic() - outage_started)), during)
        pg.resume()
        await steady(3.0)  # the same process, no restart: it must serve again by itself
        left = await deliver_with_retries(rigx.http, [server.port], unacked, out, rounds=40)
        assert left == []
        async with rigx.http.get(f"http://127.0.0.1:{server.port}/readyz") as r:
            assert r.status == 200
        acked = set(out.acked)
        assert await rigx.settled(len(acked), timeout_s=60), (await rigx.counts(), len(acked), during, out.statuses)
    finally:
        server.stop()

    assert during.get(503, 0) > 0  # refused with an error status while the database was away
    assert during.get(200, 0) == 0  # nothing acknowledged that could not be stored
    assert ready_during == 503
    async with rigx.engine.connect() as conn:
        rows = dict((await conn.execute(select(InboxMessage.platform_msg_id, InboxMessage.state))).all())
    assert set(rows) == acked  # every acknowledged message is in the inbox, and nothing else
    assert set(rows.values()) == {InboxState.DONE.value}
