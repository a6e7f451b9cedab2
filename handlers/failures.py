"""Telling people that a message could not be handled: grouped, rate-limited, never one per message.

A message that still fails after ``bot.inbox_max_attempts`` tries is given up (``InboxMessage``
state ``failed``). Anyone who can send messages can make that happen over and over, so:

- **The sender** gets one apology per burst: none if another of their messages (same conversation)
  failed for good in the last ``bot.failure_alert_min`` minutes.
- **Staff** get at most one alert per ``bot.failure_alert_min`` minutes, summarising every failure
  since the last one: how many, from whom, the first error. The alert is a timer row
  (:data:`ALERT`, at most one pending): a failure adds itself to the pending alert, or schedules a new
  one, due now if the last alert went out a window ago, else a window after it. On PostgreSQL the
  failures take an advisory lock and the pending alert's row lock, so two instances neither schedule
  two alerts nor add to one already sent; SQLite's single writer serialises them anyway.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from handlers import timers
from handlers.context import HandlerContext
from handlers.outbox import Outbox
from handlers.services import Services
from storage.db import dialect_of
from storage.models import IDENTITY_OF, InboxMessage, InboxState, Person, Timer, TimerState

ALERT = "inbox.failure_alert"  # timer kind
MAX_SENDERS = 10  # senders named in one alert; the rest are counted
SORRY = "抱歉，系统暂时出了点问题，您的消息没能处理。工作人员已收到提醒，请稍后再试。"  # to the sender, once a burst
_LOCK_KEY = 0x43524C46  # pg_advisory_xact_lock key of "recording a failed message" ("CRLF")


async def message_failed(session: AsyncSession, services: Services, row: InboxMessage) -> None:
    """In the transaction that marks ``row`` failed: apologise once per burst, add it to the staff alert."""
    now = services.clock.now()
    window = timedelta(minutes=services.settings.bot.failure_alert_min)
    outbox = Outbox(session, services.clock)
    identity = await session.scalar(IDENTITY_OF, {"channel": row.channel, "user_id": row.sender})
    recent = await session.scalar(select(func.count()).select_from(InboxMessage).where(
        InboxMessage.conversation == row.conversation, InboxMessage.id != row.id,
        InboxMessage.state == InboxState.FAILED.value, InboxMessage.handled_at > now - window))
    if identity is not None and not recent:
        await outbox.to_identity(identity, SORRY)
    person = await session.get(Person, identity.person_id) if identity is not None else None
    who = f"{person.name}（{row.channel}）" if person is not None and person.name else f"{row.channel}:{row.sender}"

    if dialect_of(session) == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    pending = select(Timer).where(Timer.kind == ALERT, Timer.state == TimerState.PENDING.value).limit(1)
    if dialect_of(session) == "postgresql":
        pending = pending.with_for_update()  # the poller may be sending it right now: wait, then look again
    alert = await session.scalar(pending)
    if alert is not None:
        alert.payload = _add(alert.payload, row, who)  # a new dict: JSON columns track reassignment only
        return
    last = await session.scalar(select(func.max(Timer.fired_at)).where(
        Timer.kind == ALERT, Timer.state == TimerState.FIRED.value))
    due = now if last is None or last + window <= now else last + window
    timers.schedule(session, ALERT, due, now=now, payload=_add({}, row, who))


def _add(payload: dict[str, Any], row: InboxMessage, who: str) -> dict[str, Any]:
    out = {"count": 0, "senders": {}, "others": 0, **payload}
    out["count"] += 1
    if "first_error" not in out:
        out["first_error"] = row.error[:200]
        out["first_row"] = row.id
    senders = dict(out["senders"])
    if who in senders or len(senders) < MAX_SENDERS:
        senders[who] = senders.get(who, 0) + 1
    else:
        out["others"] += 1
    out["senders"] = senders
    return out


def alert_text(payload: dict[str, Any], window_min: int) -> str:
    senders = "、".join(f"{who} {n} 条" for who, n in payload.get("senders", {}).items())
    if payload.get("others"):
        senders += f"、其他发送者 {payload['others']} 条"
    return (f"⚠️ 有 {payload.get('count', 0)} 条消息多次处理失败，未能处理（来自：{senders}）。"
            f"第一条（收件箱 #{payload.get('first_row')}）的错误：{payload.get('first_error', '')}。"
            f"此类提醒每 {window_min} 分钟最多一条，其间的失败合并计入下一条。")


async def send_failure_alert(ctx: HandlerContext, timer: Timer) -> None:
    """The timer of kind :data:`ALERT` (registered in ``handlers/app.py::build_timers``)."""
    await ctx.outbox.to_staff(alert_text(timer.payload, ctx.settings.bot.failure_alert_min))
