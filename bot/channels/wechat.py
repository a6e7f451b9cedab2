"""WeChat service account (公众号): the callback endpoint and the wiring of its sender.

``GET /wechat/callback`` answers the URL check with ``echostr`` unchanged (it is not encrypted on the
service account). ``POST /wechat/callback`` accepts plaintext mode, or — when
``encoding_aes_key`` is set — only safe mode (``encrypt_type=aes``): in plaintext mode the signature
covers only token, timestamp and nonce, not the body, so a captured query could carry any body.
After the same checks as WeCom (window, size, safe XML, constant-time signatures) the message is
committed to the inbox and the answer is ``success``. Replies always go through the
customer-service API afterwards; passive replies are not used.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

from aiohttp import web
from wechatpy import parse_message as parse_wechat
from wechatpy.crypto import WeChatCrypto

from bot.channels.media import MediaStore
from bot.channels.wechat_sender import WeChatSender
from bot.channels.wx_callback import (
    Rejected,
    check_signature,
    check_timestamp,
    query_params,
    read_body,
    rejected_response,
    xml_fields,
)
from bot.channels.wx_messages import to_incoming
from bot.keys import clock_key, http_key, intake_key, senders_key, sessions_key, settings_key
from handlers.messages import Channel
from handlers.settings import ConfigError, WeChatSettings

log = logging.getLogger(__name__)

CALLBACK_PATH = "/wechat/callback"
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

    async def receive(self, request: web.Request) -> web.Response:
        app = request.app
        try:
            signature, timestamp, nonce = query_params(request, "signature", "timestamp", "nonce")
            check_timestamp(timestamp, app[clock_key].now(), self.settings.timestamp_window_s)
            check_signature(signature, self.settings.token, timestamp, nonce)
            body = await read_body(request, app[settings_key].server.max_body_bytes)
            plain = self._plaintext(request, body, timestamp, nonce)
            xml_fields(plain)  # the safety check, on what wechatpy is about to parse
            msg = to_incoming(Channel.WECHAT, parse_wechat(plain)._data, app[clock_key].now())
        except Rejected as err:
            return rejected_response("wechat", err)
        except Exception as exc:  # a parser surprise must not become a 500 the platform retries
            return rejected_response("wechat", Rejected(400, f"unparseable message ({type(exc).__name__})"))
        if msg is not None:
            try:
                await app[intake_key].accept(msg)
            except Exception as exc:  # DB down or shutting down: the platform retries on a non-200
                log.warning("wechat callback not stored (%s); answering 503", type(exc).__name__)
                return web.Response(status=503, text="")
        return web.Response(text=ACK, content_type="text/plain")

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


def setup(app: web.Application, settings: WeChatSettings) -> None:
    """Add the callback routes and a context that registers the sender once HTTP and the DB are up."""
    callback = WeChatCallback(settings)
    app.router.add_get(CALLBACK_PATH, callback.url_check)
    app.router.add_post(CALLBACK_PATH, callback.receive)

    async def sender_ctx(app: web.Application) -> AsyncIterator[None]:
        # The owner names this process in the token lock row; unique even for two apps in one process.
        owner = f"{app[settings_key].server.instance_name or 'craftlink'}:{uuid.uuid4().hex[:8]}"
        app[senders_key][Channel.WECHAT] = WeChatSender(
            app[http_key],
            settings,
            clock=app[clock_key],
            sessions=app[sessions_key],
            media=MediaStore.for_app(app),
            owner=owner,
        )
        yield

    app.cleanup_ctx.append(sender_ctx)
