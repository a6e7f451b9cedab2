"""Firing due timers: each claimed and fired in its own transaction, oldest first.

A claim is a row lock on PostgreSQL (``FOR UPDATE SKIP LOCKED``) plus the state check
(:class:`storage.queues.TimerQueue`), so two instances never fire one timer; a crash before commit
leaves it pending, so none is lost. Timers that fell due while the service was down fire on the next
poll, oldest first.

What each kind does comes from the :class:`~handlers.timers.TimerRegistry` the poller is given
(``handlers.app.build_timers``). The guarantees:

- A timer of a kind the registry does not know is **never consumed**: it is not even selected, so it
  stays pending (a newer instance, or this one after a deploy, fires it) and cannot crowd the batch.
  Each poll counts such timers; a change is logged at ERROR, and ``/metrics`` shows them as
  ``craftlink_timers_unhandled{kind}``.
- A handler that raises rolls its whole firing back. Then, in a short transaction of its own, the
  timer gets ``attempts + 1``, ``last_error`` and a ``due_at`` pushed back by a capped exponential
  backoff (:func:`backoff`), so it is neither retried at every poll nor in the way of the timers
  behind it. At ``timers.max_attempts`` it ends ``failed`` and staff get one alert through the outbox
  (as for an inbox message that keeps failing, ``bot/pipeline/worker.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.context import HandlerContext
from handlers.dialogs import DialogView
from handlers.outbox import Outbox
from handlers.services import Services
from handlers.timers import TimerRegistry
from storage.models import Case, Person, Role, Timer, TimerState
from storage.queues import TimerQueue

log = logging.getLogger(__name__)
BATCH = 200
BACKOFF_FIRST_S = 30.0
BACKOFF_MAX_S = 3600.0
# Told (kind, due_at, fired_at) after each firing commits: how the service counts them (bot/app.py).
FiredHook = Callable[[str, datetime, datetime], None]


def backoff(attempts: int) -> timedelta:
    """How long a timer waits after its ``attempts``-th failed firing: 30 s, 60 s, 120 s, … at most 1 h."""
    return timedelta(seconds=min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** max(0, attempts - 1)))


async def _system_person(session: AsyncSession, timer: Timer) -> Person:
    """The person a timer's context speaks for: its target, else the case's requester, else a placeholder."""
    pid = timer.person_id
    if pid is None and timer.case_id is not None:
        case = await session.get(Case, timer.case_id)
        pid = case.requester_id if case else None
    person = await session.get(Person, pid) if pid else None
    return person or Person(id=0, role=Role.STAFF.value, name="系统")


class TimerPoller:
    """Fires the due timers whose kind ``registry`` knows; one per process (``scheduler/wiring.py``).

    ``on_fired`` hears of each firing once it is committed (the service counts them for ``/metrics``).
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], services: Services,
                 registry: TimerRegistry, *, on_fired: FiredHook | None = None) -> None:
        self._sessions = sessions
        self._services = services
        self._registry = registry
        self._on_fired: FiredHook = on_fired or (lambda kind, due_at, fired_at: None)
        self._unhandled: dict[str, int] = {}  # kind → due timers left pending, as last logged

    async def poll(self) -> int:
        """Fire every timer due now, oldest first; return how many fired."""
        fired = 0
        await self._report_unhandled()
        while True:
            now = self._services.clock.now()
            kinds = sorted(self._registry.kinds())  # read at each batch: a kind registered later fires
            async with self._sessions() as session:
                ids = await TimerQueue.due(session, now, kinds, BATCH)
            if not ids:
                return fired
            progressed = False
            for timer_id in ids:
                try:
                    if await self.fire_one(timer_id):
                        fired += 1
                        progressed = True
                except Exception as exc:  # the firing was rolled back; record it and go on with the batch
                    log.exception("timer %s failed", timer_id, extra={"event": "timer.failed"})
                    await self._failed(timer_id, exc)
            if not progressed or len(ids) < BATCH:
                return fired

    async def fire_one(self, timer_id: int) -> bool:
        """Fire one due timer; False if another instance claimed it, it was cancelled meanwhile or its
        kind has no handler here. A handler's exception propagates, after the rollback."""
        services = self._services
        async with self._sessions() as session, session.begin():
            timer = await TimerQueue.claim(session, timer_id)
            if timer is None:
                return False
            handler = self._registry.handler_for(timer.kind)
            if handler is None:
                return False  # never consumed: it waits for a process that knows its kind
            timer.state = TimerState.FIRED.value
            timer.fired_at = services.clock.now()
            fired = (timer.kind, timer.due_at, timer.fired_at)
            outbox = Outbox(session, services.clock)
            person = await _system_person(session, timer)
            ctx = HandlerContext(session=session, services=services, person=person,
                                 dialog=DialogView(session, services.clock, person.id, None), outbox=outbox)
            await handler(ctx, timer)
        self._on_fired(*fired)  # after the commit: a rolled-back firing is not counted
        if outbox.written:
            services.on_outbox()
        return True

    async def _failed(self, timer_id: int, exc: Exception) -> None:
        """Back off and retry; after ``timers.max_attempts`` failures, FAILED and one staff alert."""
        services = self._services
        now = services.clock.now()
        try:
            async with self._sessions() as session, session.begin():
                timer = await TimerQueue.claim(session, timer_id)
                if timer is None:
                    return  # cancelled meanwhile, or another instance is at it
                timer.attempts += 1
                timer.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                if timer.attempts < services.settings.timers.max_attempts:
                    timer.due_at = now + backoff(timer.attempts)
                    log.warning("timer %s (%s) failed %s times; retried at %s", timer.id, timer.kind,
                                timer.attempts, timer.due_at.isoformat(), extra={"event": "timer.retry"})
                    return
                timer.state = TimerState.FAILED.value
                log.error("timer %s (%s) failed %s times; given up", timer.id, timer.kind, timer.attempts,
                          extra={"event": "timer.given_up"})
                case = await session.get(Case, timer.case_id) if timer.case_id else None
                about = f"，案件 #{case.number}" if case else ""
                await Outbox(session, services.clock).to_staff(
                    f"⚠️ 定时提醒多次执行失败，已停止重试（定时器 #{timer.id}，{timer.kind}{about}）："
                    f"{timer.last_error[:200]}", case_id=case.id if case else None)
            services.on_outbox()
        except Exception:
            log.exception("could not record the failure of timer %s", timer_id)

    async def _report_unhandled(self) -> None:
        """Log (at ERROR, when the numbers change) due timers left pending because no handler knows them."""
        now = self._services.clock.now()
        try:
            async with self._sessions() as session:
                counts = await TimerQueue.due_unknown(session, now, sorted(self._registry.kinds()))
        except Exception:
            log.exception("could not count unhandled timers")
            return
        for kind, n in sorted(counts.items()):
            if self._unhandled.get(kind) != n:
                log.error("%s due timer(s) of kind %s left pending: no handler for it in this process", n, kind,
                          extra={"event": "timer.unhandled"})
        self._unhandled = counts


async def poll_due_timers(sessions: async_sessionmaker[AsyncSession], services: Services,
                          registry: TimerRegistry, *, on_fired: FiredHook | None = None) -> int:
    """Fire every timer due now with a one-off poller (tests; the service keeps one ``TimerPoller``)."""
    return await TimerPoller(sessions, services, registry, on_fired=on_fired).poll()
