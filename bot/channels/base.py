"""The seam between channel adapters and the pipeline.

Inbound, an adapter verifies and parses a callback into an :class:`~handlers.messages.IncomingMessage`
and hands it to :class:`bot.intake.Intake` (which commits it to the inbox before the adapter answers
the platform). Outbound, the outbox sender calls the adapter's :class:`ChannelSender`.
"""

from __future__ import annotations

from typing import Any, Protocol

from handlers.messages import Channel, OutgoingMessage


class SendError(Exception):
    """Base of what a sender may raise; ``code`` is the platform's error code or a short tag."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code


class TransientSendError(SendError):
    """Try again later (rate limit, 5xx, timeout). ``retry_after`` overrides the backoff, in seconds."""

    def __init__(self, code: str, message: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(code, message)
        self.retry_after = retry_after


class PermanentSendError(SendError):
    """Will never succeed as it is (invalid user, bad config): the message ends dead and staff are told."""


class HeldSendError(SendError):
    """The platform refuses for now and has no fallback (e.g. outside the WeChat 48-hour window):
    the message is held, visible to staff, and retried when the person writes again."""


class ChannelSender(Protocol):
    channel: Channel

    async def send(self, address: str, message: OutgoingMessage, *, extra: dict[str, Any]) -> str | None:
        """Deliver one message to one platform user; return the platform's message id if any.

        ``extra`` is the recipient identity's stored extras (e.g. a DingTalk sessionWebhook).
        Raise :class:`TransientSendError`, :class:`PermanentSendError` or :class:`HeldSendError`.
        """
        ...
