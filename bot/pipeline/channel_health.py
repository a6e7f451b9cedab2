"""Is a channel failing? Staff hear of it once per outage, not once per message.

Each process tracks, per channel, since when its sends have been failing transiently (5xx, timeouts,
connection refused, rate limits); any delivery on that channel ends the streak. When a streak reaches
``bot.channel_down_alert_min`` minutes, staff are told — once across all instances: the alert is queued
in the transaction that claims the ``job_runs`` row (job ``channel_down:<channel>``, period
``open``), whose unique key lets only one instance claim it. The first delivery afterwards closes the
outage: the row's period becomes the time it was claimed (history), and staff are told the channel
recovered. A process closes only an outage it knows of (it claimed it, or found it claimed), plus —
once per channel after it starts — one left open by a process that died.

Messages that die at the end of their delivery horizon are grouped the same way: one alert per channel
per hour (job ``outbox_expired:<channel>``); the daily digest counts the rest.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.pipeline.writegate import NO_GATE, WriteGate
from handlers.outbox import Outbox
from handlers.services import Services
from storage.models import JobRun, OutboxMessage

log = logging.getLogger(__name__)
OPEN = "open"
CHANNEL_NAMES = {"wecom": "企业微信", "wechat": "微信服务号", "dingtalk": "钉钉", "web": "网页聊天"}


def channel_name(channel: str) -> str:
    return CHANNEL_NAMES.get(channel, channel)


async def alert_staff(session: AsyncSession, services: Services, text: str, *, case_id: int | None = None) -> int:
    """Queue ``text`` to every staff member, marked so that a failure to deliver it alerts nobody."""
    count = await Outbox(session, services.clock).to_staff(text, case_id=case_id)
    for row in session.new:
        if isinstance(row, OutboxMessage):
            row.payload = {**row.payload, "staff_alert": True}  # never alert about an alert
    return count


async def claim(session: AsyncSession, services: Services, job: str, period: str) -> bool:
    """Insert the ``(job, period)`` row in the caller's transaction; False if another claimed it."""
    now = services.clock.now()
    try:
        async with session.begin_nested():  # losing the race must not spoil the caller's transaction
            session.add(JobRun(job=job, period=period, claimed_at=now, instance=services.instance))
            await session.flush()
    except IntegrityError:
        return False
    return True


async def first_expiry_this_hour(session: AsyncSession, services: Services, channel: str) -> bool:
    """True for the first message of ``channel`` to die at its horizon in this (local) hour."""
    hour = services.clock.now().astimezone(services.settings.tz).strftime("%Y-%m-%dT%H")
    return await claim(session, services, f"outbox_expired:{channel}", hour)


class ChannelHealth:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], services: Services, *, gate: WriteGate = NO_GATE
    ) -> None:
        self._sessions = sessions
        self._services = services
        self._gate = gate
        self._failing_since: dict[str, datetime] = {}
        self._open: set[str] = set()  # channels whose outage staff were told of (known to this process)
        self._checked: set[str] = set()  # channels whose open outage row was looked for since start
        self._busy: set[str] = set()  # a claim or close in flight: concurrent sends need not repeat it

    def failing_since(self, channel: str) -> datetime | None:
        return self._failing_since.get(channel)

    async def failed(self, channel: str, error: str) -> None:
        """A send on ``channel`` failed transiently; tell staff if it has been failing long enough."""
        now = self._services.clock.now()
        since = self._failing_since.setdefault(channel, now)
        minutes = self._services.settings.bot.channel_down_alert_min
        if channel in self._open or channel in self._busy or now - since < timedelta(minutes=minutes):
            return
        local = since.astimezone(self._services.settings.tz).strftime("%H:%M")
        text = (f"⚠️ {channel_name(channel)}发送故障：自 {local} 起发送一直失败（已超过 {minutes} 分钟，"
                f"最近的错误：{error[:80]}）。消息都已保留，会自动重试，恢复后按顺序送达；恢复时另行通知。")
        self._busy.add(channel)
        try:
            async with self._gate.hold(), self._sessions() as session, session.begin():
                told = await claim(session, self._services, f"channel_down:{channel}", OPEN)
                if told:
                    await alert_staff(session, self._services, text)
        except Exception:  # the database is down too: try again at the next failure
            log.exception("could not record that channel %s is down", channel)
            return
        finally:
            self._busy.discard(channel)
        self._open.add(channel)
        self._checked.add(channel)
        if told:
            log.warning("channel %s failing since %s: staff told", channel, since.isoformat(),
                        extra={"channel": channel, "event": "channel.down"})
            self._services.on_outbox()

    async def delivered(self, channel: str) -> None:
        """A send on ``channel`` succeeded: the streak ends, and an outage staff were told of is over."""
        self._failing_since.pop(channel, None)
        if (channel in self._checked and channel not in self._open) or channel in self._busy:
            return  # the hot path: nothing to close
        self._busy.add(channel)
        try:
            closed = await self._close(channel)
        except Exception:  # the database is down too: try again at the next delivery
            log.exception("could not record that channel %s recovered", channel)
            return
        finally:
            self._busy.discard(channel)
        self._checked.add(channel)
        self._open.discard(channel)
        if closed:
            log.warning("channel %s recovered", channel, extra={"channel": channel, "event": "channel.up"})
            self._services.on_outbox()

    async def _close(self, channel: str) -> bool:
        """Close ``channel``'s open outage, if any (one instance wins), and tell staff; True if we did."""
        job = f"channel_down:{channel}"
        async with self._gate.hold(), self._sessions() as session, session.begin():
            claimed_at = await session.scalar(
                select(JobRun.claimed_at).where(JobRun.job == job, JobRun.period == OPEN))
            if claimed_at is None:
                return False
            result = await session.execute(
                update(JobRun).where(JobRun.job == job, JobRun.period == OPEN)
                .values(period=claimed_at.isoformat()[:40], done_at=self._services.clock.now())
                .execution_options(synchronize_session=False))
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return False  # another instance closed it first
            local = claimed_at.astimezone(self._services.settings.tz).strftime("%m-%d %H:%M")
            await alert_staff(session, self._services,
                              f"✅ {channel_name(channel)}发送已恢复（{local} 报告的故障）。积压的消息正按顺序补发。")
            return True
