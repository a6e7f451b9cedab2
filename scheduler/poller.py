"""Firing due timers: each claimed and fired in its own transaction, oldest first.

A claim is a row lock on PostgreSQL (``FOR UPDATE SKIP LOCKED``) plus the state check, so two
instances never fire one timer; a crash before commit leaves it pending, so none is lost. Timers that
fell due while the service was down fire on the next poll, oldest first.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import metrics
from handlers import timers
from handlers.context import HandlerContext
from handlers.dialogs import DialogView
from handlers.outbox import Outbox
from handlers.services import Services
from storage.db import dialect_of
from storage.models import Case, Person, Role, Timer, TimerState

log = logging.getLogger(__name__)
BATCH = 200


async def _system_person(session: AsyncSession, timer: Timer) -> Person:
    """The person a timer's context speaks for: its target, else the case's requester, else a placeholder."""
    pid = timer.person_id
    if pid is None and timer.case_id is not None:
        case = await session.get(Case, timer.case_id)
        pid = case.requester_id if case else None
    person = await session.get(Person, pid) if pid else None
    return person or Person(id=0, role=Role.STAFF.value, name="系统")


async def fire_one(sessions: async_sessionmaker[AsyncSession], services: Services, timer_id: int) -> bool:
    """Fire one due timer; False if another instance claimed it or it was cancelled meanwhile."""
    async with sessions() as session, session.begin():
        stmt = select(Timer).where(Timer.id == timer_id, Timer.state == TimerState.PENDING.value)
        if dialect_of(session) == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        timer = await session.scalar(stmt)
        if timer is None:
            return False
        handler = timers.handler_for(timer.kind)
        timer.state = TimerState.FIRED.value
        timer.fired_at = services.clock.now()
        fired = (timer.kind, timer.due_at, timer.fired_at)
        outbox = Outbox(session, services.clock)
        if handler is None:
            log.error("no handler for timer kind %s (timer %s)", timer.kind, timer.id)
        else:
            person = await _system_person(session, timer)
            ctx = HandlerContext(session=session, services=services, person=person,
                                 dialog=DialogView(session, services.clock, person.id, None), outbox=outbox)
            await handler(ctx, timer)
    metrics.observe_timer(*fired)  # after the commit: a rolled-back firing is not counted
    if outbox.written:
        services.on_outbox()
    return True


async def poll_due_timers(sessions: async_sessionmaker[AsyncSession], services: Services) -> int:
    """Fire every timer due now, oldest first; return how many fired."""
    fired = 0
    while True:
        now = services.clock.now()
        async with sessions() as session:
            ids = list((await session.scalars(
                select(Timer.id).where(Timer.state == TimerState.PENDING.value, Timer.due_at <= now)
                .order_by(Timer.due_at, Timer.id).limit(BATCH)
            )).all())
        if not ids:
            return fired
        progressed = False
        for timer_id in ids:
            try:
                if await fire_one(sessions, services, timer_id):
                    fired += 1
                    progressed = True
            except Exception:
                log.exception("timer %s failed; it stays pending and is retried on the next poll", timer_id)
        if not progressed or len(ids) < BATCH:
            return fired
