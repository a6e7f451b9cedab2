"""Cron work (daily digest, monthly report, quarterly cases): each run claims a unique ``(job, period)`` row.

The claim, the content and the outgoing messages are written in one transaction: two instances on one
PostgreSQL race on the unique key, the loser's insert fails once the winner commits, and it sends
nothing; a crash before commit leaves neither a claim nor messages, so the next run sends it.

APScheduler only triggers. Every run works out for itself which period is due from the injected clock,
so a late trigger (the service was down at 08:30) and the catch-up run at start behave the same:

* the most recent due period is sent once, late if need be;
* periods before it that were never sent are not sent on their own: the digest reports their days
  (up to ``timers.digest_catch_up_days``); an older month's report stays available on demand.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.messages import markdown
from handlers.outbox import Outbox
from handlers.reports import add_months, month_key, quarter_of
from handlers.reports.bundle import build_bundle
from handlers.reports.digest import build_digest
from handlers.reports.monthly import craftsman_text
from handlers.reports.quarterly import build_quarterly, quarterly_markdown
from handlers.services import Services
from handlers.visibility import staff_scopes
from storage.models import JobRun

log = logging.getLogger(__name__)
DIGEST = "digest.daily"
MONTHLY = "report.monthly"
QUARTERLY = "report.quarterly"


async def claim(session: AsyncSession, job: str, period: str, *, instance: str, now: datetime) -> bool:
    """Insert ``(job, period)`` in the caller's transaction; False if it was already claimed."""
    try:
        async with session.begin_nested():  # a savepoint: losing the race must not spoil the caller's transaction
            session.add(JobRun(job=job, period=period, claimed_at=now, instance=instance, done_at=now))
            await session.flush()
    except IntegrityError:
        return False
    return True


async def staff_filters(session: AsyncSession) -> list[tuple[int, set[str] | None]]:
    """Every staff member with the trade groups they see (None = all): ``handlers/visibility.py``."""
    return [(pid, scope.group_set()) for pid, scope in await staff_scopes(session)]


def _at(text: str) -> time:
    hh, mm = text.split(":")
    return time(int(hh), int(mm))


def due_digest_day(services: Services) -> date:
    """The day whose digest is due: today from the digest time on, else yesterday."""
    tz = services.settings.tz
    local = services.clock.now().astimezone(tz)
    return local.date() if local.time() >= _at(services.settings.timers.daily_digest_at) else \
        local.date() - timedelta(days=1)


async def _send_digests(session: AsyncSession, services: Services, today: date, first_day: date | None,
                        *, dry_run: bool = False) -> list[tuple[int, str]]:
    """Build the digest (one per distinct view) and queue it to each staff member; return (person, text)."""
    settings, now = services.settings, services.clock.now()
    outbox = Outbox(session, services.clock)
    sent: list[tuple[int, str]] = []
    cache: dict[frozenset[str] | None, tuple[str, str]] = {}
    for pid, groups in await staff_filters(session):
        key = frozenset(groups) if groups is not None else None
        if key not in cache:
            d = await build_digest(session, settings, today=today, now=now, first_day=first_day, groups=groups)
            cache[key] = (d.title, d.markdown)
        title, body = cache[key]
        if not dry_run:
            await outbox.to_person(pid, markdown(title, body))
        sent.append((pid, body))
    return sent


async def run_daily_digest(sessions: async_sessionmaker[AsyncSession], services: Services, *,
                           on_demand: bool = False, dry_run: bool = False) -> list[tuple[int, str]]:
    """Queue the daily digest to every staff member; return each one's ``(person id, digest text)``.

    Scheduled (the default): the due day's digest (:func:`due_digest_day`), once across all instances
    (``[]`` if its period was claimed already), covering the days since the last one sent.
    ``on_demand`` (``craftlink digest --now``): today's digest now, whether or not it went already,
    claiming today so the scheduled run does not send it again. ``dry_run``: built and returned,
    nothing claimed or queued.
    """
    settings, now = services.settings, services.clock.now()
    today = services.clock.now().astimezone(settings.tz).date() if on_demand else due_digest_day(services)
    async with sessions() as session, session.begin():
        first = None
        if not on_demand:
            last = await session.scalar(select(JobRun.period).where(JobRun.job == DIGEST)
                                        .order_by(JobRun.period.desc()).limit(1))
            if not dry_run and not await claim(session, DIGEST, today.isoformat(), instance=services.instance,
                                               now=now):
                return []
            if last is not None and last < today.isoformat():
                # The last digest sent covered the day before it; everything since is still unreported.
                first = max(date.fromisoformat(last), today - timedelta(days=settings.timers.digest_catch_up_days))
        elif not dry_run:
            await claim(session, DIGEST, today.isoformat(), instance=services.instance, now=now)
        sent = await _send_digests(session, services, today, first, dry_run=dry_run)
    if dry_run:
        return sent
    services.on_outbox()
    log.info("daily digest %s sent to %d staff", today, len(sent))
    return sent


def due_report_month(services: Services) -> str:
    """The month whose report is due: last month from the report day and time on, else the month before."""
    s = services.settings.timers
    tz = services.settings.tz
    local = services.clock.now().astimezone(tz)
    due = datetime.combine(local.date().replace(day=min(s.monthly_report_day, 28)), _at(s.monthly_report_at), tzinfo=tz)
    back = 1 if local >= due else 2
    return month_key(*add_months(local.year, local.month, -back))


async def run_monthly(sessions: async_sessionmaker[AsyncSession], services: Services) -> int:
    """Monthly report to staff, each craftsman's month, and after a quarter's last month its case collection."""
    settings, now = services.settings, services.clock.now()
    month = due_report_month(services)
    queued = 0
    async with sessions() as session, session.begin():
        if not await claim(session, MONTHLY, month, instance=services.instance, now=now):
            return 0
        bundle = await build_bundle(session, services, month)
        outbox = Outbox(session, services.clock)
        for pid, _ in await staff_filters(session):
            for msg in bundle.messages():
                queued += await outbox.to_person(pid, msg) is not None
        for line in bundle.report.craftsmen:
            if line.cases or line.points:
                queued += await outbox.to_person(line.person_id, craftsman_text(bundle.report, line)) is not None
        year, mon = (int(x) for x in month.split("-"))
        if mon % 3 == 0:
            quarter = quarter_of(year, mon)
            if await claim(session, QUARTERLY, quarter, instance=services.instance, now=now):
                col = await build_quarterly(session, settings, quarter)
                for pid, _ in await staff_filters(session):
                    queued += await outbox.to_person(pid, markdown(f"{quarter} 典型案例", quarterly_markdown(col))) \
                        is not None
    services.on_outbox()
    log.info("monthly report %s: %d messages", month, queued)
    return queued


async def catch_up(sessions: async_sessionmaker[AsyncSession], services: Services) -> None:
    """At start: send what fell due while the service was down (each at most once, across instances)."""
    for job in (run_daily_digest, run_monthly):
        try:
            await job(sessions, services)
        except Exception:
            log.exception("catch-up of %s failed; the next trigger tries again", job.__name__)


def add_cron_jobs(
    sched: AsyncIOScheduler, sessions: async_sessionmaker[AsyncSession], services: Services
) -> None:
    """Register the digest and report triggers, plus one catch-up run right after start."""
    t, tz = services.settings.timers, services.settings.tz
    digest_at, report_at = _at(t.daily_digest_at), _at(t.monthly_report_at)
    common = {"args": [sessions, services], "replace_existing": True, "max_instances": 1, "coalesce": True,
              "misfire_grace_time": 3600}
    sched.add_job(run_daily_digest, CronTrigger(hour=digest_at.hour, minute=digest_at.minute, timezone=tz),
                  id="digest.daily", **common)
    sched.add_job(run_monthly, CronTrigger(day=min(t.monthly_report_day, 28), hour=report_at.hour,
                                           minute=report_at.minute, timezone=tz), id="report.monthly", **common)
    sched.add_job(catch_up, "date", id="jobs.catch_up", **common)
