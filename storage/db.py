"""Engine and session setup for SQLite (WAL, one process) and PostgreSQL (N instances)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from storage import sqlite_inline

READ_ONLY = "craftlink_read_only"


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """Create the async engine; for SQLite also the database's folder, WAL mode and a busy timeout."""
    kwargs: dict[str, Any] = {}
    if is_sqlite(url):
        parsed = make_url(url)
        database = parsed.database or ":memory:"
        if database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # SQLite runs on the loop's thread, not aiosqlite's (storage/sqlite_inline.py: ~50x cheaper).
        kwargs["async_creator"] = sqlite_inline.connector(database, uri=parsed.query.get("uri") == "true")
    else:
        kwargs["pool_size"] = pool_size
        kwargs["max_overflow"] = pool_size
        kwargs["pool_pre_ping"] = True
    engine = create_async_engine(url, **kwargs)
    if is_sqlite(url):
        _sqlite_pragmas(engine)
    return engine


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        # The connection is opened with isolation_level=None (sqlite_inline.connector): SQLAlchemy, not
        # the driver, decides when a transaction begins, so BEGIN IMMEDIATE works.
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")  # WAL synced at every commit: an acknowledged message survives a power cut
        cur.execute("PRAGMA foreign_keys=ON")
        # SQLite's own busy wait blocks the loop, so it is short; longer waits are async retries.
        cur.execute(f"PRAGMA busy_timeout={sqlite_inline.BUSY_SLICE_MS}")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Any) -> None:
        # Writers take the write lock up front, so a read-then-write transaction never fails with
        # SQLITE_BUSY half way. Pure readers (see read_session_factory) must not: in WAL mode they
        # read a snapshot without blocking anyone, and taking the lock would queue them behind writers.
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def read_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that only read: on SQLite they never take the write lock. Writing through one is a bug
    (it would fail with SQLITE_BUSY under load), so use them only for polling and page views."""
    return async_sessionmaker(engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)


def dialect_of(session: AsyncSession) -> str:
    """``postgresql`` or ``sqlite``: the few places that lock rows differ by backend."""
    return session.get_bind().dialect.name
