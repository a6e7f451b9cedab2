"""storage/queues.py on its own: which row each queue hands out, and that a claim holds across sessions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.db import dialect_of
from storage.models import InboxMessage, InboxState, OutboxMessage, OutboxState, Timer, TimerState
from storage.queues import InboxQueue, OutboxQueue, TimerQueue

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


def _inbox(n: int, conversation: str = "wecom:u1", **kw: object) -> InboxMessage:
    return InboxMessage(channel="wecom", platform_msg_id=f"m{n}", conversation=conversation, sender="u1",
                        kind="text", text=f"t{n}", received_at=T0, **kw)


def _outbox(conversation: str = "wecom:u1", due: datetime = T0, **kw: object) -> OutboxMessage:
    return OutboxMessage(channel="wecom", address="u1", conversation=conversation, payload={"text": "hi"},
                         next_attempt_at=due, created_at=T0, **kw)


async def _add(sessions: async_sessionmaker[AsyncSession], *rows: object) -> list[int]:
    async with sessions() as s, s.begin():
        s.add_all(rows)
        await s.flush()
        return [r.id for r in rows]  # type: ignore[attr-defined]


async def test_inbox_only_the_oldest_pending_row_is_claimed(sessions: async_sessionmaker[AsyncSession]) -> None:
    first, second, other = await _add(sessions, _inbox(1), _inbox(2), _inbox(3, "wecom:u2",
                                                                            not_before=T0 + timedelta(minutes=1)))
    async with sessions() as s:
        assert await InboxQueue.heads(s, T0) == {"wecom:u1": first, "wecom:u2": -1}
        assert await InboxQueue.heads(s, T0 + timedelta(minutes=1)) == {"wecom:u1": first, "wecom:u2": other}
    async with sessions() as s, s.begin():
        assert await InboxQueue.claim(s, second) is None  # an earlier message is still pending
        row = await InboxQueue.claim(s, first)
        assert row is not None and row.id == first
        assert await InboxQueue.next_due(s, "wecom:u1", first, T0) == second
        row.state = InboxState.DONE.value
    async with sessions() as s, s.begin():
        assert await InboxQueue.claim(s, first) is None  # done
        row = await InboxQueue.claim(s, second)
        assert row is not None and row.id == second
        assert await InboxQueue.next_due(s, "wecom:u1", second, T0) is None
        row.not_before = T0 + timedelta(seconds=5)
        row.state = InboxState.PENDING.value
    async with sessions() as s:
        assert await InboxQueue.next_due(s, "wecom:u1", first, T0) is None  # pending but not due yet
        assert await InboxQueue.next_due(s, "wecom:u1", first, T0 + timedelta(seconds=5)) == second


async def test_a_claim_is_held_against_other_sessions(sessions: async_sessionmaker[AsyncSession]) -> None:
    (msg,) = await _add(sessions, _inbox(1))
    (timer,) = await _add(sessions, Timer(kind="k", due_at=T0, created_at=T0))
    async with sessions() as a, a.begin():
        assert await InboxQueue.claim(a, msg) is not None
        assert await TimerQueue.claim(a, timer) is not None
        if dialect_of(a) != "postgresql":
            return  # SQLite: one writer at a time, a second claim waits for the lock instead
        async with sessions() as b, b.begin():
            assert await InboxQueue.claim(b, msg) is None  # skipped, not waited for
            assert await TimerQueue.claim(b, timer) is None


async def test_outbox_lease_moves_the_head_out_of_reach(sessions: async_sessionmaker[AsyncSession]) -> None:
    first, second = await _add(sessions, _outbox(), _outbox())
    lease = T0 + timedelta(seconds=60)
    async with sessions() as s, s.begin():
        assert await OutboxQueue.heads(s, T0) == {"wecom:u1": first}
        assert await OutboxQueue.lease_head(s, "wecom:u1", T0 - timedelta(seconds=1), lease) is None  # not due
        row = await OutboxQueue.lease_head(s, "wecom:u1", T0, lease)
        assert row is not None and row.id == first
        assert (row.attempts, row.next_attempt_at) == (1, lease)  # the row shows what the lease wrote
    async with sessions() as s, s.begin():
        assert await OutboxQueue.heads(s, T0) == {"wecom:u1": -1}  # the head is leased: nobody overtakes it
        assert await OutboxQueue.lease_head(s, "wecom:u1", T0, lease) is None
        await OutboxQueue.reschedule(s, first, T0, "paced", refund=True)
    async with sessions() as s, s.begin():
        stored = await s.get(OutboxMessage, first)
        assert stored is not None and (stored.attempts, stored.last_error) == (0, "paced")
        await OutboxQueue.mark_sent(s, first, T0, "p1")
    async with sessions() as s:
        stored = await s.get(OutboxMessage, first)
        assert stored is not None and (stored.state, stored.platform_msg_id) == (OutboxState.SENT.value, "p1")
        assert await OutboxQueue.heads(s, T0) == {"wecom:u1": second}


async def test_a_reserved_reply_is_claimed_only_as_the_head(sessions: async_sessionmaker[AsyncSession]) -> None:
    until = T0 + timedelta(seconds=10)
    older, reply = await _add(sessions, _outbox(), _outbox(due=until))
    async with sessions() as s, s.begin():
        assert await OutboxQueue.claim_reserved(s, reply, until, T0, "passive:m1") is None  # older is pending
        (await s.get(OutboxMessage, older)).state = OutboxState.SENT.value  # type: ignore[union-attr]
    async with sessions() as s, s.begin():
        assert await OutboxQueue.claim_reserved(s, reply, T0, T0, "passive:m1") is None  # not reserved so
        assert await OutboxQueue.claim_reserved(s, reply, until, T0, "passive:m1") == {"text": "hi"}
        assert await OutboxQueue.claim_reserved(s, reply, until, T0, "passive:m1") is None  # sent already
    (again,) = await _add(sessions, _outbox(due=until))
    async with sessions() as s, s.begin():
        await OutboxQueue.release(s, again, T0, T0 - timedelta(hours=1))  # not reserved until T0: untouched
        await OutboxQueue.release(s, again, until, T0)
    async with sessions() as s:
        due = await s.scalar(select(OutboxMessage.next_attempt_at).where(OutboxMessage.id == again))
        assert due is not None and due.replace(tzinfo=UTC) == T0


async def test_due_timers_of_known_kinds_oldest_first(sessions: async_sessionmaker[AsyncSession]) -> None:
    late, early, _unknown, _future, fired = await _add(
        sessions,
        Timer(kind="a", due_at=T0, created_at=T0),
        Timer(kind="b", due_at=T0 - timedelta(hours=1), created_at=T0),
        Timer(kind="x", due_at=T0, created_at=T0),
        Timer(kind="a", due_at=T0 + timedelta(hours=1), created_at=T0),
        Timer(kind="a", due_at=T0, created_at=T0, state=TimerState.FIRED.value),
    )
    async with sessions() as s, s.begin():
        assert await TimerQueue.due(s, T0, ["a", "b"], 10) == [early, late]
        assert await TimerQueue.due(s, T0, ["a", "b"], 1) == [early]
        assert await TimerQueue.due(s, T0, [], 10) == []
        assert await TimerQueue.due_unknown(s, T0, ["a", "b"]) == {"x": 1}
        assert await TimerQueue.due_unknown(s, T0, []) == {"a": 1, "b": 1, "x": 1}
        assert await TimerQueue.claim(s, fired) is None
