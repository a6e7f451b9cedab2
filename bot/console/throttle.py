"""Password-login throttle per (login, client address): growing waits instead of an account lock.

A per-account lock is a denial of service anyone can trigger (five wrong passwords from a stranger
lock the real admin out, again and again). Here every password attempt counts against the pair
(login, client address) in ``login_throttle``: the first ``console.lockout_attempts`` are free,
then each try must wait 1 s, 2 s, 4 s … up to ``console.lockout_minutes`` after the previous one.
A try that comes too early is refused (429) *without checking the password*, and counted too. A
successful login resets the pair. The same login from another address is never slowed by it.

:func:`reserve` runs before argon2, in its own short transaction: one upsert
(``INSERT … ON CONFLICT DO UPDATE SET failures = failures + 1 RETURNING``) counts the try and takes
the row's lock on PostgreSQL until commit (SQLite's ``BEGIN IMMEDIATE`` serialises writers anyway),
and the next allowed time is set before that commit. So concurrent tries see each other: 40 parallel
wrong passwords from one address get ``lockout_attempts + 1`` password checks, not 40.

The client address is ``request.remote`` (the TCP peer), or — behind a proxy, when
``console.client_address_header`` is set — that header (the last entry of ``X-Forwarded-For``, the
one the nearest proxy appended).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from aiohttp import web
from sqlalchemy import delete, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import ReturningInsert

from handlers.settings import ConsoleSettings
from storage.models import LoginThrottle

MAX_LOGIN, MAX_ADDRESS = 60, 64  # the key columns' widths
STALE = timedelta(days=1)


def client_address(request: web.Request, settings: ConsoleSettings) -> str:
    header = settings.client_address_header
    value = request.headers.get(header, "") if header else ""
    if value and header.lower() == "x-forwarded-for":
        value = value.split(",")[-1]
    return (value.strip() or request.remote or "unknown")[:MAX_ADDRESS]


def wait_after(failures: int, settings: ConsoleSettings) -> timedelta:
    """How long after the ``failures``-th counted try the next one must wait."""
    over = failures - settings.lockout_attempts
    if over <= 0:
        return timedelta(0)
    cap = settings.lockout_minutes * 60
    return timedelta(seconds=min(2.0 ** min(over - 1, 30), cap))


def _count_try(dialect: str, login: str, address: str, now: datetime) -> ReturningInsert[int, datetime | None]:
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(LoginThrottle).values(
        login=login, address=address, failures=1, next_allowed_at=None, updated_at=now)
    return ins.on_conflict_do_update(
        index_elements=["login", "address"],
        set_={"failures": LoginThrottle.failures + 1, "updated_at": now},
    ).returning(LoginThrottle.failures, LoginThrottle.next_allowed_at)


async def reserve(sessions: async_sessionmaker[AsyncSession], login: str, address: str, now: datetime,
                  settings: ConsoleSettings) -> datetime | None:
    """Count one try; None if the password may be checked now, else the time to come back at."""
    login = login[:MAX_LOGIN]
    async with sessions.begin() as db:
        row = (await db.execute(_count_try(db.get_bind().dialect.name, login, address, now))).one()
        failures, next_allowed = int(row[0]), row[1]
        if next_allowed is not None and next_allowed > now:
            return next_allowed
        await db.execute(update(LoginThrottle)
                         .where(LoginThrottle.login == login, LoginThrottle.address == address)
                         .values(next_allowed_at=now + wait_after(failures, settings))
                         .execution_options(synchronize_session=False))
    return None


async def reset(db: AsyncSession, login: str, address: str, now: datetime) -> None:
    """A successful login from ``address`` clears that pair (in ``db``'s transaction), and pairs
    nobody has tried for a day go with it, so guessed logins do not pile up."""
    await db.execute(delete(LoginThrottle).where(LoginThrottle.login == login[:MAX_LOGIN],
                                                 LoginThrottle.address == address))
    await db.execute(delete(LoginThrottle).where(LoginThrottle.updated_at < now - STALE,
                                                 or_(LoginThrottle.next_allowed_at.is_(None),
                                                     LoginThrottle.next_allowed_at < now)))


async def clear_login(db: AsyncSession, login: str) -> None:
    """``unlock`` (console or CLI): forget every address's failures for ``login``."""
    await db.execute(delete(LoginThrottle).where(LoginThrottle.login == login[:MAX_LOGIN]))
