"""Passive replies on the service account: the reply in the callback answer, when it fits and is ready.

The whole app runs (intake, worker, sender) with the service account in safe mode against its fake;
what the person sees is read through :meth:`WeChatPlatform.shown` (the callback answer, decrypted and
its signature checked as the platform does) plus the fake's customer-service messages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.app import create_app
from bot.channels.wechat import fits_passive
from bot.keys import passive_key, sessions_key, worker_key
from bot.pipeline.passive import RESERVE
from handlers.clock import ManualClock
from handlers.messages import IncomingKind, IncomingMessage, OutgoingKind, OutgoingMessage, text
from handlers.settings import ConfigError
from storage.models import InboxMessage, OutboxMessage, OutboxState
from tests.channels.scenario import WeChatUser, register
from tests.channels.wx_harness import WECHAT_AES, WECHAT_APPID, WECHAT_TOKEN
from tests.chat import Playground
from tests.conftest import make_settings
from tests.fakes.wechat_api import FakeWeChat

OPENID = "o-passive-firm"


def wechat_section(fake: FakeWeChat, **extra: object) -> dict[str, object]:
    return {"app_id": WECHAT_APPID, "app_secret": fake.secret, "token": WECHAT_TOKEN,
            "encoding_aes_key": WECHAT_AES, "api_base": fake.base_url, **extra}


@pytest.fixture
async def world(db_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[tuple[Playground, FakeWeChat]]:
    clock = ManualClock()
    fake = FakeWeChat(clock, app_id=WECHAT_APPID)
    await fake.start()
    wait_ms = getattr(request, "param", 1500)
    settings = make_settings(db_url, tmp_path, wechat=wechat_section(fake, passive_reply_ms=wait_ms))
    try:
        async with TestClient(TestServer(create_app(settings, clock=clock, run_scheduler=False),
                                         host="127.0.0.1")) as client:
            pg = Playground(client, clock)
            await pg.seed_demo()
            yield pg, fake
    finally:
        await fake.close()


async def rows_to(pg: Playground, openid: str) -> list[OutboxMessage]:
    async with pg.app[sessions_key]() as s:
        return list((await s.scalars(
            select(OutboxMessage).where(OutboxMessage.address == openid).order_by(OutboxMessage.id))).all())


def api_sends(fake: FakeWeChat, openid: str) -> list[dict[str, Any]]:
    return [s for s in fake.sent if s.get("touser") == openid and not s.get("passive")]


async def test_reply_travels_in_the_callback_answer_and_is_recorded_as_sent(
    world: tuple[Playground, FakeWeChat],
) -> None:
    pg, fake = world
    ent = WeChatUser(pg, fake, OPENID)
    reply = await ent.say("你好")
    assert "企业）的全称" in reply
    assert ent.answers[-1] != "success" and "<Encrypt>" in ent.answers[-1]
    assert api_sends(fake, OPENID) == []  # no customer-service call was needed
    (row,) = await rows_to(pg, OPENID)
    assert row.state == OutboxState.SENT and row.platform_msg_id is not None
    assert row.platform_msg_id.startswith("passive:")


async def test_whole_registration_reads_in_the_order_written(world: tuple[Playground, FakeWeChat]) -> None:
    """Passive and API replies interleave, and the person sees every row exactly once, in row order."""
    pg, fake = world
    ent = WeChatUser(pg, fake, OPENID)
    await register(ent)
    assert "【" in await ent.say("师傅好，我们冲床的模子老是崩刃，麻烦看看")
    rows = await rows_to(pg, OPENID)
    assert all(r.state == OutboxState.SENT for r in rows)
    shown = [s["text"]["content"] for s in fake.sent if s.get("touser") == OPENID]
    written = [OutgoingMessage.from_json(r.payload).plain_text for r in rows]
    assert shown == written
    passive = [r for r in rows if (r.platform_msg_id or "").startswith("passive:")]
    assert 0 < len(passive) <= 5  # at most one per message the person sent


async def test_platform_retry_gets_the_same_reply_and_is_handled_once(world: tuple[Playground, FakeWeChat]) -> None:
    pg, fake = world
    ent = WeChatUser(pg, fake, OPENID)
    mid = await ent.post("你好")
    await pg.settle()
    first = ent.read_text()
    await ent.post("你好", msg_id=mid)  # the platform did not get our answer and retries
    await pg.settle()
    assert ent.read_text() == first  # shown again: the same reply, not a second handling
    async with pg.app[sessions_key]() as s:
        assert await s.scalar(select(func.count()).select_from(InboxMessage)) == 1
    assert len(await rows_to(pg, OPENID)) == 1


async def test_an_older_pending_message_is_never_overtaken(world: tuple[Playground, FakeWeChat]) -> None:
    pg, fake = world
    ent = WeChatUser(pg, fake, OPENID)
    await ent.say("你好")  # first contact: the identity exists now
    now = pg.clock.now()
    async with pg.app[sessions_key]() as s, s.begin():  # a message still waiting for its retry
        s.add(OutboxMessage(channel="wechat", address=OPENID, conversation=f"wechat:{OPENID}",
                            payload=text("较早的一条消息").to_json(), next_attempt_at=now + timedelta(minutes=1),
                            created_at=now))
    await ent.post("宁波北仑精工机械有限公司")
    assert ent.answers[-1] == "success"  # the reply could not go first, so it waits its turn
    await pg.settle()
    assert ent.read_text() == ""
    pg.clock.advance(timedelta(minutes=2))
    await pg.settle()
    later = ent.read_text().splitlines()
    assert later[0] == "较早的一条消息" and "怎么称呼" in "\n".join(later[1:])


@pytest.mark.parametrize("world", [0], indirect=True)
async def test_switched_off_every_reply_goes_through_the_api(world: tuple[Playground, FakeWeChat]) -> None:
    pg, fake = world
    ent = WeChatUser(pg, fake, OPENID)
    assert "企业）的全称" in await ent.say("你好")
    assert ent.answers == ["success"]
    assert len(api_sends(fake, OPENID)) == 1


async def test_reply_not_ready_in_time_goes_through_the_api(world: tuple[Playground, FakeWeChat]) -> None:
    pg, fake = world
    await pg.app[worker_key].stop()  # nothing handles the message while the callback waits
    ent = WeChatUser(pg, fake, OPENID)
    await ent.post("你好")
    assert ent.answers == ["success"]
    await pg.settle()  # handled now, after the answer: the reply is sent the normal way
    assert "企业）的全称" in ent.read_text()
    assert len(api_sends(fake, OPENID)) == 1


async def test_reservation_is_released_or_runs_out(world: tuple[Playground, FakeWeChat]) -> None:
    """The worker's side alone: a waiter that gave up gets the row released; a dead one lets it run out."""
    pg, fake = world
    passive, sessions, clock = pg.app[passive_key], pg.app[sessions_key], pg.clock
    ent = WeChatUser(pg, fake, OPENID)
    await ent.say("你好")
    base = len(fake.sent)

    async def handle(msg_id: str, *, report: bool) -> int:
        msg = IncomingMessage(channel="wechat", sender=OPENID, platform_msg_id=msg_id,
                              kind=IncomingKind.TEXT, text="x")
        assert passive.expect("wechat", msg_id, lambda m: True)
        async with sessions() as s, s.begin():
            row = OutboxMessage(channel="wechat", address=OPENID, conversation=f"wechat:{OPENID}",
                                payload=text(f"回复 {msg_id}").to_json(), next_attempt_at=clock.now(),
                                created_at=clock.now())
            s.add(row)
            reserved = await passive.reserve(s, msg, [row])
        assert reserved is not None and reserved.until == clock.now() + RESERVE
        if report:
            assert await passive.wait("wechat", msg_id, 0) is None  # the callback gave up at once
            await passive.handled(msg, reserved)  # … so the worker releases the row
        else:
            passive.forget("wechat", msg_id)  # the process "died": nobody will release it
        return reserved.row_id

    await handle("m-released", report=True)
    await pg.settle()
    assert [s["text"]["content"] for s in fake.sent[base:]] == ["回复 m-released"]
    await handle("m-orphan", report=False)
    await pg.settle()
    assert len(fake.sent) == base + 1  # still reserved
    clock.advance(RESERVE + timedelta(seconds=1))
    await pg.settle()
    assert [s["text"]["content"] for s in fake.sent[base:]] == ["回复 m-released", "回复 m-orphan"]


def test_wait_longer_than_the_platform_allows_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="wechat.passive_reply_ms"):
        make_settings("sqlite+aiosqlite:///x.db", tmp_path,
                      wechat={"app_id": "a", "app_secret": "b", "token": "t", "passive_reply_ms": 5000})


def test_only_texts_that_survive_the_xml_answer_fit() -> None:
    assert fits_passive(text("您好，请问贵单位（企业）的全称？"))
    assert not fits_passive(text("原话：a ]]> b"))  # would close wechatpy's CDATA early
    assert not fits_passive(text("控制字符\x07"))
    assert not fits_passive(text("长" * 1000))  # 3,000 bytes: two customer-service parts
    assert not fits_passive(OutgoingMessage(kind=OutgoingKind.IMAGE, media_path="/nonexistent.jpg"))
