"""The service-account sender: customer-service messages (``message/custom/send``) inside the 48-hour
window, a template notice outside it.

The service account has no buttons in customer-service messages, so a CARD goes as its
``plain_text`` (the commands listed for typing) and MARKDOWN as plain text. Images and voice are
uploaded with ``media/upload``; files cannot be sent and end as a permanent error (staff are told).

Outside the window — known locally from ``Identity.last_seen_at`` or answered by the platform as
45015 — the message is **held** (:class:`HeldSendError`): it is delivered when the person writes
again. If ``template_id_notice`` is set, a template message first tells them something is waiting
(at most once per person per ``NOTICE_EVERY``, so a backlog does not become a barrage).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.base import HeldSendError, PermanentSendError
from bot.channels.media import MediaStore, MediaTooLargeError
from bot.channels.wechat_token import SharedToken
from bot.channels.wx_api import Fetched, MediaPart, Part, WxApi, WxApiError, upload_part
from bot.channels.wx_callback import split_utf8
from bot.config import WeChatSettings
from handlers.clock import Clock
from handlers.messages import IncomingKind, IncomingMessage, OutgoingKind, OutgoingMessage
from storage.models import Identity

NAME = "wechat"  # this channel's name everywhere: inbox/outbox rows, identities, config

log = logging.getLogger(__name__)

MAX_TEXT_BYTES = 2048
TOKEN_CODES = frozenset({40001, 40014, 42001})  # 40001 here also means "not the latest token"
WINDOW = timedelta(hours=48)
WINDOW_MARGIN = timedelta(minutes=10)  # don't race the platform's clock at the edge of the window
OUT_OF_WINDOW = 45015
QUOTA_USED = 45047  # too many customer-service messages in this window
NOTICE_EVERY = timedelta(hours=12)
NOTICE_TEXT = "您有一条新消息，请回复任意内容查看"
MEDIA_LIMITS = {"image": 10 * 1024 * 1024, "voice": 2 * 1024 * 1024}


class WeChatSender:
    """``ChannelSender`` for ``wechat``; one per app, shared by all outbox tasks."""

    channel = NAME

    def __init__(
        self,
        http: aiohttp.ClientSession,
        settings: WeChatSettings,
        *,
        clock: Clock,
        sessions: async_sessionmaker[AsyncSession],
        media: MediaStore,
        owner: str,
        rng: Callable[[], float] = random.random,
        timeout_s: float = 10.0,
        token_poll_s: float = 0.2,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.sessions = sessions
        self.media = media
        self.tokens = SharedToken(sessions, clock, self._fetch_token, owner=owner, poll_s=token_poll_s)
        self.api = WxApi(
            http,
            settings.api_base,
            self.tokens,
            name="wechat",
            refresh_codes=TOKEN_CODES,
            timeout_s=timeout_s,
            rng=rng,
        )
        self._noticed: dict[str, datetime] = {}

    async def _fetch_token(self) -> Fetched:
        params = {
            "grant_type": "client_credential",
            "appid": self.settings.app_id,
            "secret": self.settings.app_secret,
        }
        result = await self.api.request_json("/cgi-bin/token", params)
        try:
            self.api.check(result)
        except WxApiError as err:  # wrong secret (40001/40125) or IP not whitelisted (40164)
            raise PermanentSendError(
                err.code, "token refused: check wechat.app_id, app_secret, IP whitelist"
            ) from None
        token = result.get("access_token")
        if not isinstance(token, str) or not token:
            raise PermanentSendError("token", "no access_token in the answer")
        return Fetched(token, int(result.get("expires_in") or 7200))

    async def send(self, address: str, message: OutgoingMessage, *, extra: dict[str, Any]) -> str | None:
        if message.kind == OutgoingKind.CARD_UPDATE:
            return None  # card updates exist only on WeCom
        parts = render(message)
        if await self._window_closed(address, extra):
            await self._held(address, message, "window_closed")
        first_id: str | None = None
        for part in parts:
            payload = await self._materialise(part) if isinstance(part, MediaPart) else dict(part)
            payload["touser"] = address
            try:
                result = await self.api.call("/cgi-bin/message/custom/send", payload=payload)
            except WxApiError as err:
                if err.errcode == OUT_OF_WINDOW:
                    await self._held(address, message, str(OUT_OF_WINDOW))
                if err.errcode == QUOTA_USED:
                    raise HeldSendError(str(QUOTA_USED), "客服消息条数已达上限") from None
                raise
            first_id = first_id or (str(result["msgid"]) if result.get("msgid") else None)
        return first_id

    async def _materialise(self, part: MediaPart) -> dict[str, Any]:
        media_id = await upload_part(self.api, part, MEDIA_LIMITS)
        return {"msgtype": part.media_type, part.media_type: {"media_id": media_id}}

    async def _window_closed(self, address: str, extra: dict[str, Any]) -> bool:
        """True only when we know the person has not written for 48 hours (unknown → ask the platform).

        The outbox passes the identity's ``last_seen_at`` in ``extra``; without it, read the identity.
        """
        seen: datetime | None = None
        if isinstance(extra.get("last_seen_at"), str):
            try:
                seen = datetime.fromisoformat(extra["last_seen_at"])
            except ValueError:
                seen = None
        if seen is None:
            async with self.sessions() as session:
                seen = await session.scalar(
                    select(Identity.last_seen_at).where(
                        Identity.channel == NAME, Identity.channel_user_id == address
                    )
                )
        if seen is None:
            return False
        if seen.tzinfo is None:
            seen = seen.replace(tzinfo=UTC)
        return self.clock.now() - seen > WINDOW - WINDOW_MARGIN

    async def _held(self, address: str, message: OutgoingMessage, reason: str) -> None:
        """Send the template notice if configured (and not sent lately), then hold the message."""
        notified = False
        if self.settings.template_id_notice:
            last = self._noticed.get(address)
            now = self.clock.now()
            if last is None or now - last >= NOTICE_EVERY:
                summary = (message.title or message.text or NOTICE_TEXT).splitlines()[0][:20]
                payload = {
                    "touser": address,
                    "template_id": self.settings.template_id_notice,
                    "data": {self.settings.template_field: {"value": summary}},
                }
                try:
                    await self.api.call("/cgi-bin/message/template/send", payload=payload)
                except WxApiError as err:  # a wrong template id must not turn a held message dead
                    log.warning("wechat template notice refused (%s); holding without notice", err.code)
                    raise HeldSendError(reason, "outside the 48-hour window") from None
                self._noticed[address] = now
            notified = True
        code = f"{reason}_notified" if notified else reason
        raise HeldSendError(code, "outside the 48-hour window")

    async def fetch_media(self, msg: IncomingMessage) -> str | None:
        """Download the photo or voice of ``msg`` into the media store; see ``WeComSender.fetch_media``."""
        if msg.channel != NAME or not msg.media_ref:
            return None
        default = {IncomingKind.IMAGE: ".jpg", IncomingKind.VOICE: ".amr"}.get(msg.kind, ".bin")
        try:
            return await self.api.download("/cgi-bin/media/get", self.media, default, media_id=msg.media_ref)
        except (WxApiError, PermanentSendError, MediaTooLargeError) as err:
            log.warning("wechat media of %s not fetched: %s", msg.platform_msg_id, err)
            return None


def render(message: OutgoingMessage) -> list[Part]:
    """The ``message/custom/send`` bodies (without recipient) for one message."""
    kind = message.kind
    if kind in (OutgoingKind.TEXT, OutgoingKind.MARKDOWN, OutgoingKind.CARD):
        body = message.text if kind == OutgoingKind.TEXT else message.plain_text
        return [{"msgtype": "text", "text": {"content": p}} for p in split_utf8(body, MAX_TEXT_BYTES)]
    if kind in (OutgoingKind.IMAGE, OutgoingKind.VOICE):
        if not message.media_path:
            raise PermanentSendError("media_missing", "no file given")
        path = Path(message.media_path)
        media_type = "image" if kind == OutgoingKind.IMAGE else "voice"
        parts: list[Part] = [MediaPart(media_type, path, message.file_name or path.name)]
        if message.text:
            parts.extend(
                {"msgtype": "text", "text": {"content": p}} for p in split_utf8(message.text, MAX_TEXT_BYTES)
            )
        return parts
    raise PermanentSendError("unsupported", f"the service account cannot send {kind} messages")
