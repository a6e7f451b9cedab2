"""Inbox intake with group commit: a callback is answered only after the commit that holds its row.

Concurrent callbacks share one transaction: while one commit is in flight, the next callbacks queue
up and go together in the next one. Nothing waits on a timer, so a lone message pays one commit and a
burst pays one commit per batch. Duplicates (platform retries) hit the unique
``(channel, platform_msg_id)`` key and report ``False`` without a second row.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import metrics
from bot.writegate import NO_GATE, WriteGate
from handlers.clock import Clock
from handlers.messages import IncomingMessage
from storage.models import InboxMessage, InboxState

log = logging.getLogger(__name__)
MAX_BATCH = 500


def inbox_values(msg: IncomingMessage, clock: Clock) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    if msg.media_ref:
        payload["media_ref"] = msg.media_ref
    if msg.media_path:
        payload["media_path"] = msg.media_path
    if msg.location:
        payload["location"] = list(msg.location)
    if msg.extra:
        payload["extra"] = msg.extra
    return {
        "channel": msg.channel.value,
        "platform_msg_id": msg.platform_msg_id,
        "conversation": msg.conversation,
        "sender": msg.sender,
        "kind": msg.kind.value,
        "text": msg.text,
        "payload": payload,
        "received_at": msg.received_at or clock.now(),
        "state": InboxState.PENDING.value,
        "attempts": 0,
    }


@dataclass
class _Pending:
    values: dict[str, Any]
    done: asyncio.Future[bool]


class Intake:
    """Stores incoming messages durably; see the module docstring for the batching contract."""

    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        *,
        on_stored: Callable[[], None] = lambda: None,
        gate: WriteGate = NO_GATE,
    ) -> None:
        self._gate = gate
        self._engine = engine
        self._stmt = _insert_statement(engine.dialect.name)
        self._clock = clock
        self._on_stored = on_stored
        self._queue: list[_Pending] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    async def accept(self, msg: IncomingMessage) -> bool:
        """Commit ``msg`` to the inbox. True if new, False if a duplicate. Raises if the DB fails."""
        if self._task is None:
            raise RuntimeError("Intake not started")
        if self._closing:
            raise ConnectionError("shutting down")
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(inbox_values(msg, self._clock), fut))
        self._wake.set()
        return await fut

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="inbox-intake")

    async def stop(self) -> None:
        self._closing = True
        self._wake.set()
        if self._task:
            await self._task

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                await self._flush(batch)
            if self._closing and not self._queue:
                return

    async def _flush(self, batch: list[_Pending]) -> None:
        unique = {(p.values["channel"], p.values["platform_msg_id"]): p.values for p in batch}
        metrics.BATCH_SIZE.observe(len(unique))
        try:
            inserted = await self._insert(list(unique.values()))
        except Exception as exc:  # the DB is down or refused: every caller answers an error status
            log.warning("inbox commit failed for %d messages: %s", len(batch), type(exc).__name__)
            for p in batch:
                metrics.INBOX_STORED.labels(p.values["channel"], "failed").inc()
                if not p.done.done():
                    p.done.set_exception(ConnectionError(f"inbox commit failed: {type(exc).__name__}"))
            return
        seen: set[tuple[str, str]] = set()
        for p in batch:
            key = (p.values["channel"], p.values["platform_msg_id"])
            new = key in inserted and key not in seen
            seen.add(key)
            metrics.INBOX_STORED.labels(key[0], "new" if new else "duplicate").inc()
            if not p.done.done():
                p.done.set_result(new)
        if inserted:
            self._on_stored()

    async def _insert(self, rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
        # Core on the engine, not an ORM session: one statement compiled once and cached, run as an
        # executemany (SQLAlchemy's "insertmanyvalues" batches it with RETURNING). The ORM's bulk
        # insert compiled a fresh multi-VALUES statement for every batch size, which cost ~450 µs per
        # row — more than the rest of a callback together (docs/benchmarks.md, "Intake").
        async with self._gate.hold(first=True), self._engine.begin() as conn:
            result = await conn.execute(self._stmt, rows)
            return {(c, m) for c, m in result.all()}


def _insert_statement(dialect: str) -> Insert:
    """INSERT … ON CONFLICT (channel, platform_msg_id) DO NOTHING RETURNING the key of each new row."""
    ins = postgresql.insert(InboxMessage) if dialect == "postgresql" else sqlite.insert(InboxMessage)
    return ins.on_conflict_do_nothing(index_elements=["channel", "platform_msg_id"]).returning(
        InboxMessage.channel, InboxMessage.platform_msg_id
    )
