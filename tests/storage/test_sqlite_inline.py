"""SQLite driven on the event loop's thread (storage/sqlite_inline.py): a lock held by another
process is waited for without blocking the loop, and a wait that never ends fails cleanly."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import sqlite_inline
from storage.db import create_engine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    async with eng.begin() as conn:
        await conn.execute(text("CREATE TABLE t (n INTEGER)"))
    yield eng
    await eng.dispose()


def _other_process_lock(tmp_path: Path) -> sqlite3.Connection:
    """What a ``craftlink`` command in another process does: holds the write lock."""
    other = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (1)")
    return other


async def test_a_writer_waits_for_another_process_while_the_loop_keeps_serving(
    engine: AsyncEngine, tmp_path: Path,
) -> None:
    other = _other_process_lock(tmp_path)
    retries_before = sqlite_inline.STATS.busy_retries

    async def write() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (2)"))

    writer = asyncio.create_task(write())
    ticks = 0
    for _ in range(10_000):  # bounded (~5 s at worst): the writer must meet the lock and retry
        await asyncio.sleep(0.0005)
        ticks += 1
        if sqlite_inline.STATS.busy_retries > retries_before + 2:
            break
    assert sqlite_inline.STATS.busy_retries > retries_before + 2, "the writer never met the lock"
    assert not writer.done()
    assert ticks > 3  # other work ran on the loop while the writer waited
    other.execute("COMMIT")
    await asyncio.wait_for(writer, 10)
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT n FROM t ORDER BY n"))).scalars().all() == [1, 2]
    other.close()


async def test_a_lock_that_is_never_released_fails_the_statement_and_writes_nothing(
    engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sqlite_inline, "BUSY_WAIT_S", 0.0)  # give up at the first refusal
    other = _other_process_lock(tmp_path)
    with pytest.raises(Exception, match="locked"):
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (2)"))
    other.execute("ROLLBACK")
    other.close()
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 0


async def test_the_engine_uses_the_inline_driver_with_the_durable_pragmas(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert isinstance(driver, sqlite_inline.InlineConnection)
        assert (await conn.execute(text("PRAGMA synchronous"))).scalar() == 2  # FULL
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == sqlite_inline.BUSY_SLICE_MS
