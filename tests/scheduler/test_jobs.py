"""Restarts, catch-up and cron claims: missed timers fire once, oldest first; N instances send one digest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.app import app_scheduler, create_app
from bot.keys import services_key, sessions_key
from handlers.clock import ManualClock
from handlers.settings import Settings
from scheduler.jobs import DIGEST, run_daily_digest
from storage.models import CaseEvent, JobRun, OutboxMessage, Timer, TimerState
from tests.chat import Chat, Playground
from tests.scheduler.helpers import STAFF1, accepted_case


@asynccontextmanager
async def running(settings: Settings, clock: ManualClock) -> AsyncIterator[Playground]:
    """One instance of the service (scheduler driven by the test), stopped on exit."""
    app = create_app(settings, clock=clock, run_scheduler=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield Playground(client, clock)


async def digests(pg: Playground) -> list[OutboxMessage]:
    async with pg.app[sessions_key]() as s:
        rows = (await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    return [r for r in rows if r.payload.get("title", "").startswith("工作日报")]


async def test_restart_fires_each_missed_timer_once_oldest_first(settings: Settings, clock: ManualClock) -> None:
    async with running(settings, clock) as first:
        await first.seed_demo()
        _, sun = await accepted_case(first)  # Monday 09:00: nudge Tuesday 09:00, staff alert Wednesday 09:00
        await sun.say("预约 1001 2026-11-03 15:00")  # eve Monday 18:00, one hour before Tuesday 14:00
    clock.advance(timedelta(days=3))  # the service was down until Thursday 09:00
    async with running(settings, clock) as second:
        assert await second.fire_timers() == 4
        assert await second.fire_timers() == 0
        async with second.app[sessions_key]() as s:
            fired = (await s.scalars(select(Timer.kind).where(Timer.state == TimerState.FIRED.value,
                                                              Timer.kind != "offer_timeout"))).all()
            kinds = (await s.scalars(select(CaseEvent.kind).where(CaseEvent.kind.in_(["nudge", "stalled"]))
                                     .order_by(CaseEvent.id))).all()
            sent = [r.payload for r in (await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()]
        assert sorted(fired) == ["appointment_eve", "appointment_soon", "progress_escalate", "progress_nudge"]
        assert list(kinds) == ["nudge", "stalled"]
        # Oldest first: Monday 18:00 eve, Tuesday 09:00 nudge, Tuesday 14:00 one-hour, Wednesday 09:00 staff.
        marks = ["提醒：明天", "进展如何", "提醒：一小时后", "请跟进"]
        firsts = [next(i for i, p in enumerate(sent) if mark in p.get("title", "") + p.get("text", ""))
                  for mark in marks]
        assert firsts == sorted(firsts)


async def test_two_instances_on_one_database_send_each_digest_once(settings: Settings, clock: ManualClock) -> None:
    async with running(settings, clock) as a, running(settings, clock) as b:
        await a.seed_demo()
        jobs = [app_scheduler(pg.app).get_job("digest.daily") for pg in (a, b)]
        assert all(job is not None for job in jobs)
        results = await asyncio.gather(*(job.func(*job.args) for job in jobs if job is not None))
        assert sorted(map(len, results)) == [0, 2]  # one instance sent to both staff members, the other nothing
        assert len(await digests(a)) == 2
        await a.settle()
        await b.settle()
        assert "工作日报" in Chat.text_of(await a.person(STAFF1).read())
        results = await asyncio.gather(*(job.func(*job.args) for job in jobs if job is not None))
        assert list(map(len, results)) == [0, 0]
        async with a.app[sessions_key]() as s:
            assert await s.scalar(select(func.count()).select_from(JobRun)) == 1


async def test_digest_missed_for_days_is_sent_once_and_reports_the_gap(playground: Playground) -> None:
    sessions, services = playground.app[sessions_key], playground.app[services_key]
    assert len(await run_daily_digest(sessions, services)) == 2  # Monday 09:00: Monday's digest
    playground.clock.advance(timedelta(days=3, hours=1))  # down until Thursday 10:00
    assert len(await run_daily_digest(sessions, services)) == 2
    body = (await digests(playground))[-1].payload["text"]
    assert "11月2日–11月4日" in body  # Monday's digest covered Sunday; this one covers Monday to Wednesday
    assert len(await run_daily_digest(sessions, services)) == 0
    playground.clock.advance(timedelta(hours=22))  # Friday 08:00: Thursday's already went
    assert len(await run_daily_digest(sessions, services)) == 0
    playground.clock.advance(timedelta(minutes=31))
    assert len(await run_daily_digest(sessions, services)) == 2
    async with sessions() as s:
        periods = (await s.scalars(select(JobRun.period).where(JobRun.job == DIGEST).order_by(JobRun.period))).all()
    assert list(periods) == ["2026-11-02", "2026-11-05", "2026-11-06"]


def test_wiring_registers_triggers_and_a_catch_up_run(playground: Playground) -> None:
    sched = app_scheduler(playground.app)
    ids = {job.id for job in sched.get_jobs()}
    assert {"timers.poll", "digest.daily", "report.monthly", "jobs.catch_up"} <= ids
    job = sched.get_job("digest.daily")
    assert job is not None
    trigger = str(job.trigger)
    assert "hour='8'" in trigger and "minute='30'" in trigger


async def test_digest_on_demand_sends_again_and_dry_run_writes_nothing(playground: Playground) -> None:
    sessions, services = playground.app[sessions_key], playground.app[services_key]
    preview = await run_daily_digest(sessions, services, dry_run=True)
    assert len(preview) == 2 and all("工作日报" in body for _, body in preview)
    assert await digests(playground) == []
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(JobRun)) == 0  # a dry run claims nothing
    assert len(await run_daily_digest(sessions, services)) == 2  # the scheduled run still sends it
    # `craftlink digest --now`: today's digest again, although the period was claimed; still one claim.
    assert len(await run_daily_digest(sessions, services, on_demand=True)) == 2
    assert len(await digests(playground)) == 4
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(JobRun)) == 1
