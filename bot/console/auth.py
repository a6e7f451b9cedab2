"""Console authentication: argon2 passwords, signed session cookies backed by a revocable row, roles.

A session is a random id. The browser holds ``cl_session = payload.signature`` (HMAC-SHA256 over the
payload with the console secret; HttpOnly, SameSite=Lax, Secure behind https, expiring with
``console.session_hours``). The server also keeps ``sha256("session:" + id)`` in ``login_tokens``
with the same expiry, so logout really ends a session (``used_at`` set) even if the cookie was copied.
Any password change (console reset, ``craftlink staff passwd``/``add``) ends all of that person's
sessions and unused chat links (:func:`revoke_sessions`).

Every console handler is wrapped in :func:`guard`, which loads the viewer, answers 403 to a role that
may not see the page, and checks the CSRF token of every POST (``bot/console/csrf.py``).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from urllib.parse import quote

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.console import csrf
from bot.console.render import render_text
from bot.console.viewer import ROLES, VIEWER, Viewer
from bot.keys import clock_key, secret_key, sessions_key, settings_key
from handlers.staff.login import session_hash
from storage.models import LoginToken, Person, Role, StaffMember

COOKIE = "cl_session"

_hasher = PasswordHasher()
# Verified against when the login is unknown, so a wrong login costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def hash_password(password: str) -> str:
    return _hasher.hash(password)


async def verify_password(stored: str | None, password: str) -> bool:
    """argon2 verification off the event loop (it costs tens of milliseconds on purpose)."""

    def check() -> bool:
        try:
            return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, label: str, payload: str) -> str:
    return _b64(hmac.new(key, f"{label}|{payload}".encode(), hashlib.sha256).digest())


def sign_session(key: bytes, session_id: str, person_id: int, expires: datetime) -> str:
    payload = _b64(json.dumps({"s": session_id, "p": person_id, "e": int(expires.timestamp())}).encode())
    return f"{payload}.{_mac(key, 'session', payload)}"


def unsign_session(key: bytes, value: str, now: datetime) -> tuple[str, int] | None:
    """(session id, person id) of a cookie whose signature is right and whose expiry is ahead."""
    payload, _, sig = value.partition(".")
    # Bytes, not str: compare_digest raises TypeError on a non-ASCII str (a forged cookie would be a 500).
    if not sig or not hmac.compare_digest(sig.encode(), _mac(key, "session", payload).encode()):
        return None
    try:
        data = json.loads(_unb64(payload))
        session_id, person_id, exp = str(data["s"]), int(data["p"]), int(data["e"])
    except (ValueError, KeyError, TypeError):
        return None
    if exp <= now.timestamp():
        return None
    return session_id, person_id


async def new_session(db: AsyncSession, person_id: int, now: datetime, hours: int) -> tuple[str, datetime]:
    """Store a new session row in ``db``'s transaction; returns (session id, expiry)."""
    expires = now + timedelta(hours=hours)
    session_id = secrets.token_urlsafe(24)
    # Rows of long-expired sessions and links go with each login: the table stays small.
    await db.execute(delete(LoginToken).where(LoginToken.expires_at < now - timedelta(days=1)))
    db.add(LoginToken(token_hash=session_hash(session_id), person_id=person_id, expires_at=expires))
    return session_id, expires


async def start_session(request: web.Request, db: AsyncSession, person_id: int, response: web.StreamResponse) -> None:
    """Store a new session (in ``db``'s transaction) and set its cookie on ``response``."""
    settings = request.app[settings_key].console
    session_id, expires = await new_session(db, person_id, request.app[clock_key].now(), settings.session_hours)
    response.set_cookie(
        COOKIE, sign_session(request.app[secret_key], session_id, person_id, expires),
        max_age=settings.session_hours * 3600, path="/console", httponly=True, samesite="Lax",
        secure=request.app[settings_key].server.public_url.startswith("https://"),
    )


async def end_session(request: web.Request, viewer: Viewer, response: web.StreamResponse) -> None:
    """Logout: the row is marked used (a copied cookie stops working) and the cookie is dropped."""
    async with request.app[sessions_key].begin() as db:
        await db.execute(update(LoginToken).where(LoginToken.token_hash == session_hash(viewer.session_id))
                         .values(used_at=request.app[clock_key].now()))
    response.del_cookie(COOKIE, path="/console")


async def revoke_sessions(db: AsyncSession, person_id: int, now: datetime, *, keep: str | None = None) -> None:
    """End every session (and unused login link) of ``person_id``, in ``db``'s transaction: a password
    change must log out whoever knew the old one. ``keep`` is the session id of the admin making the
    change to their own account, which goes on."""
    stmt = update(LoginToken).where(LoginToken.person_id == person_id, LoginToken.used_at.is_(None))
    if keep is not None:
        stmt = stmt.where(LoginToken.token_hash != session_hash(keep))
    await db.execute(stmt.values(used_at=now).execution_options(synchronize_session=False))


async def load_viewer(request: web.Request) -> Viewer | None:
    """The staff member behind the request's cookie, or None (no cookie, bad signature, expired, revoked)."""
    value = request.cookies.get(COOKIE)
    if not value:
        return None
    now = request.app[clock_key].now()
    unsigned = unsign_session(request.app[secret_key], value, now)
    if unsigned is None:
        return None
    session_id, person_id = unsigned
    async with request.app[sessions_key]() as db:
        row = await db.get(LoginToken, session_hash(session_id))
        if row is None or row.person_id != person_id or row.used_at is not None or row.expires_at <= now:
            return None
        person = await db.get(Person, person_id)
        staff = await db.get(StaffMember, person_id)
    if person is None or staff is None or person.role != Role.STAFF or staff.staff_role not in ROLES:
        return None  # demoted since login: the session ends with the role
    return Viewer(person_id, person.name, staff.staff_role, tuple(staff.groups or ()), session_id)


def viewer_of(request: web.Request) -> Viewer:
    viewer = request.get(VIEWER)
    assert viewer is not None, "handler not wrapped in guard()"
    return viewer


def forbidden(request: web.Request, why: str = "您的账号无权查看此页面。") -> web.HTTPForbidden:
    return web.HTTPForbidden(text=render_text(request, "error.html", title="无权访问", message=why),
                             content_type="text/html")


def guard(*roles: str, csrf_in_body: bool = True) -> Callable[[Handler], Handler]:
    """Require a signed-in viewer with one of ``roles``; POSTs also need a valid CSRF token.

    ``csrf_in_body=False`` is for multipart uploads, whose handler checks the token as the stream's
    first part itself (reading the whole body here would defeat the upload's size limit).
    """
    allowed = frozenset(roles)

    def wrap(fn: Handler) -> Handler:
        @functools.wraps(fn)
        async def guarded(request: web.Request) -> web.StreamResponse:
            viewer = await load_viewer(request)
            if viewer is None:
                if request.method == "GET":
                    raise web.HTTPFound(f"/console/login?next={quote(request.path_qs)}")
                raise web.HTTPUnauthorized(text="请先登录控制台。")
            if viewer.role not in allowed:
                raise forbidden(request)
            request[VIEWER] = viewer
            if request.method == "POST" and csrf_in_body:
                await csrf.check_form(request)
            return await fn(request)

        guarded.console_roles = allowed  # type: ignore[attr-defined]  # read by the role-matrix test
        return guarded

    return wrap


def public(fn: Handler) -> Handler:
    """Mark a handler that needs no login (login pages, static files); checked by the route test."""
    fn.console_roles = frozenset({"public"})  # type: ignore[attr-defined]
    return fn
