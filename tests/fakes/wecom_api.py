"""A fake WeCom on loopback: the HTTP API craftlink calls, and callbacks signed as WeCom signs them.

Behaviour (platforms.md §3), on an injected clock:

- ``GET /cgi-bin/gettoken`` → ``{access_token, expires_in}``; the same token while it is valid (as
  documented), a new one after it expires. A wrong corpid/secret → errcode 40001.
  ``expire_tokens()`` makes every issued token answer 42001; ``revoke_tokens()`` makes them 40014.
- ``POST /cgi-bin/message/send``: checks the token, ``agentid`` and ``msgtype``; ``fail_next(...)``
  queues failures (an HTTP status or an errcode such as 45009) for the next calls; ``delay_s`` makes
  every API answer late (for timeouts). More than 30/min or 1000/h to one member is **dropped
  silently** (errcode 0, recorded in :attr:`dropped`, not in :attr:`sent`), as the doc says.
  Duplicate check (doc 90236: "开启重复消息检查后，在一定时间间隔内，同样内容（请求json）的消息，不会
  重复收到"): a send with ``enable_duplicate_check`` = 1 whose whole request JSON equals one accepted
  within its ``duplicate_check_interval`` (default 1800 s, at most 4 h) is answered ok and not
  delivered; it is recorded in :attr:`absorbed`. Every accepted body is in :attr:`sent`, so a test
  can check which fields were sent.
- Outages (:meth:`go_down`, :meth:`come_back`): ``"500"`` answers every API call with HTTP 500,
  ``"refused"`` stops listening (connection refused), ``"slow"`` answers every call after
  ``delay_s`` real seconds, having done the work (a client that timed out never hears of it).
- ``POST /cgi-bin/media/upload`` stores the file and answers a ``media_id``;
  ``GET /cgi-bin/media/get`` serves a file added with :meth:`add_media` (or uploaded), else 40007.
- Template cards (doc 94888 "更新模版卡片消息"): sending one answers a ``response_code``, and so does
  every tap (:meth:`card_event` builds the ``template_card_event`` fields with a freshly issued code;
  a card whose buttons were replaced cannot be tapped). ``POST /cgi-bin/message/update_template_card``
  checks the token and ``agentid``, consumes the code — each one works **once** and only within
  **72 hours** of being issued — and replaces the buttons of that card for the listed ``userids``
  (:meth:`card_label`; every update is in :attr:`card_updates`). The doc names no errcode for an
  unknown, used or expired code; this fake answers :data:`RESPONSE_CODE_REFUSED` (40058, 不合法的参数).
  ``fail_next_update(...)`` queues failures for the next update calls.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from wechatpy.crypto import _get_signature
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto

from handlers.clock import Clock
from tests.fakes.base import LoopbackFake, Media, media_download

TOKEN_LIFETIME_S = 7200
RESPONSE_CODE_TTL_S = 72 * 3600  # "response_code的有效期是72小时"
RESPONSE_CODE_REFUSED = 40058  # not documented for this case: see the module docstring
DUPLICATE_CHECK_DEFAULT_S = 1800  # "默认1800s，最大不超过4小时"
DUPLICATE_CHECK_MAX_S = 4 * 3600


@dataclass
class ResponseCode:
    task_id: str
    issued_at: float
    used: bool = False


class FakeWeCom(LoopbackFake):
    def __init__(
        self, clock: Clock, *, corp_id: str = "wwcorp", secret: str = "corpsecret", agent_id: int = 1000002
    ):
        self.clock = clock
        self.corp_id = corp_id
        self.secret = secret
        self.agent_id = agent_id
        self.sent: list[dict[str, Any]] = []
        self.dropped: list[dict[str, Any]] = []
        self.token_fetches = 0
        self.send_calls = 0
        self.delay_s = 0.0
        self.outage: str | None = None  # see go_down()
        self.absorbed: list[dict[str, Any]] = []  # repeats the duplicate check kept from the member
        self._accepted_at: dict[str, float] = {}  # whole request JSON → when it was first accepted
        self.media: dict[str, Media] = {}
        self._tokens: dict[str, tuple[float, int]] = {}  # token → (expiry epoch s, errcode once dead)
        self._current = ""
        self._failures: deque[tuple[str, int]] = deque()
        self._per_user: dict[str, deque[float]] = {}
        self._ids = itertools.count(1)
        self.response_codes: dict[str, ResponseCode] = {}
        self.card_updates: list[dict[str, Any]] = []  # accepted update_template_card bodies
        self._card_users: dict[str, set[str]] = {}  # task_id → members the card was delivered to
        self._card_labels: dict[tuple[str, str], str] = {}  # (task_id, member) → replace_name
        self._update_failures: deque[tuple[str, int]] = deque()
        self.app = web.Application()
        self.app.router.add_get("/cgi-bin/gettoken", self._gettoken)
        self.app.router.add_post("/cgi-bin/message/send", self._send)
        self.app.router.add_post("/cgi-bin/message/update_template_card", self._update_card)
        self.app.router.add_post("/cgi-bin/media/upload", self._upload)
        self.app.router.add_get("/cgi-bin/media/get", self._media_get)

    # --- knobs -----------------------------------------------------------------------------------------
    async def go_down(self, mode: str, *, delay_s: float = 0.0) -> None:
        """Start an outage: ``"500"``, ``"refused"`` or ``"slow"`` (answers after ``delay_s``)."""
        if mode not in ("500", "refused", "slow"):
            raise ValueError(f"unknown outage mode {mode!r}")
        self.outage = mode
        if mode == "refused":
            await self.refuse_connections()
        if mode == "slow":
            self.delay_s = delay_s

    async def come_back(self) -> None:
        """End the outage; tokens and everything accepted before it are still there."""
        if self.outage == "refused":
            await self.accept_connections()
        self.outage = None
        self.delay_s = 0.0

    def expire_tokens(self) -> None:
        self._tokens = {t: (0.0, 42001) for t in self._tokens}

    def revoke_tokens(self) -> None:
        self._tokens = {t: (0.0, 40014) for t in self._tokens}

    def fail_next(self, *failures: tuple[str, int]) -> None:
        """Queue ("status", 503) / ("errcode", 45009) answers for the next message/send calls."""
        self._failures.extend(failures)

    def fail_next_update(self, *failures: tuple[str, int]) -> None:
        """Like :meth:`fail_next`, for the next update_template_card calls."""
        self._update_failures.extend(failures)

    def issue_response_code(self, task_id: str) -> str:
        code = f"rc{next(self._ids)}"
        self.response_codes[code] = ResponseCode(task_id, self._now())
        return code

    def card_event(self, user: str, task_id: str, key: str, *, stale: bool = False) -> str:
        """The ``template_card_event`` fields WeCom posts when ``user`` taps button ``key`` of card
        ``task_id``, with a new response_code. A card whose buttons were replaced shows none to tap;
        ``stale`` taps anyway (a second device that has not shown the update yet)."""
        if task_id not in self._card_users or user not in self._card_users[task_id]:
            raise AssertionError(f"card {task_id} was never delivered to {user}")
        label = self._card_labels.get((task_id, user))
        if label is not None and not stale:
            raise AssertionError(f"card {task_id} of {user} shows {label!r}, no buttons to tap")
        code = self.issue_response_code(task_id)
        return (
            f"<Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[{key}]]></EventKey>"
            f"<TaskId><![CDATA[{task_id}]]></TaskId><CardType><![CDATA[button_interaction]]></CardType>"
            f"<ResponseCode><![CDATA[{code}]]></ResponseCode>"
        )

    def card_label(self, task_id: str, user: str) -> str | None:
        """What replaced the buttons of card ``task_id`` for ``user`` (None: the buttons are still there)."""
        return self._card_labels.get((task_id, user))

    def add_media(self, data: bytes, content_type: str = "image/jpeg", filename: str = "photo.jpg") -> str:
        media_id = f"media{next(self._ids)}"
        self.media[media_id] = Media(data, content_type, filename)
        return media_id

    # --- handlers --------------------------------------------------------------------------------------
    def _now(self) -> float:
        return self.clock.now().timestamp()

    def _token_error(self, request: web.Request) -> web.Response | None:
        token = request.query.get("access_token", "")
        if token not in self._tokens:
            return web.json_response({"errcode": 40014, "errmsg": "invalid access_token"})
        expiry, code = self._tokens[token]
        if self._now() >= expiry:
            return web.json_response({"errcode": code, "errmsg": "access_token expired"})
        return None

    async def _gettoken(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.delay_s)
        if self.outage == "500":
            return web.Response(status=500, text="upstream error")
        if request.query.get("corpid") != self.corp_id or request.query.get("corpsecret") != self.secret:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        self.token_fetches += 1
        if self._current not in self._tokens or self._now() >= self._tokens[self._current][0]:
            self._current = f"tok{next(self._ids)}"
            self._tokens[self._current] = (self._now() + TOKEN_LIFETIME_S, 42001)
        expires_in = int(self._tokens[self._current][0] - self._now())
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "access_token": self._current, "expires_in": expires_in}
        )

    async def _agent_call(
        self, request: web.Request, failures: deque[tuple[str, int]]
    ) -> tuple[web.Response | None, dict[str, Any]]:
        """What every app API call goes through: delay, a queued failure, the token, the agentid.
        Returns (an early answer, or None with the JSON body)."""
        raw = await request.read()
        if self.outage == "500":
            return web.Response(status=500, text="upstream error"), {}
        if failures:
            what, value = failures.popleft()
            if what == "status":
                return web.Response(status=value, text="upstream error"), {}
            return web.json_response({"errcode": value, "errmsg": "simulated"}), {}
        if (err := self._token_error(request)) is not None:
            return err, {}
        body = json.loads(raw)
        if body.get("agentid") != self.agent_id:
            return web.json_response({"errcode": 40056, "errmsg": "invalid agentid"}), {}
        return None, body

    async def _late(self, answer: web.Response) -> web.Response:
        """``delay_s``: the work is done, only the answer is late (a client that gave up never hears of it;
        aiohttp cancels a handler whose client went away, so the work must not wait behind the delay)."""
        await asyncio.sleep(self.delay_s)
        return answer

    async def _send(self, request: web.Request) -> web.Response:
        return await self._late(await self._send_now(request))

    async def _update_card(self, request: web.Request) -> web.Response:
        return await self._late(await self._update_now(request))

    async def _send_now(self, request: web.Request) -> web.Response:
        self.send_calls += 1
        early, body = await self._agent_call(request, self._failures)
        if early is not None:
            return early
        msgtype = body.get("msgtype")
        if (
            msgtype not in ("text", "markdown", "template_card", "image", "voice", "file")
            or msgtype not in body
        ):
            return web.json_response({"errcode": 40008, "errmsg": "invalid message type"})
        user = body["touser"]
        if self._repeat(body):
            self.absorbed.append(body)
            return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": f"dup{next(self._ids)}"})
        times = self._per_user.setdefault(user, deque())
        now = self._now()
        while times and now - times[0] >= 3600:
            times.popleft()
        if sum(1 for t in times if now - t < 60) >= 30 or len(times) >= 1000:
            self.dropped.append(body)
        else:
            self.sent.append(body)
            if msgtype == "template_card":
                task_id = str(body["template_card"].get("task_id", ""))
                self._card_users.setdefault(task_id, set()).update(user.split("|"))
        times.append(now)
        answer: dict[str, Any] = {"errcode": 0, "errmsg": "ok", "msgid": f"msg{next(self._ids)}"}
        if msgtype == "template_card":
            answer["response_code"] = self.issue_response_code(str(body["template_card"].get("task_id", "")))
        return web.json_response(answer)

    def _repeat(self, body: dict[str, Any]) -> bool:
        """The duplicate check: is this request JSON one accepted within the interval it names?"""
        key = json.dumps(body, sort_keys=True, ensure_ascii=False)
        now = self._now()
        first = self._accepted_at.get(key)
        if body.get("enable_duplicate_check") == 1 and first is not None:
            interval = min(int(body.get("duplicate_check_interval") or DUPLICATE_CHECK_DEFAULT_S),
                           DUPLICATE_CHECK_MAX_S)
            if now - first < interval:
                return True
        self._accepted_at[key] = now
        return False

    async def _update_now(self, request: web.Request) -> web.Response:
        early, body = await self._agent_call(request, self._update_failures)
        if early is not None:
            return early
        users, label = body.get("userids"), (body.get("button") or {}).get("replace_name")
        if not isinstance(users, list) or not users or not isinstance(label, str) or not label:
            return web.json_response({"errcode": 40058, "errmsg": "invalid parameter"})
        code = self.response_codes.get(str(body.get("response_code", "")))
        if code is None or code.used or self._now() - code.issued_at >= RESPONSE_CODE_TTL_S:
            return web.json_response({"errcode": RESPONSE_CODE_REFUSED, "errmsg": "invalid response_code"})
        code.used = True
        recipients = self._card_users.get(code.task_id, set())
        invalid = [u for u in users if u not in recipients]
        for user in users:
            if user in recipients:
                self._card_labels[(code.task_id, user)] = label
        self.card_updates.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok", "invaliduser": invalid})

    async def _upload(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.delay_s)
        if self.outage == "500":
            return web.Response(status=500, text="upstream error")
        if (err := self._token_error(request)) is not None:
            return err
        post = await request.post()
        field = post.get("media")
        if not isinstance(field, web.FileField):
            return web.json_response({"errcode": 41004, "errmsg": "media field missing"})
        media_id = f"up{next(self._ids)}"
        self.media[media_id] = Media(field.file.read(), field.content_type, field.filename)
        return web.json_response({"errcode": 0, "type": request.query.get("type"), "media_id": media_id})

    async def _media_get(self, request: web.Request) -> web.Response:
        if (err := self._token_error(request)) is not None:
            return err
        return media_download(self.media.get(request.query.get("media_id", "")))


class WeComPlatform:
    """Builds callbacks exactly as WeCom does (AES + msg_signature), for driving the real endpoint."""

    def __init__(self, token: str, encoding_aes_key: str, corp_id: str) -> None:
        self.token = token
        self.corp_id = corp_id
        self.crypto = WeChatCrypto(token, encoding_aes_key, corp_id)

    def encrypt(self, plain: str) -> str:
        return str(PrpCrypto(self.crypto.key).encrypt(plain, self.corp_id).decode())

    def url_check(self, echo: str, *, timestamp: str | None = None, nonce: str = "5555") -> dict[str, str]:
        ts = timestamp or str(int(time.time()))
        enc = self.encrypt(echo)
        return {
            "msg_signature": _get_signature(self.token, ts, nonce, enc),
            "timestamp": ts,
            "nonce": nonce,
            "echostr": enc,
        }

    def post(self, plain_xml: str, *, timestamp: str, nonce: str = "7777") -> tuple[dict[str, str], str]:
        enc = self.encrypt(plain_xml)
        body = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<Encrypt><![CDATA[{enc}]]></Encrypt><AgentID><![CDATA[1000002]]></AgentID></xml>"
        )
        query = {
            "msg_signature": _get_signature(self.token, timestamp, nonce, enc),
            "timestamp": timestamp,
            "nonce": nonce,
        }
        return query, body


def message_xml(
    corp_id: str, user: str, created: int, msg_type: str, fields: str, msg_id: int | None = None
) -> str:
    """A plaintext callback message; ``fields`` is the type-specific XML."""
    mid = f"<MsgId>{msg_id}</MsgId>" if msg_id is not None else ""
    return (
        f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
        f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>{fields}{mid}"
        f"<AgentID>1000002</AgentID></xml>"
    )
