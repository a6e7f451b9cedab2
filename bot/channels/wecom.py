"""WeCom (企业微信) self-built app: the callback endpoint and the wiring of its sender.

``GET /wecom/callback`` answers the URL check with the decrypted ``echostr`` as plain text.
``POST /wecom/callback`` verifies (query present, timestamp window, body size, safe XML, constant-time
``msg_signature``), decrypts with wechatpy, converts to one :class:`IncomingMessage`, commits it to
the inbox and only then answers an empty 200. A failure of verification, decryption or parsing
answers 400/403/413 with one log line and stores nothing; a database failure answers 503 so the
platform retries.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web
from wechatpy.enterprise import WeChatCrypto

from bot import config
from bot.channels.base import ChannelAdapter, media_hook
from bot.channels.wecom_sender import NAME, WeComSender
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
from bot.config import WeComSettings
from bot.keys import clock_key, http_key, intake_key, media_key, senders_key, settings_key
from bot.pipeline.intake import BadMessage
from handlers.settings import ConfigError

log = logging.getLogger(__name__)

CALLBACK_PATH = "/wecom/callback"


class WeComCallback:
    """The two callback handlers; holds the crypto built once from the settings."""

    def __init__(self, settings: WeComSettings) -> None:
        self.settings = settings
        try:
            self.crypto = WeChatCrypto(settings.token, settings.encoding_aes_key, settings.corp_id)
        except Exception:  # binascii.Error / AssertionError; never echo the key itself
            raise ConfigError(
                "wecom.encoding_aes_key: expected the 43-character key from the admin console"
            ) from None

    async def url_check(self, request: web.Request) -> web.Response:
        try:
            signature, timestamp, nonce, echostr = query_params(
                request, "msg_signature", "timestamp", "nonce", "echostr"
            )
            check_timestamp(timestamp, request.app[clock_key].now(), self.settings.timestamp_window_s)
            check_signature(signature, self.settings.token, timestamp, nonce, echostr)
            plain = self._decrypt(echostr, signature, timestamp, nonce, echo=True)
        except Rejected as err:
            return rejected_response("wecom", err)
        return web.Response(text=plain, content_type="text/plain")

    async def receive(self, request: web.Request) -> web.Response:
        app = request.app
        try:
            signature, timestamp, nonce = query_params(request, "msg_signature", "timestamp", "nonce")
            check_timestamp(timestamp, app[clock_key].now(), self.settings.timestamp_window_s)
            body = await read_body(request, app[settings_key].server.max_body_bytes)
            encrypted = xml_fields(body).get("Encrypt", "")
            if not encrypted:
                raise Rejected(400, "no Encrypt field")
            check_signature(signature, self.settings.token, timestamp, nonce, encrypted)
            plain = self._decrypt(encrypted, signature, timestamp, nonce, echo=False)
            fields = message_fields(plain)
            if fields.get("ToUserName") not in ("", self.settings.corp_id):
                raise Rejected(403, "message for another corp")
            msg = to_incoming(NAME, fields, app[clock_key].now(), directory_user=True)
        except Rejected as err:
            return rejected_response("wecom", err)
        except Exception as exc:  # a parser surprise must not become a 500 the platform retries forever
            return rejected_response("wecom", Rejected(400, f"unparseable message ({type(exc).__name__})"))
        if msg is None:
            return web.Response(text="")
        try:
            await app[intake_key].accept(msg)
        except BadMessage as exc:  # an id no platform sends (bot.pipeline.intake.checked)
            return rejected_response("wecom", Rejected(400, str(exc)))
        except Exception as exc:  # DB down or shutting down: the platform retries on a non-200
            log.warning("wecom callback not stored (%s); answering 503", type(exc).__name__)
            return web.Response(status=503, text="")
        return web.Response(text="")

    def _decrypt(self, encrypted: str, signature: str, timestamp: str, nonce: str, *, echo: bool) -> str:
        # The signature was already checked in constant time; wechatpy checks it again (with !=),
        # then decrypts and checks the CorpID inside. A wrong key or garbage raises many types.
        try:
            if echo:
                result = self.crypto.check_signature(signature, timestamp, nonce, encrypted)
            else:
                result = self.crypto.decrypt_message({"Encrypt": encrypted}, signature, timestamp, nonce)
        except Exception as exc:
            raise Rejected(400, f"cannot decrypt ({type(exc).__name__})") from None
        return result.decode("utf-8") if isinstance(result, bytes) else str(result)


def setup(app: web.Application, settings: WeComSettings) -> None:
    """Add the callback routes and a context that registers the sender once HTTP is up."""
    callback = WeComCallback(settings)
    app.router.add_get(CALLBACK_PATH, callback.url_check)
    app.router.add_post(CALLBACK_PATH, callback.receive)

    async def sender_ctx(app: web.Application) -> AsyncIterator[None]:
        sender = WeComSender(app[http_key], settings, clock=app[clock_key], media=app[media_key],
                             timeout_s=app[settings_key].bot.send_timeout_s)
        app[senders_key][NAME] = sender
        yield

    app.cleanup_ctx.append(sender_ctx)


ADAPTER = ChannelAdapter(name=NAME, callback_paths=(CALLBACK_PATH,), section=config.wecom, setup=setup,
                         fetch_media=media_hook(WeComSender),
                         roster_names=("企业微信", "企微", "workwechat"))
