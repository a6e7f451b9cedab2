"""Reminders scheduled before a restart fire in a fresh ``craftlink serve`` that has handled no message.

The bug this guards: timer handlers used to register themselves when their module happened to be
imported, and a freshly started process had imported only the offer handlers, so every reminder that
fell due after a deploy was marked fired with one log line and never sent. The state is built through
the real web chat flow in this process; the timers are then fired by a new server process whose clock
(``CRAFTLINK_TEST_CLOCK_FILE``, handlers/clock.py::FileClock) the test moves day by day.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import create_app
from handlers.clock import TEST_CLOCK_ENV, FileClock, ManualClock
from storage.db import session_factory
from storage.models import Case, CaseState, Identity, OutboxMessage, Person, Role, Timer, TimerState
from tests.chat import Chat, Playground
from tests.conftest import make_settings
from tests.faults.procs import Rig, rig
from tests.scheduler.helpers import FIRM, SUN, ZHOU, accepted_case

pytestmark = pytest.mark.slow
SHANGHAI = ZoneInfo("Asia/Shanghai")
FIRM3 = "demo-firm-3"
WAIT_S = 30.0


@pytest.fixture
async def world(db_url: str, tmp_path: Path) -> AsyncIterator[Rig]:
    async for r in rig(db_url, tmp_path):
        yield r


async def _before_restart(world: Rig, clock: ManualClock) -> str:
    """Monday 09:00: #1001 accepted by 孙卫东 with an appointment on Wednesday 10:00; #1002 marked 完成.

    Returns the web user of #1002's craftsman. Nothing is fired here: this process only schedules.
    """
    app = create_app(make_settings(world.db_url, world.tmp), clock=clock, run_scheduler=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        pg = Playground(client, clock)
        await pg.seed_demo()
        _, sun = await accepted_case(pg)
        assert "已预约 #1001" in Chat.text_of(await sun.say("预约 1001 2026-11-04 10:00"))
        firm3 = pg.person(FIRM3)
        await firm3.say("冲床的模子老是崩刃，麻烦看看")
        await firm3.tap("线上指导")
        await firm3.tap("普通")
        assert "案件编号 #1002" in Chat.text_of(await firm3.tap("提交"))
        for user in (SUN, ZHOU):
            craftsman = pg.person(user)
            if "#1002" in Chat.text_of(await craftsman.read()):
                assert "接单成功" in Chat.text_of(await craftsman.tap("接单"))
                await craftsman.say("完成 1002 用时2小时 调整间隙")
                return user
        raise AssertionError("#1002 was offered to nobody")


async def _person_id(world: Rig, user: str) -> int:
    async with world.engine.connect() as conn:
        pid = await conn.scalar(select(Identity.person_id).where(Identity.channel == "web",
                                                                  Identity.channel_user_id == user))
    assert pid is not None, user
    return int(pid)


async def _fired(world: Rig, kind: str, case_id: int) -> None:
    """Wait (bounded, the server polls every 0.2 s) until the case's timer of ``kind`` is fired."""
    deadline = time.monotonic() + WAIT_S
    while True:
        async with world.engine.connect() as conn:
            states = list((await conn.scalars(select(Timer.state).where(
                Timer.kind == kind, Timer.case_id == case_id))).all())
        if states and TimerState.PENDING.value not in states:  # earlier copies were cancelled by re-scheduling
            assert states.count(TimerState.FIRED.value) == 1, (kind, states)
            assert set(states) <= {TimerState.FIRED.value, TimerState.CANCELLED.value}, (kind, states)
            return
        assert time.monotonic() < deadline, f"{kind} of case {case_id} still {states} after {WAIT_S}s"
        await asyncio.sleep(0.1)


async def _texts_to(world: Rig, person_id: int, case_id: int | None = None) -> str:
    async with world.engine.connect() as conn:
        stmt = select(OutboxMessage.payload).where(OutboxMessage.person_id == person_id)
        if case_id is not None:
            stmt = stmt.where(OutboxMessage.case_id == case_id)
        rows = (await conn.scalars(stmt.order_by(OutboxMessage.id))).all()
    return "\n".join(f"{p.get('title', '')}\n{p.get('text', '')}" for p in rows)


async def test_reminders_scheduled_before_a_restart_fire_in_a_fresh_process(world: Rig) -> None:
    monday = datetime(2026, 11, 2, 9, 0, tzinfo=SHANGHAI)
    clock = ManualClock(monday)
    other = await _before_restart(world, clock)
    firm, firm3, sun, craftsman2 = [await _person_id(world, u) for u in (FIRM, FIRM3, SUN, other)]
    async with world.engine.connect() as conn:
        kinds = set((await conn.execute(select(Timer.kind, Timer.case_id).where(
            Timer.state == TimerState.PENDING.value))).all())
        staff = list((await conn.scalars(select(Person.id).where(Person.role == Role.STAFF.value))).all())
    assert {("progress_nudge", 1), ("progress_escalate", 1), ("appointment_eve", 1), ("appointment_soon", 1),
            ("feedback_nudge", 2), ("feedback_close", 2)} <= kinds, kinds

    clock_file = world.tmp / "clock.txt"
    FileClock.write(clock_file, monday)
    server = world.server("fresh", extra="\n[timers]\npoll_interval_s = 0.2\n",
                          env={TEST_CLOCK_ENV: str(clock_file)}).start()
    try:
        FileClock.write(clock_file, monday + timedelta(days=1, minutes=1))  # Tuesday 09:01
        await _fired(world, "progress_nudge", 1)
        assert "#1001 进展如何" in await _texts_to(world, sun, 1)
        await _fired(world, "feedback_nudge", 2)
        assert "请为 #1002 打分" in await _texts_to(world, firm3, 2)

        FileClock.write(clock_file, monday + timedelta(days=1, hours=9, minutes=1))  # Tuesday 18:01
        await _fired(world, "appointment_eve", 1)
        assert "提醒：明天（11月04日 10:00）" in await _texts_to(world, firm, 1)
        assert "提醒：明天（11月04日 10:00）请上门服务 #1001" in await _texts_to(world, sun, 1)

        FileClock.write(clock_file, monday + timedelta(days=2, minutes=1))  # Wednesday 09:01
        await _fired(world, "appointment_soon", 1)
        assert "一小时后（11月04日 10:00）" in await _texts_to(world, firm, 1)
        assert "一小时后（11月04日 10:00）请上门服务 #1001" in await _texts_to(world, sun, 1)
        await _fired(world, "progress_escalate", 1)
        told = [pid for pid in staff if "已 48 小时没有进展" in await _texts_to(world, pid, 1)]
        assert told, staff

        FileClock.write(clock_file, monday + timedelta(days=3, minutes=1))  # Thursday 09:01: 72 working hours
        await _fired(world, "feedback_close", 2)
    finally:
        server.stop()
    async with session_factory(world.engine)() as s:
        case = await s.get(Case, 2)
        assert case is not None and case.state == CaseState.CLOSED and case.rating is None
    assert "企业未评价" in await _texts_to(world, craftsman2, 2)
    assert "no handler" not in (world.tmp / "fresh.log").read_text(encoding="utf-8")
