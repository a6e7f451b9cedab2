"""The DingTalk sender against the fake: webhook vs batchSend, tokens, throttling, rendering, media."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from bot import config
from bot.channels.base import PermanentSendError, TransientSendError
from bot.channels.dingtalk_sender import DingTalkSender
from bot.keys import dingtalk_key, http_key
from handlers.messages import (
    Button,
    IncomingKind,
    IncomingMessage,
    OutgoingKind,
    OutgoingMessage,
    card,
    card_update,
    markdown,
    text,
)
from tests.channels.dingtalk_harness import PUBLIC_URL, Harness, running
from tests.fakes.dingtalk_api import SESSION_LIFETIME_MS, TOKEN_LIFETIME_S


async def received_extra(h: Harness, staff_id: str) -> dict[str, Any]:
    """Post a message from ``staff_id`` and return the extras the inbox row keeps for its identity."""
    assert (await h.post(h.fake.message(staff_id, "你好"))).status == 200
    row = (await h.inbox())[-1]
    extra: dict[str, Any] = row.payload["identity_extra"]
    return extra


async def deliver(sender: DingTalkSender, address: str, msg: OutgoingMessage, extra: dict[str, Any]) -> int:
    """What the outbox does: retry on TransientSendError. Returns the number of attempts."""
    for attempt in range(1, 6):
        try:
            await sender.send(address, msg, extra=extra)
            return attempt
        except TransientSendError:
            continue
    raise AssertionError("not delivered in 5 attempts")


async def test_a_valid_session_webhook_is_used(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        extra = await received_extra(h, "staff1")
        await h.sender.send("staff1", text("收到，正在为您匹配工匠"), extra=extra)
        assert [(s.via, s.user_id, s.msg_key, s.param) for s in h.fake.sent] == [
            ("webhook", "staff1", "text", {"content": "收到，正在为您匹配工匠"})
        ]
        assert h.fake.token_fetches == 0  # the webhook needs no token


async def test_an_expired_webhook_falls_back_to_batch_send(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        extra = await received_extra(h, "staff1")
        h.clock.advance(timedelta(milliseconds=SESSION_LIFETIME_MS + 1))
        key = await h.sender.send("staff1", markdown("进展", "**已派单**"), extra=extra)
        assert key and key.startswith("pqk")
        (sent,) = h.fake.sent
        assert (sent.via, sent.user_id, sent.msg_key) == ("batchSend", "staff1", "sampleMarkdown")
        assert sent.param == {"title": "进展", "text": "#### 进展\n\n**已派单**"}
        assert "/robot/sendBySession" not in h.fake.requests  # not even tried: known to be expired


async def test_a_webhook_the_platform_refuses_falls_back_once(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        extra = await received_extra(h, "staff1")
        # The platform ended the session early (the fake answers a non-zero errcode for unknown sessions).
        extra = {**extra, "session_webhook": extra["session_webhook"].split("session=")[0] + "session=gone"}
        await h.sender.send("staff1", text("你好"), extra=extra)
        assert [s.via for s in h.fake.sent] == ["batchSend"]


async def test_no_webhook_means_batch_send(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        await h.sender.send("staff9", text("新的服务需求"), extra={})
        (sent,) = h.fake.sent
        assert (sent.via, sent.msg_key, sent.param) == (
            "batchSend",
            "sampleText",
            {"content": "新的服务需求"},
        )


async def test_the_token_is_cached_until_five_minutes_before_expiry(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        for _ in range(3):
            await h.sender.send("staff1", text("a"), extra={})
        assert h.fake.token_fetches == 1
        h.clock.advance(timedelta(seconds=TOKEN_LIFETIME_S - 300 - 1))
        await h.sender.send("staff1", text("b"), extra={})
        assert h.fake.token_fetches == 1
        h.clock.advance(timedelta(seconds=2))
        await h.sender.send("staff1", text("c"), extra={})
        assert h.fake.token_fetches == 2
        assert len(h.fake.sent) == 5


async def test_concurrent_sends_share_one_token_fetch(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        await asyncio.gather(*(h.sender.send(f"staff{i}", text("通知"), extra={}) for i in range(8)))
        assert h.fake.token_fetches == 1
        assert sorted(s.user_id for s in h.fake.sent) == sorted(f"staff{i}" for i in range(8))


async def test_a_token_revoked_mid_run_is_refetched_and_delivered_once(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        await h.sender.send("staff1", text("第一条"), extra={})
        h.fake.expire_tokens()
        await h.sender.send("staff1", text("第二条"), extra={})
        assert h.fake.token_fetches == 2
        assert [s.param["content"] for s in h.fake.sent] == ["第一条", "第二条"]


async def test_a_token_refused_twice_is_transient(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with running(tmp_path) as h:
        monkeypatch.setattr(h.fake, "_token_ok", lambda request: False)
        with pytest.raises(TransientSendError) as err:
            await h.sender.send("staff1", text("x"), extra={})
        assert err.value.code == "token_rejected"
        assert h.fake.token_fetches == 2 and h.fake.sent == []


async def test_per_user_throttling_is_retried_and_delivered_once(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        h.fake.throttle_users(2)
        with pytest.raises(TransientSendError) as err:
            await h.sender.send("staff1", text("报价"), extra={})
        assert err.value.code == "flow_controlled" and err.value.retry_after == 60.0
        attempts = await deliver(h.sender, "staff1", text("报价"), {})
        assert attempts == 2
        assert [(s.user_id, s.param["content"]) for s in h.fake.sent] == [("staff1", "报价")]


@pytest.mark.parametrize("status", [500, 503, 429, 403])
async def test_server_errors_and_rate_limits_are_transient(tmp_path: Path, status: int) -> None:
    async with running(tmp_path) as h:
        h.fake.fail_next(1, status)
        with pytest.raises(TransientSendError):
            await h.sender.send("staff1", text("x"), extra={})
        assert h.fake.sent == []
        assert await deliver(h.sender, "staff1", text("x"), {}) == 1
        assert len(h.fake.sent) == 1


async def test_token_expiry_and_throttling_together_deliver_each_message_once(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        messages = [text(f"第{i}条") for i in range(6)]
        for i, msg in enumerate(messages):
            if i == 2:
                h.fake.expire_tokens()
            if i == 3:
                h.fake.throttle_users(1)
            if i == 4:
                h.fake.fail_next(1, 503)
            await deliver(h.sender, "staff1", msg, {})
        assert [s.param["content"] for s in h.fake.sent] == [m.text for m in messages]


async def test_an_invalid_user_is_permanent(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        h.fake.invalid_users.add("gone")
        with pytest.raises(PermanentSendError) as err:
            await h.sender.send("gone", text("x"), extra={})
        assert err.value.code == "invalid_user"


async def test_a_wrong_app_secret_is_permanent(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        h.fake.app_secret = "rotated"
        with pytest.raises(PermanentSendError) as err:
            await h.sender.send("staff1", text("x"), extra={})
        assert err.value.code == "token:invalidClientIdOrSecret"


async def test_an_unreachable_platform_is_transient(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        await h.fake.close()
        with pytest.raises(TransientSendError):
            await h.sender.send("staff1", text("x"), extra={})


# --- rendering -------------------------------------------------------------------------------------


def _local(url: str) -> str:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC_URL
    return f"{parts.path}?{parts.query}"


async def test_a_card_becomes_an_action_card_with_signed_tap_links(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        offer = card(
            "新需求 #1024",
            "焊接开裂\n地点：开发区",
            [Button("接单", "接单 1024"), Button("婉拒", "婉拒 1024")],
        )
        await h.sender.send("staff1", offer, extra={})
        (sent,) = h.fake.sent
        assert sent.msg_key == "sampleActionCard2"
        assert (sent.param["actionTitle1"], sent.param["actionTitle2"]) == ("接单", "婉拒")
        assert "焊接开裂  \n地点：开发区" in sent.param["text"]
        assert "也可直接回复：「接单 1024」 / 「婉拒 1024」" in sent.param["text"]
        url1, url2 = sent.param["actionURL1"], sent.param["actionURL2"]
        assert url1 != url2 and _local(url1).startswith("/dingtalk/tap?t=")


async def test_a_card_over_the_webhook_is_an_action_card(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        extra = await received_extra(h, "staff1")
        await h.sender.send(
            "staff1",
            card("评价", "请为本次服务打分", [Button(f"{i}分", f"{i}分") for i in range(1, 6)]),
            extra=extra,
        )
        (sent,) = h.fake.sent
        assert (sent.via, sent.msg_key) == ("webhook", "actionCard")
        assert [b["title"] for b in sent.param["btns"]] == ["1分", "2分", "3分", "4分", "5分"]


async def test_one_button_uses_the_single_action_card(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        await h.sender.send("staff1", card("进展", "已完成？", [Button("完成", "完成 1024")]), extra={})
        (sent,) = h.fake.sent
        assert sent.msg_key == "sampleActionCard" and sent.param["singleTitle"] == "完成"


async def test_more_than_six_buttons_keep_six_links_and_every_typed_command(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        buttons = [Button(f"选项{i}", f"选 {i}") for i in range(8)]
        await h.sender.send("staff1", card("请选择", "分组", buttons), extra={})
        (sent,) = h.fake.sent
        assert sent.msg_key == "sampleActionCard6" and "actionURL7" not in sent.param
        assert "「选 7」" in sent.param["text"]


async def test_an_image_is_a_photo_url_served_by_us(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        media_dir = Path(h.settings.bot.media_dir)
        media_dir.mkdir(parents=True)
        photo = media_dir / "abc.jpg"
        photo.write_bytes(b"\xff\xd8\xffjpeg-bytes")
        msg = OutgoingMessage(kind=OutgoingKind.IMAGE, media_path=str(photo))
        await h.sender.send("staff1", msg, extra={})
        (sent,) = h.fake.sent
        assert sent.msg_key == "sampleImageMsg"
        local = _local(sent.param["photoURL"])
        resp = await h.client.get(local)
        assert resp.status == 200 and await resp.read() == b"\xff\xd8\xffjpeg-bytes"
        tampered = await h.client.get(local[:-3] + ("AAA" if not local.endswith("AAA") else "BBB"))
        assert tampered.status == 403
        h.clock.advance(timedelta(days=8))
        assert (await h.client.get(local)).status == 410


async def test_a_media_link_outside_the_media_dir_is_not_served(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        secret = tmp_path / "craftlink.db"
        url = h.app[dingtalk_key].links.media_url(str(secret))
        assert (await h.client.get(_local(url))).status == 404


async def test_a_file_is_sent_as_a_markdown_link(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        msg = OutgoingMessage(
            kind=OutgoingKind.FILE, media_path=str(tmp_path / "media/r.pdf"), file_name="月报.pdf"
        )
        await h.sender.send("staff1", msg, extra={})
        (sent,) = h.fake.sent
        assert sent.msg_key == "sampleMarkdown" and "[文件：月报.pdf（点击下载）](" in sent.param["text"]


async def test_an_image_without_a_path_is_permanent(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        with pytest.raises(PermanentSendError):
            await h.sender.send("staff1", OutgoingMessage(kind=OutgoingKind.IMAGE), extra={})


# --- media in ------------------------------------------------------------------------------------


async def test_fetch_media_downloads_and_stores(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        stored: list[tuple[bytes, str]] = []

        async def store(data: bytes, suffix: str) -> str:
            stored.append((data, suffix))
            return f"/media/x{suffix}"

        dt_settings = config.dingtalk(h.settings)
        assert dt_settings is not None
        sender = DingTalkSender(
            http=h.app[http_key],
            settings=dt_settings,
            clock=h.clock,
            links=h.app[dingtalk_key].links,
            media_max_bytes=32,
            store_media=store,
        )
        code = h.fake.add_file(b"\x89PNG\r\n\x1a\nimage")
        pic = IncomingMessage("dingtalk", "staff1", "m1", IncomingKind.IMAGE, media_ref=code)
        assert await sender.fetch_media(pic) == "/media/x.png"
        assert stored == [(b"\x89PNG\r\n\x1a\nimage", ".png")]
        doc = IncomingMessage(
            "dingtalk",
            "staff1",
            "m2",
            IncomingKind.FILE,
            text="图纸.PDF",
            media_ref=h.fake.add_file(b"%PDF-1"),
        )
        assert await sender.fetch_media(doc) == "/media/x.pdf"
        too_big = IncomingMessage(
            "dingtalk", "s", "m3", IncomingKind.IMAGE, media_ref=h.fake.add_file(b"x" * 33)
        )
        assert await sender.fetch_media(too_big) is None
        unknown = IncomingMessage("dingtalk", "s", "m4", IncomingKind.IMAGE, media_ref="nope")
        assert await sender.fetch_media(unknown) is None
        assert (
            await sender.fetch_media(IncomingMessage("dingtalk", "s", "m5", IncomingKind.TEXT)) is None
        )
        h.fake.fail_next(1, 503)
        with pytest.raises(TransientSendError):
            await sender.fetch_media(pic)
        assert len(stored) == 2


# --- secrets ---------------------------------------------------------------------------------------


async def test_secrets_are_never_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with running(tmp_path) as h:
        extra = await received_extra(h, "staff1")
        await h.post(h.fake.message("staff1", "x"), h.fake.headers(secret="bad"))  # refused: logs a warning
        await h.sender.send("staff1", text("a"), extra=extra)
        h.clock.advance(timedelta(hours=3))
        h.fake.expire_tokens()
        await h.sender.send("staff1", card("t", "b", [Button("接单", "接单 1")]), extra=extra)
        h.fake.fail_next(1, 503)
        with pytest.raises(TransientSendError):
            await h.sender.send("staff1", text("c"), extra={})
    # craftlink's own loggers; the fake's access log (aiohttp.access) is the platform's side.
    ours = [r for r in caplog.records if r.name.split(".")[0] in ("bot", "handlers", "storage")]
    logged = "\n".join(r.getMessage() + repr(r.args) for r in ours)
    assert "dingtalk" in logged  # something was logged, so the check below means something
    session = extra["session_webhook"].split("session=")[1]
    for secret in [h.fake.app_secret, session, *h.fake.issued_tokens]:
        assert secret not in logged


async def test_the_app_sender_stores_media_in_the_shared_store_and_serves_it_back(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        assert (
            await h.post(
                h.fake.message(
                    "staff1",
                    msgtype="picture",
                    content={"downloadCode": h.fake.add_file(b"\xff\xd8\xffphoto")},
                )
            )
        ).status == 200
        (row,) = await h.inbox()
        msg = IncomingMessage(
            "dingtalk",
            row.sender,
            row.platform_msg_id,
            IncomingKind.IMAGE,
            media_ref=row.payload["media_ref"],
        )
        path = await h.sender.fetch_media(msg)
        assert path is not None and path.endswith(".jpg")
        assert Path(path).resolve().is_relative_to(Path(h.settings.bot.media_dir).resolve())
        assert Path(path).read_bytes() == b"\xff\xd8\xffphoto"
        # relaying the same photo to a craftsman serves it from our signed URL
        await h.sender.send("craftsman1", OutgoingMessage(kind=OutgoingKind.IMAGE, media_path=path), extra={})
        resp = await h.client.get(_local(h.fake.sent[-1].param["photoURL"]))
        assert await resp.read() == b"\xff\xd8\xffphoto"


async def test_a_card_update_is_skipped_without_a_call(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        extra = await received_extra(h, "staff1")
        before = list(h.fake.requests)
        assert await h.sender.send("staff1", card_update("已接单", "rc1"), extra=extra) is None
        assert h.fake.requests == before and h.fake.sent == []  # neither the webhook nor the API
