"""The outbox sender's schedule: backoff with hints that only lengthen it, the delivery horizon,
per-conversation order while a head waits, pacing, and a send cut short before its lease ends."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.channels.base import DeferredSendError, TransientSendError
from bot.keys import sender_key, senders_key, services_key, sessions_key
from bot.pipeline.sender import BACKOFF_CAP_S, backoff
from handlers.messages import OutgoingMessage
from handlers.outbox import HELD_FLAG, release_held
from storage.models import Identity, OutboxMessage, OutboxState
from tests.chat import Playground


class ScriptedSender:
    """A WeCom stand-in: ``script[text]`` lists what each try of that text does (an exception to
    raise, a number of real seconds to hang, or None to deliver)."""

    channel = "wecom"

    def __init__(self, script: dict[str, list[Exception | float | None]]) -> None:
        self.script = script
        self.delivered: list[tuple[str, str]] = []

    async def send(self, address: str, message: OutgoingMessage, *, extra: dict[str, Any]) -> str | None:
        steps = self.script.get(message.text, [])
        step = steps.pop(0) if steps else None
        if isinstance(step, Exception):
            raise step
        if isinstance(step, float):
            await asyncio.sleep(step)
        self.delivered.append((address, message.text))
        return None


async def _queue(pg: Playground, rows: list[tuple[str, str]]) -> None:
    async with pg.app[sessions_key]() as s, s.begin():
        for address, t in rows:
            s.add(OutboxMessage(channel="wecom", address=address, conversation=f"wecom:{address}",
                                payload={"kind": "text", "text": t}, next_attempt_at=pg.clock.now(),
                                created_at=pg.clock.now()))


async def _row(pg: Playground, text: str) -> OutboxMessage:
    async with pg.app[sessions_key]() as s:
        rows = (await s.scalars(select(OutboxMessage).where(OutboxMessage.channel == "wecom"))).all()
    [row] = [r for r in rows if r.payload.get("text") == text]
    return row


def _wait(row: OutboxMessage, now: datetime) -> float:
    return (row.next_attempt_at - now).total_seconds()


def test_backoff_is_exponential_capped_and_jittered() -> None:
    assert [backoff(n, lambda: 0.5) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]
    assert backoff(50, lambda: 0.5) == BACKOFF_CAP_S and backoff(10_000, lambda: 0.5) == BACKOFF_CAP_S
    assert backoff(3, lambda: 0.0) == pytest.approx(6.4) and backoff(3, lambda: 1.0) == pytest.approx(9.6)


async def test_a_row_in_backoff_holds_back_the_rest_of_its_conversation(playground: Playground) -> None:
    sender = ScriptedSender({"甲一": [TransientSendError("http500")]})
    playground.app[senders_key]["wecom"] = sender
    await _queue(playground, [("a", "甲一"), ("a", "甲二"), ("b", "乙一")])
    await playground.settle()
    # 甲一 waits for its retry; 甲二 is due but must not overtake it; b's conversation is not held up.
    assert sender.delivered == [("b", "乙一")]
    playground.clock.advance(timedelta(seconds=1))  # not yet due (the first retry waits 1.6-2.4 s)
    await playground.settle()
    assert sender.delivered == [("b", "乙一")]
    playground.clock.advance(timedelta(seconds=2))
    await playground.settle()
    assert sender.delivered == [("b", "乙一"), ("a", "甲一"), ("a", "甲二")]


async def test_a_hint_lengthens_the_backoff_but_never_shortens_it(playground: Playground) -> None:
    fails: list[Exception | float | None] = [TransientSendError("http500")] * 6
    sender = ScriptedSender({"短": [*fails, TransientSendError("-1", retry_after=1.0)],
                             "长": [TransientSendError("45009", retry_after=3600.0)]})
    playground.app[senders_key]["wecom"] = sender
    await _queue(playground, [("a", "短"), ("b", "长")])
    for _ in range(6):  # six failed tries of 短, each as soon as it is due
        await playground.settle()
        playground.clock.set((await _row(playground, "短")).next_attempt_at)
    await playground.settle()  # the seventh fails with a 1 s hint
    row = await _row(playground, "短")
    assert row.attempts == 7 and row.state == OutboxState.PENDING.value
    assert _wait(row, playground.clock.now()) >= 64 * 0.8  # the 1 s hint did not cut the 7th backoff
    assert _wait(await _row(playground, "长"), playground.clock.now()) > 3000  # a long hint is obeyed


async def test_paced_rows_go_exactly_when_the_slot_frees_and_cost_no_attempt(playground: Playground) -> None:
    sender = ScriptedSender({"限速": [DeferredSendError("paced", retry_after=42.0)] * 3})
    playground.app[senders_key]["wecom"] = sender
    await _queue(playground, [("a", "限速")])
    for _ in range(3):
        start = playground.clock.now()
        await playground.settle()
        row = await _row(playground, "限速")
        assert row.attempts == 0 and _wait(row, start) == 42.0
        playground.clock.advance(timedelta(seconds=42))
    await playground.settle()
    assert sender.delivered == [("a", "限速")]
    assert playground.app[sender_key].health.failing_since("wecom") is None  # pacing is no failure


async def test_after_the_horizon_the_head_is_dead_and_the_next_row_goes(playground: Playground) -> None:
    hours = playground.app[services_key].settings.bot.outbox_retry_hours
    sender = ScriptedSender({"旧": [TransientSendError("http500")] * 1000})  # 新, written 12 h later, would go
    playground.app[senders_key]["wecom"] = sender
    await _queue(playground, [("a", "旧")])
    for hour in range(int(hours) + 2):
        if hour == 12:
            await _queue(playground, [("a", "新")])
        await playground.settle()
        playground.clock.advance(timedelta(hours=1))
        if hour < hours - 1:
            assert (await _row(playground, "旧")).state == OutboxState.PENDING.value
            if hour >= 12:
                assert (await _row(playground, "新")).attempts == 0  # never tried while 旧 waits
    assert (await _row(playground, "旧")).state == OutboxState.DEAD.value
    for _ in range(5):
        await playground.settle()
        playground.clock.advance(timedelta(minutes=10))
    assert sender.delivered == [("a", "新")]
    assert (await _row(playground, "新")).state == OutboxState.SENT.value


async def test_a_send_outliving_its_share_of_the_lease_is_cut_and_retried(playground: Playground) -> None:
    bot = playground.app[services_key].settings.bot
    bot.outbox_lease_s, bot.send_timeout_s = 2, 1.0  # the whole send is cut after 1 s of real time
    sender = ScriptedSender({"卡住": [30.0]})
    playground.app[senders_key]["wecom"] = sender
    await _queue(playground, [("a", "卡住")])
    async with asyncio.timeout(10):
        await playground.settle()
    row = await _row(playground, "卡住")
    assert row.state == OutboxState.PENDING.value and "send_deadline" in row.last_error
    assert row.next_attempt_at < playground.clock.now() + timedelta(seconds=bot.outbox_lease_s + 5)
    playground.clock.advance(timedelta(seconds=10))
    await playground.settle()
    assert sender.delivered == [("a", "卡住")]


async def test_a_message_released_after_days_on_hold_gets_a_full_horizon(playground: Playground) -> None:
    """A WeChat message held for three days (the 48-hour window) and released when the person writes
    again is not dead at its first transient failure: its horizon starts at the release."""
    sender = ScriptedSender({"迟到的回复": [TransientSendError("http500")] * 3})
    playground.app[senders_key]["wecom"] = sender
    old = playground.clock.now() - timedelta(days=3)
    async with playground.app[sessions_key]() as s, s.begin():
        identity = (await s.scalars(select(Identity).order_by(Identity.id).limit(1))).one()
        identity = Identity(person_id=identity.person_id, channel="wecom", channel_user_id="held-1",
                            extra={HELD_FLAG: True})
        s.add(identity)
        s.add(OutboxMessage(channel="wecom", address="held-1", conversation="wecom:held-1",
                            payload={"kind": "text", "text": "迟到的回复"}, state=OutboxState.HELD.value,
                            next_attempt_at=old, created_at=old))
        await s.flush()
        assert await release_held(s, identity, playground.clock.now()) == 1
    for _ in range(4):
        await playground.settle()
        playground.clock.advance(timedelta(minutes=5))
    assert sender.delivered == [("held-1", "迟到的回复")]
