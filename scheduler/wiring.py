"""APScheduler only triggers: the pollers read due times from the database.

:func:`build_scheduler` is given everything it uses (no application object, nothing of ``bot/``):
the service wires it into its aiohttp app, starts it with the app and stops it on shutdown
(``bot/app.py``).
"""

from __future__ import annotations

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.services import Services
from handlers.timers import TimerRegistry
from scheduler import jobs
from scheduler.poller import FiredHook, TimerPoller


def build_scheduler(sessions: async_sessionmaker[AsyncSession], services: Services, timers: TimerRegistry,
                    *, on_fired: FiredHook | None = None) -> AsyncIOScheduler:
    """A scheduler (not started) with the timer poll every ``timers.poll_interval_s`` and the cron jobs.

    ``timers`` says what each timer kind does (``handlers.app.build_timers``); ``on_fired`` hears of
    each committed firing (:class:`~scheduler.poller.TimerPoller`).
    """
    poller = TimerPoller(sessions, services, timers, on_fired=on_fired)
    sched = AsyncIOScheduler(timezone=services.settings.tz)
    sched.add_job(
        poller.poll, "interval", seconds=services.settings.timers.poll_interval_s,
        id="timers.poll", replace_existing=True, max_instances=1, coalesce=True,
    )
    jobs.add_cron_jobs(sched, sessions, services)
    return sched
