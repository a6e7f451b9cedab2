"""The outbox sender: delivers queued messages with retries, in order per conversation, none lost.

A row is claimed by a conditional UPDATE that pushes its ``next_attempt_at`` forward by a lease
(``bot.outbox_lease_s``), so another instance skips it while it is in flight. The whole send is cut
short ``bot.send_timeout_s`` before the lease ends, so no send outlives its claim. A crash mid-send
makes the row due again after the lease: delivery is at-least-once, and the resend is the same request
(:class:`~bot.channels.base.Delivery`), which WeCom's duplicate check drops; the service account and
DingTalk offer no such check (docs/ARCHITECTURE.md, "OutboxSender"). The head, the lease, the sent-mark and
the reschedule are :class:`storage.queues.OutboxQueue`'s.

Only the oldest pending row of a conversation is ever sent, and a row waiting for its retry stays the
oldest pending one, so a later message never overtakes an earlier undelivered one.

A transient failure is retried with capped exponential backoff plus jitter (:func:`backoff`); the
platform's hint (``retry_after``) can only lengthen a delay. Retries go on until
``bot.outbox_retry_hours`` after the row was written; then it ends ``dead`` and staff are told (one
alert per channel per hour, :mod:`bot.pipeline.channel_health`). A channel failing for minutes is reported
once, not per message. A message that can never be delivered (a permanent error) ends ``dead`` at once
and staff are told; one the platform refuses for now ends ``held``. A cosmetic message
(``OutgoingMessage.cosmetic``: a card update) ends the same way but without an alert: nothing a person
needed to read was lost, and a used or expired card handle is routine.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.base import (
    DELIVERY,
    ChannelSender,
    DeferredSendError,
    Delivery,
    HeldSendError,
    PermanentSendError,
    TransientSendError,
)
from bot.ops import counters
from bot.pipeline.channel_health import ChannelHealth, alert_staff, channel_name, first_expiry_this_hour
from bot.pipeline.pump import ConversationPump
from bot.pipeline.writegate import NO_GATE, WriteGate
from handlers.messages import Channel, OutgoingMessage
from handlers.outbox import HELD_FLAG
from handlers.services import Services
from storage.models import CASE_NUMBER_OFFSET, IDENTITY_OF, Identity, OutboxMessage, OutboxState
from storage.queues import OutboxQueue

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0
CONCURRENCY = 16
BACKOFF_BASE_S = 2.0
BACKOFF_CAP_S = 300.0  # after a long outage every waiting head is tried again within ~6 minutes


def backoff(attempts: int, rng: Callable[[], float] = random.random) -> float:
    """Seconds before the next try after ``attempts`` failed ones: 2, 4, 8 … capped at 300, each
    spread ±20 % so that a backlog does not retry in lockstep."""
    return min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2.0 ** min(max(attempts, 1) - 1, 30)) * (0.8 + 0.4 * rng())


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
        self.health = ChannelHealth(sessions, services, gate=gate)
        self.sent = 0

    async def due_heads(self) -> dict[str, int]:
        async with self._reads() as session:
            return await OutboxQueue.heads(session, self._services.clock.now())

    async def work(self, conversation: str, first_id: int) -> None:
        await self.take_turn()
        while await self._send_head(conversation):
            await self.take_turn()

    async def _send_head(self, conversation: str) -> bool:
        """Send the oldest pending message of ``conversation`` if due; True to continue with the next."""
        now = self._services.clock.now()
        bot = self._services.settings.bot
        async with self._gate.hold(), self._sessions() as session, session.begin():
            lease_until = now + timedelta(seconds=bot.outbox_lease_s)
            row = await OutboxQueue.lease_head(session, conversation, now, lease_until)
            if row is None:
                return False  # nothing due, or another instance leased it first
            identity = await session.scalar(IDENTITY_OF, {"channel": row.channel, "user_id": row.address})
            extra = dict(identity.extra) if identity else {}
            if identity is not None and identity.last_seen_at is not None:
                extra["last_seen_at"] = identity.last_seen_at.isoformat()
            row_id, channel, address, payload, attempts = row.id, row.channel, row.address, row.payload, row.attempts
            created = row.created_at
            case = row.case_id + CASE_NUMBER_OFFSET if row.case_id is not None else None
        extra[DELIVERY] = Delivery(row_id, created)  # the same request on every attempt (bot/channels/base.py)
        sender = self._senders.get(channel)
        message = OutgoingMessage.from_json(payload)
        deadline = bot.outbox_lease_s - bot.send_timeout_s  # settings keep it >= one send timeout
        started = time.perf_counter()
        try:
            if sender is None:
                raise PermanentSendError("no_channel", f"channel {channel} is not configured")
            async with asyncio.timeout(deadline):  # a send never outlives its lease (another would resend)
                platform_id = await sender.send(address, message, extra=extra)
        except DeferredSendError as exc:  # our own pacing: not a failure
            await self._defer(row_id, exc.retry_after or 1.0, str(exc))
            return False
        except TransientSendError as exc:
            self._failure(channel, case, "transient", exc.code)
            await self._retry(row_id, channel, created, attempts, exc, exc.retry_after)
            await self.health.failed(channel, exc.code)
            return False
        except TimeoutError:
            self._failure(channel, case, "transient", "send_deadline")
            cut = TransientSendError("send_deadline", f"the send took over {deadline:g} s")
            await self._retry(row_id, channel, created, attempts, cut, None)
            await self.health.failed(channel, cut.code)
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
            await self._retry(row_id, channel, created, attempts, exc, None)
            await self.health.failed(channel, type(exc).__name__)
            return False
        finally:
            counters.SEND_SECONDS.labels(channel).observe(time.perf_counter() - started)
        counters.SENT.labels(channel).inc()
        async with self._gate.hold(), self._sessions() as session, session.begin():
            await OutboxQueue.mark_sent(session, row_id, self._services.clock.now(), platform_id)
        await self.health.delivered(channel)
        self.sent += 1
        log.debug("sent outbox %s", row_id, extra={"channel": channel, "case": case, "event": "outbox.sent"})
        return True

    @staticmethod
    def _failure(channel: str, case: int | None, kind: str, code: str) -> None:
        counters.SEND_FAILURES.labels(channel, kind, code[:40]).inc()
        log.warning("send failed (%s %s)", kind, code[:40],
                    extra={"channel": channel, "case": case, "event": "outbox.send_failed"})

    async def _retry(
        self, row_id: int, channel: str, created: datetime, attempts: int, exc: Exception, hint: float | None
    ) -> None:
        """Schedule the next try: backoff, lengthened (never shortened) by the platform's hint, and never
        past the horizon; a row already at its horizon is dead."""
        hours = self._services.settings.bot.outbox_retry_hours
        now = self._services.clock.now()
        horizon = created + timedelta(hours=hours)
        if now >= horizon:
            await self._finish(row_id, OutboxState.DEAD, f"not delivered within {hours:g} h (last: {exc})",
                               alert=True, expired=True)
            return
        delay = max(backoff(attempts), hint or 0.0)
        await self._reschedule(row_id, min(now + timedelta(seconds=delay), horizon), str(exc))

    async def _defer(self, row_id: int, seconds: float, error: str) -> None:
        """Paced: try exactly when the slot frees, and give the attempt back (it was no failure)."""
        await self._reschedule(row_id, self._services.clock.now() + timedelta(seconds=seconds), error, refund=True)

    async def _reschedule(self, row_id: int, due: datetime, error: str, *, refund: bool = False) -> None:
        async with self._gate.hold(), self._sessions() as session, session.begin():
            await OutboxQueue.reschedule(session, row_id, due, error, refund=refund)

    async def _finish(self, row_id: int, state: OutboxState, error: str, *, alert: bool, expired: bool = False) -> None:
        """End a message as dead or held; staff are told (unless the message was itself a staff alert
        or is cosmetic, or — past its horizon — another of this channel's messages was this hour)."""
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
                if not expired:
                    await alert_staff(session, self._services,
                                      f"⚠️ 一条发给 {row.channel}:{row.address} 的消息{what}：{error[:120]}\n内容：{text}",
                                      case_id=row.case_id)
                elif await first_expiry_this_hour(session, self._services, row.channel):
                    hours = self._services.settings.bot.outbox_retry_hours
                    await alert_staff(
                        session, self._services,
                        f"⚠️ 一条发给 {row.channel}:{row.address} 的消息发送失败：{channel_name(row.channel)}在 "
                        f"{hours:g} 小时内一直未能送达（{error[:80]}）\n内容：{text}\n"
                        f"本小时内该渠道其他未能送达的消息不再逐条提醒，数量见每日简报。", case_id=row.case_id)
                else:
                    log.warning("outbox %s dead at its horizon; staff already told this hour", row_id,
                                extra={"channel": row.channel, "event": "outbox.expired"})
        self._services.on_outbox()
