"""The WeCom sender: one :class:`OutgoingMessage` → one or more ``message/send`` calls.

Rendering: TEXT → ``text``; MARKDOWN → ``markdown`` (both cut at line ends into ≤2048-byte parts);
CARD → ``template_card`` of type ``button_interaction`` whose button keys carry the commands (a
card that cannot be shown as one — no buttons, more than 6, a command too long for a key — goes as
plain text listing the commands); IMAGE / VOICE / FILE → ``media/upload`` then send.

CARD_UPDATE is not a message: it calls ``message/update_template_card`` with the tap's
``response_code`` (single use, valid 72 hours) so the tapped card shows one disabled button labelled
with the outcome. It is cosmetic: any refusal other than a token or rate-limit code (a used or expired
response_code, for which WeCom documents no errcode) is a PermanentSendError, and the outbox ends a
cosmetic message dead without alerting staff. It sends nothing to the member, so it is not paced.

Every ``message/send`` asks for WeCom's duplicate check (``enable_duplicate_check``: "在一定时间间隔内，
同样内容（请求json）的消息，不会重复收到"), so a resend of an outbox row — after a crash (the lease ran
out), a client timeout whose call did arrive, or a part of a multi-part message that failed — is not
shown twice. That needs the resend to be the *same request*: the outbox passes the row's
:class:`~bot.channels.base.Delivery`, from which the card ``task_id`` and the
``duplicate_check_interval`` (1800 s plus the row id modulo 600, so never shorter than the lease
the settings allow) are derived. The per-row interval also keeps two rows that happen to read the
same (帮助 asked twice) distinct requests, so both are shown. A media part is uploaded again on a
resend and gets a new ``media_id``: the duplicate check cannot recognise it (see docs/ARCHITECTURE.md).
A message of several parts reserves all its pacing slots first.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from bot.channels.base import Delivery, PermanentSendError, delivery_of
from bot.channels.media import MediaStore, MediaTooLargeError
from bot.channels.pacing import Pacer
from bot.channels.wx_api import Fetched, MediaPart, MemoryTokenCache, Part, WxApi, WxApiError, upload_part
from bot.channels.wx_callback import encode_command, split_utf8
from bot.config import WeComSettings
from handlers.clock import Clock
from handlers.messages import IncomingKind, IncomingMessage, OutgoingKind, OutgoingMessage

NAME = "wecom"  # this channel's name everywhere: inbox/outbox rows, identities, config

log = logging.getLogger(__name__)

MAX_TEXT_BYTES = 2048  # text and markdown content, per the message/send doc
MAX_BUTTONS = 6
MAX_CARD_TITLE = 36  # characters, main_title.title
MAX_CARD_BODY = 160  # characters, sub_title_text
MAX_BUTTON_LABEL = 10
DUPLICATE_CHECK_S = 1800  # WeCom's default window; bot.outbox_lease_s may not exceed it (settings)
DUPLICATE_CHECK_SPREAD = 600  # per-row offset on top (see the module docstring); 1800+599 < the 4 h maximum
MAX_PARTS = 10  # ~20 KB of text; far below the 30 per minute a member may receive
TOKEN_CODES = frozenset({40014, 42001})
MEDIA_LIMITS = {"image": 10 * 1024 * 1024, "voice": 2 * 1024 * 1024, "file": 20 * 1024 * 1024}


class WeComSender:
    """``ChannelSender`` for ``wecom``; one per app, shared by all outbox tasks."""

    channel = NAME

    def __init__(
        self,
        http: aiohttp.ClientSession,
        settings: WeComSettings,
        *,
        clock: Clock,
        media: MediaStore,
        pacer: Pacer | None = None,
        rng: Callable[[], float] = random.random,
        timeout_s: float = 10.0,
    ) -> None:
        self.settings = settings
        self.tokens = MemoryTokenCache(self._fetch_token, clock)
        self.api = WxApi(
            http,
            settings.api_base,
            self.tokens,
            name="wecom",
            refresh_codes=TOKEN_CODES,
            timeout_s=timeout_s,
            rng=rng,
        )
        self.pacer = pacer or Pacer(clock)
        self.media = media

    async def _fetch_token(self) -> Fetched:
        result = await self.api.request_json(
            "/cgi-bin/gettoken", {"corpid": self.settings.corp_id, "corpsecret": self.settings.secret}
        )
        try:
            self.api.check(result)
        except WxApiError as err:  # 40001 / 40013: the secret or corp id is wrong; retrying won't help
            raise PermanentSendError(
                err.code, "gettoken refused: check wecom.corp_id and wecom.secret"
            ) from None
        token = result.get("access_token")
        if not isinstance(token, str) or not token:
            raise PermanentSendError("gettoken", "no access_token in the answer")
        return Fetched(token, int(result.get("expires_in") or 7200))

    async def send(self, address: str, message: OutgoingMessage, *, extra: dict[str, Any]) -> str | None:
        if message.kind == OutgoingKind.CARD_UPDATE:
            await self.update_card(address, message)
            return None
        delivery = delivery_of(extra)
        parts = render(message, delivery)
        if not parts:
            return None
        if len(parts) > MAX_PARTS:  # could never fit one member's per-minute limit
            raise PermanentSendError("too_long", f"{len(parts)} parts")
        self.pacer.reserve(address, len(parts))
        interval = duplicate_check_interval(delivery)
        first_id: str | None = None
        for part in parts:
            payload = await self._materialise(part) if isinstance(part, MediaPart) else dict(part)
            payload.update(touser=address, agentid=self.settings.agent_id, enable_duplicate_check=1,
                           duplicate_check_interval=interval)
            result = await self.api.call("/cgi-bin/message/send", payload=payload)
            for field in ("invaliduser", "unlicenseduser"):
                if result.get(field):
                    raise PermanentSendError(field, "WeCom refused the recipient")
            first_id = first_id or (str(result["msgid"]) if result.get("msgid") else None)
        return first_id

    async def update_card(self, address: str, message: OutgoingMessage) -> None:
        """Replace the buttons of the card ``address`` tapped by one disabled button ``message.text``."""
        if not message.update_ref:
            raise PermanentSendError("no_response_code", "card update without a response_code")
        label = message.text.strip()[:MAX_BUTTON_LABEL]
        if not label:
            raise PermanentSendError("no_label", "card update without a label")
        result = await self.api.call(
            "/cgi-bin/message/update_template_card",
            payload={
                "userids": [address],
                "agentid": self.settings.agent_id,
                "response_code": message.update_ref,
                "button": {"replace_name": label},
            },
        )
        if result.get("invaliduser"):
            raise PermanentSendError("invaliduser", "WeCom refused the member")

    async def _materialise(self, part: MediaPart) -> dict[str, Any]:
        media_id = await upload_part(self.api, part, MEDIA_LIMITS)
        return {"msgtype": part.media_type, part.media_type: {"media_id": media_id}}

    async def fetch_media(self, msg: IncomingMessage) -> str | None:
        """Download the photo / voice / file of ``msg`` into the media store; return the local path.

        None when there is nothing to fetch or it can never be fetched (expired media id, over the
        size limit: logged); raises TransientSendError when a later attempt may succeed.
        """
        if msg.channel != NAME or not msg.media_ref:
            return None
        default = {IncomingKind.IMAGE: ".jpg", IncomingKind.VOICE: ".amr"}.get(msg.kind, "")
        if not default:
            name = str(msg.extra.get("file_name", ""))
            default = "." + name.rpartition(".")[2] if "." in name else ".bin"
        try:
            return await self.api.download("/cgi-bin/media/get", self.media, default, media_id=msg.media_ref)
        except (WxApiError, PermanentSendError, MediaTooLargeError) as err:
            log.warning("wecom media of %s not fetched: %s", msg.platform_msg_id, err)
            return None


def duplicate_check_interval(delivery: Delivery | None) -> int:
    """The window of WeCom's duplicate check for one row: the same for every attempt at it."""
    return DUPLICATE_CHECK_S + (delivery.row_id % DUPLICATE_CHECK_SPREAD if delivery else 0)


def render(message: OutgoingMessage, delivery: Delivery | None = None) -> list[Part]:
    """The ``message/send`` bodies (without recipient) for one message; with ``delivery`` the same
    bodies for every attempt at that outbox row."""
    kind = message.kind
    if kind == OutgoingKind.TEXT:
        return _texts(message.text)
    if kind == OutgoingKind.MARKDOWN:
        body = f"**{message.title}**\n{message.text}" if message.title else message.text
        return [{"msgtype": "markdown", "markdown": {"content": p}} for p in split_utf8(body, MAX_TEXT_BYTES)]
    if kind == OutgoingKind.CARD:
        return render_card(message, f"cl-{delivery.token}" if delivery else None)
    if kind in (OutgoingKind.IMAGE, OutgoingKind.VOICE, OutgoingKind.FILE):
        return _media(message)
    raise PermanentSendError("unsupported", f"message kind {kind}")


def _texts(body: str) -> list[Part]:
    return [{"msgtype": "text", "text": {"content": p}} for p in split_utf8(body, MAX_TEXT_BYTES)]


def render_card(message: OutgoingMessage, task_id: str | None = None) -> list[Part]:
    """A ``button_interaction`` card, preceded by a text part when the body is too long for it."""
    buttons = list({b.command: b for b in message.buttons}.values())
    try:
        keys = [encode_command(b.command) for b in buttons]
    except ValueError:
        keys = []
    if not buttons or len(buttons) > MAX_BUTTONS or len(keys) != len(buttons):
        return _texts(message.plain_text)
    title, body = message.title or "通知", message.text
    if len(title) > MAX_CARD_TITLE:  # keep every word: the whole title moves into the body
        title, body = title[: MAX_CARD_TITLE - 1] + "…", f"{title}\n{body}".strip()
    parts: list[Part] = []
    card: dict[str, Any] = {
        "card_type": "button_interaction",
        "main_title": {"title": title},
        # Unique per app, letters/digits/_-@ only, ≤128 bytes.
        "task_id": task_id or f"cl-{uuid.uuid4().hex}",
        "button_list": [
            {
                "text": b.label[:MAX_BUTTON_LABEL] or b.command[:MAX_BUTTON_LABEL],
                "style": 1 if i == 0 else 2,
                "key": k,
            }
            for i, (b, k) in enumerate(zip(buttons, keys, strict=True))
        ],
    }
    if len(body) > MAX_CARD_BODY:
        parts.extend(_texts(body))
    elif body:
        card["sub_title_text"] = body
    parts.append({"msgtype": "template_card", "template_card": card})
    return parts


def _media(message: OutgoingMessage) -> list[Part]:
    if not message.media_path:
        raise PermanentSendError("media_missing", "no file given")
    path = Path(message.media_path)
    name = message.file_name or path.name
    suffix = path.suffix.lower()
    media_type = {OutgoingKind.IMAGE: "image", OutgoingKind.VOICE: "voice"}.get(message.kind, "file")
    # WeCom shows images only as jpg/png and plays voice only as AMR; anything else goes as a file.
    if (media_type == "image" and suffix not in (".jpg", ".jpeg", ".png")) or (
        media_type == "voice" and suffix != ".amr"
    ):
        media_type = "file"
    parts: list[Part] = [MediaPart(media_type, path, name)]
    if message.text:
        parts.extend(_texts(message.text))
    return parts
