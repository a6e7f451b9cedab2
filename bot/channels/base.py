"""The seam between channel adapters and the pipeline.

Inbound, an adapter verifies and parses a callback into an :class:`~handlers.messages.IncomingMessage`
and hands it to :class:`bot.pipeline.intake.Intake` (which commits it to the inbox before the adapter answers
the platform). Outbound, the outbox sender calls the adapter's :class:`ChannelSender`. What the rest
of bot/ needs to know about a channel is its :class:`ChannelAdapter` declaration, listed in
``bot/channels/registry.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from aiohttp import web

from handlers.messages import IncomingMessage, OutgoingMessage
from handlers.settings import Settings


class SendError(Exception):
    """Base of what a sender may raise; ``code`` is the platform's error code or a short tag."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code


class TransientSendError(SendError):
    """Try again later (rate limit, 5xx, timeout). ``retry_after`` is the platform's hint, in seconds:
    the outbox waits at least that long, and never less than its own backoff."""

    def __init__(self, code: str, message: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(code, message)
        self.retry_after = retry_after


class DeferredSendError(TransientSendError):
    """Not a failure: our own pacing says "not before ``retry_after``" (WeCom's per-member limits). The
    outbox retries exactly then, charges no attempt, and does not count it against the channel."""


class PermanentSendError(SendError):
    """Will never succeed as it is (invalid user, bad config): the message ends dead and staff are told."""


class HeldSendError(SendError):
    """The platform refuses for now and has no fallback (e.g. outside the WeChat 48-hour window):
    the message is held, visible to staff, and retried when the person writes again."""


DELIVERY = "_delivery"  # the key of a :class:`Delivery` in ``extra``


@dataclass(frozen=True)
class Delivery:
    """Names one outbox row across all its attempts, in every process (``extra[DELIVERY]``).

    A sender that can make a resend recognisable uses it to send byte-identical requests for one
    row (WeCom: the card ``task_id``, the duplicate-check interval), so the platform's duplicate
    check drops a resend after a crash or a timeout, and two rows that happen to read the same are
    still two messages.
    """

    row_id: int
    created_at: datetime

    @property
    def token(self) -> str:
        return f"{self.row_id}t{int(self.created_at.timestamp())}"


def delivery_of(extra: dict[str, Any]) -> Delivery | None:
    value = extra.get(DELIVERY)
    return value if isinstance(value, Delivery) else None


class ChannelSender(Protocol):
    channel: str

    async def send(self, address: str, message: OutgoingMessage, *, extra: dict[str, Any]) -> str | None:
        """Deliver one message to one platform user; return the platform's message id if any.

        ``extra`` is the recipient identity's stored extras (e.g. a DingTalk sessionWebhook), plus
        the row's :class:`Delivery` under :data:`DELIVERY` when the outbox sends it.
        Raise :class:`TransientSendError`, :class:`PermanentSendError` or :class:`HeldSendError`.
        """
        ...


class MediaFetcher(Protocol):
    async def fetch_media(self, msg: IncomingMessage) -> str | None:
        """Download ``msg.media_ref`` into the media store; the local path, or None if it cannot be had."""
        ...


MediaHook = Callable[[ChannelSender, IncomingMessage], Awaitable[str | None]]
F = TypeVar("F", bound=MediaFetcher)
C = TypeVar("C")


def media_hook(cls: type[F]) -> MediaHook:
    """The media hook of a channel whose sender class ``cls`` downloads media (a stand-in sender,
    as in tests, downloads nothing)."""

    async def fetch(sender: ChannelSender, msg: IncomingMessage) -> str | None:
        return await sender.fetch_media(msg) if isinstance(sender, cls) else None

    return fetch


@dataclass(frozen=True)
class ChannelAdapter(Generic[C]):
    """What bot/ knows about one channel, declared once beside its adapter.

    ``section`` picks the channel's settings out of the whole (None: not configured, not run);
    ``setup`` adds its routes and registers its sender. ``callback_paths`` are the routes that take
    people's messages (labelled by channel on ``/metrics``). ``fetch_media``: set when an incoming
    ``media_ref`` must be downloaded before handling (the worker does it outside the transaction).
    ``passive_fits``: set when the callback's own answer may carry a reply, and says which message fits.
    ``roster_names``: how staff spell this channel in a roster's 渠道 column, besides ``name`` itself
    (compared without spaces, case-insensitively; see :func:`bot.channels.registry.roster_channels`).
    ``verified_senders``: False when the platform does not vouch for who is typing (the web chat:
    anyone can type as anyone), so handlers give such an identity nothing that grants access.
    """

    name: str  # the module's NAME: the inbox/outbox rows' and identities' channel
    callback_paths: tuple[str, ...]
    section: Callable[[Settings], C | None]
    setup: Callable[[web.Application, C], None]
    fetch_media: MediaHook | None = None
    passive_fits: Callable[[OutgoingMessage], bool] | None = None
    roster_names: tuple[str, ...] = ()
    verified_senders: bool = True

    def enable(self, app: web.Application, settings: Settings) -> bool:
        """Set the channel up if it is configured; True if it was."""
        section = self.section(settings)
        if section is None:
            return False
        self.setup(app, section)
        return True
