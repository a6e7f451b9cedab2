"""The matching index fed from the database: built off the event loop, once per roster."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.demo import seed
from handlers import candidates
from handlers.clock import ManualClock
from storage.db import read_session_factory


async def test_concurrent_requests_share_one_index_build(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Messages handled at once after a roster change wait for the same build on the thread, and it
    becomes the process's index; the next request with the same roster reuses it."""
    async with sessions() as s, s.begin():
        await seed(s, ManualClock().now())
    reads = read_session_factory(engine)  # on SQLite, concurrent writers would wait for the write lock
    async with reads() as s1, reads() as s2, reads() as s3:
        first, second = await asyncio.gather(candidates.match_index(s1), candidates.match_index(s2))
        assert first is second
        assert await candidates.match_index(s3) is first
        assert len(first) > 0
        cls = await candidates.classify(s3, "天车的控制柜接触器老烧")
        assert cls.guesses and cls.guesses[0].group in {"港口起重机械", "维修电工"}
