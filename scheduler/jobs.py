"""Cron work (daily digest, monthly report): each run claims a unique ``(job, period)`` row first."""

from __future__ import annotations

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.services import Services


def add_cron_jobs(
    sched: AsyncIOScheduler, sessions: async_sessionmaker[AsyncSession], services: Services
) -> None:
    """Register the cron triggers (filled in by the digest/report work)."""
    return
