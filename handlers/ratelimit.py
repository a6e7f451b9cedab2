"""Per-sender flood control: a flood is slowed to N messages a minute, never erased.

Counted from the inbox itself, so it holds across instances and restarts and counts *messages*, not
handling attempts (a message that fails and is retried is still one row):

- A message is part of a **flood** when its sender's conversation has N earlier messages that
  *arrived* less than a minute before it. Arrival time, so a backlog after downtime (messages sent
  at a normal pace, handled late) is not a flood.
- A flood is **paced** on handling time: a message of a flood may be handled once the N-th earlier
  message of its conversation was handled a minute ago or more. Until then it stays pending with
  ``not_before`` set to that moment, and — being the oldest pending message of its conversation —
  holds the later ones back, so the flood is handled in order, N a minute.
- The first message of a flood that has to wait earns the sender one polite notice; the delayed
  message is marked ``error = "rate_limited"``, and a flood with such a mark in the minute before
  it is already told.

Only the oldest pending message of a conversation is ever checked (the worker's claim), so the
check needs just the N-th earlier row of the conversation: one indexed lookup.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import InboxMessage

WINDOW = timedelta(minutes=1)
LIMITED = "rate_limited"  # InboxMessage.error of a message the limiter delayed (kept after it is handled)
NOTICE = "您发送消息太频繁了，请稍等一分钟。您的消息都已收到，会在稍后按顺序处理，无需重新发送。"

_TOLD = select(exists().where(
    InboxMessage.conversation == bindparam("conversation"),
    InboxMessage.id < bindparam("row_id"),
    InboxMessage.received_at > bindparam("since"),
    InboxMessage.error == LIMITED,
))


class RateLimiter:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute  # 0 switches flood control off
        # The N-th earlier message of the conversation; built once (hot path, docs/benchmarks.md).
        self._nth_earlier = (
            select(InboxMessage.received_at, InboxMessage.handled_at)
            .where(InboxMessage.conversation == bindparam("conversation"), InboxMessage.id < bindparam("row_id"))
            .order_by(InboxMessage.id.desc())
            .offset(max(0, per_minute - 1))
            .limit(1)
        )

    async def wait_until(self, session: AsyncSession, row: InboxMessage, now: datetime) -> datetime | None:
        """When ``row`` (the oldest pending message of its conversation) may be handled, if not now."""
        if self.per_minute <= 0:
            return None
        nth = (await session.execute(self._nth_earlier, {"conversation": row.conversation, "row_id": row.id})).first()
        if nth is None:
            return None
        received, handled = nth
        if received <= row.received_at - WINDOW:
            return None  # fewer than N messages in the minute before this one: not a flood
        if handled is None or handled <= now - WINDOW:
            return None  # a flood, but its last minute had room: it goes on at N a minute
        return handled + WINDOW

    async def already_told(self, session: AsyncSession, row: InboxMessage) -> bool:
        """True if an earlier message of this flood was delayed, so its sender has had the notice."""
        return bool(await session.scalar(_TOLD, {"conversation": row.conversation, "row_id": row.id,
                                                 "since": row.received_at - WINDOW}))
