"""WeChat service account (公众号): the callback endpoint and the wiring of its sender.

``GET /wechat/callback`` answers the URL check with ``echostr`` unchanged (it is not encrypted on the
service account). ``POST /wechat/callback`` accepts plaintext mode, or — when
``encoding_aes_key`` is set — only safe mode (``encrypt_type=aes``): in plaintext mode the signature
covers only token, timestamp and nonce, not the body, so a captured query could carry any body.
After the same checks as WeCom (window, size, safe XML, constant-time signatures) the message is
committed to the inbox. The answer is ``success`` — or, when this process handles the message within
``passive_reply_ms`` and the first reply is one text, that reply itself ("passive reply", see
:mod:`bot.pipeline.passive`); every other reply goes through the customer-service API afterwards.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from wechatpy.crypto import WeChatCrypto
from wechatpy.replies import TextReply

from bot import config
from bot.channels.base import ChannelAdapter, media_hook
from bot.channels.wechat_sender import NAME, WeChatSender, render
from bot.channels.wx_callback import (
    Rejected,
    check_signature,
    check_timestamp,
    message_fields,
    query_params,
    read_body,
    rejected_response,
    xml_fields,
)
from bot.channels.wx_messages import to_incoming
from bot.config import WeChatSettings
from bot.keys import (
    clock_key,
    http_key,
    intake_key,
    media_key,
    passive_key,
    senders_key,
    sessions_key,
    settings_key,
)
from bot.pipeline.intake import BadMessage
from bot.pipeline.passive import PassiveReplies
from handlers.messages import OutgoingMessage
from handlers.settings import ConfigError

log = logging.getLogger(__name__)

CALLBACK_PATH = "/wechat/callback"
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
ACK = "success"


class WeChatCallback:
    def __init__(self, settings: WeChatSettings) -> None:
        self.settings = settings
        self.crypto: WeChatCrypto | None = None
        if settings.encoding_aes_key:
            try:
                self.crypto = WeChatCrypto(settings.token, settings.encoding_aes_key, settings.app_id)
            except Exception:  # never echo the key itself
                raise ConfigError(
                    "wechat.encoding_aes_key: expected the 43-character key from the MP console"
                ) from None

    async def url_check(self, request: web.Request) -> web.Response:
        try:
            signature, timestamp, nonce, echostr = query_params(
                request, "signature", "timestamp", "nonce", "echostr"
            )
            check_timestamp(timestamp, request.app[clock_key].now(), self.settings.timestamp_window_s)
            check_signature(signature, self.settings.token, timestamp, nonce)
        except Rejected as err:
            return rejected_response("wechat", err)
        return web.Response(text=echostr, content_type="text/plain")

    async def receive(self, request: web.Request) -> web.StreamResponse:
        app = request.app
        try:
            signature, timestamp, nonce = query_params(request, "signature", "timestamp", "nonce")
            check_timestamp(timestamp, app[clock_key].now(), self.settings.timestamp_window_s)
            check_signature(signature, self.settings.token, timestamp, nonce)
            body = await read_body(request, app[settings_key].server.max_body_bytes)
            plain = self._plaintext(request, body, timestamp, nonce)
            fields = scene_subscribe(message_fields(plain))
            msg = to_incoming(NAME, fields, app[clock_key].now())
        except Rejected as err:
            return rejected_response("wechat", err)
        except Exception as exc:  # a parser surprise must not become a 500 the platform retries
            return rejected_response("wechat", Rejected(400, f"unparseable message ({type(exc).__name__})"))
        if msg is None:
            return web.Response(text=ACK, content_type="text/plain")
        passive = app.get(passive_key) if self.settings.passive_reply_ms > 0 else None
        key = (NAME, msg.platform_msg_id)
        waiting = passive is not None and passive.expect(*key, fits_passive)
        try:
            new = await app[intake_key].accept(msg)
        except Exception as exc:  # DB down or shutting down: the platform retries on a non-200
            if passive is not None and waiting:
                passive.forget(*key)
            if isinstance(exc, BadMessage):  # an id no platform sends (bot.pipeline.intake.checked)
                return rejected_response("wechat", Rejected(400, str(exc)))
            log.warning("wechat callback not stored (%s); answering 503", type(exc).__name__)
            return web.Response(status=503, text="")
        reply: OutgoingMessage | None = None
        if passive is not None and not new:  # the platform's retry: give the same passive reply again
            if waiting:
                passive.forget(*key)
            reply = await passive.answered(*key)
        elif passive is not None and waiting:
            reply = await self._passive_reply(passive, key)
        if reply is None:
            return web.Response(text=ACK, content_type="text/plain")
        xml = TextReply(source=fields.get("ToUserName", ""), target=msg.sender, content=passive_text(reply),
                        time=int(app[clock_key].now().timestamp())).render()
        if self.crypto is not None:
            xml = self.crypto.encrypt_message(xml, nonce, timestamp)
        response = web.Response(text=xml, content_type="application/xml")
        await response.prepare(request)
        await response.write_eof()
        if passive is not None:
            passive.answered_callback()  # replies queued behind this one may go now, after it
        return response

    async def _passive_reply(self, passive: PassiveReplies, key: tuple[str, str]) -> OutgoingMessage | None:
        reserved = await passive.wait(*key, self.settings.passive_reply_ms / 1000)
        if reserved is None:
            return None
        reply = await passive.claim(*key, reserved)
        if reply is None:
            await passive.release(reserved)
        return reply

    def _plaintext(self, request: web.Request, body: bytes, timestamp: str, nonce: str) -> bytes | str:
        aes = request.query.get("encrypt_type", "raw") == "aes"
        if self.crypto is None:
            if aes:
                raise Rejected(400, "safe-mode message but wechat.encoding_aes_key is not set")
            return body
        if not aes:
            raise Rejected(403, "plaintext message while safe mode is configured")
        (msg_signature,) = query_params(request, "msg_signature")
        encrypted = xml_fields(body).get("Encrypt", "")
        if not encrypted:
            raise Rejected(400, "no Encrypt field")
        check_signature(msg_signature, self.settings.token, timestamp, nonce, encrypted)
        try:
            result = self.crypto.decrypt_message({"Encrypt": encrypted}, msg_signature, timestamp, nonce)
        except Exception as exc:  # wrong key → UnicodeDecodeError, garbage → ValueError, other app id...
            raise Rejected(400, f"cannot decrypt ({type(exc).__name__})") from None
        return result if isinstance(result, (bytes, str)) else str(result)


def fits_passive(message: OutgoingMessage) -> bool:
    """A passive reply carries one text: a message that renders as exactly one text part."""
    try:
        parts = render(message)
    except Exception:  # e.g. media without a file: not ours to judge here, the sender reports it
        return False
    if len(parts) != 1 or not isinstance(parts[0], dict) or parts[0].get("msgtype") != "text":
        return False
    # wechatpy writes the content into CDATA unescaped: "]]>" or an XML-illegal character would break the
    # answer (the platform then shows "该公众号暂时无法提供服务"), so such a text goes through the API.
    content = str(parts[0]["text"]["content"])
    return "]]>" not in content and not _XML_ILLEGAL.search(content)


def passive_text(message: OutgoingMessage) -> str:
    part = render(message)[0]
    assert isinstance(part, dict)
    return str(part["text"]["content"])


def scene_subscribe(fields: dict[str, Any]) -> dict[str, Any]:
    """A follow through a parametric QR code, named as ``wechatpy.parse_message`` names it: Event
    ``subscribe_scan`` (``subscribe_scan_product`` for a product code) and the EventKey's
    ``qrscene_`` prefix removed."""
    key = fields.get("EventKey")
    if fields.get("MsgType", "").lower() != "event" or fields.get("Event", "").lower() != "subscribe" \
            or not isinstance(key, str) or not key:
        return fields
    if key.startswith(("scanbarcode|", "scanimage|")):
        return {**fields, "Event": "subscribe_scan_product"}
    if key.startswith("qrscene_"):
        return {**fields, "Event": "subscribe_scan", "EventKey": key[len("qrscene_"):]}
    return fields


def setup(app: web.Application, settings: WeChatSettings) -> None:
    """Add the callback routes and a context that registers the sender once HTTP and the DB are up."""
    callback = WeChatCallback(settings)
    app.router.add_get(CALLBACK_PATH, callback.url_check)
    app.router.add_post(CALLBACK_PATH, callback.receive)

    async def sender_ctx(app: web.Application) -> AsyncIterator[None]:
        # The owner names this process in the token lock row; unique even for two apps in one process.
        owner = f"{app[settings_key].server.instance_name or 'craftlink'}:{uuid.uuid4().hex[:8]}"
        app[senders_key][NAME] = WeChatSender(
            app[http_key],
            settings,
            clock=app[clock_key],
            sessions=app[sessions_key],
            media=app[media_key],
            owner=owner,
            timeout_s=app[settings_key].bot.send_timeout_s,
        )
        yield

    app.cleanup_ctx.append(sender_ctx)


# The callback's answer may carry one text reply (passive_fits); the others go through the API.
ADAPTER = ChannelAdapter(name=NAME, callback_paths=(CALLBACK_PATH,), section=config.wechat,
                         setup=setup, fetch_media=media_hook(WeChatSender), passive_fits=fits_passive,
                         roster_names=("微信", "公众号", "服务号", "微信公众号"))
