"""APScheduler only triggers: the pollers read due times from the database."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.keys import services_key, sessions_key
from handlers.timers import TimerRegistry
from scheduler.poller import TimerPoller

scheduler_key = web.AppKey("scheduler", AsyncIOScheduler)
# The timer registry (``handlers.build_timers``), set by ``bot/app.py::create_app``; the poller fires
# what it knows and ``/metrics`` counts the due timers it does not.
timers_key = web.AppKey("timers", TimerRegistry)


def build_scheduler(app: web.Application) -> AsyncIOScheduler:
    services = app[services_key]
    sessions = app[sessions_key]
    poller = TimerPoller(sessions, services, app[timers_key])
    sched = AsyncIOScheduler(timezone=services.settings.tz)
    sched.add_job(
        poller.poll, "interval", seconds=services.settings.timers.poll_interval_s,
        id="timers.poll", replace_existing=True, max_instances=1, coalesce=True,
    )
    from scheduler import jobs

    jobs.add_cron_jobs(sched, sessions, services)
    return sched


async def scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    sched = build_scheduler(app)
    app[scheduler_key] = sched
    sched.start()
    yield
    sched.shutdown(wait=False)
