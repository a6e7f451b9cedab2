"""A fake WeChat service account on loopback, and callbacks built as the platform builds them.

Behaviour (platforms.md §4), on an injected clock:

- ``GET /cgi-bin/token`` issues a **new** token on every call and invalidates the previous ones
  (after ``grace_s``, default 0: stricter than the real 5 minutes, so a double refresh shows up as
  40001). ``expire_tokens()`` makes every issued token answer 42001. Wrong secret → 40001.
- ``POST /cgi-bin/message/custom/send``: token check; 45015 unless the user interacted within 48 h
  (:meth:`touch`); ``fail_next(...)`` queues HTTP statuses or errcodes; ``delay_s`` answers late.
- ``POST /cgi-bin/message/template/send`` records template notices in :attr:`templates`.
- ``POST /cgi-bin/media/upload`` / ``GET /cgi-bin/media/get`` as on WeCom.
- :meth:`WeChatPlatform.shown` is what the platform does with a callback's *answer*: ``success`` or
  an empty body shows nothing; a passive reply (plain XML, or in safe mode the ``Encrypt`` envelope
  whose ``MsgSignature`` must verify) is shown to the user — tests put it in :attr:`FakeWeChat.sent`
  with ``"passive": True``, so a conversation reads the same whichever way a reply travelled.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from typing import Any

from aiohttp import web
from defusedxml import ElementTree
from wechatpy.crypto import PrpCrypto, WeChatCrypto, _get_signature
from wechatpy.utils import WeChatSigner

from handlers.clock import Clock
from tests.fakes.base import LoopbackFake, Media, media_download

TOKEN_LIFETIME_S = 7200
WINDOW_S = 48 * 3600


class FakeWeChat(LoopbackFake):
    def __init__(
        self, clock: Clock, *, app_id: str = "wxapp", secret: str = "appsecret", grace_s: float = 0.0
    ):
        self.clock = clock
        self.app_id = app_id
        self.secret = secret
        self.grace_s = grace_s
        self.sent: list[dict[str, Any]] = []
        self.templates: list[dict[str, Any]] = []
        self.token_fetches = 0
        self.delay_s = 0.0
        self.token_gate: asyncio.Event | None = None  # when set, /cgi-bin/token waits for it to open
        self.media: dict[str, Media] = {}
        self.last_interaction: dict[str, float] = {}
        self._tokens: dict[str, tuple[float, int]] = {}  # token → (valid until, errcode after)
        self._failures: deque[tuple[str, int]] = deque()
        self._ids = itertools.count(1)
        self.app = web.Application()
        self.app.router.add_get("/cgi-bin/token", self._token)
        self.app.router.add_post("/cgi-bin/message/custom/send", self._custom_send)
        self.app.router.add_post("/cgi-bin/message/template/send", self._template_send)
        self.app.router.add_post("/cgi-bin/media/upload", self._upload)
        self.app.router.add_get("/cgi-bin/media/get", self._media_get)

    # --- knobs -----------------------------------------------------------------------------------------
    def touch(self, openid: str) -> None:
        """The user wrote to the account now: the 48-hour window opens."""
        self.last_interaction[openid] = self._now()

    def expire_tokens(self) -> None:
        self._tokens = {t: (0.0, 42001) for t in self._tokens}

    def fail_next(self, *failures: tuple[str, int]) -> None:
        self._failures.extend(failures)

    def add_media(self, data: bytes, content_type: str = "image/jpeg", filename: str = "photo.jpg") -> str:
        media_id = f"media{next(self._ids)}"
        self.media[media_id] = Media(data, content_type, filename)
        return media_id

    # --- handlers --------------------------------------------------------------------------------------
    def _now(self) -> float:
        return self.clock.now().timestamp()

    def _token_error(self, request: web.Request) -> web.Response | None:
        entry = self._tokens.get(request.query.get("access_token", ""))
        if entry is None:
            return web.json_response({"errcode": 40014, "errmsg": "invalid access_token"})
        if self._now() >= entry[0]:
            return web.json_response({"errcode": entry[1], "errmsg": "access_token expired or not latest"})
        return None

    async def _token(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.delay_s)
        if self.token_gate is not None:
            await self.token_gate.wait()
        q = request.query
        if (
            q.get("grant_type") != "client_credential"
            or q.get("appid") != self.app_id
            or q.get("secret") != self.secret
        ):
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        self.token_fetches += 1
        now = self._now()
        # "重复获取将导致上次获取的access_token失效": older tokens die after the grace period.
        self._tokens = {
            t: (min(exp, now + self.grace_s), 40001 if exp > now else code)
            for t, (exp, code) in self._tokens.items()
        }
        token = f"mptok{next(self._ids)}"
        self._tokens[token] = (now + TOKEN_LIFETIME_S, 42001)
        return web.json_response({"access_token": token, "expires_in": TOKEN_LIFETIME_S})

    async def _pre(self, request: web.Request) -> web.Response | None:
        await asyncio.sleep(self.delay_s)
        if self._failures:
            what, value = self._failures.popleft()
            if what == "status":
                return web.Response(status=value, text="upstream error")
            return web.json_response({"errcode": value, "errmsg": "simulated"})
        return self._token_error(request)

    async def _custom_send(self, request: web.Request) -> web.Response:
        if (early := await self._pre(request)) is not None:
            return early
        body = json.loads(await request.read())
        user = body.get("touser", "")
        if self._now() - self.last_interaction.get(user, float("-inf")) > WINDOW_S:
            return web.json_response(
                {"errcode": 45015, "errmsg": "response out of time limit or subscription is canceled"}
            )
        msgtype = body.get("msgtype")
        if msgtype not in ("text", "image", "voice", "news", "mpnews") or msgtype not in body:
            return web.json_response({"errcode": 40008, "errmsg": "invalid message type"})
        self.sent.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def _template_send(self, request: web.Request) -> web.Response:
        if (early := await self._pre(request)) is not None:
            return early
        body = json.loads(await request.read())
        if not body.get("template_id") or not isinstance(body.get("data"), dict):
            return web.json_response({"errcode": 40037, "errmsg": "invalid template_id"})
        self.templates.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": next(self._ids)})

    async def _upload(self, request: web.Request) -> web.Response:
        if (err := self._token_error(request)) is not None:
            return err
        post = await request.post()
        field = post.get("media")
        if not isinstance(field, web.FileField):
            return web.json_response({"errcode": 41005, "errmsg": "media data missing"})
        media_id = f"up{next(self._ids)}"
        self.media[media_id] = Media(field.file.read(), field.content_type, field.filename)
        return web.json_response({"type": request.query.get("type"), "media_id": media_id, "created_at": 0})

    async def _media_get(self, request: web.Request) -> web.Response:
        if (err := self._token_error(request)) is not None:
            return err
        return media_download(self.media.get(request.query.get("media_id", "")))


class WeChatPlatform:
    """Builds service-account callbacks as the platform does: plaintext or safe (AES) mode."""

    def __init__(self, token: str, encoding_aes_key: str, app_id: str) -> None:
        self.token = token
        self.app_id = app_id
        self.crypto = WeChatCrypto(token, encoding_aes_key, app_id)

    def signed(self, timestamp: str, nonce: str = "3333") -> dict[str, str]:
        signer = WeChatSigner()  # wechatpy's own signer, independent of the code under test
        signer.add_data(self.token, timestamp, nonce)
        return {"signature": signer.signature, "timestamp": timestamp, "nonce": nonce}

    def plain_post(self, xml: str, *, timestamp: str, nonce: str = "3333") -> tuple[dict[str, str], str]:
        return {**self.signed(timestamp, nonce), "openid": "o1"}, xml

    def aes_post(self, xml: str, *, timestamp: str, nonce: str = "3333") -> tuple[dict[str, str], str]:
        enc = PrpCrypto(self.crypto.key).encrypt(xml, self.app_id).decode()
        query = {
            **self.signed(timestamp, nonce),
            "encrypt_type": "aes",
            "msg_signature": _get_signature(self.token, timestamp, nonce, enc),
        }
        return (
            query,
            f"<xml><ToUserName><![CDATA[gh_test]]></ToUserName><Encrypt><![CDATA[{enc}]]></Encrypt></xml>",
        )


    def shown(self, status: int, body: str, *, openid: str, safe: bool = True) -> dict[str, Any] | None:
        """The reply the platform shows for a callback answered with ``status``/``body``, if any.

        A malformed answer is an AssertionError: the real platform shows the user
        "该公众号暂时无法提供服务，请稍后再试" for it, which is never acceptable.
        """
        if status != 200 or body in ("", "success"):
            return None
        if safe:
            envelope = {e.tag: e.text or "" for e in ElementTree.fromstring(body)}
            plain = self.crypto.decrypt_message(
                body, envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"]
            )  # raises InvalidSignatureException on a bad signature, as the platform refuses it
            body = plain if isinstance(plain, str) else plain.decode()
        fields = {e.tag: e.text or "" for e in ElementTree.fromstring(body)}
        assert fields["ToUserName"] == openid, fields
        assert fields["FromUserName"] == "gh_test", fields  # the account's id, from the callback
        assert fields["MsgType"] == "text", fields
        return {"touser": openid, "msgtype": "text", "text": {"content": fields["Content"]}, "passive": True}


def mp_xml(user: str, created: int, msg_type: str, fields: str, msg_id: int | None = None) -> str:
    mid = f"<MsgId>{msg_id}</MsgId>" if msg_id is not None else ""
    return (
        f"<xml><ToUserName><![CDATA[gh_test]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
        f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>{fields}{mid}</xml>"
    )
