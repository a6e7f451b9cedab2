"""kill -9 mid-load: nothing acknowledged is lost, nothing is handled twice, no reply is shown twice.

craftlink runs as a real process on loopback against the WeCom API fake. The platform posts real
encrypted callbacks; the server is killed with SIGKILL while they arrive, restarted, and the platform
re-sends what was not acknowledged (as WeCom does). Bounded: 400 callbacks, at most ~2 minutes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from benchmarks.platform_side import Delivery, deliver, deliver_with_retries
from benchmarks.wecom_traffic import Platform
from storage.models import InboxMessage, InboxState
from tests.faults.procs import Rig, rig

pytestmark = pytest.mark.slow
USERS, PER_USER = 40, 10


@pytest.fixture
async def world(db_url: str, tmp_path: Path) -> AsyncIterator[Rig]:
    async for r in rig(db_url, tmp_path):
        yield r


async def test_kill9_mid_load_loses_nothing_and_doubles_nothing(world: Rig) -> None:
    platform = Platform()
    callbacks = [platform.text(f"k9user{u:03d}", "帮助") for _ in range(PER_USER) for u in range(USERS)]
    server = world.server("a").start()
    out = Delivery()
    try:
        first = asyncio.create_task(deliver(world.http, [server.port], callbacks, out, concurrency=8))
        while len(out.acked) < len(callbacks) // 3:  # bounded: the first pass ends by itself
            assert not first.done(), "the load ended before the kill"
            await asyncio.sleep(0.01)
        server.kill9()
        acked_before_kill = set(out.acked)
        unacked = await first
        assert unacked, "the kill happened after everything was acknowledged"

        server.start()  # same port, same database
        left = await deliver_with_retries(world.http, [server.port], unacked, out)
        assert left == []
        assert await world.settled(len(callbacks), timeout_s=100), await world.counts()
    finally:
        server.stop()

    async with world.engine.connect() as conn:
        rows = (await conn.execute(select(InboxMessage.platform_msg_id, InboxMessage.state))).all()
    stored = {m: s for m, s in rows}
    assert len(rows) == len(callbacks)  # one row per message, retries absorbed by the unique key
    assert set(stored) == {c.msg_id for c in callbacks}
    assert acked_before_kill <= set(stored)  # every acknowledged message survived the kill
    assert set(stored.values()) == {InboxState.DONE.value}

    # Each handled message writes the same replies for every user: a message handled twice would give
    # its user more outbox rows than the others, one lost would give fewer.
    rows_per_user, reclaimed = await world.outbox_by_user()
    assert len(rows_per_user) == USERS and len(set(rows_per_user.values())) == 1, rows_per_user
    # What the members saw: exactly the outbox rows. A row whose send was cut by the kill is sent again
    # after its lease (at-least-once); the resend is the same request, which WeCom's duplicate check
    # drops (the fake records it in ``absorbed``), while every user's ten identical 帮助 replies are ten
    # rows and all ten are shown.
    received = world.received_by_user()
    for user, n in rows_per_user.items():
        assert received[user] == n, (user, n, received[user], reclaimed[user])
    assert len(world.fake.absorbed) <= sum(reclaimed.values())
