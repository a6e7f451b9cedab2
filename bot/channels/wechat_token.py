"""The service account's access token, shared by every process through the ``channel_tokens`` table.

Each fetch of a service-account token invalidates the previous one (after a 5-minute grace), so
processes must not refresh independently: only the holder of the lock row fetches. The lock is a
conditional UPDATE of ``lock_until``/``lock_owner`` (works the same on SQLite and PostgreSQL); a
lock whose holder died expires after ``lock_s``. Others poll the row briefly and take the new token;
if the refresh takes longer than that, the send fails transiently and the outbox retries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.base import TransientSendError
from bot.channels.wx_api import Fetched, jitter
from handlers.clock import Clock
from storage.models import ChannelToken

log = logging.getLogger(__name__)


class SharedToken:
    """A :class:`~bot.channels.wx_api.TokenSource` backed by one ``channel_tokens`` row."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        fetch: Callable[[], Awaitable[Fetched]],
        *,
        owner: str,
        name: str = "wechat",
        lock_s: float = 30.0,
        margin_s: float = 300.0,
        poll_s: float = 0.2,
        polls: int = 25,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._fetch = fetch
        self.owner = owner
        self.name = name
        self._lock_s = timedelta(seconds=lock_s)
        self._margin = timedelta(seconds=margin_s)
        self._poll_s = poll_s
        self._polls = polls
        self._token = ""
        self._expires_at: datetime | None = None
        self._stale: list[str] = []  # tokens the platform refused: never hand them out again
        self._local = asyncio.Lock()  # one refresh attempt per process at a time
        self.fetches = 0

    def _usable(self, token: str, expires_at: datetime | None) -> bool:
        return (
            bool(token)
            and token not in self._stale
            and expires_at is not None
            and self._clock.now() < expires_at
        )

    async def get(self) -> str:
        if self._usable(self._token, self._expires_at):
            return self._token
        async with self._local:
            for _ in range(self._polls):
                if self._usable(self._token, self._expires_at):
                    return self._token
                if await self._load() or await self._refresh_if_locked():
                    return self._token
                await asyncio.sleep(self._poll_s)  # another process holds the lock: wait for its token
        raise TransientSendError(
            "token_lock", "another process is refreshing the token", retry_after=jitter(5)
        )

    async def invalidate(self, token: str) -> None:
        self._stale = [*self._stale[-7:], token]
        if token == self._token:
            self._token, self._expires_at = "", None

    async def _load(self) -> bool:
        async with self._sessions() as session:
            row = await session.get(ChannelToken, self.name)
        if row is not None and self._usable(row.token, row.expires_at):
            self._token, self._expires_at = row.token, row.expires_at
            return True
        return False

    async def _refresh_if_locked(self) -> bool:
        """Take the lock row and refresh; False if another process holds the lock."""
        now = self._clock.now()
        async with self._sessions() as session, session.begin():
            await session.execute(_insert_missing(session, self.name))
            taken = await session.execute(
                update(ChannelToken)
                .where(ChannelToken.name == self.name)
                .where(or_(ChannelToken.lock_until.is_(None), ChannelToken.lock_until < now))
                .values(lock_until=now + self._lock_s, lock_owner=self.owner)
            )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            return False
        fresh: Fetched | None = None
        try:
            if await self._load():  # refreshed by someone between our read and our lock
                return True
            fresh = await self._fetch()
            self.fetches += 1
            lifetime = max(
                timedelta(seconds=fresh.expires_in) - self._margin, timedelta(seconds=fresh.expires_in / 2)
            )
            self._token, self._expires_at = fresh.token, self._clock.now() + lifetime
            log.info("%s access token refreshed by %s", self.name, self.owner)
            return True
        finally:
            await self._release(fresh is not None)

    async def _release(self, store: bool) -> None:
        values: dict[str, Any] = {"lock_until": None, "lock_owner": ""}
        if store:
            values.update(token=self._token, expires_at=self._expires_at)
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(ChannelToken)
                .where(ChannelToken.name == self.name, ChannelToken.lock_owner == self.owner)
                .values(**values)
            )


def _insert_missing(session: AsyncSession, name: str) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    ins = postgresql.insert(ChannelToken) if dialect == "postgresql" else sqlite.insert(ChannelToken)
    return ins.values(name=name, token="", lock_owner="").on_conflict_do_nothing(index_elements=["name"])


async def read_token(sessions: async_sessionmaker[AsyncSession], name: str) -> ChannelToken | None:
    """The stored row (for tests and diagnostics)."""
    async with sessions() as session:
        return (await session.scalars(select(ChannelToken).where(ChannelToken.name == name))).first()
