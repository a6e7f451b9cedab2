"""A decrypted WeCom or service-account message → one :class:`IncomingMessage` (or None to ignore).

Both platforms use the same XML vocabulary, so one function serves both; the caller parses with
:func:`bot.channels.wx_callback.message_fields` (which refuses DTDs and entities, and gives the
fields as wechatpy's own parser would).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.channels.wx_callback import Rejected, decode_key, event_id
from handlers.messages import Channel, IncomingKind, IncomingMessage

# Events that say nothing a handler acts on: opening the app, tapping a link, periodic location.
IGNORED_EVENTS = frozenset({"enter_agent", "view", "location", "view_miniprogram", "templatesendjobfinish"})
NOTED_EVENTS = frozenset({"subscribe", "subscribe_scan", "unsubscribe", "scan"})


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def to_incoming(channel: Channel, data: dict[str, Any], received_at: datetime, *,
                directory_user: bool = False) -> IncomingMessage | None:
    """Convert the raw fields (``message_fields``) of one message; None = acknowledge only.

    ``directory_user``: the sender is a member of the organisation (WeCom), not a follower (WeChat).
    """
    sender = _str(data.get("FromUserName"))
    if not sender:
        raise Rejected(400, "message without FromUserName")
    mtype = _str(data.get("MsgType")).lower()
    msg_id = _str(data.get("MsgId"))
    created = _str(data.get("CreateTime"))

    def make(kind: IncomingKind, platform_id: str = "", **fields: Any) -> IncomingMessage:
        pid = msg_id if msg_id and msg_id != "0" else platform_id or event_id(sender, created, mtype)
        return IncomingMessage(
            channel=channel, sender=sender, platform_msg_id=pid, kind=kind, received_at=received_at,
            directory_user=directory_user, **fields
        )

    media_id = _str(data.get("MediaId")) or None
    if mtype == "text":
        return make(IncomingKind.TEXT, text=_str(data.get("Content")).strip())
    if mtype == "image":
        return make(IncomingKind.IMAGE, media_ref=media_id)
    if mtype == "voice":
        # Recognition is the platform's speech-to-text, present when the account has it switched on.
        return make(
            IncomingKind.VOICE,
            text=_str(data.get("Recognition")).strip(),
            media_ref=media_id,
            extra={"format": _str(data.get("Format"))},
        )
    if mtype in ("file", "video", "shortvideo"):
        name = _str(data.get("FileName")) or _str(data.get("Title"))
        return make(IncomingKind.FILE, media_ref=media_id, extra={"media_type": mtype, "file_name": name})
    if mtype == "location":
        try:
            where = (float(_str(data.get("Location_X"))), float(_str(data.get("Location_Y"))))
        except ValueError:
            raise Rejected(400, "location without coordinates") from None
        return make(IncomingKind.LOCATION, text=_str(data.get("Label")), location=where)
    if mtype == "link":
        text = "\n".join(p for p in (_str(data.get("Title")), _str(data.get("Url"))) if p)
        return make(IncomingKind.TEXT, text=text)
    if mtype == "event":
        return _event(data, sender, created, make)
    return None


def _event(data: dict[str, Any], sender: str, created: str, make: Any) -> IncomingMessage | None:
    event = _str(data.get("Event")).lower()
    key = _str(data.get("EventKey"))
    if event == "click":
        command = decode_key(key)
        if not command:
            return None
        return make(IncomingKind.BUTTON, event_id(sender, created, event, key), text=command)
    if event == "template_card_event":
        task_id = _str(data.get("TaskId"))
        command = decode_key(key)
        if not command:
            return None
        # The tap's ResponseCode is what updates that card (bot/channels/wecom_sender.py, CARD_UPDATE).
        return make(IncomingKind.BUTTON, event_id(sender, created, event, task_id, key), text=command,
                    reply_handle=_str(data.get("ResponseCode")) or None, extra={"task_id": task_id})
    if event in NOTED_EVENTS:
        return make(IncomingKind.EVENT, event_id(sender, created, event), extra={"event": event, "key": key})
    return None  # IGNORED_EVENTS and anything unknown: acknowledged, not stored
