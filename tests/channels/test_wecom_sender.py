"""The WeCom sender against the fake WeCom API: tokens, failures, pacing, rendering, media."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from bot.channels.base import DELIVERY, Delivery, PermanentSendError, TransientSendError
from bot.channels.media import MediaStore
from bot.channels.wecom_sender import WeComSender, render, render_card
from bot.channels.wx_callback import decode_key
from bot.config import WeComSettings
from handlers.clock import ManualClock
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
from tests.fakes.wecom_api import FakeWeCom

AES = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"


@dataclass
class Env:
    fake: FakeWeCom
    sender: WeComSender
    clock: ManualClock
    tmp: Path


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    clock = ManualClock()
    fake = FakeWeCom(clock)
    await fake.start()
    settings = WeComSettings(
        corp_id=fake.corp_id,
        agent_id=fake.agent_id,
        secret=fake.secret,
        token="tok",
        encoding_aes_key=AES,
        api_base=fake.base_url,
    )
    async with aiohttp.ClientSession() as http:
        sender = WeComSender(
            http,
            settings,
            clock=clock,
            media=MediaStore(tmp_path / "media", 100_000),
            rng=lambda: 0.5,
            timeout_s=2.0,  # generous: a busy 2-core CI box once took > 0.2 s for a loopback gettoken
        )
        yield Env(fake, sender, clock, tmp_path)
    await fake.close()


def ours(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Log records of the process under test (the fake platform's own access log is its business)."""
    return [r for r in caplog.records if r.name != "aiohttp.access"]


def contents(fake: FakeWeCom) -> list[str]:
    return [m[m["msgtype"]].get("content", "") for m in fake.sent]


async def test_text_is_delivered_and_the_token_cached(env: Env) -> None:
    for i in range(5):
        msgid = await env.sender.send("u1", text(f"第{i}条"), extra={})
        assert msgid and msgid.startswith("msg")
    assert contents(env.fake) == [f"第{i}条" for i in range(5)]
    assert env.fake.token_fetches == 1
    assert env.fake.sent[0]["agentid"] == env.fake.agent_id and env.fake.sent[0]["touser"] == "u1"


async def test_concurrent_sends_from_a_cold_cache_fetch_one_token(env: Env) -> None:
    await asyncio.gather(*(env.sender.send(f"u{i}", text("hi"), extra={}) for i in range(10)))
    assert len(env.fake.sent) == 10
    assert env.fake.token_fetches == 1


@pytest.mark.parametrize("kill", ["expire", "revoke"])
async def test_token_refused_mid_run_is_refreshed_once_and_the_send_retried(env: Env, kill: str) -> None:
    await env.sender.send("u1", text("一"), extra={})
    env.fake.expire_tokens() if kill == "expire" else env.fake.revoke_tokens()  # 42001 / 40014
    await env.sender.send("u1", text("二"), extra={})
    assert contents(env.fake) == ["一", "二"]
    assert env.fake.token_fetches == 2


async def test_token_is_renewed_before_it_expires(env: Env) -> None:
    await env.sender.send("u1", text("一"), extra={})
    env.clock.advance(timedelta(seconds=7200 - 200))  # inside the 300 s margin
    await env.sender.send("u1", text("二"), extra={})
    assert env.fake.token_fetches == 2
    assert env.fake.send_calls == 2  # no call was wasted on a token about to die


@pytest.mark.parametrize(
    ("failure", "code", "hint"),
    [
        (("errcode", 45009), "45009", (60, 120)),  # the platform says "not for a while": a hint
        (("errcode", 45033), "45033", (60, 120)),
        (("status", 502), "http502", None),  # no hint: the outbox's exponential backoff decides
        (("status", 500), "http500", None),
        (("errcode", -1), "-1", None),
    ],
)
async def test_rate_limits_and_5xx_are_transient_then_delivered(
    env: Env, failure: tuple[str, int], code: str, hint: tuple[float, float] | None
) -> None:
    env.fake.fail_next(failure)
    with pytest.raises(TransientSendError) as err:
        await env.sender.send("u1", text("稍后再试"), extra={})
    assert err.value.code == code
    if hint is None:
        assert err.value.retry_after is None
    else:
        assert err.value.retry_after is not None and hint[0] <= err.value.retry_after < hint[1]
    await env.sender.send("u1", text("稍后再试"), extra={})  # the outbox's retry
    assert contents(env.fake) == ["稍后再试"]


@pytest.mark.parametrize("mode", ["500", "refused"])
async def test_an_unreachable_or_failing_api_is_transient(env: Env, mode: str) -> None:
    await env.fake.go_down(mode)
    with pytest.raises(TransientSendError) as err:
        await env.sender.send("u1", text("稍后"), extra={})  # no token yet: gettoken fails the same way
    assert err.value.retry_after is None
    await env.fake.come_back()
    await env.sender.send("u1", text("稍后"), extra={})
    assert contents(env.fake) == ["稍后"]


async def test_every_send_asks_for_the_duplicate_check(env: Env) -> None:
    await env.sender.send("u1", text("单条"), extra={DELIVERY: Delivery(7, env.clock.now())})
    await env.sender.send("u1", text("没有投递键"), extra={})
    msg = card("新需求 #1", "主轴异响", [Button("接单", "接单 1")])
    await env.sender.send("u1", msg, extra={DELIVERY: Delivery(8, env.clock.now())})
    assert len(env.fake.sent) == 3
    for body in env.fake.sent:
        assert body["enable_duplicate_check"] == 1
        assert 1800 <= body["duplicate_check_interval"] <= 4 * 3600


async def test_a_resent_row_is_absorbed_by_the_duplicate_check(env: Env) -> None:
    """The outbox resends a row after a crash or a timeout: the same request, which WeCom drops."""
    key = Delivery(41, env.clock.now())
    msg = card("新需求 #1", "主轴异响", [Button("接单", "接单 1")])
    for m in (text("同一行"), msg):
        await env.sender.send("u1", m, extra={DELIVERY: key})
        env.clock.advance(timedelta(minutes=2))  # the lease ran out; another process sends it again
        await env.sender.send("u1", m, extra={DELIVERY: key})
        key = Delivery(42, env.clock.now())
    assert [b["msgtype"] for b in env.fake.sent] == ["text", "template_card"]
    assert [b["msgtype"] for b in env.fake.absorbed] == ["text", "template_card"]


async def test_two_rows_with_the_same_text_are_both_delivered(env: Env) -> None:
    """Two replies that happen to read the same (帮助 asked twice) are two rows: both are shown."""
    await env.sender.send("u1", text("请回复「帮助」"), extra={DELIVERY: Delivery(1, env.clock.now())})
    await env.sender.send("u1", text("请回复「帮助」"), extra={DELIVERY: Delivery(2, env.clock.now())})
    assert contents(env.fake) == ["请回复「帮助」", "请回复「帮助」"]


async def test_timeout_is_transient(env: Env) -> None:
    await env.sender.send("u1", text("warm"), extra={})
    env.fake.delay_s = 3.0  # the sender's timeout is 2 s
    with pytest.raises(TransientSendError):
        await env.sender.send("u1", text("慢"), extra={})
    env.fake.delay_s = 0.0
    await env.sender.send("u1", text("快"), extra={})
    assert contents(env.fake)[-1] == "快"


async def test_other_errcodes_are_permanent_with_the_code(env: Env) -> None:
    env.fake.fail_next(("errcode", 81013))
    with pytest.raises(PermanentSendError) as err:
        await env.sender.send("nobody", text("x"), extra={})
    assert err.value.code == "81013"


async def test_wrong_secret_is_permanent_and_never_logged(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    env.sender.settings.secret = "the-wrong-secret-value"
    with caplog.at_level(logging.DEBUG), pytest.raises(PermanentSendError) as err:
        await env.sender.send("u1", text("x"), extra={})
    assert "the-wrong-secret-value" not in str(err.value)
    assert all("the-wrong-secret-value" not in r.getMessage() for r in ours(caplog))


async def test_no_secret_or_token_in_logs(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        await env.sender.send("u1", text("一"), extra={})
        env.fake.expire_tokens()
        await env.sender.send("u1", text("二"), extra={})
        env.fake.fail_next(("status", 503))
        with pytest.raises(TransientSendError):
            await env.sender.send("u1", text("三"), extra={})
    logged = "\n".join(r.getMessage() for r in ours(caplog))
    assert "refreshing" in logged  # the refresh was logged, and said nothing secret
    for secret in (env.fake.secret, AES, *env.fake._tokens):
        assert secret not in logged


async def test_pacing_keeps_a_member_under_30_per_minute_without_drops(env: Env) -> None:
    for i in range(30):
        await env.sender.send("u1", text(f"{i}"), extra={})
    with pytest.raises(TransientSendError) as err:
        await env.sender.send("u1", text("第31条"), extra={})
    assert err.value.code == "paced" and err.value.retry_after == pytest.approx(60)
    await env.sender.send("u2", text("别人不受影响"), extra={})
    env.clock.advance(timedelta(seconds=60))
    await env.sender.send("u1", text("第31条"), extra={})
    assert env.fake.dropped == []
    assert len(env.fake.sent) == 32


async def test_markdown_is_split_at_line_ends_within_2048_bytes(env: Env) -> None:
    lines = [f"- 第{i}行：焊缝气孔检查记录，电流 180A，电压 24V" for i in range(120)]
    await env.sender.send("u1", markdown("检查记录", "\n".join(lines)), extra={})
    parts = contents(env.fake)
    assert len(parts) >= 3
    assert all(len(p.encode()) <= 2048 for p in parts)
    assert all(m["msgtype"] == "markdown" and m["enable_duplicate_check"] == 1 for m in env.fake.sent)
    assert "\n".join(parts).splitlines() == ["**检查记录**", *lines]


async def test_one_long_line_is_cut_between_characters() -> None:
    parts = render(text("焊" * 1000))  # 3000 bytes, no line end
    bodies = [p["text"]["content"] for p in parts if isinstance(p, dict)]
    assert [len(b.encode()) for b in bodies] == [2046, 954]
    assert "".join(bodies) == "焊" * 1000


async def test_card_renders_buttons_whose_keys_decode_to_the_commands(env: Env) -> None:
    msg = card(
        "新需求 #1024 数控车床",
        "主轴异响，需现场诊断",
        [Button("接单", "接单 1024"), Button("婉拒", "婉拒 1024")],
    )
    await env.sender.send("u1", msg, extra={})
    [sent] = env.fake.sent
    tc = sent["template_card"]
    assert tc["card_type"] == "button_interaction"
    assert tc["main_title"]["title"] == "新需求 #1024 数控车床"
    assert tc["sub_title_text"] == "主轴异响，需现场诊断"
    assert [b["text"] for b in tc["button_list"]] == ["接单", "婉拒"]
    assert [decode_key(b["key"]) for b in tc["button_list"]] == ["接单 1024", "婉拒 1024"]
    assert re.fullmatch(r"[A-Za-z0-9_\-@]{1,128}", tc["task_id"])


def test_card_task_ids_are_unique() -> None:
    msg = card("t", "b", [Button("好", "好")])
    ids = {p["template_card"]["task_id"] for _ in range(50) for p in render_card(msg) if isinstance(p, dict)}
    assert len(ids) == 50


def test_card_with_seven_buttons_falls_back_to_text_listing_the_commands() -> None:
    msg = card("评分", "请为本次服务打分", [Button(str(i), f"评分 {i}") for i in range(7)])
    [part] = render_card(msg)
    assert isinstance(part, dict) and part["msgtype"] == "text"
    assert "「评分 6」" in part["text"]["content"]


def test_card_with_a_long_body_sends_the_body_first() -> None:
    body = "故障描述：" + "设备运行中出现异常振动，" * 20
    parts = render_card(card("新需求", body, [Button("接单", "接单 7")]))
    assert [p["msgtype"] for p in parts if isinstance(p, dict)] == ["text", "template_card"]
    first, last = parts
    assert isinstance(first, dict) and isinstance(last, dict)
    assert first["text"]["content"] == body
    assert "sub_title_text" not in last["template_card"]


async def test_image_is_uploaded_then_sent(env: Env) -> None:
    photo = env.tmp / "weld.jpg"
    photo.write_bytes(b"\xff\xd8\xff jpeg bytes")
    msg = OutgoingMessage(kind=OutgoingKind.IMAGE, media_path=str(photo), text="焊缝照片")
    await env.sender.send("u1", msg, extra={})
    image, caption = env.fake.sent
    media = env.fake.media[image["image"]["media_id"]]
    assert (media.data, media.filename) == (b"\xff\xd8\xff jpeg bytes", "weld.jpg")
    assert caption["text"]["content"] == "焊缝照片"


async def test_voice_not_amr_goes_as_a_file_and_missing_files_are_permanent(env: Env) -> None:
    clip = env.tmp / "note.mp3"
    clip.write_bytes(b"ID3 mp3")
    await env.sender.send("u1", OutgoingMessage(kind=OutgoingKind.VOICE, media_path=str(clip)), extra={})
    assert env.fake.sent[0]["msgtype"] == "file"
    with pytest.raises(PermanentSendError) as err:
        await env.sender.send(
            "u1", OutgoingMessage(kind=OutgoingKind.FILE, media_path=str(env.tmp / "gone.pdf")), extra={}
        )
    assert err.value.code == "media_missing"


def incoming(media_ref: str, kind: IncomingKind = IncomingKind.IMAGE) -> IncomingMessage:
    return IncomingMessage(
        channel="wecom", sender="u1", platform_msg_id="1", kind=kind, media_ref=media_ref
    )


async def test_fetch_media_stores_by_content(env: Env) -> None:
    data = b"\x89PNG photo of a broken gear"
    media_id = env.fake.add_media(data, "image/png", "gear.png")
    path = await env.sender.fetch_media(incoming(media_id))
    assert path is not None
    assert Path(path).read_bytes() == data
    assert Path(path).name == hashlib.sha256(data).hexdigest() + ".png"
    again = await env.sender.fetch_media(incoming(env.fake.add_media(data, "image/png", "copy.png")))
    assert again == path  # same bytes, same file


async def test_fetch_media_unknown_or_too_large_is_none(env: Env) -> None:
    assert await env.sender.fetch_media(incoming("no-such-media")) is None
    big = env.fake.add_media(b"x" * 100_001, "audio/amr", "v.amr")
    assert await env.sender.fetch_media(incoming(big, IncomingKind.VOICE)) is None
    assert not (env.tmp / "media").exists() or not any((env.tmp / "media").rglob("*.amr"))


# --- card updates (update_template_card) ----------------------------------------------------------------


async def _tapped(env: Env, user: str = "u1") -> tuple[str, str]:
    """Send an offer card to ``user`` and tap it: (task_id, the tap's response_code)."""
    await env.sender.send(user, card("新的服务需求 #1001", "冲床模具崩刃", [Button("接单", "接单 1001")]), extra={})
    task_id = env.fake.sent[-1]["template_card"]["task_id"]
    fields = env.fake.card_event(user, task_id, env.fake.sent[-1]["template_card"]["button_list"][0]["key"])
    code = re.search(r"<ResponseCode><!\[CDATA\[(\w+)\]\]>", fields)
    assert code is not None
    return task_id, code.group(1)


async def test_card_update_replaces_the_tapped_cards_buttons(env: Env) -> None:
    task_id, code = await _tapped(env)
    sent_before = len(env.fake.sent)
    assert await env.sender.send("u1", card_update("已接单", code), extra={}) is None
    assert env.fake.card_label(task_id, "u1") == "已接单"
    assert env.fake.card_updates == [
        {"userids": ["u1"], "agentid": env.fake.agent_id, "response_code": code, "button": {"replace_name": "已接单"}}
    ]
    assert len(env.fake.sent) == sent_before  # not a message: nothing new in the member's chat


async def test_card_update_label_is_cut_to_a_button_label(env: Env) -> None:
    task_id, code = await _tapped(env)
    await env.sender.send("u1", card_update("一二三四五六七八九十十一", code), extra={})
    assert env.fake.card_label(task_id, "u1") == "一二三四五六七八九十"


async def test_a_used_response_code_is_permanent(env: Env) -> None:
    task_id, code = await _tapped(env)
    await env.sender.send("u1", card_update("已接单", code), extra={})
    with pytest.raises(PermanentSendError) as err:
        await env.sender.send("u1", card_update("已婉拒", code), extra={})  # a code works once
    assert err.value.code == "40058"
    assert env.fake.card_label(task_id, "u1") == "已接单"


async def test_a_response_code_older_than_72_hours_is_permanent(env: Env) -> None:
    task_id, code = await _tapped(env)
    env.clock.advance(timedelta(hours=72))
    with pytest.raises(PermanentSendError):
        await env.sender.send("u1", card_update("已接单", code), extra={})
    assert env.fake.card_label(task_id, "u1") is None


async def test_a_response_code_just_inside_72_hours_works(env: Env) -> None:
    task_id, code = await _tapped(env)
    env.clock.advance(timedelta(hours=72) - timedelta(minutes=1))
    await env.sender.send("u1", card_update("已接单", code), extra={})
    assert env.fake.card_label(task_id, "u1") == "已接单"


@pytest.mark.parametrize("kill", ["expire", "revoke"])
async def test_card_update_refreshes_a_refused_token(env: Env, kill: str) -> None:
    task_id, code = await _tapped(env)
    env.fake.expire_tokens() if kill == "expire" else env.fake.revoke_tokens()
    await env.sender.send("u1", card_update("已接单", code), extra={})
    assert env.fake.card_label(task_id, "u1") == "已接单"
    assert env.fake.token_fetches == 2


@pytest.mark.parametrize("failure", [("errcode", 45009), ("errcode", -1), ("status", 503)])
async def test_card_update_rate_limits_and_5xx_are_transient(env: Env, failure: tuple[str, int]) -> None:
    task_id, code = await _tapped(env)
    env.fake.fail_next_update(failure)
    with pytest.raises(TransientSendError):
        await env.sender.send("u1", card_update("已接单", code), extra={})
    await env.sender.send("u1", card_update("已接单", code), extra={})  # the code was not consumed
    assert env.fake.card_label(task_id, "u1") == "已接单"


async def test_card_update_is_not_paced(env: Env) -> None:
    task_id, code = await _tapped(env)
    for i in range(29):  # with the card, the member's 30 messages of this minute
        await env.sender.send("u1", text(f"{i}"), extra={})
    await env.sender.send("u1", card_update("已接单", code), extra={})
    assert env.fake.card_label(task_id, "u1") == "已接单"


async def test_card_update_without_a_response_code_is_permanent(env: Env) -> None:
    with pytest.raises(PermanentSendError):
        await env.sender.send("u1", OutgoingMessage(kind=OutgoingKind.CARD_UPDATE, text="已接单"), extra={})
    assert env.fake.card_updates == []
