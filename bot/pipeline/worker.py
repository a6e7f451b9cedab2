"""The inbox worker: handles stored messages, one transaction each, in order per conversation.

Only the oldest pending message of a conversation is ever claimable, and a claim is a row lock
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's single writer serialises), so N instances can run
side by side without handling a message twice or out of order. The claim and the other queue statements
live in :class:`storage.queues.InboxQueue`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.base import ChannelAdapter, ChannelSender
from bot.config import STAFF_CHANNELS
from bot.ops import counters
from bot.pipeline.passive import PassiveReplies, Reserved
from bot.pipeline.pump import ConversationPump
from bot.pipeline.writegate import NO_GATE, WriteGate
from handlers.failures import message_failed
from handlers.messages import Channel, IncomingKind, IncomingMessage
from handlers.outbox import Outbox
from handlers.pipeline import handle_incoming, identify
from handlers.ratelimit import LIMITED, NOTICE, RateLimiter
from handlers.services import Services
from storage.models import InboxMessage, InboxState, Person, Role
from storage.queues import InboxQueue

log = logging.getLogger(__name__)
POLL_SECONDS = 2.0
CONCURRENCY = 8


# Inbox rows stored by the version before the typed fields kept the adapters' data in ``extra`` and let
# the domain read it by platform. A row acknowledged before an upgrade and handled after it is read the
# old way, so its card update and DingTalk reply webhook are not lost (``_legacy_fields``).
_LEGACY_DIRECTORY_CHANNELS = ("wecom", "dingtalk")
_LEGACY_IDENTITY_KEYS = ("session_webhook", "session_webhook_expires_ms")


def _legacy_fields(row: InboxMessage, payload: dict[str, Any]) -> dict[str, Any]:
    """The typed fields of a row stored before they existed (its payload has no ``directory_user``)."""
    extra = payload.get("extra") or {}
    reach = {k: extra[k] for k in _LEGACY_IDENTITY_KEYS if k in extra}
    handle = extra.get("response_code") if row.kind == IncomingKind.BUTTON.value else None
    return {"reply_handle": handle if isinstance(handle, str) and handle else None,
            "identity_extra": reach if reach.get("session_webhook") else {},
            "directory_user": row.channel in _LEGACY_DIRECTORY_CHANNELS}


def to_incoming(row: InboxMessage) -> IncomingMessage:
    payload = row.payload or {}
    loc = payload.get("location")
    typed = ({"reply_handle": payload.get("reply_handle"), "identity_extra": payload.get("identity_extra", {}),
              "directory_user": bool(payload.get("directory_user", False))}
             if "directory_user" in payload else _legacy_fields(row, payload))
    if row.channel not in STAFF_CHANNELS:  # every channel's name (bot/channels/registry.py asserts it)
        raise ValueError(f"{row.channel!r} is not a channel")
    return IncomingMessage(
        channel=row.channel,
        sender=row.sender,
        platform_msg_id=row.platform_msg_id,
        kind=IncomingKind(row.kind),
        text=row.text,
        received_at=row.received_at,
        media_ref=payload.get("media_ref"),
        media_path=payload.get("media_path"),
        location=(float(loc[0]), float(loc[1])) if loc else None,
        extra=payload.get("extra", {}),
        **typed,
    )


class InboxWorker(ConversationPump):
    name = "inbox-worker"
    poll_seconds = POLL_SECONDS

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        services: Services,
        senders: dict[Channel, ChannelSender],
        *,
        channels: Mapping[str, ChannelAdapter[Any]],
        gate: WriteGate = NO_GATE,
        reads: async_sessionmaker[AsyncSession] | None = None,
        passive: PassiveReplies | None = None,
    ) -> None:
        super().__init__(concurrency=CONCURRENCY)
        self._passive = passive
        self._reads = reads or sessions  # polling reads: on SQLite they must not queue behind writers
        self._sessions = sessions
        self._services = services
        self._senders = senders
        self._channels = channels  # the channel registry (bot/channels/registry.py): who fetches media
        self._gate = gate
        self._limiter = RateLimiter(services.settings.bot.rate_limit_per_min)
        self.handled = 0

    async def due_heads(self) -> dict[str, int]:
        async with self._reads() as session:
            return await InboxQueue.heads(session, self._services.clock.now())

    async def work(self, conversation: str, first_id: int) -> None:
        row_id: int | None = first_id
        while row_id is not None:
            await self.take_turn()
            row_id = await self.handle_one(row_id)

    async def _resolve_media(self, msg: IncomingMessage) -> IncomingMessage:
        adapter, sender = self._channels.get(msg.channel), self._senders.get(msg.channel)
        if not msg.media_ref or msg.media_path or adapter is None or adapter.fetch_media is None or sender is None:
            return msg
        path = await adapter.fetch_media(sender, msg)  # outside the transaction: it must not hold the write lock
        if not path:
            return msg
        return replace(msg, media_path=path)

    def _needs_media(self, msg: IncomingMessage) -> bool:
        adapter = self._channels.get(msg.channel)
        return (bool(msg.media_ref) and not msg.media_path and adapter is not None and adapter.fetch_media is not None
                and msg.channel in self._senders)

    async def handle_one(self, row_id: int, *, resolved: IncomingMessage | None = None) -> int | None:
        """Handle one inbox row in one transaction; return the conversation's next due row, if any.

        A message with a file to download leaves the transaction first: the download (from the
        platform) happens outside it, so it never holds SQLite's write lock, and then it is handled.
        """
        reserved: Reserved | None = None
        limited = False
        try:
            async with self._gate.hold(), self._sessions() as session, session.begin():
                started = time.perf_counter()
                row = await InboxQueue.claim(session, row_id)
                if row is None:
                    return None  # done, another instance has it, or an earlier message is still pending
                msg = resolved or to_incoming(row)
                if resolved is None and self._needs_media(msg):
                    attempts = row.attempts
                    fetch_first = True
                else:
                    fetch_first = False
                    if msg.media_path and not (row.payload or {}).get("media_path"):
                        row.payload = {**(row.payload or {}), "media_path": msg.media_path}
                    ctx = None
                    until = await self._limiter.wait_until(session, row, self._services.clock.now())
                    limited = until is not None and await self._hold_back(session, row, msg, until)
                    if not limited:
                        ctx = await handle_incoming(session, self._services, msg)
                        if ctx is not None and self._passive is not None and self._passive.waiting(msg):
                            reserved = await self._passive.reserve(session, msg, ctx.outbox.rows)
                        row.state = InboxState.DONE.value
                        row.handled_at = self._services.clock.now()
                        row.attempts += 1
                        waited = (row.handled_at - row.received_at).total_seconds()
                        following = await InboxQueue.next_due(session, row.conversation, row.id,
                                                              self._services.clock.now())
            if fetch_first:
                return await self._with_media(row_id, msg, attempts)
            if limited:  # kept, pending until the sender's minute has room; the conversation waits behind it
                if self._passive is not None:
                    await self._passive.handled(msg, None)  # no reply of its own now: the callback need not wait
                counters.HANDLING_SECONDS.labels("limited").observe(time.perf_counter() - started)
                self._services.on_outbox()
                return None
            if self._passive is not None:
                await self._passive.handled(msg, reserved)
            self.handled += 1
            elapsed = time.perf_counter() - started
            counters.HANDLING_SECONDS.labels("done").observe(elapsed)
            counters.INBOX_WAIT_SECONDS.observe(max(0.0, waited))
            log.debug("handled inbox %s", row_id, extra={"channel": msg.channel, "event": "inbox.handled",
                                                         "outcome": "done"})
            if ctx is not None and ctx.outbox.written:
                self._services.on_outbox()
            return following
        except Exception as exc:
            counters.HANDLING_SECONDS.labels("failed").observe(0.0)
            log.exception("handling inbox %s failed", row_id, extra={"event": "inbox.failed"})
            await self._failed(row_id, exc)
            return None

    async def _with_media(self, row_id: int, msg: IncomingMessage, attempts: int) -> int | None:
        try:
            msg = await self._resolve_media(msg)
        except Exception as exc:
            log.warning("media download failed for inbox %s: %s", row_id, type(exc).__name__)
            if attempts + 1 < self._services.settings.bot.inbox_max_attempts - 1:
                await self._failed(row_id, exc)  # the platform may be down for a moment: try again later
                return None
            # Out of patience: handle the message without its file rather than not at all.
        return await self.handle_one(row_id, resolved=msg)

    async def _hold_back(self, session: AsyncSession, row: InboxMessage, msg: IncomingMessage,
                         until: datetime) -> bool:
        """Keep a flooding sender's message pending until ``until`` (staff are never held back).

        The first held message of a flood earns the sender one polite notice (handlers/ratelimit.py).
        """
        identity = await identify(session, self._services, msg)
        if identity is None:
            return False  # handle_incoming ignores it anyway
        person = await session.get(Person, identity.person_id)
        if person is not None and person.role == Role.STAFF.value:
            return False
        row.not_before = until
        if row.error == LIMITED:
            return True  # held back before (clocks of two instances disagree a little): told already
        first = not await self._limiter.already_told(session, row)
        row.error = LIMITED
        counters.RATE_LIMITED.labels(msg.channel).inc()
        if first:
            log.info("sender rate limited", extra={"channel": msg.channel, "event": "inbox.rate_limited"})
            await Outbox(session, self._services.clock).to_identity(identity, NOTICE)
        return True

    async def _failed(self, row_id: int, exc: Exception) -> None:
        """Back off and retry; after the last attempt the message is ``failed``: handlers/failures.py tells the
        sender (one apology per burst) and staff (one grouped alert per window), never one per message."""
        max_attempts = self._services.settings.bot.inbox_max_attempts
        now = self._services.clock.now()
        try:
            async with self._gate.hold(), self._sessions() as session, session.begin():
                row = await session.get(InboxMessage, row_id)
                if row is None or row.state != InboxState.PENDING.value:
                    return
                row.attempts += 1
                row.error = f"{type(exc).__name__}: {exc}"[:2000]
                if row.attempts < max_attempts:
                    row.not_before = now + timedelta(seconds=min(300, 2 ** row.attempts))
                    return
                row.state = InboxState.FAILED.value
                row.handled_at = now
                await message_failed(session, self._services, row)  # one apology per burst, grouped alert
            self._services.on_outbox()
        except Exception:
            log.exception("could not record the failure of inbox %s", row_id)
