"""POST /dingtalk/callback: verification, parsing, dedupe, and that a refused request stores nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.channels.dingtalk import parse_message
from bot.channels.dingtalk_sender import EXTRA_WEBHOOK, EXTRA_WEBHOOK_EXPIRES
from bot.channels.dingtalk_sign import callback_sign, verify_callback
from bot.keys import intake_key
from handlers.messages import IncomingKind, IncomingMessage
from tests.channels.dingtalk_harness import running

# platforms.md §2F: the 免登 vector's inputs (timestamp 1546084445901, appSecret testappSecret) run
# through the callback algorithm. Self-computed by the reference, not an official value.
VECTOR_TS = "1546084445901"
VECTOR_SECRET = "testappSecret"
VECTOR_SIGN = "fYP0TV8RJULxGabs59wSO94FZbNekbH7ebQJu2oy+/0="


def test_callback_sign_matches_the_reference_vector() -> None:
    assert callback_sign(VECTOR_TS, VECTOR_SECRET) == VECTOR_SIGN
    assert verify_callback(VECTOR_TS, VECTOR_SIGN, VECTOR_SECRET, now_ms=0, window_s=0)
    assert not verify_callback(VECTOR_TS, VECTOR_SIGN, "otherSecret", now_ms=0, window_s=0)
    # the window is applied when set: 2018 is far outside an hour of "now"
    assert not verify_callback(VECTOR_TS, VECTOR_SIGN, VECTOR_SECRET, now_ms=1_800_000_000_000, window_s=3600)


async def test_vector_through_the_real_endpoint_with_the_window_off(tmp_path: Path) -> None:
    async with running(tmp_path, app_secret=VECTOR_SECRET, timestamp_window_s=0) as h:
        headers = {"timestamp": VECTOR_TS, "sign": VECTOR_SIGN, "Content-Type": "application/json"}
        resp = await h.post(h.fake.message("staff1", "你好", msg_id="vec1"), headers)
        assert resp.status == 200
        assert await resp.json() == {}
        rows = await h.inbox()
        assert [(r.channel, r.platform_msg_id, r.sender, r.text) for r in rows] == [
            ("dingtalk", "vec1", "staff1", "你好")
        ]


async def test_vector_is_stale_with_the_default_window(tmp_path: Path) -> None:
    async with running(tmp_path, app_secret=VECTOR_SECRET) as h:
        headers = {"timestamp": VECTOR_TS, "sign": VECTOR_SIGN}
        resp = await h.post(h.fake.message("staff1", "你好"), headers)
        assert resp.status == 403
        assert await h.inbox_count() == 0


@pytest.mark.parametrize(
    "make_headers",
    [
        pytest.param(lambda h: h.fake.headers(secret="wrong-secret"), id="forged-sign"),
        pytest.param(lambda h: {**h.fake.headers(), "sign": ""}, id="empty-sign"),
        pytest.param(lambda h: {"Content-Type": "application/json"}, id="no-headers"),
        pytest.param(lambda h: {**h.fake.headers(), "timestamp": "12ab"}, id="non-numeric-timestamp"),
        pytest.param(
            lambda h: h.fake.headers(int((h.clock.now() - timedelta(hours=1, seconds=1)).timestamp() * 1000)),
            id="stale",
        ),
        pytest.param(
            lambda h: h.fake.headers(int((h.clock.now() + timedelta(hours=1, seconds=1)).timestamp() * 1000)),
            id="future",
        ),
    ],
)
async def test_unverified_requests_are_refused_and_store_nothing(tmp_path: Path, make_headers: Any) -> None:
    async with running(tmp_path) as h:
        resp = await h.post(h.fake.message("staff1", "接单 1024"), make_headers(h))
        assert resp.status == 403
        assert await h.inbox_count() == 0


async def test_a_timestamp_inside_the_window_is_accepted(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        ts = int((h.clock.now() - timedelta(minutes=59)).timestamp() * 1000)
        resp = await h.post(h.fake.message("staff1", "你好"), h.fake.headers(ts))
        assert resp.status == 200
        assert await h.inbox_count() == 1


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{not json", id="broken-json"),
        pytest.param(b"\xff\xfe\x00", id="not-utf8"),
        pytest.param(b"[1, 2]", id="array"),
        pytest.param(b'{"msgtype": "text", "text": {"content": "hi"}, "senderStaffId": "s"}', id="no-msgId"),
        pytest.param(b'{"msgtype": "text", "msgId": "m1", "senderStaffId": "s"}', id="no-text"),
        pytest.param(b'{"msgtype": "text", "msgId": "m1", "text": {"content": "hi"}}', id="no-sender"),
        pytest.param(
            b'{"msgtype": "picture", "msgId": "m1", "senderStaffId": "s", "content": 5}', id="bad-content"
        ),
        pytest.param(
            b'{"msgtype": "richText", "msgId": "m1", "senderStaffId": "s", "content": {}}', id="no-parts"
        ),
    ],
)
async def test_bad_payloads_are_400_and_store_nothing(tmp_path: Path, body: bytes) -> None:
    async with running(tmp_path) as h:
        resp = await h.post(body)
        assert resp.status == 400
        assert await h.inbox_count() == 0


async def test_oversized_body_is_413_and_stores_nothing(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        big = h.fake.message("staff1", "长" * h.settings.server.max_body_bytes)
        resp = await h.post(big)
        assert resp.status == 413
        assert await h.inbox_count() == 0


async def test_the_same_msgid_three_times_gives_one_row(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        body = h.fake.message("staff1", "设备报警了", msg_id="msgDUP")
        statuses = [(await h.post(body)).status for _ in range(3)]
        assert statuses == [200, 200, 200]
        rows = await h.inbox()
        assert [r.platform_msg_id for r in rows] == ["msgDUP"]


async def test_inbox_down_answers_503_never_500(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with running(tmp_path) as h:

        async def broken(msg: IncomingMessage) -> bool:
            raise ConnectionError("database is down")

        monkeypatch.setattr(h.app[intake_key], "accept", broken)
        resp = await h.post(h.fake.message("staff1", "你好"))
        assert resp.status == 503


async def test_unhandled_msgtype_is_acknowledged_without_a_row(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        resp = await h.post(h.fake.message("staff1", msgtype="interactiveCard", content={}))
        assert resp.status == 200
        assert await h.inbox_count() == 0


async def test_the_stored_row_carries_the_session_webhook(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        body = h.fake.message("staff7", "  你好")
        assert (await h.post(body)).status == 200
        (row,) = await h.inbox()
        assert row.text == "你好"
        assert row.conversation == "dingtalk:staff7"
        extra = row.payload["identity_extra"]  # stored on the sender's identity by the pipeline
        assert extra[EXTRA_WEBHOOK] == body["sessionWebhook"]
        assert extra[EXTRA_WEBHOOK_EXPIRES] == body["sessionWebhookExpiredTime"]
        assert row.payload["extra"]["sender_nick"] == "用户staff7"


# --- parsing, without HTTP -------------------------------------------------------------------------

API = "https://api.dingtalk.com"
HOOK = "https://oapi.dingtalk.com/robot/sendBySession?session=abc"


def body(msgtype: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "msgtype": msgtype,
        "msgId": "m1",
        "senderStaffId": "staff1",
        "senderId": "$:LWCP_v1:$x",
        "conversationType": "1",
        "sessionWebhook": HOOK,
        "sessionWebhookExpiredTime": 1_800_000_000_000,
    }
    return {**base, **fields}


def parse(b: dict[str, Any]) -> IncomingMessage:
    msg = parse_message(b, api_base=API)
    assert msg is not None
    return msg


def test_text_strips_the_mention_space() -> None:
    msg = parse(body("text", text={"content": " 接单 1024 "}))
    assert (msg.kind, msg.text, msg.sender, msg.platform_msg_id) == (
        IncomingKind.TEXT,
        "接单 1024",
        "staff1",
        "m1",
    )


def test_picture_keeps_the_download_code() -> None:
    msg = parse(body("picture", content={"downloadCode": "dlA", "pictureDownloadCode": "pdlA"}))
    assert (msg.kind, msg.media_ref) == (IncomingKind.IMAGE, "dlA")


def test_picture_content_may_arrive_json_encoded() -> None:
    msg = parse(body("picture", content='{"downloadCode": "dlB"}'))
    assert msg.media_ref == "dlB"


def test_rich_text_joins_text_and_takes_the_first_picture() -> None:
    parts = [
        {"text": "天车不动了，"},
        {"type": "picture", "downloadCode": "dl1", "pictureDownloadCode": "p1"},
        {"text": "见图"},
        {"type": "picture", "downloadCode": "dl2"},
    ]
    msg = parse(body("richText", content={"richText": parts}))
    assert (msg.kind, msg.text, msg.media_ref) == (IncomingKind.IMAGE, "天车不动了，见图", "dl1")


def test_rich_text_without_pictures_is_text() -> None:
    msg = parse(body("richText", content={"richText": [{"text": "只有文字"}]}))
    assert (msg.kind, msg.media_ref) == (IncomingKind.TEXT, None)


def test_audio_carries_the_recognition() -> None:
    msg = parse(body("audio", content={"downloadCode": "dlV", "duration": 4000, "recognition": "电机过热"}))
    assert (msg.kind, msg.text, msg.media_ref) == (IncomingKind.VOICE, "电机过热", "dlV")


def test_audio_without_recognition_has_empty_text() -> None:
    msg = parse(body("audio", content={"downloadCode": "dlV"}))
    assert (msg.kind, msg.text) == (IncomingKind.VOICE, "")


def test_file_carries_its_name() -> None:
    msg = parse(body("file", content={"downloadCode": "dlF", "fileName": "图纸.pdf", "spaceId": "1"}))
    assert (msg.kind, msg.text, msg.media_ref) == (IncomingKind.FILE, "图纸.pdf", "dlF")


def test_sender_falls_back_to_sender_id() -> None:
    msg = parse(body("text", text={"content": "hi"}, senderStaffId=None))
    assert msg.sender == "$:LWCP_v1:$x"


def test_group_messages_never_keep_the_webhook() -> None:
    msg = parse(body("text", text={"content": "hi"}, conversationType="2"))
    assert EXTRA_WEBHOOK not in msg.identity_extra


@pytest.mark.parametrize(
    "hook", ["https://evil.example.com/robot/sendBySession?session=x", "http://oapi.dingtalk.com/robot/x"]
)
def test_a_webhook_outside_dingtalk_is_dropped(hook: str) -> None:
    msg = parse(body("text", text={"content": "hi"}, sessionWebhook=hook))
    assert EXTRA_WEBHOOK not in msg.identity_extra


def test_string_expiry_is_accepted() -> None:
    msg = parse(body("text", text={"content": "hi"}, sessionWebhookExpiredTime="1800000000000"))
    assert msg.identity_extra[EXTRA_WEBHOOK_EXPIRES] == 1_800_000_000_000
