"""The queue mechanics of the inbox, the outbox and the timers: pending heads, claims and leases.

Three tables are worked as queues, by N instances at once on PostgreSQL and by one process on SQLite:

- **inbox** (:class:`InboxQueue`): only the oldest pending message of a conversation is claimable, and the
  claim is the row itself — ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, SQLite's single writer serialises —
  held by the caller's handling transaction;
- **outbox** (:class:`OutboxQueue`): the oldest pending row of a conversation is *leased* by a conditional
  UPDATE that pushes its ``next_attempt_at`` forward (no row lock is held across the network call); of two
  instances leasing one row, one matches. A passive reply *reserves* a row the same way and *claims* it
  by a conditional UPDATE that marks it sent only if it is still the oldest pending one;
- **timers** (:class:`TimerQueue`): due timers of known kinds, oldest first; a claim is a row lock on
  PostgreSQL (``FOR UPDATE SKIP LOCKED``) plus the state check.

Every method takes the caller's :class:`AsyncSession` (inside the caller's transaction: nothing here
begins or commits) and plain values. The statements are built once, at module level, with bind parameters:
building one costs 0.1–1 ms of Python (the claims' aliased ``NOT EXISTS`` the most), more than SQLite
takes to run it (docs/ARCHITECTURE.md, "Hot statements are built once").
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, bindparam, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value

from storage.db import dialect_of
from storage.models import InboxMessage, InboxState, OutboxMessage, OutboxState, Timer, TimerState

INBOX_SCAN = 1000  # pending rows read per scan for heads (the oldest first)
OUTBOX_SCAN = 2000


def _heads(rows: Iterable[Any], now: datetime) -> dict[str, int]:
    """Each conversation's first row of ``rows`` (id, conversation, due time; oldest first) → its id if due
    by ``now``, else -1."""
    heads: dict[str, int] = {}
    for row_id, conversation, due in rows:
        if conversation not in heads:
            heads[conversation] = row_id if due is None or due <= now else -1
    return heads


# -- inbox ----------------------------------------------------------------------------------------
_EARLIER_IN = aliased(InboxMessage)
_INBOX_CLAIM = select(InboxMessage).where(
    InboxMessage.id == bindparam("row_id"),
    InboxMessage.state == InboxState.PENDING.value,
    ~exists().where(
        _EARLIER_IN.conversation == InboxMessage.conversation,
        _EARLIER_IN.id < InboxMessage.id,
        _EARLIER_IN.state == InboxState.PENDING.value,
    ),
)
_INBOX_CLAIM_PG = _INBOX_CLAIM.with_for_update(skip_locked=True, of=InboxMessage)
_INBOX_NEXT = (
    select(InboxMessage.id, InboxMessage.not_before)
    .where(InboxMessage.conversation == bindparam("conversation"), InboxMessage.state == InboxState.PENDING.value,
           InboxMessage.id > bindparam("after"))
    .order_by(InboxMessage.id).limit(1)
)
_INBOX_HEADS = (
    select(InboxMessage.id, InboxMessage.conversation, InboxMessage.not_before)
    .where(InboxMessage.state == InboxState.PENDING.value)
    .order_by(InboxMessage.id)
    .limit(INBOX_SCAN)
)


class InboxQueue:
    """Stored incoming messages, handled one at a time per conversation, in order."""

    @staticmethod
    async def heads(session: AsyncSession, now: datetime) -> dict[str, int]:
        """Each conversation with pending messages → its oldest pending row's id, or -1 if that row waits for
        its ``not_before`` (read from the oldest :data:`INBOX_SCAN` pending rows)."""
        return _heads((await session.execute(_INBOX_HEADS)).all(), now)

    @staticmethod
    async def claim(session: AsyncSession, row_id: int) -> InboxMessage | None:
        """The row, claimed for the caller's transaction, if it is pending and the oldest pending one of its
        conversation; None if it is done, another instance holds it, or an earlier message is still pending."""
        stmt = _INBOX_CLAIM_PG if dialect_of(session) == "postgresql" else _INBOX_CLAIM
        return await session.scalar(stmt, {"row_id": row_id})

    @staticmethod
    async def next_due(session: AsyncSession, conversation: str, after: int, now: datetime) -> int | None:
        """The conversation's next pending message after row ``after``, if it is due by ``now``."""
        nxt = (await session.execute(_INBOX_NEXT, {"conversation": conversation, "after": after})).first()
        if nxt is None or (nxt[1] is not None and nxt[1] > now):
            return None
        return int(nxt[0])


# -- outbox ---------------------------------------------------------------------------------------
_EARLIER_OUT = aliased(OutboxMessage)
_OUTBOX_HEADS = (
    select(OutboxMessage.id, OutboxMessage.conversation, OutboxMessage.next_attempt_at)
    .where(OutboxMessage.state == OutboxState.PENDING.value)
    .order_by(OutboxMessage.id)
    .limit(OUTBOX_SCAN)
)
_OUTBOX_HEAD = (
    select(OutboxMessage)
    .where(OutboxMessage.conversation == bindparam("conversation"), OutboxMessage.state == OutboxState.PENDING.value)
    .order_by(OutboxMessage.id)
    .limit(1)
)
_OUTBOX_LEASE = (  # conditional on the head's due time: of two instances leasing one row, one matches
    update(OutboxMessage)
    .where(OutboxMessage.id == bindparam("row_id"), OutboxMessage.next_attempt_at == bindparam("due"),
           OutboxMessage.state == OutboxState.PENDING.value)
    .values(next_attempt_at=bindparam("lease_until"), attempts=OutboxMessage.attempts + 1)
    .execution_options(synchronize_session=False)
)
_OUTBOX_SENT = (
    update(OutboxMessage).where(OutboxMessage.id == bindparam("row_id"))
    .values(state=OutboxState.SENT.value, sent_at=bindparam("sent_at"), platform_msg_id=bindparam("platform_id"),
            last_error="")
    .execution_options(synchronize_session=False)
)
_OUTBOX_RESCHEDULE = (
    update(OutboxMessage).where(OutboxMessage.id == bindparam("row_id"))
    .values(next_attempt_at=bindparam("due"), last_error=bindparam("error"))
    .execution_options(synchronize_session=False)
)
_OUTBOX_RESCHEDULE_REFUND = _OUTBOX_RESCHEDULE.values(attempts=OutboxMessage.attempts - 1)
_OUTBOX_CLAIM_RESERVED = (  # still pending, still reserved by the caller, and the oldest pending of its conversation
    update(OutboxMessage)
    .where(
        OutboxMessage.id == bindparam("row_id"),
        OutboxMessage.state == OutboxState.PENDING.value,
        OutboxMessage.next_attempt_at == bindparam("until"),
        ~exists().where(
            _EARLIER_OUT.conversation == OutboxMessage.conversation,
            _EARLIER_OUT.id < OutboxMessage.id,
            _EARLIER_OUT.state == OutboxState.PENDING.value,
        ),
    )
    .values(state=OutboxState.SENT.value, sent_at=bindparam("sent_at"), attempts=OutboxMessage.attempts + 1,
            platform_msg_id=bindparam("platform_id"), last_error="")
    .execution_options(synchronize_session=False)
)
_OUTBOX_PAYLOAD = select(OutboxMessage.payload).where(OutboxMessage.id == bindparam("row_id"))
_OUTBOX_RELEASE = (
    update(OutboxMessage)
    .where(OutboxMessage.id == bindparam("row_id"), OutboxMessage.state == OutboxState.PENDING.value,
           OutboxMessage.next_attempt_at == bindparam("until"))
    .values(next_attempt_at=bindparam("now"))
    .execution_options(synchronize_session=False)
)


class OutboxQueue:
    """Queued outgoing messages, sent one at a time per conversation, in order, under a lease."""

    @staticmethod
    async def heads(session: AsyncSession, now: datetime) -> dict[str, int]:
        """Each conversation with pending messages → its oldest pending row's id, or -1 if that row is not
        due by ``now`` (read from the oldest :data:`OUTBOX_SCAN` pending rows)."""
        return _heads((await session.execute(_OUTBOX_HEADS)).all(), now)

    @staticmethod
    async def lease_head(
        session: AsyncSession, conversation: str, now: datetime, lease_until: datetime
    ) -> OutboxMessage | None:
        """Lease the conversation's oldest pending row if it is due by ``now``: its ``next_attempt_at`` moves
        to ``lease_until`` and ``attempts`` counts this one (the returned row shows both). None if nothing is
        due, or another instance leased it first."""
        row = await session.scalar(_OUTBOX_HEAD, {"conversation": conversation})
        if row is None or row.next_attempt_at > now:
            return None
        leased = await session.execute(_OUTBOX_LEASE, {"row_id": row.id, "due": row.next_attempt_at,
                                                       "lease_until": lease_until})
        if leased.rowcount != 1:  # type: ignore[attr-defined]
            return None
        set_committed_value(row, "next_attempt_at", lease_until)  # what the UPDATE wrote, without a re-read
        set_committed_value(row, "attempts", row.attempts + 1)
        return row

    @staticmethod
    async def mark_sent(session: AsyncSession, row_id: int, sent_at: datetime, platform_id: str | None) -> None:
        await session.execute(_OUTBOX_SENT, {"row_id": row_id, "sent_at": sent_at, "platform_id": platform_id})

    @staticmethod
    async def reschedule(session: AsyncSession, row_id: int, due: datetime, error: str, *,
                         refund: bool = False) -> None:
        """The row is tried again at ``due``; ``refund`` gives back the attempt its lease counted."""
        stmt = _OUTBOX_RESCHEDULE_REFUND if refund else _OUTBOX_RESCHEDULE
        await session.execute(stmt, {"row_id": row_id, "due": due, "error": error[:2000]})

    @staticmethod
    async def reserve(session: AsyncSession, row: OutboxMessage, until: datetime) -> None:
        """Hold a row written in this transaction back from the sender until ``until`` (a passive reply)."""
        row.next_attempt_at = until
        await session.flush()

    @staticmethod
    async def claim_reserved(
        session: AsyncSession, row_id: int, until: datetime, sent_at: datetime, platform_id: str
    ) -> dict[str, Any] | None:
        """Mark a row reserved until ``until`` sent (as ``platform_id``) and return its payload, if it is still
        pending, still so reserved and the oldest pending row of its conversation; else None."""
        claimed = await session.execute(_OUTBOX_CLAIM_RESERVED, {"row_id": row_id, "until": until,
                                                                 "sent_at": sent_at, "platform_id": platform_id})
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        payload: dict[str, Any] | None = await session.scalar(_OUTBOX_PAYLOAD, {"row_id": row_id})
        return payload or {}

    @staticmethod
    async def release(session: AsyncSession, row_id: int, until: datetime, now: datetime) -> None:
        """Hand a row reserved until ``until`` back to the sender: due ``now`` (no-op if no longer so reserved)."""
        await session.execute(_OUTBOX_RELEASE, {"row_id": row_id, "until": until, "now": now})


# -- timers ---------------------------------------------------------------------------------------
_TIMERS_DUE = (
    select(Timer.id)
    .where(Timer.state == TimerState.PENDING.value, Timer.due_at <= bindparam("now"),
           Timer.kind.in_(bindparam("kinds", expanding=True)))
    .order_by(Timer.due_at, Timer.id)
    .limit(bindparam("limit", type_=Integer))
)
_TIMERS_UNKNOWN = (
    select(Timer.kind, func.count())
    .where(Timer.state == TimerState.PENDING.value, Timer.due_at <= bindparam("now"),
           Timer.kind.not_in(bindparam("kinds", expanding=True)))
    .group_by(Timer.kind)
)
_TIMER_CLAIM = select(Timer).where(Timer.id == bindparam("timer_id"), Timer.state == TimerState.PENDING.value)
_TIMER_CLAIM_PG = _TIMER_CLAIM.with_for_update(skip_locked=True)


class TimerQueue:
    """Timer rows, fired once each, oldest first."""

    @staticmethod
    async def due(session: AsyncSession, now: datetime, kinds: list[str], limit: int) -> list[int]:
        """The ids of up to ``limit`` pending timers of ``kinds`` due by ``now``, oldest first. Timers of other
        kinds are not selected: they stay pending and cannot crowd the batch."""
        return list((await session.scalars(_TIMERS_DUE, {"now": now, "kinds": kinds, "limit": limit})).all())

    @staticmethod
    async def due_unknown(session: AsyncSession, now: datetime, kinds: list[str]) -> dict[str, int]:
        """Pending timers due by ``now`` whose kind is not in ``kinds``: kind → how many."""
        rows = (await session.execute(_TIMERS_UNKNOWN, {"now": now, "kinds": kinds})).all()
        return {str(kind): int(n) for kind, n in rows}

    @staticmethod
    async def claim(session: AsyncSession, timer_id: int) -> Timer | None:
        """The timer, claimed for the caller's transaction, if it is still pending; None if it fired, was
        cancelled, or another instance holds it."""
        stmt = _TIMER_CLAIM_PG if dialect_of(session) == "postgresql" else _TIMER_CLAIM
        return await session.scalar(stmt, {"timer_id": timer_id})
