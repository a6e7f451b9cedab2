"""Outbound failures against the WeCom API fake: every failure mode, then recovery.

The real :class:`WeComSender` talks HTTP to :class:`FakeWeCom` on loopback. The fake answers 5xx,
rate-limit (45009), expired tokens (42001), late answers (client timeouts) and goes down for minutes
or hours (HTTP 500 on everything, connection refused); afterwards every message must have arrived
exactly once and in order, none dead, staff told once per outage; one that can never be delivered
ends dead with a staff alert. The clock is a ManualClock: retries are due when the test moves it,
not after real waiting (the timeout phase waits on real I/O for a few seconds, bounded).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot import config
from bot.app import create_app
from bot.channels.wecom_sender import WeComSender
from bot.keys import http_key, media_key, sender_key, senders_key, sessions_key, settings_key
from handlers.clock import ManualClock
from storage.models import OutboxMessage, OutboxState
from tests.channels.wx_harness import WECOM_AES, WECOM_CORP, WECOM_TOKEN
from tests.chat import Playground
from tests.conftest import make_settings
from tests.fakes.wecom_api import FakeWeCom
from tests.test_pipeline import _queue

TIMEOUT_S = 1.0  # not tighter: a busy CI box can take a few hundred ms on loopback


@pytest.fixture
async def world(db_url: str, tmp_path: Path) -> AsyncIterator[tuple[Playground, FakeWeCom]]:
    clock = ManualClock()
    wecom = FakeWeCom(clock, corp_id=WECOM_CORP)
    await wecom.start()
    settings = make_settings(db_url, tmp_path, wecom={
        "corp_id": WECOM_CORP, "agent_id": wecom.agent_id, "secret": wecom.secret, "token": WECOM_TOKEN,
        "encoding_aes_key": WECOM_AES, "api_base": wecom.base_url})
    app = create_app(settings, clock=clock, run_scheduler=False)
    try:
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            wecom_settings = config.wecom(settings)
            assert wecom_settings is not None
            # The same sender as in production, with a short timeout so the late-answer phase is quick.
            app[senders_key]["wecom"] = WeComSender(
                app[http_key], wecom_settings, clock=clock, media=app[media_key], timeout_s=TIMEOUT_S)
            pg = Playground(client, clock)
            await pg.seed_demo()
            yield pg, wecom
    finally:
        await wecom.close()


async def _round(pg: Playground, minutes: float = 3) -> None:
    await pg.app[sender_key].settle()
    pg.clock.advance(timedelta(minutes=minutes))


def delivered(wecom: FakeWeCom, user: str = "u1") -> list[str]:
    return [b["text"]["content"] for b in wecom.sent if b["touser"] == user and b["msgtype"] == "text"]


async def _queue_to(pg: Playground, texts: dict[str, list[str]]) -> None:
    """Queue ``texts`` per WeCom member, in order (one conversation each)."""
    async with pg.app[sessions_key]() as s, s.begin():
        for user, batch in texts.items():
            for t in batch:
                s.add(OutboxMessage(channel="wecom", address=user, conversation=f"wecom:{user}",
                                    payload={"kind": "text", "text": t}, next_attempt_at=pg.clock.now(),
                                    created_at=pg.clock.now()))


async def _states(pg: Playground) -> dict[str, int]:
    async with pg.app[sessions_key]() as s:
        rows = (await s.execute(select(OutboxMessage.state, func.count()).where(
            OutboxMessage.channel == "wecom").group_by(OutboxMessage.state))).all()
    return {state: n for state, n in rows}


async def _staff_alerts(pg: Playground) -> list[str]:
    await pg.settle()
    return [m.get("text", "") for m in await pg.person("demo-staff-1").read()]


async def test_failures_then_recovery_deliver_everything_in_order_once(
    world: tuple[Playground, FakeWeCom],
) -> None:
    pg, wecom = world
    texts = [f"第{i}条" for i in range(1, 9)]
    await _queue(pg, texts)

    wecom.fail_next(("status", 503), ("status", 502))  # platform 5xx
    await _round(pg)
    wecom.fail_next(("errcode", 45009))  # API frequency limit
    await _round(pg)
    wecom.expire_tokens()  # 42001: the sender refreshes its token and goes on
    await _round(pg)
    wecom.fail_next(("errcode", -1))  # "system busy"
    await _round(pg)
    assert len(delivered(wecom)) < len(texts)  # the failures really held messages back

    # Every remaining retry is due within three minutes; keep going until the outbox is empty (bounded).
    for _ in range(20):
        await _round(pg)
        if len(delivered(wecom)) == len(texts):
            break
    assert delivered(wecom) == texts  # all of them, in order, none twice
    assert wecom.token_fetches >= 2  # the expired token was really replaced
    assert wecom.send_calls >= len(texts) + 4  # each injected failure cost one real call
    async with pg.app[sessions_key]() as s:
        states = (await s.execute(select(OutboxMessage.state, func.count()).where(
            OutboxMessage.channel == "wecom").group_by(OutboxMessage.state))).all()
    assert dict(states) == {OutboxState.SENT.value: len(texts)}


async def test_timeouts_are_retried_and_the_conversation_waits(world: tuple[Playground, FakeWeCom]) -> None:
    pg, wecom = world
    await _queue(pg, ["先行"])
    await _round(pg)  # the sender now holds a valid token: the next calls are message/send only
    assert delivered(wecom) == ["先行"]
    await _queue(pg, ["慢一", "慢二", "慢三"])
    wecom.delay_s = TIMEOUT_S * 3  # every answer arrives after the client gave up
    await _round(pg)
    # The platform took 慢一 but its answer came too late: not acknowledged, so the row is still pending
    # and the conversation waits behind it (慢二 and 慢三 were not even tried).
    assert delivered(wecom) == ["先行", "慢一"] and wecom.send_calls == 2
    assert await _states(pg) == {OutboxState.SENT.value: 1, OutboxState.PENDING.value: 3}
    wecom.delay_s = 0
    for _ in range(10):
        await _round(pg)
        if len(set(delivered(wecom))) == 3:
            break
    for _ in range(100):  # the late answers arrive within TIMEOUT_S * 3 of real time (bounded)
        if wecom.absorbed:
            break
        await asyncio.sleep(0.05)
    # The timed-out call did reach the platform (it answered late) and the retry sent the same request
    # again: WeCom's duplicate check, on every send, kept the member from seeing it twice.
    assert [b["text"]["content"] for b in wecom.absorbed] == ["慢一"]
    assert delivered(wecom) == ["先行", "慢一", "慢二", "慢三"]
    assert all(b["enable_duplicate_check"] == 1 for b in wecom.sent)
    lease = pg.app[settings_key].bot.outbox_lease_s
    assert all(lease < b["duplicate_check_interval"] <= 4 * 3600 for b in wecom.sent)


async def test_message_undelivered_for_the_whole_horizon_is_dead_and_staff_told(
    world: tuple[Playground, FakeWeCom],
) -> None:
    pg, wecom = world
    hours = pg.app[settings_key].bot.outbox_retry_hours
    await _queue(pg, ["永远送不到"])
    await wecom.go_down("500")
    for _ in range(int(hours) - 1):  # one attempt per hour of clock: still retried, never dead early
        await _round(pg, minutes=60)
    assert await _states(pg) == {OutboxState.PENDING.value: 1}
    for _ in range(3):
        await _round(pg, minutes=60)
    async with pg.app[sessions_key]() as s:
        row = await s.scalar(select(OutboxMessage).where(OutboxMessage.channel == "wecom"))
        assert row is not None and row.state == OutboxState.DEAD.value and row.attempts > 20
    alert = "\n".join(await _staff_alerts(pg))
    assert "发送失败" in alert and "永远送不到" in alert
    assert delivered(wecom) == []


async def test_outages_of_ten_minutes_then_an_hour_deliver_everything_in_order_once(
    world: tuple[Playground, FakeWeCom],
) -> None:
    pg, wecom = world
    users = ["u1", "u2", "u3", "u4"]
    expected: dict[str, list[str]] = {u: [] for u in users}

    async def queue(tag: str) -> None:
        batch = {u: [f"{u}{tag}{i}" for i in range(3)] for u in users}
        for u in users:
            expected[u] += batch[u]
        await _queue_to(pg, batch)

    await queue("早")
    await _round(pg, minutes=0)  # delivered before the outage (and the token is cached)
    assert all(delivered(wecom, u) == expected[u] for u in users)

    await wecom.go_down("500")  # ten minutes of HTTP 500 on every call
    await queue("甲")
    for minute in range(10):
        await _round(pg, minutes=1)
        if minute == 4:
            await queue("乙")  # queued mid-outage, behind the waiting heads
    assert await _states(pg) == {OutboxState.SENT.value: 12, OutboxState.PENDING.value: 24}
    await wecom.come_back()
    for _ in range(30):
        await _round(pg, minutes=1)
        if await _states(pg) == {OutboxState.SENT.value: 36}:
            break

    await wecom.go_down("refused")  # then an hour of connection refused
    await queue("丙")
    for minute in range(60):
        await _round(pg, minutes=1)
        if minute == 30:
            await queue("丁")
    assert OutboxState.DEAD.value not in await _states(pg)
    await wecom.come_back()
    for _ in range(30):
        await _round(pg, minutes=1)
        if await _states(pg) == {OutboxState.SENT.value: 60}:
            break

    for u in users:
        assert delivered(wecom, u) == expected[u], u  # every one, in order, none twice
    assert await _states(pg) == {OutboxState.SENT.value: 60}  # none dead
    alerts = await _staff_alerts(pg)
    # Staff were told once per outage that the channel is failing, and once that it recovered —
    # not once per message (24 and 24 messages waited through them).
    assert sum("发送故障" in a for a in alerts) == 2, alerts
    assert sum("已恢复" in a for a in alerts) == 2, alerts
    assert not any("发送失败" in a for a in alerts), alerts


async def test_a_short_blip_tells_staff_nothing(world: tuple[Playground, FakeWeCom]) -> None:
    pg, wecom = world
    await _queue_to(pg, {"u1": ["一"], "u2": ["二"]})
    await wecom.go_down("500")
    for _ in range(3):  # under the five minutes after which staff hear of it
        await _round(pg, minutes=1)
    await wecom.come_back()
    for _ in range(10):
        await _round(pg, minutes=1)
    assert delivered(wecom, "u1") == ["一"] and delivered(wecom, "u2") == ["二"]
    assert await _staff_alerts(pg) == []


async def test_a_permanent_error_is_dead_at_once_and_the_conversation_goes_on(
    world: tuple[Playground, FakeWeCom],
) -> None:
    pg, wecom = world
    await _queue(pg, ["不在可见范围", "之后的消息"])
    wecom.fail_next(("errcode", 81013))  # the member is not in the app's visible range
    await _round(pg, minutes=0)
    async with pg.app[sessions_key]() as s:
        rows = (await s.scalars(select(OutboxMessage).where(OutboxMessage.channel == "wecom")
                                .order_by(OutboxMessage.id))).all()
    assert [(r.state, r.attempts) for r in rows] == [(OutboxState.DEAD.value, 1), (OutboxState.SENT.value, 1)]
    alerts = await _staff_alerts(pg)
    assert len(alerts) == 1 and "发送失败" in alerts[0] and "不在可见范围" in alerts[0]
    assert delivered(wecom) == ["之后的消息"]
