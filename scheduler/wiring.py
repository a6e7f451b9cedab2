"""APScheduler only triggers: the pollers read due times from the database."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.keys import services_key, sessions_key
from scheduler.poller import poll_due_timers

scheduler_key = web.AppKey("scheduler", AsyncIOScheduler)


def build_scheduler(app: web.Application) -> AsyncIOScheduler:
    services = app[services_key]
    sessions = app[sessions_key]
    sched = AsyncIOScheduler(timezone=services.settings.tz)
    sched.add_job(
        poll_due_timers, "interval", args=[sessions, services], seconds=services.settings.timers.poll_interval_s,
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
