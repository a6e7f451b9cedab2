"""HTTP client for the WeCom and WeChat service-account APIs (same error envelope, same token rules).

:meth:`WxApi.call` turns every outcome into one of three things: the JSON result (errcode 0), a
:class:`~bot.channels.base.TransientSendError` (timeouts, connection errors, 5xx, errcode -1 系统繁忙,
rate limits), or a :class:`WxApiError` carrying the errcode for the caller to map (81013 and the
rest: permanent). Only a rate limit (45009, 45011, 45033, HTTP 429) carries a ``retry_after`` hint —
the platform said "not for a while"; every other transient failure leaves the delay to the outbox's
exponential backoff. An invalid or expired token is refreshed once and the call retried. Access tokens travel in the query string, so no
exception text or URL from this module is ever logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import mimetypes
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from bot.channels.base import PermanentSendError, TransientSendError
from bot.channels.media import MediaStore, MediaTooLargeError
from handlers.clock import Clock

log = logging.getLogger(__name__)

RATE_LIMIT_CODES = frozenset({45009, 45011, 45033})  # api freq / per-minute / concurrency limits
BUSY_CODES = frozenset({-1})  # 系统繁忙


class WxApiError(PermanentSendError):
    """The platform answered with a non-zero errcode that is not transient."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(str(errcode), errmsg[:200])
        self.errcode = errcode


class TokenSource(Protocol):
    async def get(self) -> str:
        """A valid access token (fetching one if needed)."""
        ...

    async def invalidate(self, token: str) -> None:
        """``token`` was refused by the platform: the next :meth:`get` must not return it."""
        ...


def jitter(base_s: float, rng: Callable[[], float] = random.random) -> float:
    """``base_s`` spread over [base, 2·base), so many senders don't retry in lockstep."""
    return base_s * (1.0 + rng())


@dataclass(frozen=True)
class MediaPart:
    """A message part that needs an upload first: ``media_type`` is image, voice or file."""

    media_type: str
    path: Path
    file_name: str


Part = dict[str, Any] | MediaPart


@dataclass
class Fetched:
    token: str
    expires_in: int


class MemoryTokenCache:
    """A per-process token (WeCom: re-fetching within validity returns the same token, so several
    processes may each cache it). One refresh in flight at a time; refreshed ``margin_s`` early."""

    def __init__(
        self, fetch: Callable[[], Awaitable[Fetched]], clock: Clock, *, margin_s: float = 300
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._margin = timedelta(seconds=margin_s)
        self._token = ""
        self._expires_at: datetime | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    def _valid(self) -> bool:
        return bool(self._token) and self._expires_at is not None and self._clock.now() < self._expires_at

    async def get(self) -> str:
        if self._valid():
            return self._token
        async with self._lock:
            if self._valid():  # another task refreshed while we waited
                return self._token
            got = await self._fetch()
            self.fetches += 1
            self._token = got.token
            lifetime = max(
                timedelta(seconds=got.expires_in) - self._margin, timedelta(seconds=got.expires_in / 2)
            )
            self._expires_at = self._clock.now() + lifetime
            return self._token

    async def invalidate(self, token: str) -> None:
        if token == self._token:
            self._token = ""
            self._expires_at = None


class WxApi:
    """Calls ``{base}/cgi-bin/...`` with ``access_token`` from ``tokens``; see the module docstring."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        base: str,
        tokens: TokenSource,
        *,
        name: str,
        refresh_codes: frozenset[int],
        timeout_s: float = 10.0,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.http = http
        self.base = base.rstrip("/")
        self.tokens = tokens
        self.name = name
        self.refresh_codes = refresh_codes
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.rng = rng

    async def call(
        self, path: str, *, payload: dict[str, Any] | None = None, **params: str
    ) -> dict[str, Any]:
        """POST ``payload`` as JSON (or GET when None) and return the result; retries once on a bad token."""
        for attempt in (1, 2):
            token = await self.tokens.get()
            result = await self.request_json(path, {**params, "access_token": token}, payload)
            code = int(result.get("errcode", 0) or 0)
            if code in self.refresh_codes and attempt == 1:
                log.info("%s token refused (%d); refreshing once", self.name, code)
                await self.tokens.invalidate(token)
                continue
            return self.check(result)
        raise AssertionError("unreachable")  # pragma: no cover

    def check(self, result: dict[str, Any]) -> dict[str, Any]:
        code = int(result.get("errcode", 0) or 0)
        if code == 0:
            return result
        msg = str(result.get("errmsg", ""))
        if code in RATE_LIMIT_CODES:
            raise TransientSendError(str(code), "rate limited", retry_after=jitter(60, self.rng))
        if code in BUSY_CODES or code in self.refresh_codes:
            raise TransientSendError(str(code), msg[:200])
        raise WxApiError(code, msg)

    async def request_json(
        self, path: str, params: dict[str, str], payload: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """One raw call (no token added, errcode not checked): for token endpoints."""
        url = f"{self.base}{path}"
        # ensure_ascii=False: the platforms show \uXXXX escapes literally in some message types.
        body = None if payload is None else json.dumps(payload, ensure_ascii=False).encode("utf-8")
        method = "GET" if payload is None else "POST"
        headers = {"Content-Type": "application/json; charset=utf-8"} if body is not None else None
        try:
            async with self.http.request(
                method, url, params=params, data=body, headers=headers, timeout=self.timeout
            ) as resp:
                self._check_status(resp.status)
                return _json_object(await resp.read())
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise TransientSendError(type(exc).__name__, "network") from None

    def _check_status(self, status: int) -> None:
        if status == 429:
            raise TransientSendError("http429", "rate limited", retry_after=jitter(60, self.rng))
        if status >= 500:
            raise TransientSendError(f"http{status}", "platform error")
        if status >= 400:
            raise PermanentSendError(f"http{status}", "platform refused the request")

    async def upload(self, path: str, data: bytes, filename: str, content_type: str, **params: str) -> str:
        """Upload a file as multipart field ``media``; return its ``media_id``."""
        for attempt in (1, 2):
            token = await self.tokens.get()
            form = aiohttp.FormData()
            form.add_field("media", data, filename=filename, content_type=content_type)
            try:
                async with self.http.post(
                    f"{self.base}{path}",
                    params={**params, "access_token": token},
                    data=form,
                    timeout=self.timeout,
                ) as resp:
                    self._check_status(resp.status)
                    result = _json_object(await resp.read())
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise TransientSendError(type(exc).__name__, "network") from None
            if int(result.get("errcode", 0) or 0) in self.refresh_codes and attempt == 1:
                await self.tokens.invalidate(token)
                continue
            media_id = self.check(result).get("media_id")
            if not isinstance(media_id, str) or not media_id:
                raise PermanentSendError("upload", "no media_id in the answer")
            return media_id
        raise AssertionError("unreachable")  # pragma: no cover

    async def download(self, path: str, store: MediaStore, default_suffix: str, **params: str) -> str:
        """Fetch a media file and store it; return the local path.

        Raises TransientSendError (retry later), WxApiError (e.g. an expired media id) or
        :class:`~bot.channels.media.MediaTooLargeError`.
        """
        for attempt in (1, 2):
            token = await self.tokens.get()
            try:
                async with self.http.get(
                    f"{self.base}{path}", params={**params, "access_token": token}, timeout=self.timeout
                ) as resp:
                    self._check_status(resp.status)
                    if resp.content_type in ("application/json", "text/plain"):  # an error envelope
                        result = _json_object(await resp.read())
                        if int(result.get("errcode", 0) or 0) in self.refresh_codes and attempt == 1:
                            await self.tokens.invalidate(token)
                            continue
                        self.check(result)
                        raise PermanentSendError("media", "no file in the answer")
                    data = await _read_limited(resp, store.max_bytes)
                    suffix = _suffix(
                        resp.headers.get("Content-Disposition", ""), resp.content_type, default_suffix
                    )
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise TransientSendError(type(exc).__name__, "network") from None
            return await store.store(data, suffix)
        raise AssertionError("unreachable")  # pragma: no cover


async def upload_part(api: WxApi, part: MediaPart, limits: dict[str, int]) -> str:
    """Read a local file and upload it with ``media/upload``; return the ``media_id``."""
    try:
        data = await asyncio.to_thread(part.path.read_bytes)
    except OSError:
        raise PermanentSendError("media_missing", "the file to send is not readable") from None
    if len(data) > limits[part.media_type]:
        raise PermanentSendError("media_too_large", f"{part.media_type} of {len(data)} bytes")
    content_type = mimetypes.guess_type(part.file_name)[0] or "application/octet-stream"
    return await api.upload("/cgi-bin/media/upload", data, part.file_name, content_type, type=part.media_type)


async def _read_limited(resp: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    if resp.content_length is not None and resp.content_length > max_bytes:
        raise MediaTooLargeError(resp.content_length, max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(65536):
        size += len(chunk)
        if size > max_bytes:
            raise MediaTooLargeError(size, max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


_TYPE_SUFFIX = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "audio/amr": ".amr"}


def _suffix(disposition: str, content_type: str, default: str) -> str:
    name = disposition.rpartition("filename=")[2].strip().strip('"')
    if "." in name:
        return "." + name.rpartition(".")[2]
    return _TYPE_SUFFIX.get(content_type, default)


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        raise TransientSendError("badjson", "platform answered with something that is not JSON") from None
    if not isinstance(value, dict):
        raise TransientSendError("badjson", "platform answered with something that is not an object")
    return value
