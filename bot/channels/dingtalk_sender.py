"""The DingTalk sender: sessionWebhook while it is valid, the robot one-to-one API otherwise.

Error mapping (what the outbox sender sees):

- ``TransientSendError``: 5xx, network errors and timeouts, throttling (HTTP 429, a 403 whose code names
  a QPS/flow limit, or the user in ``flowControlledStaffIdList``), an access token refused twice;
- ``PermanentSendError``: the user in ``invalidStaffIdList`` / ``filteredStaffIdList``, any other 4xx
  (missing permission, wrong robotCode), a wrong appKey/appSecret.

Secrets (app secret, access tokens, sessionWebhook URLs, which carry a session key) are never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bot.channels.base import PermanentSendError, TransientSendError
from bot.channels.dingtalk_cards import Links, Rendered, render
from bot.config import DingTalkSettings
from handlers.clock import Clock
from handlers.messages import IncomingKind, IncomingMessage, OutgoingKind, OutgoingMessage

NAME = "dingtalk"  # this channel's name everywhere: inbox/outbox rows, identities, config

log = logging.getLogger(__name__)

EXTRA_WEBHOOK = "session_webhook"
EXTRA_WEBHOOK_EXPIRES = "session_webhook_expires_ms"
WEBHOOK_MARGIN_MS = 60_000  # don't start a webhook call that could outlive the session
TOKEN_MARGIN = timedelta(minutes=5)  # as the official SDK: refresh 5 min before expireIn
THROTTLE_RETRY_S = 60.0
OFFICIAL_WEBHOOK_HOSTS = frozenset({"oapi.dingtalk.com", "api.dingtalk.com"})
_THROTTLE_MARKERS = ("qpslimit", "throttl", "flowcontrol", "ratelimit", "apicountlimit")

StoreMedia = Callable[[bytes, str], Awaitable[str]]


def webhook_allowed(url: str, api_base: str) -> bool:
    """Only DingTalk's own hosts (or the configured API host: a test fake) may receive replies.

    The callback signature does not cover the body, so a replayed signature could otherwise plant a
    sessionWebhook of an attacker's and receive a craftsman's messages.
    """
    parts = urlsplit(url)
    if parts.hostname in OFFICIAL_WEBHOOK_HOSTS:
        return parts.scheme == "https"
    base = urlsplit(api_base)
    return bool(parts.hostname) and (parts.scheme, parts.netloc) == (base.scheme, base.netloc)


def _now_ms(clock: Clock) -> int:
    return int(clock.now().timestamp() * 1000)


class TokenCache:
    """The app's access token, cached until 5 minutes before it expires; one refresh in flight."""

    def __init__(
        self, http: aiohttp.ClientSession, settings: DingTalkSettings, clock: Clock, *, timeout_s: float = 10.0
    ) -> None:
        self._http = http
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._settings = settings
        self._clock = clock
        self._token = ""
        self._good_until: datetime | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0  # for tests and metrics

    async def get(self) -> str:
        async with self._lock:  # callers queue behind one refresh instead of each fetching
            if self._token and self._good_until and self._clock.now() < self._good_until:
                return self._token
            self._token, self._good_until = await self._fetch()
            return self._token

    def invalidate(self, token: str) -> None:
        """Forget ``token`` after the platform refused it (unless a newer one is already cached)."""
        if token == self._token:
            self._token, self._good_until = "", None

    async def _fetch(self) -> tuple[str, datetime]:
        url = self._settings.api_base.rstrip("/") + "/v1.0/oauth2/accessToken"
        body = {"appKey": self._settings.app_key, "appSecret": self._settings.app_secret}
        self.fetches += 1
        try:
            async with self._http.post(url, json=body, timeout=self._timeout) as resp:
                status = resp.status
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise TransientSendError("token_unreachable", type(exc).__name__) from None
        if status >= 500:
            raise TransientSendError(f"token_http_{status}")
        data = data if isinstance(data, dict) else {}
        token, expire_in = data.get("accessToken"), data.get("expireIn")
        if status != 200 or not isinstance(token, str) or not token:
            code = str(data.get("code", status))
            raise PermanentSendError(f"token:{code}", "check dingtalk.app_key and dingtalk.app_secret")
        lifetime = timedelta(seconds=int(expire_in)) if isinstance(expire_in, int) else timedelta(hours=2)
        return token, self._clock.now() + max(lifetime - TOKEN_MARGIN, timedelta(seconds=30))


def _is_token_error(status: int, data: dict[str, Any]) -> bool:
    code = str(data.get("code", ""))
    return status == 401 or (status in (400, 403) and code == "InvalidAuthentication")


def _is_throttled(status: int, data: dict[str, Any]) -> bool:
    code = str(data.get("code", "")).lower().replace("_", "")
    return status == 429 or (status == 403 and any(m in code for m in _THROTTLE_MARKERS))


class DingTalkSender:
    """:class:`~bot.channels.base.ChannelSender` for ``dingtalk``; ``address`` is a staffId."""

    channel = NAME

    def __init__(
        self,
        *,
        http: aiohttp.ClientSession,
        settings: DingTalkSettings,
        clock: Clock,
        links: Links,
        media_max_bytes: int,
        store_media: StoreMedia,
        timeout_s: float = 10.0,
    ) -> None:
        self._http = http
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)  # one call; bot.send_timeout_s
        self._settings = settings
        self._clock = clock
        self._links = links
        self._media_max = media_max_bytes
        self._store_media = store_media
        self.tokens = TokenCache(http, settings, clock, timeout_s=timeout_s)

    async def send(self, address: str, message: OutgoingMessage, *, extra: dict[str, Any]) -> str | None:
        if message.kind == OutgoingKind.CARD_UPDATE:
            return None  # our DingTalk cards are link buttons: nothing to update after a tap
        rendered = render(message, address, self._links)
        webhook = self._usable_webhook(extra)
        if webhook and await self._via_webhook(webhook, rendered):
            return None
        return await self._batch_send(address, rendered)

    def _usable_webhook(self, extra: dict[str, Any]) -> str | None:
        url, expires = extra.get(EXTRA_WEBHOOK), extra.get(EXTRA_WEBHOOK_EXPIRES)
        if not isinstance(url, str) or not isinstance(expires, int):
            return None
        if expires - WEBHOOK_MARGIN_MS <= _now_ms(self._clock):
            return None
        return url if webhook_allowed(url, self._settings.api_base) else None

    async def _via_webhook(self, url: str, rendered: Rendered) -> bool:
        """True if delivered; False if refused (fall back to the API). A timeout is ambiguous: raise."""
        try:
            async with self._http.post(url, json=rendered.webhook, timeout=self._timeout) as resp:
                status = resp.status
                data = await resp.json(content_type=None)
        except TimeoutError:
            raise TransientSendError("webhook_timeout") from None
        except (aiohttp.ClientError, ValueError) as exc:
            log.info("dingtalk sessionWebhook unusable (%s); using the robot API", type(exc).__name__)
            return False
        errcode = data.get("errcode") if isinstance(data, dict) else None
        if status == 200 and errcode == 0:
            return True
        log.info(
            "dingtalk sessionWebhook refused (status=%s errcode=%s); using the robot API", status, errcode
        )
        return False

    async def _api(self, path: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """POST to the OpenAPI with the access token, refetching it once if the platform refuses it."""
        url = self._settings.api_base.rstrip("/") + path
        for attempt in (1, 2):
            token = await self.tokens.get()
            try:
                headers = {"x-acs-dingtalk-access-token": token}
                async with self._http.post(url, json=payload, headers=headers, timeout=self._timeout) as resp:
                    status = resp.status
                    data = await resp.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                raise TransientSendError("network", type(exc).__name__) from None
            data = data if isinstance(data, dict) else {}
            if not _is_token_error(status, data):
                return status, data
            log.info("dingtalk access token refused (attempt %d); refetching", attempt)
            self.tokens.invalidate(token)
        raise TransientSendError("token_rejected", "the platform refused a fresh access token")

    def _raise_for(self, status: int, data: dict[str, Any], what: str) -> None:
        if status == 200:
            return
        code = str(data.get("code", "")) or f"http_{status}"
        log.warning("dingtalk %s failed: status=%s code=%s", what, status, code)
        if status >= 500:
            raise TransientSendError(code, f"{what}: server error")
        if _is_throttled(status, data):
            retry = 3600.0 if "apicountlimit" in code.lower() else THROTTLE_RETRY_S
            raise TransientSendError(code, f"{what}: throttled", retry_after=retry)
        raise PermanentSendError(code, f"{what}: {data.get('message', '')}"[:200])

    async def _batch_send(self, address: str, rendered: Rendered) -> str | None:
        payload = {
            "robotCode": self._settings.robot_code,
            "userIds": [address],
            "msgKey": rendered.msg_key,
            "msgParam": json.dumps(rendered.msg_param, ensure_ascii=False),  # a JSON *string*
        }
        status, data = await self._api("/v1.0/robot/oToMessages/batchSend", payload)
        self._raise_for(status, data, "batchSend")
        if address in (data.get("invalidStaffIdList") or []):
            raise PermanentSendError("invalid_user", "not a user of this organisation (invalidStaffIdList)")
        if address in (data.get("filteredStaffIdList") or []):
            raise PermanentSendError("filtered_user", "the platform filtered this user (filteredStaffIdList)")
        if address in (data.get("flowControlledStaffIdList") or []):
            raise TransientSendError("flow_controlled", "per-user throttling", retry_after=THROTTLE_RETRY_S)
        key = data.get("processQueryKey")
        return key if isinstance(key, str) else None

    async def fetch_media(self, msg: IncomingMessage) -> str | None:
        """Download the picture/voice/file of ``msg`` and store it locally; return the stored path.

        None when there is nothing to fetch, or the platform refuses for good (an expired code, a file
        over ``bot.media_max_bytes``). Raises :class:`TransientSendError` on network errors and 5xx,
        so the caller may retry later.
        """
        if not msg.media_ref:
            return None
        body = {"downloadCode": msg.media_ref, "robotCode": self._settings.robot_code}
        status, data = await self._api("/v1.0/robot/messageFiles/download", body)
        if status >= 500:
            raise TransientSendError(f"http_{status}", "messageFiles/download")
        url = data.get("downloadUrl")
        if status != 200 or not isinstance(url, str):
            log.warning("dingtalk messageFiles/download refused: status=%s code=%s", status, data.get("code"))
            return None
        data_bytes = await self._download(url)
        if data_bytes is None:
            return None
        try:
            return await self._store_media(data_bytes, _suffix(msg, data_bytes))
        except ValueError as exc:  # MediaTooLargeError: the store's limit is the last word
            log.warning("dingtalk media not stored: %s", type(exc).__name__)
            return None

    async def _download(self, url: str) -> bytes | None:
        try:
            async with self._http.get(url) as resp:
                if resp.status >= 500:
                    raise TransientSendError(f"http_{resp.status}", "media download")
                if resp.status != 200:
                    log.warning("dingtalk media download refused: status=%s", resp.status)
                    return None
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.content.iter_chunked(65536):
                    size += len(chunk)
                    if size > self._media_max:
                        log.warning("dingtalk media over %d bytes: dropped", self._media_max)
                        return None
                    chunks.append(chunk)
                return b"".join(chunks)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientSendError("network", type(exc).__name__) from None


_MAGIC = (
    (b"\xff\xd8\xff", ".jpg"),
    (b"\x89PNG", ".png"),
    (b"GIF8", ".gif"),
    (b"#!AMR", ".amr"),
    (b"%PDF", ".pdf"),
)


def _suffix(msg: IncomingMessage, data: bytes) -> str:
    if msg.kind is IncomingKind.FILE and "." in msg.text:
        ext = "." + msg.text.rsplit(".", 1)[1].lower()
        if ext[1:].isalnum() and len(ext) <= 8:
            return ext
    for magic, ext in _MAGIC:
        if data.startswith(magic):
            return ext
    if data[4:8] == b"ftyp":
        return ".mp4"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return {IncomingKind.IMAGE: ".jpg", IncomingKind.VOICE: ".amr"}.get(msg.kind, ".bin")
