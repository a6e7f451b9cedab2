"""Inbox intake with group commit: a callback is answered only after the commit that holds its row.

Concurrent callbacks share one transaction: while one commit is in flight, the next callbacks queue
up and go together in the next one. Nothing waits on a timer, so a lone message pays one commit and a
burst pays one commit per batch. Duplicates (platform retries) hit the unique
``(channel, platform_msg_id)`` key and report ``False`` without a second row.

Every message passes :func:`checked` first, the one rule for what an inbox row may hold, so one
callback's content can never make the database refuse the batch it shares. Should the database still
refuse a batch for a reason of its rows, they are stored one by one and only the bad one is refused.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Insert, String
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.ops import counters
from bot.pipeline.writegate import NO_GATE, WriteGate
from handlers.clock import Clock
from handlers.messages import IncomingMessage
from storage.models import InboxMessage, InboxState

log = logging.getLogger(__name__)
MAX_BATCH = 500

# Code points the databases cannot keep: NUL (PostgreSQL text refuses it; its json keeps "\u0000" but
# ->> then fails) and lone surrogates (JSON "\ud800" decodes to one; no UTF-8 form, so both drivers
# fail to encode it). The conversation column (160) needs no check: channel (≤ 20) + ":" + sender.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _column_length(name: str) -> int:
    column_type = InboxMessage.__table__.c[name].type
    assert isinstance(column_type, String) and column_type.length
    return column_type.length


ID_LIMITS = {name: _column_length(name) for name in ("platform_msg_id", "sender")}


class BadMessage(ValueError):
    """No platform sends this (an id too long for its column, or with NUL in it): answer 400, store nothing."""


def clean_text(value: str) -> str:
    """``value`` without NUL, each lone surrogate replaced by U+FFFD; unchanged (same object) if clean."""
    if not _UNSTORABLE.search(value):
        return value
    return _UNSTORABLE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", value)


def _clean_json(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): _clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_json(v) for v in value]
    return value


def checked(msg: IncomingMessage) -> IncomingMessage:
    """The rule for every inbox row, applied by :meth:`Intake.accept` whatever the channel.

    Ids (``platform_msg_id``, ``sender``) must be 1..column-length characters with no unstorable code
    point, else :class:`BadMessage`: such an id is not a platform's, and cutting it down could make
    two messages one. Free text (``text``, ``media_ref``, ``media_path``, ``reply_handle``, every string
    in ``extra`` and ``identity_extra``, keys included) is cleaned instead: NUL is dropped, a lone surrogate becomes U+FFFD.
    """
    for name, limit in ID_LIMITS.items():
        value: str = getattr(msg, name)
        if not 0 < len(value) <= limit or _UNSTORABLE.search(value):
            raise BadMessage(f"{name}: expected 1-{limit} characters without NUL or lone surrogates")
    changes: dict[str, Any] = {}
    for name in ("text", "media_ref", "media_path", "reply_handle"):
        value = getattr(msg, name)
        if value and (clean := clean_text(value)) is not value:
            changes[name] = clean
    for name in ("extra", "identity_extra"):
        value = getattr(msg, name)
        if value and (clean := _clean_json(value)) != value:
            changes[name] = clean
    return dataclasses.replace(msg, **changes) if changes else msg


def inbox_values(msg: IncomingMessage, clock: Clock) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    if msg.media_ref:
        payload["media_ref"] = msg.media_ref
    if msg.media_path:
        payload["media_path"] = msg.media_path
    if msg.location:
        payload["location"] = list(msg.location)
    if msg.reply_handle:
        payload["reply_handle"] = msg.reply_handle
    if msg.identity_extra:
        payload["identity_extra"] = msg.identity_extra
    payload["directory_user"] = msg.directory_user  # always there: marks a row with the typed fields
    if msg.extra:
        payload["extra"] = msg.extra
    return {
        "channel": msg.channel,
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
        """Commit ``msg`` to the inbox. True if new, False if a duplicate.

        Raises :class:`BadMessage` (answer 400) if :func:`checked` refuses it, ``ConnectionError``
        (answer 503: the platform retries) if the database fails or refuses its row.
        """
        if self._task is None:
            raise RuntimeError("Intake not started")
        if self._closing:
            raise ConnectionError("shutting down")
        values = inbox_values(checked(msg), self._clock)
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(values, fut))
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
        counters.BATCH_SIZE.observe(len(unique))
        refused: dict[tuple[str, str], str] = {}
        try:
            inserted = await self._insert(list(unique.values()))
        except Exception as exc:
            if len(unique) > 1 and _row_fault(exc):  # one row may be at fault: the others must not pay
                log.warning("inbox commit of %d messages refused (%s); storing them one by one",
                            len(unique), type(exc).__name__)
                inserted, refused = await self._insert_each(unique)
            else:  # the DB is down: every caller answers an error status and the platform retries
                log.warning("inbox commit failed for %d messages: %s", len(batch), type(exc).__name__)
                refused = dict.fromkeys(unique, type(exc).__name__)
                inserted = set()
        seen: set[tuple[str, str]] = set()
        for p in batch:
            key = (p.values["channel"], p.values["platform_msg_id"])
            if key in refused:
                counters.INBOX_STORED.labels(key[0], "failed").inc()
                if not p.done.done():
                    p.done.set_exception(ConnectionError(f"inbox commit failed: {refused[key]}"))
                continue
            new = key in inserted and key not in seen
            seen.add(key)
            counters.INBOX_STORED.labels(key[0], "new" if new else "duplicate").inc()
            if not p.done.done():
                p.done.set_result(new)
        if inserted:
            self._on_stored()

    async def _insert_each(
        self, unique: dict[tuple[str, str], dict[str, Any]]
    ) -> tuple[set[tuple[str, str]], dict[tuple[str, str], str]]:
        """Each row in its own transaction: (keys inserted, keys refused → why). Once the database
        looks down rather than refusing a row, the rest are refused without a try."""
        inserted: set[tuple[str, str]] = set()
        refused: dict[tuple[str, str], str] = {}
        down = ""
        for key, row in unique.items():
            if down:
                refused[key] = down
                continue
            try:
                inserted |= await self._insert([row])
            except Exception as exc:
                refused[key] = type(exc).__name__
                if _row_fault(exc):
                    log.warning("inbox row refused (%s, %s): %s", key[0], key[1][:40], type(exc).__name__)
                else:
                    down = type(exc).__name__
        return inserted, refused

    async def _insert(self, rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
        # Core on the engine, not an ORM session: one statement compiled once and cached, run as an
        # executemany (SQLAlchemy's "insertmanyvalues" batches it with RETURNING). The ORM's bulk
        # insert compiled a fresh multi-VALUES statement for every batch size, which cost ~450 µs per
        # row — more than the rest of a callback together (docs/benchmarks.md, "Intake").
        async with self._gate.hold(first=True), self._engine.begin() as conn:
            result = await conn.execute(self._stmt, rows)
            return {(c, m) for c, m in result.all()}


def _row_fault(exc: Exception) -> bool:
    """Did the database refuse a statement for its data, rather than being unreachable or busy?"""
    if isinstance(exc, (OperationalError, InterfaceError)):  # locked, disconnected, out of resources
        return False
    if isinstance(exc, DBAPIError):
        return not exc.connection_invalidated
    return isinstance(exc, StatementError)  # a value the driver could not bind


def _insert_statement(dialect: str) -> Insert:
    """INSERT … ON CONFLICT (channel, platform_msg_id) DO NOTHING RETURNING the key of each new row."""
    ins = postgresql.insert(InboxMessage) if dialect == "postgresql" else sqlite.insert(InboxMessage)
    return ins.on_conflict_do_nothing(index_elements=["channel", "platform_msg_id"]).returning(
        InboxMessage.channel, InboxMessage.platform_msg_id
    )
