"""Passive replies: answering a message inside the platform's own callback response when the reply is ready in time.

Some platforms (the WeChat service account) let a callback's HTTP answer carry one reply. That saves
an API call and a customer-service quota slot, and the reply shows at once. It must not cost
reliability, so the reply is still an outbox row and the contract is:

1. The callback registers a waiter (:meth:`PassiveReplies.expect`) *before* the inbox commit, with a
   predicate saying which outgoing messages its platform can carry in a response.
2. When this process's inbox worker handles that message, it asks :meth:`reserve` inside the handling
   transaction: the first outbox row written back to the sender on the same channel, if it fits, gets
   its ``next_attempt_at`` pushed :data:`RESERVE` ahead, so the outbox sender leaves it alone. After the
   commit the worker reports the row (:meth:`handled`).
3. The callback claims the row (:meth:`claim`): a conditional UPDATE that marks it sent with platform id
   ``passive:<msg id>`` only if it is still pending, still reserved by us, and the oldest pending row of
   its conversation (a passive reply never overtakes an older message). Then it answers with it.
4. Anything else — no reply within the wait, a lost claim, a process that died — and the row is released
   (:meth:`release`) or its reservation simply runs out, and the outbox sends it the normal way. Nothing is
   lost; at worst a reply goes :data:`RESERVE` later.

A platform retry of the same callback (our answer did not reach it) gets the same reply again
(:meth:`answered`). Waiters are in-process: when another instance handles the message, nobody reserves
and the callback answers plainly after the wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.ops import counters
from bot.pipeline.writegate import NO_GATE, WriteGate
from handlers.clock import Clock
from handlers.messages import IncomingMessage, OutgoingMessage
from storage.models import OutboxMessage
from storage.queues import OutboxQueue

log = logging.getLogger(__name__)
RESERVE = timedelta(seconds=10)  # longer than any wait; short enough that a crash delays a reply only briefly
MAX_WAITERS = 64  # under a burst, stop holding connections open and answer plainly
PREFIX = "passive:"

Fits = Callable[[OutgoingMessage], bool]


@dataclass(frozen=True)
class Reserved:
    row_id: int
    until: datetime


@dataclass
class _Waiter:
    fits: Fits
    done: asyncio.Future[Reserved | None]


class PassiveReplies:
    """In-process waiters for the first reply to a message; see the module docstring for the contract."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        gate: WriteGate = NO_GATE,
        on_released: Callable[[], None] = lambda: None,
        max_waiters: int = MAX_WAITERS,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._gate = gate
        self._on_released = on_released
        self._max = max_waiters
        self._waiters: dict[tuple[str, str], _Waiter] = {}

    # -- the callback's side ------------------------------------------------------------------
    def expect(self, channel: str, msg_id: str, fits: Fits) -> bool:
        """Register interest in the reply to ``msg_id``; False (answer plainly) when too many wait already."""
        if len(self._waiters) >= self._max or (channel, msg_id) in self._waiters:
            return False
        fut: asyncio.Future[Reserved | None] = asyncio.get_running_loop().create_future()
        self._waiters[(channel, msg_id)] = _Waiter(fits, fut)
        return True

    def forget(self, channel: str, msg_id: str) -> None:
        self._waiters.pop((channel, msg_id), None)

    async def wait(self, channel: str, msg_id: str, timeout_s: float) -> Reserved | None:
        """The reserved reply row once the message is handled, or None (no fitting reply, or not in time)."""
        waiter = self._waiters.get((channel, msg_id))
        if waiter is None:
            return None
        try:
            async with asyncio.timeout(timeout_s):
                return await asyncio.shield(waiter.done)
        except TimeoutError:
            if waiter.done.done() and not waiter.done.cancelled():
                return waiter.done.result()  # handled in the very moment the wait ran out
            counters.PASSIVE_REPLIES.labels(channel, "late").inc()
            return None
        finally:
            self._waiters.pop((channel, msg_id), None)
            if not waiter.done.done():
                waiter.done.cancel()

    async def claim(self, channel: str, msg_id: str, reserved: Reserved) -> OutgoingMessage | None:
        """Mark the reserved row sent as the passive reply to ``msg_id``; None if it can no longer be."""
        now = self._clock.now()
        async with self._gate.hold(), self._sessions() as session, session.begin():
            payload = await OutboxQueue.claim_reserved(session, reserved.row_id, reserved.until, now,
                                                       f"{PREFIX}{msg_id}"[:128])
        if payload is None:
            counters.PASSIVE_REPLIES.labels(channel, "lost").inc()
            return None
        counters.PASSIVE_REPLIES.labels(channel, "answered").inc()
        counters.SENT.labels(channel).inc()
        return OutgoingMessage.from_json(payload)

    async def release(self, reserved: Reserved) -> None:
        """Hand a reserved row back to the outbox sender at once (we will not answer with it)."""
        try:
            async with self._gate.hold(), self._sessions() as session, session.begin():
                await OutboxQueue.release(session, reserved.row_id, reserved.until, self._clock.now())
        except Exception as exc:  # the reservation runs out by itself; the reply is only late
            log.warning("passive reply row %s not released (%s)", reserved.row_id, type(exc).__name__)
        self._on_released()

    def answered_callback(self) -> None:
        """The callback carrying a reply was answered: the replies queued behind it may be sent now."""
        self._on_released()

    async def answered(self, channel: str, msg_id: str) -> OutgoingMessage | None:
        """The passive reply already given to ``msg_id``, for the platform's retry of the same callback."""
        async with self._sessions() as session:
            payload = await session.scalar(
                select(OutboxMessage.payload)
                .where(OutboxMessage.channel == channel, OutboxMessage.platform_msg_id == f"{PREFIX}{msg_id}"[:128])
                .limit(1)
            )
        if payload is None:
            return None
        counters.PASSIVE_REPLIES.labels(channel, "repeated").inc()
        return OutgoingMessage.from_json(payload)

    # -- the inbox worker's side ----------------------------------------------------------------
    def waiting(self, msg: IncomingMessage) -> bool:
        waiter = self._waiters.get((msg.channel, msg.platform_msg_id))
        return waiter is not None and not waiter.done.done()

    async def reserve(self, session: AsyncSession, msg: IncomingMessage, rows: list[OutboxMessage]) -> Reserved | None:
        """Inside the handling transaction: hold back the first reply to the sender if it fits."""
        waiter = self._waiters.get((msg.channel, msg.platform_msg_id))
        if waiter is None or waiter.done.done():
            return None
        mine = [r for r in rows if r.channel == msg.channel and r.address == msg.sender]
        if not mine or not waiter.fits(OutgoingMessage.from_json(mine[0].payload)):
            return None
        row = mine[0]
        await OutboxQueue.reserve(session, row, self._clock.now() + RESERVE)
        return Reserved(row.id, row.next_attempt_at)

    async def handled(self, msg: IncomingMessage, reserved: Reserved | None) -> None:
        """After the handling commit: wake the callback waiting for ``msg``; if it gave up, release the row."""
        waiter = self._waiters.get((msg.channel, msg.platform_msg_id))
        if waiter is not None and not waiter.done.done():
            waiter.done.set_result(reserved)
        elif reserved is not None:
            await self.release(reserved)
