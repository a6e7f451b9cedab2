"""Two instances on one PostgreSQL handle the same stream: no message handled twice, no timer fired
twice, no digest sent twice. Both run as real processes; the platform alternates between them."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from benchmarks import serverproc
from benchmarks.platform_side import Delivery, deliver_with_retries
from benchmarks.wecom_traffic import Platform
from bot.demo import seed
from handlers.reminders import FEEDBACK_NUDGE
from storage.db import session_factory
from storage.models import InboxMessage, InboxState, JobRun, OutboxMessage, Person, Role, Timer, TimerState
from tests.faults.procs import Rig, rig
from tests.ops.metrics_util import value

pytestmark = pytest.mark.slow
USERS, PER_USER, TIMERS = 30, 10, 300


@pytest.fixture
async def world(db_url: str, tmp_path: Path) -> AsyncIterator[Rig]:
    if not db_url.startswith("postgresql"):
        pytest.skip("N instances need PostgreSQL (SQLite is the one-process setup)")
    async for r in rig(db_url, tmp_path):
        yield r


async def _scrape(http: aiohttp.ClientSession, port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
        text = await r.text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


async def test_two_instances_share_the_work_without_doing_anything_twice(world: Rig) -> None:
    now = datetime.now(UTC)
    sessions = session_factory(world.engine)
    async with sessions() as s, s.begin():
        await seed(s, now)  # staff exist, so the catch-up digest at start has recipients
        for i in range(TIMERS):  # due reminders of no case: each fires (is counted) and does nothing else
            s.add(Timer(kind=FEEDBACK_NUDGE, due_at=now, payload={"i": i}, created_at=now))
    extra = "\n[timers]\npoll_interval_s = 0.5\n"
    servers = []
    for name in ("a", "b"):
        port = serverproc.free_port()
        cfg = serverproc.write_config(world.tmp / f"{name}.toml", db_url=world.db_url, port=port,
                                      wecom_api=world.fake.base_url, media_dir=world.tmp / "media",
                                      instance=name, extra=extra)
        servers.append(serverproc.craftlink(cfg, port=port, log=world.tmp / f"{name}.log"))
    try:
        for proc in servers:
            proc.start()
        platform = Platform()
        callbacks = [platform.text(f"twin{u:02d}", "帮助") for _ in range(PER_USER) for u in range(USERS)]
        out = Delivery()
        left = await deliver_with_retries(world.http, [p.port for p in servers], callbacks, out)
        assert left == []
        assert await world.settled(len(callbacks), timeout_s=60), await world.counts()
        for _ in range(40):  # the pollers run every 0.5 s: bounded wait for the last timers
            async with world.engine.connect() as conn:
                if not await conn.scalar(select(func.count()).select_from(Timer).where(
                        Timer.state == TimerState.PENDING.value)):
                    break
            await asyncio.sleep(0.25)
        scraped = [await _scrape(world.http, p.port) for p in servers]
    finally:
        for proc in servers:
            proc.stop()

    handled = [value(m, "craftlink_handling_seconds_count", outcome="done") for m in scraped]
    assert sum(handled) == len(callbacks)  # each message handled once, by one of the two
    assert all(h > 0 for h in handled), handled  # and both really took part
    fired = [value(m, "craftlink_timers_fired_total", kind=FEEDBACK_NUDGE) for m in scraped]
    assert sum(fired) == TIMERS, fired  # each timer fired once
    async with world.engine.connect() as conn:
        states = (await conn.execute(select(InboxMessage.state, func.count()).group_by(InboxMessage.state))).all()
        assert dict(states) == {InboxState.DONE.value: len(callbacks)}
        runs = (await conn.execute(select(JobRun.job, JobRun.period, func.count()).group_by(
            JobRun.job, JobRun.period))).all()
        assert runs and all(n == 1 for _, _, n in runs)
        staff = set((await conn.scalars(select(Person.id).where(Person.role == Role.STAFF.value))).all())
        digests = Counter(
            pid for pid, payload in (await conn.execute(select(OutboxMessage.person_id, OutboxMessage.payload))).all()
            if pid in staff and "工作日报" in str(payload))
    assert digests and set(digests.values()) == {1}, digests  # one digest per staff member, not two
    rows_per_user, _ = await world.outbox_by_user()
    assert len({n for u, n in rows_per_user.items() if u.startswith("twin")}) == 1  # nobody answered twice
