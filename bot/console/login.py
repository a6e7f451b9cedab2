"""Login pages: password (argon2, throttled per login and client address), one-time chat links, logout.

A link from chat (``登录``) is not consumed by the GET: chat apps fetch links to draw previews, and a
preview must not burn the token. The GET shows a confirm button; its POST redeems the link.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select, update

from bot.console import csrf, throttle
from bot.console.auth import (
    end_session,
    guard,
    hash_password,
    needs_rehash,
    public,
    start_session,
    verify_password,
    viewer_of,
)
from bot.console.render import redirect, render
from bot.console.viewer import ROLES
from bot.keys import clock_key, sessions_key, settings_key
from bot.links import LOGIN_LINK_ROUTE
from handlers.staff.login import link_hash
from storage.models import LoginToken, Person, StaffMember

BAD_LOGIN = "账号或密码不正确。"


def _next(value: str | None) -> str:
    """Only a path inside the console: never an open redirect to another site."""
    if value and value.startswith("/console") and not value.startswith("//") and "\\" not in value:
        return value
    return "/console/"


@public
async def login_page(request: web.Request) -> web.Response:
    """The password form."""
    return render(request, "login.html", next=_next(request.query.get("next")), error="", login="")


@public
async def login_submit(request: web.Request) -> web.StreamResponse:
    """Check the password, throttled per (login, client address) (``bot/console/throttle.py``)."""
    form = await request.post()
    if not csrf.valid(request, form.get("_csrf")):
        return render(request, "login.html", status=403, next="/console/", login="",
                      error="页面已过期，请重新输入后登录。")
    login, password = str(form.get("login", "")).strip(), str(form.get("password", ""))
    target = _next(str(form.get("next", "")))
    settings = request.app[settings_key].console
    now = request.app[clock_key].now()
    address = throttle.client_address(request, settings)
    retry_at = await throttle.reserve(request.app[sessions_key], login, address, now, settings)
    if retry_at is not None:  # refused before argon2: a flood costs us nothing and learns nothing
        until = retry_at.astimezone(request.app[settings_key].tz)
        return render(request, "login.html", status=429, next=target, login=login,
                      error=f"尝试次数过多，请于 {until:%H:%M:%S} 后再试，或在聊天中发送「登录」获取链接。")
    async with request.app[sessions_key]() as db:  # argon2 runs outside any write transaction
        staff = await db.scalar(select(StaffMember).where(StaffMember.login == login)) if login else None
    ok = await verify_password(staff.password_hash if staff else None, password)
    if staff is None or not ok:
        if staff is not None:  # atomic: concurrent failures all count (shown on the accounts page)
            async with request.app[sessions_key].begin() as db:
                await db.execute(update(StaffMember).where(StaffMember.person_id == staff.person_id)
                                 .values(failed_logins=StaffMember.failed_logins + 1))
        return render(request, "login.html", status=401, next=target, login=login, error=BAD_LOGIN)
    async with request.app[sessions_key].begin() as db:
        staff = await db.get(StaffMember, staff.person_id)
        person = await db.get(Person, staff.person_id) if staff is not None else None
        if staff is None or person is None or staff.staff_role not in ROLES:
            return render(request, "login.html", status=401, next=target, login=login, error=BAD_LOGIN)
        await throttle.reset(db, login, address, now)
        staff.failed_logins, staff.locked_until = 0, None
        if staff.password_hash and needs_rehash(staff.password_hash):
            staff.password_hash = hash_password(password)
        response = web.HTTPFound(target)
        await start_session(request, db, staff.person_id, response)
    raise response


async def _valid_link(request: web.Request) -> tuple[LoginToken, Person] | None:
    token = request.match_info["token"]
    now = request.app[clock_key].now()
    async with request.app[sessions_key]() as db:
        row = await db.get(LoginToken, link_hash(token))
        if row is None or row.used_at is not None or row.expires_at <= now:
            return None
        person = await db.get(Person, row.person_id)
    return (row, person) if person is not None else None


@public
async def link_page(request: web.Request) -> web.Response:
    """A one-time link from chat: confirm before it is used up."""
    found = await _valid_link(request)
    if found is None:
        return render(request, "link.html", status=410, name="")
    return render(request, "link.html", name=found[1].name)


@public
async def link_submit(request: web.Request) -> web.StreamResponse:
    """Redeem the link exactly once (conditional UPDATE), then start a session."""
    form = await request.post()
    if not csrf.valid(request, form.get("_csrf")):
        return render(request, "link.html", status=403, name="")
    token = request.match_info["token"]
    now = request.app[clock_key].now()
    async with request.app[sessions_key].begin() as db:
        row = await db.get(LoginToken, link_hash(token))
        staff = await db.get(StaffMember, row.person_id) if row is not None else None
        result = await db.execute(
            update(LoginToken)
            .where(LoginToken.token_hash == link_hash(token), LoginToken.used_at.is_(None), LoginToken.expires_at > now)
            .values(used_at=now).execution_options(synchronize_session=False))
        if row is None or staff is None or staff.staff_role not in ROLES or result.rowcount != 1:  # type: ignore[attr-defined]
            return render(request, "link.html", status=410, name="")
        response = web.HTTPFound("/console/")
        await start_session(request, db, row.person_id, response)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    """End the session on the server and drop the cookie."""
    response = redirect("/console/login", "已退出登录。")
    await end_session(request, viewer_of(request), response)
    raise response


def routes() -> list[web.RouteDef]:
    return [
        web.get("/console/login", login_page),
        web.post("/console/login", login_submit),
        web.get(LOGIN_LINK_ROUTE, link_page),
        web.post(LOGIN_LINK_ROUTE, link_submit),
        web.post("/console/logout", guard(*ROLES)(logout)),
    ]
