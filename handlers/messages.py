"""The two message types handlers see.

A channel adapter (``bot/channels/*``) turns a platform payload into one :class:`IncomingMessage`
and one :class:`OutgoingMessage` into a platform call. Nothing in ``handlers/`` ever sees XML or JSON
of a platform; that is what lets one conversation cross platforms.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias

Channel: TypeAlias = str
"""Where a person is reached: a channel's name, a plain string to handlers/. The set of names belongs to
bot/ (``bot/channels/registry.py``, each adapter's ``NAME``); nothing in handlers/ spells one."""


class IncomingKind(enum.StrEnum):
    TEXT = "text"
    IMAGE = "image"
    VOICE = "voice"
    LOCATION = "location"
    FILE = "file"
    BUTTON = "button"  # a tap on a card button or menu; ``text`` holds the command it stands for
    EVENT = "event"  # subscribe, enter_agent, ...: nothing the user typed


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """One message from one person, as every channel reports it.

    ``platform_msg_id`` is unique per channel (the inbox's dedupe key); ``conversation`` orders the
    messages of one person on one channel. ``media_ref`` is a channel-specific handle (a media id or a
    download code) that only the adapter that produced it can resolve; ``media_path`` is set once the
    file is stored locally.

    What the domain acts on is typed and filled by the adapter; handlers never read platform keys:

    - ``reply_handle``: an opaque handle for updating the card this tap came from (None: the card
      cannot be updated). The pipeline hands it back in a ``CARD_UPDATE``.
    - ``identity_extra``: opaque data for reaching this sender later (merged into the sender
      identity's ``extra``, which the channel's sender receives back); the pipeline stores it unread.
    - ``directory_user``: the sender comes from an organisation's directory, so an unknown one may be
      ignored (``bot.unknown_user_role = "ignore"``); people who found a public account are never ignored.
    - ``extra``: adapter-private diagnostics kept with the inbox row; nothing in handlers/ reads it.
    """

    channel: Channel
    sender: str  # platform user id (UserID, openid, staffId, web user id)
    platform_msg_id: str
    kind: IncomingKind
    text: str = ""
    received_at: datetime | None = None
    media_ref: str | None = None
    media_path: str | None = None
    location: tuple[float, float] | None = None
    reply_handle: str | None = None
    identity_extra: dict[str, Any] = field(default_factory=dict)
    directory_user: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def conversation(self) -> str:
        return f"{self.channel}:{self.sender}"


class OutgoingKind(enum.StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    CARD = "card"  # text with buttons
    IMAGE = "image"
    VOICE = "voice"
    FILE = "file"
    # Not a message: replace the buttons of a card the person tapped by one disabled button labelled
    # ``text``. ``update_ref`` is the platform's handle for that tap (WeCom: its response_code).
    # Channels without updatable cards send nothing. Cosmetic: see :attr:`OutgoingMessage.cosmetic`.
    CARD_UPDATE = "card_update"


@dataclass(frozen=True, slots=True)
class Button:
    """A one-tap choice. ``command`` is exactly what the person could type instead."""

    label: str
    command: str


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One message to one person; rendered by the adapter of the channel that reaches them."""

    kind: OutgoingKind
    text: str = ""
    title: str = ""
    buttons: tuple[Button, ...] = ()
    media_path: str | None = None  # local file for IMAGE / VOICE / FILE
    file_name: str | None = None
    urgent: bool = False
    update_ref: str | None = None  # CARD_UPDATE only: which tapped card (platform handle)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind.value,
            "text": self.text,
            "title": self.title,
            "buttons": [[b.label, b.command] for b in self.buttons],
            "media_path": self.media_path,
            "file_name": self.file_name,
            "urgent": self.urgent,
        }
        if self.update_ref is not None:  # only card updates carry it; other rows stay as they were
            data["update_ref"] = self.update_ref
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OutgoingMessage:
        return cls(
            kind=OutgoingKind(data["kind"]),
            text=data.get("text", ""),
            title=data.get("title", ""),
            buttons=tuple(Button(label, cmd) for label, cmd in data.get("buttons", [])),
            media_path=data.get("media_path"),
            file_name=data.get("file_name"),
            urgent=bool(data.get("urgent", False)),
            update_ref=data.get("update_ref"),
        )

    @property
    def cosmetic(self) -> bool:
        """Losing it costs only looks (a card update): if it cannot be delivered it ends dead with no
        staff alert, since nothing the person needs to read was lost."""
        return self.kind == OutgoingKind.CARD_UPDATE

    @property
    def plain_text(self) -> str:
        """The message as plain text, for channels or clients without cards or markdown."""
        parts = [self.title] if self.title else []
        if self.text:
            parts.append(self.text)
        if self.buttons:
            parts.append("回复：" + " / ".join(f"「{b.command}」" for b in self.buttons))
        return "\n".join(parts)


def text(body: str) -> OutgoingMessage:
    return OutgoingMessage(kind=OutgoingKind.TEXT, text=body)


def card(title: str, body: str, buttons: list[Button], *, urgent: bool = False) -> OutgoingMessage:
    return OutgoingMessage(kind=OutgoingKind.CARD, title=title, text=body, buttons=tuple(buttons), urgent=urgent)


def markdown(title: str, body: str) -> OutgoingMessage:
    return OutgoingMessage(kind=OutgoingKind.MARKDOWN, title=title, text=body)


def card_update(label: str, update_ref: str) -> OutgoingMessage:
    """Show ``label`` instead of the buttons of the card whose tap gave ``update_ref``."""
    return OutgoingMessage(kind=OutgoingKind.CARD_UPDATE, text=label, update_ref=update_ref)
