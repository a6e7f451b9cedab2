"""The service-account sender against the fake API: the shared token, the 48-hour window, rendering."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.base import HeldSendError, PermanentSendError, TransientSendError
from bot.channels.media import MediaStore
from bot.channels.wechat_sender import WeChatSender
from bot.channels.wechat_token import read_token
from bot.config import WeChatSettings
from handlers.clock import ManualClock
from handlers.messages import (
    Button,
    IncomingKind,
    IncomingMessage,
    OutgoingKind,
    OutgoingMessage,
    card,
    text,
)
from storage.db import create_engine, session_factory
from storage.models import ChannelToken, Identity, Person
from tests.fakes.wechat_api import FakeWeChat


@dataclass
class Env:
    fake: FakeWeChat
    clock: ManualClock
    sessions: async_sessionmaker[AsyncSession]
    http: aiohttp.ClientSession
    settings: WeChatSettings
    tmp: Path

    def sender(self, owner: str = "p1") -> WeChatSender:
        return WeChatSender(
            self.http,
            self.settings,
            clock=self.clock,
            sessions=self.sessions,
            media=MediaStore(self.tmp / "media", 100_000),
            owner=owner,
            rng=lambda: 0.5,
            timeout_s=2.0,  # generous: a busy 2-core CI box once took > 0.2 s for a loopback gettoken
            token_poll_s=0.01,
        )

    async def seen(self, openid: str, ago: timedelta) -> None:
        async with self.sessions() as s, s.begin():
            person = Person(role="enterprise", name="企业", created_at=self.clock.now())
            s.add(person)
            await s.flush()
            s.add(
                Identity(
                    person_id=person.id,
                    channel="wechat",
                    channel_user_id=openid,
                    last_seen_at=self.clock.now() - ago,
                )
            )


@pytest.fixture
async def env(db_url: str, tmp_path: Path) -> AsyncIterator[Env]:
    """The sender's world on each backend (the lead's ``db_url``: a migrated SQLite / PostgreSQL)."""
    clock = ManualClock()
    fake = FakeWeChat(clock)
    await fake.start()
    engine = create_engine(db_url)
    settings = WeChatSettings(app_id=fake.app_id, app_secret=fake.secret, token="t", api_base=fake.base_url)
    async with aiohttp.ClientSession() as http:
        yield Env(fake, clock, session_factory(engine), http, settings, tmp_path)
    await engine.dispose()
    await fake.close()


def texts(fake: FakeWeChat) -> list[str]:
    return [m["text"]["content"] for m in fake.sent if m["msgtype"] == "text"]


async def test_custom_text_inside_the_window(env: Env) -> None:
    env.fake.touch("o1")
    await env.sender().send("o1", text("师傅已接单"), extra={})
    assert texts(env.fake) == ["师傅已接单"]
    row = await read_token(env.sessions, "wechat")
    assert row is not None and row.token.startswith("mptok") and row.lock_owner == ""


async def test_card_becomes_text_listing_the_commands(env: Env) -> None:
    env.fake.touch("o1")
    await env.sender().send(
        "o1",
        card("服务评价", "请为本次服务打分", [Button("5分", "评分 5"), Button("4分", "评分 4")]),
        extra={},
    )
    [body] = texts(env.fake)
    assert body.startswith("服务评价\n请为本次服务打分")
    assert "「评分 5」" in body and "「评分 4」" in body


async def test_two_processes_share_one_token_and_refresh_once(env: Env) -> None:
    # The fake invalidates the previous token on every fetch (no grace): two independent refreshes
    # would make one process's token fail with 40001.
    env.fake.touch("o1")
    a, b = env.sender("proc-a"), env.sender("proc-b")
    await asyncio.gather(*(s.send("o1", text(f"{i}"), extra={}) for i in range(5) for s in (a, b)))
    assert env.fake.token_fetches == 1
    assert len(env.fake.sent) == 10


async def test_expired_token_is_refreshed_by_one_process_only(env: Env) -> None:
    env.fake.touch("o1")
    a, b = env.sender("proc-a"), env.sender("proc-b")
    await a.send("o1", text("一"), extra={})
    await b.send("o1", text("二"), extra={})
    env.fake.expire_tokens()
    await asyncio.gather(a.send("o1", text("三"), extra={}), b.send("o1", text("四"), extra={}))
    assert env.fake.token_fetches == 2
    assert sorted(texts(env.fake)) == sorted(["一", "二", "三", "四"])


async def test_lock_held_by_a_live_process_makes_others_wait_then_fail_transiently(env: Env) -> None:
    env.fake.touch("o1")
    env.fake.token_gate = gate = asyncio.Event()  # proc-a's refresh hangs until the test opens the gate
    a, b = env.sender("proc-a"), env.sender("proc-b")
    a.api.timeout = aiohttp.ClientTimeout(total=5)
    slow = asyncio.create_task(a.send("o1", text("慢"), extra={}))
    for _ in range(500):  # bounded wait until proc-a holds the lock row (no fixed sleep: machines vary)
        row = await read_token(env.sessions, "wechat")
        if row is not None and row.lock_owner == "proc-a":
            break
        await asyncio.sleep(0.005)
    else:
        raise AssertionError("proc-a never took the lock")
    with pytest.raises(TransientSendError) as err:
        await b.send("o1", text("等"), extra={})
    assert err.value.code == "token_lock"
    gate.set()
    await slow
    await b.send("o1", text("等"), extra={})  # the outbox's retry finds the token in the row
    assert env.fake.token_fetches == 1


async def test_dead_lock_holder_is_taken_over_after_lock_s(env: Env) -> None:
    env.fake.touch("o1")
    async with env.sessions() as s, s.begin():
        await s.execute(
            insert(ChannelToken).values(
                name="wechat", token="", lock_owner="dead", lock_until=env.clock.now() + timedelta(seconds=30)
            )
        )
    sender = env.sender()
    with pytest.raises(TransientSendError):
        await sender.send("o1", text("x"), extra={})
    env.clock.advance(timedelta(seconds=31))
    await sender.send("o1", text("x"), extra={})
    assert texts(env.fake) == ["x"]


async def test_outside_window_known_locally_is_held_without_calling(env: Env) -> None:
    await env.seen("o2", timedelta(hours=49))
    with pytest.raises(HeldSendError) as err:
        await env.sender().send("o2", text("迟到的回复"), extra={})
    assert err.value.code == "window_closed"
    assert env.fake.sent == [] and env.fake.templates == []


async def test_window_known_from_the_outbox_extra(env: Env) -> None:
    # The outbox passes the identity's last_seen_at; it wins over a (missing) identity row.
    stale = (env.clock.now() - timedelta(hours=48, minutes=1)).isoformat()
    with pytest.raises(HeldSendError):
        await env.sender().send("o9", text("x"), extra={"last_seen_at": stale})
    env.fake.touch("o9")
    fresh = (env.clock.now() - timedelta(hours=47)).isoformat()
    await env.sender().send("o9", text("y"), extra={"last_seen_at": fresh})
    assert texts(env.fake) == ["y"]


async def test_outside_window_answered_by_the_platform_45015(env: Env) -> None:
    await env.seen("o3", timedelta(hours=1))  # we think it is open; the platform knows better
    with pytest.raises(HeldSendError) as err:
        await env.sender().send("o3", text("x"), extra={})
    assert err.value.code == "45015"


async def test_outside_window_with_a_template_notifies_once_and_holds(env: Env) -> None:
    env.settings.template_id_notice = "TPL-1"
    await env.seen("o4", timedelta(hours=72))
    sender = env.sender()
    first = "您的需求已有师傅接单，联系电话将在稍后发送给您"
    assert len(first) > 20
    for body in (first, "第二条"):
        with pytest.raises(HeldSendError) as err:
            await sender.send("o4", text(body), extra={})
        assert err.value.code == "window_closed_notified"
    [notice] = env.fake.templates
    assert notice["touser"] == "o4" and notice["template_id"] == "TPL-1"
    assert notice["data"]["thing1"]["value"] == first[:20]  # "thing" fields take 20 characters


async def test_a_refused_template_still_holds_the_message(env: Env) -> None:
    env.settings.template_id_notice = "TPL-WRONG"
    await env.seen("o5", timedelta(hours=72))
    env.fake.fail_next(("errcode", 40037))  # invalid template_id
    with pytest.raises(HeldSendError) as err:
        await env.sender().send("o5", text("x"), extra={})
    assert err.value.code == "window_closed"


async def test_image_upload_and_file_refused(env: Env) -> None:
    env.fake.touch("o1")
    photo = env.tmp / "fix.png"
    photo.write_bytes(b"\x89PNG fixed")
    await env.sender().send("o1", OutgoingMessage(kind=OutgoingKind.IMAGE, media_path=str(photo)), extra={})
    [sent] = env.fake.sent
    assert env.fake.media[sent["image"]["media_id"]].data == b"\x89PNG fixed"
    with pytest.raises(PermanentSendError):
        await env.sender().send(
            "o1", OutgoingMessage(kind=OutgoingKind.FILE, media_path=str(photo)), extra={}
        )


async def test_5xx_and_rate_limit_are_transient(env: Env) -> None:
    env.fake.touch("o1")
    env.fake.fail_next(("status", 503), ("errcode", 45009))
    sender = env.sender()
    for code in ("http503", "45009"):
        with pytest.raises(TransientSendError) as err:
            await sender.send("o1", text("x"), extra={})
        assert err.value.code == code
    await sender.send("o1", text("x"), extra={})
    assert texts(env.fake) == ["x"]


async def test_fetch_media(env: Env) -> None:
    media_id = env.fake.add_media(b"voice-bytes", "audio/amr", "v.amr")
    msg = IncomingMessage(
        channel="wechat", sender="o1", platform_msg_id="m", kind=IncomingKind.VOICE, media_ref=media_id
    )
    path = await env.sender().fetch_media(msg)
    assert path is not None and path.endswith(".amr") and Path(path).read_bytes() == b"voice-bytes"
