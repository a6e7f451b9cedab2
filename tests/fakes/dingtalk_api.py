"""A fake DingTalk on loopback: the OpenAPI calls craftlink makes, sessionWebhooks, and signed callbacks.

It behaves as platforms.md §5 documents, on an injected clock:

- ``POST /v1.0/oauth2/accessToken`` → ``{"accessToken", "expireIn": 7200}``; a wrong key → 400.
  ``expire_tokens()`` invalidates every token issued so far (as a server-side rotation would).
- ``POST /v1.0/robot/oToMessages/batchSend``: checks ``x-acs-dingtalk-access-token`` (400
  ``InvalidAuthentication`` otherwise), ``robotCode`` and that ``msgParam`` is a JSON string;
  ``throttle_users(n)`` puts the next n recipients in ``flowControlledStaffIdList``, ``fail_next(n,
  status)`` answers 5xx/403/429 n times; unknown ``invalid_users`` land in ``invalidStaffIdList``.
- ``POST /robot/sendBySession?session=…``: the sessionWebhook; ``{"errcode": 0}`` while the session
  lives, a non-zero errcode once it has expired.
- ``POST /v1.0/robot/messageFiles/download`` → ``{"downloadUrl"}``; ``GET /files/{code}`` serves it.

Every delivered message is appended to :attr:`FakeDingTalk.sent`; nothing refused is recorded there.
"""

from __future__ import annotations

import itertools
import json
import secrets
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.channels.dingtalk_sign import callback_sign
from handlers.clock import Clock
from tests.fakes.base import LoopbackFake

TOKEN_LIFETIME_S = 7200
SESSION_LIFETIME_MS = 5_400_000  # ≈ 90 min, from the published examples


@dataclass
class Sent:
    via: str  # "webhook" | "batchSend"
    user_id: str
    msg_key: str  # the webhook's msgtype, or batchSend's msgKey
    param: dict[str, Any]

    @property
    def text(self) -> str:
        """Whatever text the message shows, for assertions."""
        return " ".join(str(v) for v in self.param.values() if isinstance(v, str))


class FakeDingTalk(LoopbackFake):
    def __init__(self, clock: Clock, *, app_key: str = "dingappkey", app_secret: str = "dingsecret") -> None:
        self.clock = clock
        self.app_key = app_key
        self.app_secret = app_secret
        self.robot_code = app_key  # as for internal apps
        self.sent: list[Sent] = []
        self.requests: list[str] = []  # every path hit, in order
        self.token_fetches = 0
        self.issued_tokens: list[str] = []
        self.invalid_users: set[str] = set()
        self.files: dict[str, bytes] = {}
        self._tokens: dict[str, float] = {}  # token → expiry (epoch s)
        self._sessions: dict[str, tuple[str, int]] = {}  # session → (staffId, expiry ms)
        self._throttle = 0
        self._failures: list[int] = []
        self._ids = itertools.count(1)
        self.app = web.Application()
        self.app.router.add_post("/v1.0/oauth2/accessToken", self._access_token)
        self.app.router.add_post("/v1.0/robot/oToMessages/batchSend", self._batch_send)
        self.app.router.add_post("/v1.0/robot/messageFiles/download", self._download)
        self.app.router.add_post("/robot/sendBySession", self._session_send)
        self.app.router.add_get("/files/{code}", self._file)

    # --- switches ------------------------------------------------------------------------------------
    def expire_tokens(self) -> None:
        self._tokens.clear()

    def throttle_users(self, n: int) -> None:
        self._throttle = n

    def fail_next(self, n: int, status: int = 503) -> None:
        self._failures.extend([status] * n)

    # --- what a callback carries ---------------------------------------------------------------------
    def _now_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)

    def new_session(self, staff_id: str, *, lifetime_ms: int = SESSION_LIFETIME_MS) -> tuple[str, int]:
        """A sessionWebhook URL and its expiry (ms), as a callback would carry them."""
        session = secrets.token_hex(8)
        expires = self._now_ms() + lifetime_ms
        self._sessions[session] = (staff_id, expires)
        return f"{self.base_url}/robot/sendBySession?session={session}", expires

    def message(
        self,
        staff_id: str,
        text: str = "",
        *,
        msg_id: str | None = None,
        msgtype: str = "text",
        **fields: Any,
    ) -> dict[str, Any]:
        """A one-to-one robot callback body from ``staff_id``, with a live sessionWebhook."""
        webhook, expires = self.new_session(staff_id)
        body: dict[str, Any] = {
            "msgtype": msgtype,
            "msgId": msg_id or f"msg{next(self._ids)}",
            "createAt": self._now_ms(),
            "conversationType": "1",
            "conversationId": f"cid{staff_id}",
            "senderId": f"$:LWCP_v1:${staff_id}",
            "senderNick": f"用户{staff_id}",
            "senderStaffId": staff_id,
            "senderCorpId": "dingcorp",
            "chatbotCorpId": "dingcorp",
            "chatbotUserId": "$:LWCP_v1:$bot",
            "robotCode": self.robot_code,
            "isAdmin": False,
            "isInAtList": True,
            "sessionWebhook": webhook,
            "sessionWebhookExpiredTime": expires,
        }
        if msgtype == "text":
            body["text"] = {"content": text}
        body.update(fields)
        return body

    def headers(self, timestamp_ms: int | None = None, *, secret: str | None = None) -> dict[str, str]:
        ts = str(self._now_ms() if timestamp_ms is None else timestamp_ms)
        return {
            "timestamp": ts,
            "sign": callback_sign(ts, secret or self.app_secret),
            "Content-Type": "application/json; charset=utf-8",
        }

    def add_file(self, data: bytes) -> str:
        code = f"dl{secrets.token_hex(6)}"
        self.files[code] = data
        return code

    # --- handlers ------------------------------------------------------------------------------------
    async def _access_token(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        body = await request.json()
        if body.get("appKey") != self.app_key or body.get("appSecret") != self.app_secret:
            return web.json_response(
                {"code": "invalidClientIdOrSecret", "message": "无效的appKey或appSecret"}, status=400
            )
        self.token_fetches += 1
        token = f"tok{self.token_fetches}-{secrets.token_hex(4)}"
        self.issued_tokens.append(token)
        self._tokens[token] = self.clock.now().timestamp() + TOKEN_LIFETIME_S
        return web.json_response({"accessToken": token, "expireIn": TOKEN_LIFETIME_S})

    def _token_ok(self, request: web.Request) -> bool:
        expiry = self._tokens.get(request.headers.get("x-acs-dingtalk-access-token", ""))
        return expiry is not None and self.clock.now().timestamp() < expiry

    def _refusal(self, request: web.Request) -> web.Response | None:
        if not self._token_ok(request):
            return web.json_response(
                {"code": "InvalidAuthentication", "message": "不合法的access_token"}, status=400
            )
        if self._failures:
            status = self._failures.pop(0)
            code = {
                403: "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
                429: "Throttling",
            }.get(status, "ServiceUnavailable")
            return web.json_response({"code": code, "message": "fake failure"}, status=status)
        return None

    async def _batch_send(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        if (refused := self._refusal(request)) is not None:
            return refused
        body = await request.json()
        if body.get("robotCode") != self.robot_code or not isinstance(body.get("msgParam"), str):
            return web.json_response(
                {"code": "invalidParameter", "message": "robotCode/msgParam"}, status=400
            )
        param = json.loads(body["msgParam"])
        invalid, throttled = [], []
        for user in body.get("userIds", []):
            if user in self.invalid_users:
                invalid.append(user)
            elif self._throttle > 0:
                self._throttle -= 1
                throttled.append(user)
            else:
                self.sent.append(Sent("batchSend", user, body["msgKey"], param))
        return web.json_response(
            {
                "processQueryKey": f"pqk{next(self._ids)}",
                "invalidStaffIdList": invalid,
                "flowControlledStaffIdList": throttled,
                "filteredStaffIdList": [],
            }
        )

    async def _session_send(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        session = self._sessions.get(request.query.get("session", ""))
        if session is None or session[1] <= self._now_ms():
            return web.json_response({"errcode": 300005, "errmsg": "session已过期"})
        body = await request.json()
        msgtype = body.get("msgtype", "")
        self.sent.append(Sent("webhook", session[0], msgtype, body.get(msgtype, {})))
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def _download(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        if (refused := self._refusal(request)) is not None:
            return refused
        body = await request.json()
        code = body.get("downloadCode", "")
        if body.get("robotCode") != self.robot_code or code not in self.files:
            return web.json_response({"code": "invalidParameter", "message": "downloadCode"}, status=400)
        return web.json_response({"downloadUrl": f"{self.base_url}/files/{code}"})

    async def _file(self, request: web.Request) -> web.Response:
        data = self.files.get(request.match_info["code"])
        if data is None:
            raise web.HTTPNotFound()
        return web.Response(body=data, content_type="application/octet-stream")
