"""SQLite on the event loop's own thread, for SQLAlchemy's ``sqlite+aiosqlite`` dialect.

aiosqlite runs every call (cursor, execute, fetchall, close, commit) on a worker thread and wakes the
event loop for each result: four thread round trips per statement, ~0.6 ms on this machine, where the
statement itself takes ~0.01 ms in ``sqlite3`` (docs/benchmarks.md, "Fourth session"). This module is
the driver-level connection SQLAlchemy's dialect expects (the subset of aiosqlite's API that
``AsyncAdapt_aiosqlite_connection`` uses), with every call but ``commit`` run inline: a statement
costs what SQLite costs. It is plugged in through ``create_async_engine(async_creator=...)`` (storage/db.py).

The price is that a call blocks the loop while SQLite works. That is short for this service's
statements; the two ways it could be long are handled:

- **Waiting for a lock** held by another process (a ``craftlink`` command, a second process): SQLite's
  own busy handler may spin only ``BUSY_SLICE_MS`` inside a call; after that the statement is retried
  from the loop with ``asyncio.sleep`` between tries, up to ``BUSY_WAIT_S``, so the loop keeps serving
  meanwhile. A statement that fails with SQLITE_BUSY has changed nothing (SQLite rolls back the
  statement, not the transaction), so retrying it is what the busy handler itself would do.
  ``executemany`` is not retried: rows before the busy one would be written twice. It is only used
  inside transactions that took the write lock at ``BEGIN IMMEDIATE``, where it cannot meet a lock.
- **fsync at commit** (``synchronous=FULL``): ~0.5 ms here, once per transaction. ``commit`` is the
  one call handed to a thread (with the GIL released there), so the loop keeps serving meanwhile.
"""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any

BUSY_SLICE_MS = 5  # SQLite's busy handler may block the loop this long per try
BUSY_WAIT_S = 30.0  # then the statement waits asynchronously, in total at most this long
_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class _Stats:
    busy_retries = 0  # statements retried because another connection held the lock (tests, debugging)


STATS = _Stats()


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in _BUSY_CODES


async def _busy_retried(call: Callable[..., Any], *args: Any, monotonic: Callable[[], float] = time.monotonic) -> Any:
    """``call(*args)`` (awaited if it returns an awaitable), retried while another connection holds
    the lock, sleeping on the loop between tries."""
    deadline: float | None = None
    delay = 0.001
    while True:
        try:
            result = call(*args)
            if inspect.isawaitable(result):
                return await result
            return result
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
            now = monotonic()
            deadline = deadline if deadline is not None else now + BUSY_WAIT_S
            if now >= deadline:
                raise
        STATS.busy_retries += 1
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.02)


class InlineCursor:
    """A ``sqlite3`` cursor behind aiosqlite's awaitable cursor API."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> InlineCursor:
        await _busy_retried(self._cursor.execute, sql, parameters)
        return self

    async def executemany(self, sql: str, seq_of_parameters: Iterable[Any]) -> InlineCursor:
        self._cursor.executemany(sql, seq_of_parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    async def __aiter__(self) -> AsyncIterator[Any]:
        for row in self._cursor:
            yield row


class _RunNow:
    """Stands in for aiosqlite's call queue: SQLAlchemy's ``isolation_level`` setter puts
    ``(future, function)`` on it directly."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:
            future.set_exception(exc)


class InlineConnection:
    """A ``sqlite3`` connection behind the part of aiosqlite's ``Connection`` SQLAlchemy uses."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._connection: sqlite3.Connection | None = conn  # SQLAlchemy checks it before commit/rollback
        self._tx = _RunNow()

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> InlineCursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        # The one call that waits for the disk (an fsync under synchronous=FULL): it runs on a thread,
        # with the GIL released, so the loop keeps parsing callbacks meanwhile. The transaction's
        # coroutine awaits it, so the connection is never used from two threads at once.
        await _busy_retried(self._commit_off_loop)

    def _commit_off_loop(self) -> Awaitable[None]:
        return asyncio.get_running_loop().run_in_executor(None, self._conn.commit)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()


def connector(database: str, *, uri: bool = False) -> Callable[[], Any]:
    """The ``async_creator`` for ``create_async_engine``: opens ``database`` for inline use.

    ``isolation_level=None`` leaves transactions to SQLAlchemy's ``BEGIN`` (storage/db.py);
    ``check_same_thread=False`` only because the pool may close a connection from a GC finaliser."""

    async def connect() -> InlineConnection:
        conn = sqlite3.connect(database, uri=uri, isolation_level=None, check_same_thread=False,
                               timeout=BUSY_SLICE_MS / 1000)
        return InlineConnection(conn)

    return connect
