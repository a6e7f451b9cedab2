"""Writing outgoing messages: rows in the handler's transaction, sent after commit by ``bot/sender``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.clock import Clock
from handlers.messages import OutgoingMessage, text
from handlers.visibility import told_of
from storage.models import Identity, OutboxMessage, OutboxState

HELD_FLAG = "held_messages"  # on Identity.extra: the platform refused messages to it for now (see bot/sender)


async def release_held(session: AsyncSession, identity: Identity, now: datetime) -> int:
    """The person wrote again, so the platform accepts messages to them again: send what was held.

    Only identities flagged by the sender pay the UPDATE; the released rows keep their ids, so they go
    out before anything written in reply to this new message. Their ``created_at`` becomes now: the
    outbox's delivery horizon (``bot.outbox_retry_hours``) counts from it, and a message held for days
    must get a full horizon once it may be sent.
    """
    if not identity.extra.get(HELD_FLAG):
        return 0
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.channel == identity.channel, OutboxMessage.address == identity.channel_user_id,
               OutboxMessage.state == OutboxState.HELD.value)
        .values(state=OutboxState.PENDING.value, next_attempt_at=now, created_at=now, attempts=0)
        .execution_options(synchronize_session=False)
    )
    identity.extra = {k: v for k, v in identity.extra.items() if k != HELD_FLAG}
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def best_identity(session: AsyncSession, person_id: int) -> Identity | None:
    """The identity a person was last seen on: where an unsolicited message most likely reaches them."""
    rows = (
        await session.scalars(select(Identity).where(Identity.person_id == person_id).order_by(Identity.id))
    ).all()
    if not rows:
        return None
    seen = [r for r in rows if r.last_seen_at is not None]
    return max(seen, key=lambda r: r.last_seen_at) if seen else rows[0]  # type: ignore[arg-type,return-value]


class Outbox:
    """Queues messages to people; nothing leaves until the transaction commits."""

    def __init__(self, session: AsyncSession, clock: Clock) -> None:
        self._session = session
        self._clock = clock
        self.written = 0
        self.rows: list[OutboxMessage] = []  # in order; a channel may answer the first one in its callback

    async def to_identity(
        self, identity: Identity, message: OutgoingMessage | str, *, case_id: int | None = None
    ) -> OutboxMessage:
        msg = text(message) if isinstance(message, str) else message
        now = self._clock.now()
        row = OutboxMessage(
            person_id=identity.person_id,
            channel=identity.channel,
            address=identity.channel_user_id,
            conversation=f"{identity.channel}:{identity.channel_user_id}",
            case_id=case_id,
            payload=msg.to_json(),
            next_attempt_at=now,
            created_at=now,
        )
        self._session.add(row)
        self.written += 1
        self.rows.append(row)
        return row

    async def to_person(
        self, person_id: int, message: OutgoingMessage | str, *, case_id: int | None = None
    ) -> OutboxMessage | None:
        identity = await best_identity(self._session, person_id)
        if identity is None:
            return None  # a person with no channel (e.g. imported without 账号): staff see it on the board
        return await self.to_identity(identity, message, case_id=case_id)

    async def to_staff(
        self, message: OutgoingMessage | str, *, case_id: int | None = None, groups: tuple[str, ...] = ()
    ) -> int:
        """Tell the staff who receive news of ``groups`` (``handlers/visibility.py::told_of``: everyone but
        the group leads of other groups). Returns how many were queued."""
        count = 0
        for person_id in await told_of(self._session, groups):
            if await self.to_person(person_id, message, case_id=case_id):
                count += 1
        return count
