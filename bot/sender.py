"""The outbox sender: delivers queued messages with retries, in order per conversation, none lost.

A row is claimed by a conditional UPDATE that pushes its ``next_attempt_at`` forward by a lease, so
another instance skips it while it is in flight; a crash mid-send makes it due again after the lease
(at-least-once: the platforms' own duplicate checks absorb the rare repeat). A message that can never
be delivered ends ``dead`` and staff are told; one the platform refuses for now ends ``held``.
A cosmetic message (``OutgoingMessage.cosmetic``: a card update) ends the same way but without an
alert: nothing a person needed to read was lost, and a used or expired card handle is routine.
"""

from __future__ import annotations

import logging
import random
import time
from datetime import timedelta

from aiohttp import web
from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import metrics
from bot.channels.base import ChannelSender, HeldSendError, PermanentSendError, TransientSendError
from bot.pump import ConversationPump
from bot.writegate import NO_GATE, WriteGate
from handlers.messages import Channel, OutgoingMessage
from handlers.outbox import HELD_FLAG, Outbox
from handlers.services import Services
from storage.models import CASE_NUMBER_OFFSET, IDENTITY_OF, Identity, OutboxMessage, OutboxState

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=60)
POLL_SECONDS = 1.0
CONCURRENCY = 16

# Built once (see bot/worker.py): the sender runs these for every message it delivers.
_PENDING_HEADS = (
    select(OutboxMessage.id, OutboxMessage.conversation, OutboxMessage.next_attempt_at)
    .where(OutboxMessage.state == OutboxState.PENDING.value)
    .order_by(OutboxMessage.id)
    .limit(2000)
)
_HEAD = (
    select(OutboxMessage)
    .where(OutboxMessage.conversation == bindparam("conversation"), OutboxMessage.state == OutboxState.PENDING.value)
    .order_by(OutboxMessage.id)
    .limit(1)
)
_CLAIM = (  # conditional on the head's due time: of two instances claiming one row, one matches
    update(OutboxMessage)
    .where(OutboxMessage.id == bindparam("row_id"), OutboxMessage.next_attempt_at == bindparam("due"),
           OutboxMessage.state == OutboxState.PENDING.value)
    .values(next_attempt_at=bindparam("lease_until"), attempts=OutboxMessage.attempts + 1)
    .execution_options(synchronize_session=False)
)
_SENT = (
    update(OutboxMessage).where(OutboxMessage.id == bindparam("row_id"))
    .values(state=OutboxState.SENT.value, sent_at=bindparam("sent_at"), platform_msg_id=bindparam("platform_id"),
            last_error="")
    .execution_options(synchronize_session=False)
)


class OutboxSender(ConversationPump):
    name = "outbox-sender"
    poll_seconds = POLL_SECONDS

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        services: Services,
        senders: dict[Channel, ChannelSender],
        *,
        gate: WriteGate = NO_GATE,
        reads: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        super().__init__(concurrency=CONCURRENCY)
        self._reads = reads or sessions  # polling reads: on SQLite they must not queue behind writers
        self._gate = gate
        self._sessions = sessions
        self._services = services
        self._senders = senders
        self.sent = 0

    async def due_heads(self) -> dict[str, int]:
        now = self._services.clock.now()
        async with self._reads() as session:
            rows = (await session.execute(_PENDING_HEADS)).all()
        heads: dict[str, int] = {}
        for row_id, conversation, due in rows:
            if conversation not in heads:
                heads[conversation] = row_id if due <= now else -1
        return heads

    async def work(self, conversation: str, first_id: int) -> None:
        await self.take_turn()
        while await self._send_head(conversation):
            await self.take_turn()

    async def _send_head(self, conversation: str) -> bool:
        """Send the oldest pending message of ``conversation`` if due; True to continue with the next."""
        now = self._services.clock.now()
        async with self._gate.hold(), self._sessions() as session, session.begin():
            row = await session.scalar(_HEAD, {"conversation": conversation})
            if row is None or row.next_attempt_at > now:
                return False
            claimed = await session.execute(_CLAIM, {"row_id": row.id, "due": row.next_attempt_at,
                                                     "lease_until": now + LEASE})
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return False
            identity = await session.scalar(IDENTITY_OF, {"channel": row.channel, "user_id": row.address})
            extra = dict(identity.extra) if identity else {}
            if identity is not None and identity.last_seen_at is not None:
                extra["last_seen_at"] = identity.last_seen_at.isoformat()
            row_id, channel, address, payload, attempts = row.id, row.channel, row.address, row.payload, row.attempts + 1
            case = row.case_id + CASE_NUMBER_OFFSET if row.case_id is not None else None
        sender = self._senders.get(Channel(channel))
        message = OutgoingMessage.from_json(payload)
        started = time.perf_counter()
        try:
            if sender is None:
                raise PermanentSendError("no_channel", f"channel {channel} is not configured")
            platform_id = await sender.send(address, message, extra=extra)
        except TransientSendError as exc:
            self._failure(channel, case, "transient", exc.code)
            await self._retry(row_id, attempts, exc, exc.retry_after)
            return False
        except HeldSendError as exc:
            self._failure(channel, case, "held", exc.code)
            await self._finish(row_id, OutboxState.HELD, str(exc), alert=True)
            return True
        except PermanentSendError as exc:
            self._failure(channel, case, "permanent", exc.code)
            await self._finish(row_id, OutboxState.DEAD, str(exc), alert=True)
            return True
        except Exception as exc:  # a bug or an unexpected network error: treat as transient
            self._failure(channel, case, "unexpected", type(exc).__name__)
            await self._retry(row_id, attempts, exc, None)
            return False
        finally:
            metrics.SEND_SECONDS.labels(channel).observe(time.perf_counter() - started)
        metrics.SENT.labels(channel).inc()
        async with self._gate.hold(), self._sessions() as session, session.begin():
            await session.execute(_SENT, {"row_id": row_id, "sent_at": self._services.clock.now(),
                                          "platform_id": platform_id})
        self.sent += 1
        log.debug("sent outbox %s", row_id, extra={"channel": channel, "case": case, "event": "outbox.sent"})
        return True

    @staticmethod
    def _failure(channel: str, case: int | None, kind: str, code: str) -> None:
        metrics.SEND_FAILURES.labels(channel, kind, code[:40]).inc()
        log.warning("send failed (%s %s)", kind, code[:40],
                    extra={"channel": channel, "case": case, "event": "outbox.send_failed"})

    async def _retry(self, row_id: int, attempts: int, exc: Exception, retry_after: float | None) -> None:
        if attempts >= self._services.settings.bot.outbox_max_attempts:
            await self._finish(row_id, OutboxState.DEAD, f"gave up after {attempts} attempts: {exc}", alert=True)
            return
        delay = retry_after if retry_after is not None else min(600.0, 2.0 ** attempts) * random.uniform(0.8, 1.2)
        async with self._gate.hold(), self._sessions() as session, session.begin():
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.id == row_id)
                .values(next_attempt_at=self._services.clock.now() + timedelta(seconds=delay), last_error=str(exc)[:2000])
                .execution_options(synchronize_session=False)
            )

    async def _finish(self, row_id: int, state: OutboxState, error: str, *, alert: bool) -> None:
        """End a message as dead or held; staff are told (unless the message was itself a staff alert
        or is cosmetic)."""
        async with self._gate.hold(), self._sessions() as session, session.begin():
            row = await session.get(OutboxMessage, row_id)
            if row is None:
                return
            row.state = state.value
            row.last_error = error[:2000]
            if state == OutboxState.HELD:  # released when the person writes again (handlers/outbox.py)
                identity = await session.scalar(select(Identity).where(
                    Identity.channel == row.channel, Identity.channel_user_id == row.address))
                if identity is not None:
                    identity.extra = {**identity.extra, HELD_FLAG: True}
            message = OutgoingMessage.from_json(row.payload)
            if message.cosmetic:
                log.info("cosmetic outbox %s ended %s without alert", row_id, state.value,
                         extra={"channel": row.channel, "event": "outbox.cosmetic_failed"})
            elif alert and not row.payload.get("staff_alert"):
                what = "暂存（平台暂不允许发送）" if state == OutboxState.HELD else "发送失败"
                text = message.plain_text[:80]
                outbox = Outbox(session, self._services.clock)
                await outbox.to_staff(f"⚠️ 一条发给 {row.channel}:{row.address} 的消息{what}：{error[:120]}\n内容：{text}",
                                      case_id=row.case_id)
                for r in session.new:
                    if isinstance(r, OutboxMessage):
                        r.payload = {**r.payload, "staff_alert": True}  # never alert about an alert
        self._services.on_outbox()


sender_key = web.AppKey("outbox_sender", OutboxSender)
