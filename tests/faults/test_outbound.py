"""Outbound failures against the WeCom API fake: every failure mode, then recovery.

The real :class:`WeComSender` talks HTTP to :class:`FakeWeCom` on loopback. The fake answers 5xx,
rate-limit (45009), expired tokens (42001) and late answers (client timeouts); afterwards every
message must have arrived exactly once and in order, and one that can never be delivered ends dead
with a staff alert. The clock is a ManualClock: retries are due when the test moves it, not after
real waiting (the timeout phase waits on real I/O for a few hundred milliseconds, bounded).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.app import create_app
from bot.channels.media import MediaStore
from bot.channels.wecom_sender import WeComSender
from bot.keys import http_key, senders_key, sessions_key, settings_key
from bot.sender import sender_key
from handlers.clock import ManualClock
from handlers.messages import Channel
from storage.models import OutboxMessage, OutboxState
from tests.channels.wx_harness import WECOM_AES, WECOM_CORP, WECOM_TOKEN
from tests.chat import Chat, Playground
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
            assert settings.wecom is not None
            # The same sender as in production, with a short timeout so the late-answer phase is quick.
            app[senders_key][Channel.WECOM] = WeComSender(
                app[http_key], settings.wecom, clock=clock, media=MediaStore.for_app(app), timeout_s=TIMEOUT_S)
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
    calls = wecom.send_calls - 1
    assert calls >= 1 and len(delivered(wecom)) == 1  # nothing acknowledged yet: the head waits
    wecom.delay_s = 0
    for _ in range(10):
        await _round(pg)
        if len(set(delivered(wecom))) == 3:
            break
    seen = delivered(wecom)
    # Order holds for what the user sees first: the head message never overtaken by a later one.
    firsts = sorted({t: seen.index(t) for t in set(seen)}.items(), key=lambda kv: kv[1])
    assert [t for t, _ in firsts] == ["先行", "慢一", "慢二", "慢三"]
    # A timed-out call may still have reached the platform (it answered late): that is the only way a
    # message is seen twice, and only the one whose call timed out.
    assert seen.count("慢二") == 1 and seen.count("慢三") == 1
    assert seen.count("慢一") <= calls


async def test_message_that_can_never_be_delivered_is_dead_and_staff_told(
    world: tuple[Playground, FakeWeCom],
) -> None:
    pg, wecom = world
    max_attempts = pg.app[settings_key].bot.outbox_max_attempts
    await _queue(pg, ["永远送不到"])
    wecom.fail_next(*[("status", 500)] * (max_attempts + 2))
    for _ in range(max_attempts + 2):
        await _round(pg, minutes=15)
    async with pg.app[sessions_key]() as s:
        row = await s.scalar(select(OutboxMessage).where(OutboxMessage.channel == "wecom"))
        assert row is not None and row.state == OutboxState.DEAD.value and row.attempts == max_attempts
    await pg.settle()
    alert = Chat.text_of(await pg.person("demo-staff-1").read())
    assert "发送失败" in alert and "永远送不到" in alert
    assert delivered(wecom) == []
