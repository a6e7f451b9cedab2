"""The web chat channel and its playground: a real channel adapter over the same inbox and outbox.

The browser posts what a person types (``/webchat/send``) and polls what was delivered to them
(``/webchat/messages``). Delivery to the web channel is the outbox row turning ``sent``: the sender
below only stamps it. Anyone can act as anyone here, so it is served only with
``[server] playground = true`` (the demo and the tests), which the settings refuse next to a real
channel or any ``[[staff]]``, and ``craftlink serve`` on a database with real-channel people,
unless ``server.playground_with_real_channels`` says so; start-up logs a WARNING while it is on.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web
from sqlalchemy import select

from bot.channels.base import ChannelAdapter
from bot.keys import clock_key, intake_key, read_sessions_key, senders_key, settings_key
from bot.pipeline.intake import BadMessage
from handlers.messages import IncomingKind, IncomingMessage, OutgoingKind, OutgoingMessage
from handlers.settings import ServerSettings, demo_mode
from storage.models import Craftsman, Enterprise, Identity, OutboxMessage, OutboxState, Person, StaffMember

NAME = "web"  # this channel's name everywhere: inbox/outbox rows, identities, config
STATIC = Path(__file__).with_name("static")
MAX_TEXT = 2000
log = logging.getLogger(__name__)
SEND_PATH, UPLOAD_PATH = "/webchat/send", "/webchat/upload"  # what a browser "says"
IMAGE_TYPES = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp"}


class WebSender:
    """Delivery to a browser is the row becoming visible as sent; nothing can fail here."""

    channel = NAME

    async def send(self, address: str, message: OutgoingMessage, *, extra: dict[str, Any]) -> str | None:
        if message.kind == OutgoingKind.CARD_UPDATE:
            return None  # web cards are not updated after a tap; ``messages`` never shows these rows
        return f"web-{uuid.uuid4().hex[:12]}"


async def playground(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "playground.html")


async def people(request: web.Request) -> web.Response:
    """Who one can be in the playground: everyone with a web identity, grouped by role."""
    async with request.app[read_sessions_key]() as session:
        rows = (await session.execute(
            select(Person, Identity).join(Identity, Identity.person_id == Person.id)
            .where(Identity.channel == NAME).order_by(Person.role, Person.id)
        )).all()
        crafts = {c.person_id: c for c in (await session.scalars(select(Craftsman))).all()}
        firms = {e.id: e for e in (await session.scalars(select(Enterprise))).all()}
        staff = {s.person_id: s for s in (await session.scalars(select(StaffMember))).all()}
    out = []
    for person, identity in rows:
        if person.role == "craftsman" and person.id in crafts:
            detail = f"{crafts[person.id].trade_group} · {crafts[person.id].region}"
        elif person.role == "enterprise":
            firm = firms.get(person.enterprise_id or 0)
            detail = firm.name if firm else "未登记"
        else:
            detail = staff[person.id].staff_role if person.id in staff else ""
        out.append({"user": identity.channel_user_id, "name": person.name or "（未登记）", "role": person.role,
                    "detail": detail})
    return web.json_response({"people": out, "new_user": f"web-{secrets.token_hex(4)}"})


def _user(value: Any) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 64 or not value.replace("-", "").replace("_", "").isalnum():
        raise web.HTTPBadRequest(text="user: expected 1-64 letters, digits, - or _")
    return value


async def send(request: web.Request) -> web.Response:
    """What a person types (or taps) in the playground → one IncomingMessage → the inbox."""
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text="expected a JSON body") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    user = _user(body.get("user"))
    text = body.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
        raise web.HTTPBadRequest(text=f"text: expected 1-{MAX_TEXT} characters")
    msg_id = body.get("id") or uuid.uuid4().hex
    if not isinstance(msg_id, str) or len(msg_id) > 64:
        raise web.HTTPBadRequest(text="id: expected a string of at most 64 characters")
    kind = IncomingKind.BUTTON if body.get("button") else IncomingKind.TEXT
    msg = IncomingMessage(channel=NAME, sender=user, platform_msg_id=msg_id, kind=kind, text=text.strip(),
                          received_at=request.app[clock_key].now())
    try:
        new = await request.app[intake_key].accept(msg)
    except BadMessage as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    except ConnectionError:
        raise web.HTTPServiceUnavailable(text="storage unavailable, retry") from None
    return web.json_response({"ok": True, "duplicate": not new, "id": msg_id})


async def upload(request: web.Request) -> web.Response:
    """A photo from the playground: stored locally, then an image message through the inbox."""
    settings = request.app[settings_key]
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError, KeyError):
        raise web.HTTPBadRequest(text="expected multipart/form-data") from None
    user, data, ctype, caption = "", b"", "", ""
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == "user":
            user = _user(await part.text())
        elif part.name == "caption":
            caption = (await part.text())[:MAX_TEXT]
        elif part.name == "file":
            ctype = part.headers.get("Content-Type", "")
            data = await part.read(decode=False)
    if not user or not data:
        raise web.HTTPBadRequest(text="expected user and file")
    if ctype not in IMAGE_TYPES:
        raise web.HTTPUnsupportedMediaType(text="only JPEG, PNG, GIF or WebP photos")
    if len(data) > settings.bot.media_max_bytes:
        raise web.HTTPRequestEntityTooLarge(max_size=settings.bot.media_max_bytes, actual_size=len(data))
    media_dir = Path(settings.bot.media_dir)
    media_dir.mkdir(parents=True, exist_ok=True)
    path = media_dir / f"{uuid.uuid4().hex}{IMAGE_TYPES[ctype]}"
    path.write_bytes(data)
    msg = IncomingMessage(channel=NAME, sender=user, platform_msg_id=uuid.uuid4().hex, kind=IncomingKind.IMAGE,
                          text=caption, media_path=str(path), received_at=request.app[clock_key].now())
    try:
        await request.app[intake_key].accept(msg)
    except ConnectionError:
        raise web.HTTPServiceUnavailable(text="storage unavailable, retry") from None
    return web.json_response({"ok": True})


async def messages(request: web.Request) -> web.Response:
    """What was delivered to a web user since ``after`` (the browser polls this)."""
    user = _user(request.query.get("user"))
    try:
        after = int(request.query.get("after", "0"))
    except ValueError:
        raise web.HTTPBadRequest(text="after: expected an integer") from None
    async with request.app[read_sessions_key]() as session:
        rows = (await session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.channel == NAME, OutboxMessage.address == user,
                OutboxMessage.state == OutboxState.SENT.value, OutboxMessage.id > after,
            ).order_by(OutboxMessage.id).limit(200)
        )).all()
    tz = request.app[settings_key].tz
    out = []
    for row in rows:
        msg = OutgoingMessage.from_json(row.payload)
        if msg.kind == OutgoingKind.CARD_UPDATE:
            continue
        item: dict[str, Any] = {"id": row.id, "kind": msg.kind.value, "title": msg.title, "text": msg.text,
                                "buttons": [{"label": b.label, "command": b.command} for b in msg.buttons],
                                "at": (row.sent_at or row.created_at).astimezone(tz).strftime("%H:%M")}
        if msg.media_path:
            item["media"] = f"/webchat/media/{Path(msg.media_path).name}"
        out.append(item)
    return web.json_response({"messages": out})


async def media(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if "/" in name or "\\" in name or name.startswith("."):
        raise web.HTTPNotFound()
    path = Path(request.app[settings_key].bot.media_dir) / name
    if not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path)


def setup(app: web.Application, server: ServerSettings) -> None:
    """Register the web sender (always: staff tools write web rows) and, with the playground on, its routes."""
    app[senders_key][NAME] = WebSender()
    settings = app[settings_key]
    if not server.playground:
        return
    log.warning("PLAYGROUND ON: /playground and /webchat/* let anyone who reaches %s act as any web-chat user%s",
                settings.server.public_url,
                "" if demo_mode(settings) else " — NEXT TO REAL CHANNELS (server.playground_with_real_channels)")
    app.router.add_get("/playground", playground)
    app.router.add_get("/webchat/people", people)
    app.router.add_post(SEND_PATH, send)
    app.router.add_post(UPLOAD_PATH, upload)
    app.router.add_get("/webchat/messages", messages)
    app.router.add_get("/webchat/media/{name}", media)


ADAPTER = ChannelAdapter(name=NAME, callback_paths=(SEND_PATH, UPLOAD_PATH), section=lambda s: s.server,
                         setup=setup, roster_names=("网页", "网页版"), verified_senders=False)
