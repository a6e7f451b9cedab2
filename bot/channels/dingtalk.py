"""DingTalk (钉钉) enterprise-robot adapter, HTTP mode: the callback, card taps, media links, the sender.

Routes (all under ``server.public_url``):

- ``POST /dingtalk/callback``: the robot's message callback. Verified (``timestamp``/``sign`` headers,
  platforms.md §2F), parsed into one :class:`IncomingMessage`, committed to the inbox, answered ``{}``.
  403 bad signature or stale timestamp, 413 too large, 400 not a robot message (or an id the inbox
  refuses, ``bot.pipeline.intake.checked``), 503 inbox down (the
  platform retries); a request that fails any check stores nothing.
- ``GET /dingtalk/tap?t=…``: a card button. The signed token names (staffId, command, expiry, nonce);
  the inbox row ``tap:<nonce>`` is both the button press and the proof it was used once.
- ``GET /dingtalk/media?t=…``: a local media file, for ``sampleImageMsg.photoURL`` and file links.

Sending lives in :mod:`bot.channels.dingtalk_sender`, rendering in :mod:`bot.channels.dingtalk_cards`.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

from bot import config
from bot.channels.base import ChannelAdapter, media_hook
from bot.channels.dingtalk_cards import Links
from bot.channels.dingtalk_sender import (
    EXTRA_WEBHOOK,
    EXTRA_WEBHOOK_EXPIRES,
    NAME,
    DingTalkSender,
    webhook_allowed,
)
from bot.channels.dingtalk_sign import LinkError, LinkSigner, verify_callback
from bot.channels.dingtalk_state import DingTalkState
from bot.config import DingTalkSettings
from bot.keys import clock_key, dingtalk_key, http_key, intake_key, media_key, senders_key, settings_key
from bot.pipeline.intake import BadMessage
from handlers.messages import IncomingKind, IncomingMessage

log = logging.getLogger(__name__)
CALLBACK_PATH = "/dingtalk/callback"  # the robot's messages
TAP_PATH = "/dingtalk/tap"  # a card button pressed (a signed link)


class BadPayload(ValueError):
    """The body is JSON but not a robot message we can read."""


def _content(body: dict[str, Any]) -> dict[str, Any]:
    content = body.get("content")
    if isinstance(content, str):  # some deliveries carry it JSON-encoded
        try:
            content = json.loads(content)
        except ValueError:
            raise BadPayload("content is not JSON") from None
    if not isinstance(content, dict):
        raise BadPayload("content missing")
    return content


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def parse_message(body: dict[str, Any], *, api_base: str) -> IncomingMessage | None:
    """One robot callback body → one :class:`IncomingMessage`; None for a type we do not handle.

    Raises :class:`BadPayload` if a required field is missing or of the wrong type.
    """
    msg_id, msgtype = body.get("msgId"), body.get("msgtype")
    sender = _str(body.get("senderStaffId")) or _str(body.get("senderId"))
    if not isinstance(msg_id, str) or not msg_id or not isinstance(msgtype, str) or not sender:
        raise BadPayload("msgId, msgtype and a sender are required")
    kind, text, media_ref = IncomingKind.TEXT, "", None
    if msgtype == "text":
        text_obj = body.get("text")
        if not isinstance(text_obj, dict) or not isinstance(text_obj.get("content"), str):
            raise BadPayload("text.content missing")
        text = text_obj["content"].strip()  # a group @-mention leaves a leading space
    elif msgtype == "picture":
        content = _content(body)
        kind, media_ref = IncomingKind.IMAGE, _str(content.get("downloadCode")) or None
    elif msgtype == "richText":
        parts = _content(body).get("richText")
        if not isinstance(parts, list):
            raise BadPayload("content.richText missing")
        texts = [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]
        codes = [
            _str(p.get("downloadCode")) or _str(p.get("pictureDownloadCode"))
            for p in parts
            if isinstance(p, dict) and (p.get("type") == "picture" or "downloadCode" in p)
        ]
        text = "".join(texts).strip()
        media_ref = next((c for c in codes if c), None)
        kind = IncomingKind.IMAGE if media_ref else IncomingKind.TEXT
    elif msgtype == "audio":
        content = _content(body)
        kind, text = IncomingKind.VOICE, _str(content.get("recognition")).strip()
        media_ref = _str(content.get("downloadCode")) or None
    elif msgtype in ("file", "video"):
        content = _content(body)
        kind, text = IncomingKind.FILE, _str(content.get("fileName"))
        media_ref = _str(content.get("downloadCode")) or None
    else:
        return None
    extra: dict[str, Any] = {}
    reach: dict[str, Any] = {}  # stored on the sender's identity: how dingtalk_sender replies to them
    if nick := _str(body.get("senderNick")):
        extra["sender_nick"] = nick
    webhook, expires = body.get("sessionWebhook"), body.get("sessionWebhookExpiredTime")
    if isinstance(expires, str) and expires.isdigit():
        expires = int(expires)
    # Only a one-to-one session may carry replies: a group webhook would show a case to the whole group.
    if (
        body.get("conversationType") == "1"
        and isinstance(webhook, str)
        and isinstance(expires, int)
        and webhook_allowed(webhook, api_base)
    ):
        reach[EXTRA_WEBHOOK], reach[EXTRA_WEBHOOK_EXPIRES] = webhook, expires
    return IncomingMessage(
        channel=NAME,
        sender=sender,
        platform_msg_id=msg_id,
        kind=kind,
        text=text,
        media_ref=media_ref,
        identity_extra=reach,
        directory_user=True,
        extra=extra,
    )


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"errcode": status, "errmsg": message}, status=status)


async def callback(request: web.Request) -> web.Response:
    app = request.app
    state = app[dingtalk_key]
    now_ms = int(app[clock_key].now().timestamp() * 1000)
    ts, sign = request.headers.get("timestamp", ""), request.headers.get("sign", "")
    limit = app[settings_key].server.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return _error(413, "body too large")  # first, as the WeCom and WeChat callbacks do: a header, no read
    if not verify_callback(
        ts, sign, state.settings.app_secret, now_ms=now_ms, window_s=state.settings.timestamp_window_s
    ):
        log.warning("dingtalk callback refused: bad sign or timestamp")
        return _error(403, "invalid signature")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _error(413, "body too large")
    if len(raw) > limit:
        return _error(413, "body too large")
    try:
        body = json.loads(raw)
        if not isinstance(body, dict):
            raise BadPayload("not an object")
        msg = parse_message(body, api_base=state.settings.api_base)
    except (ValueError, UnicodeDecodeError) as exc:  # BadPayload and JSONDecodeError are ValueErrors
        log.warning("dingtalk callback refused: %s", type(exc).__name__)
        return _error(400, "bad payload")
    if msg is None:
        log.info("dingtalk callback: msgtype %r not handled; acknowledged", str(body.get("msgtype"))[:20])
        return web.json_response({})
    try:
        await app[intake_key].accept(msg)
    except BadMessage as exc:  # an id no platform sends: refused, stored nothing
        log.warning("dingtalk callback refused: %s", exc)
        return _error(400, "bad payload")
    except Exception as exc:  # the inbox is down: no 200, so DingTalk retries
        log.warning("dingtalk callback: inbox unavailable (%s)", type(exc).__name__)
        return _error(503, "try again")
    return web.json_response({})


_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{title}</title>
<style>body{{font-family:-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;padding:48px 24px;
text-align:center;color:#1f2329;background:#f5f6f7}}h1{{font-size:20px;margin:0 0 12px}}
p{{font-size:15px;color:#646a73;line-height:1.6}}</style></head>
<body><h1>{title}</h1><p>{detail}</p></body></html>"""


def page(status: int, title: str, detail: str) -> web.Response:
    body = _PAGE.format(title=html.escape(title), detail=html.escape(detail))
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}
    return web.Response(status=status, text=body, content_type="text/html", charset="utf-8", headers=headers)


_LINK_REFUSED = {
    "forged": (403, "链接无效", "这个链接无法识别，请回到钉钉，在最新的消息里重新点击，或直接回复文字。"),
    "expired": (410, "链接已过期", "这个按钮已经过期了，请回到钉钉直接回复文字，或联系服务队工作人员。"),
}


def _now_s(request: web.Request) -> int:
    return int(request.app[clock_key].now().timestamp())


async def tap(request: web.Request) -> web.Response:
    """A card button: act once, then show a page that sends the person back to DingTalk."""
    state = request.app[dingtalk_key]
    try:
        payload = state.links.taps.read(request.query.get("t", ""), now_s=_now_s(request))
    except LinkError as exc:
        log.info("dingtalk tap refused: %s", exc.reason)
        return page(*_LINK_REFUSED[exc.reason])
    staff, command, nonce = payload.get("u"), payload.get("c"), payload.get("n")
    if not (
        isinstance(staff, str) and isinstance(command, str) and isinstance(nonce, str) and staff and nonce
    ):
        return page(*_LINK_REFUSED["forged"])
    msg = IncomingMessage(
        channel=NAME,
        sender=staff,
        platform_msg_id=f"tap:{nonce}",  # the inbox's unique key makes the link single-use, durably
        kind=IncomingKind.BUTTON,
        text=command,
        directory_user=True,
    )
    try:
        new = await request.app[intake_key].accept(msg)
    except BadMessage:
        return page(*_LINK_REFUSED["forged"])
    except Exception as exc:
        log.warning("dingtalk tap: inbox unavailable (%s)", type(exc).__name__)
        return page(503, "系统繁忙", "暂时没能记下您的选择，请稍后再点一次。")
    if not new:
        return page(409, "已经处理过了", "这个按钮已经点过了，结果请回到钉钉查看。")
    return page(200, f"已收到：{command}", "请回到钉钉查看结果。")


async def media(request: web.Request) -> web.StreamResponse:
    """Serve one stored media file named by a signed link, and nothing outside ``bot.media_dir``."""
    state = request.app[dingtalk_key]
    try:
        payload = state.links.media.read(request.query.get("t", ""), now_s=_now_s(request))
    except LinkError as exc:
        return page(*_LINK_REFUSED[exc.reason])
    root = Path(request.app[settings_key].bot.media_dir).resolve()
    path = Path(str(payload.get("p", ""))).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return page(404, "文件不存在", "这个文件已经不在了，请联系服务队工作人员。")
    return web.FileResponse(path, headers={"Cache-Control": "private, max-age=86400"})


def setup(app: web.Application, settings: DingTalkSettings) -> None:
    """Add the DingTalk routes and register the sender (built once the HTTP session exists)."""
    server = app[settings_key].server
    links = Links(
        public_url=server.public_url,
        taps=LinkSigner(settings.app_secret, "tap"),
        media=LinkSigner(settings.app_secret, "media"),
        clock=app[clock_key],
    )
    state = DingTalkState(settings=settings, links=links)
    app[dingtalk_key] = state
    app.router.add_post(CALLBACK_PATH, callback)
    # No HEAD: a link previewer's HEAD must not press the button.
    app.router.add_get(TAP_PATH, tap, allow_head=False)
    app.router.add_get("/dingtalk/media", media, allow_head=False)

    async def sender_ctx(app: web.Application) -> AsyncIterator[None]:
        sender = DingTalkSender(
            http=app[http_key],
            settings=settings,
            clock=app[clock_key],
            links=links,
            media_max_bytes=app[settings_key].bot.media_max_bytes,
            store_media=app[media_key].store,
            timeout_s=app[settings_key].bot.send_timeout_s,
        )
        state.sender = sender
        app[senders_key][NAME] = sender
        yield

    app.cleanup_ctx.append(sender_ctx)


ADAPTER = ChannelAdapter(name=NAME, callback_paths=(CALLBACK_PATH, TAP_PATH),
                         section=config.dingtalk, setup=setup, fetch_media=media_hook(DingTalkSender),
                         roster_names=("钉钉", "ding"))
