"""Login with argon2 passwords and lock-out, one-time chat links, signed expiring sessions, logout."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from bot.console.auth import COOKIE
from bot.keys import sessions_key
from storage.models import LoginToken, StaffMember
from tests.chat import Chat
from tests.console.conftest import Agent, Console

PASSWORD = "correct horse 42"


async def login_form(agent: Agent) -> str:
    """Open the login page (which sets the pre-login cookie) and return its CSRF token."""
    page = await (await agent.get("/console/login")).text()
    m = re.search(r'name="_csrf" value="([0-9a-f]+)"', page)
    assert m, page
    return m.group(1)


async def password_login(agent: Agent, login: str, password: str, *, next_url: str = "/console/") -> int:
    token = await login_form(agent)
    resp = await agent.post("/console/login", {"_csrf": token, "login": login, "password": password, "next": next_url},
                            token=False)
    return resp.status


async def staff_row(console: Console, login: str) -> StaffMember:
    async with console.app[sessions_key]() as db:
        row = await db.scalar(select(StaffMember).where(StaffMember.login == login))
        assert row is not None
        return row


async def test_password_login_sets_a_signed_httponly_cookie(console: Console) -> None:
    await console.add_staff("王芳", "staff", login="wangfang", password=PASSWORD)
    agent = console.anonymous()
    assert (await agent.get("/console/")).headers["Location"].startswith("/console/login?next=")
    token = await login_form(agent)
    resp = await agent.post("/console/login", {"_csrf": token, "login": "wangfang", "password": PASSWORD,
                                               "next": "/console/craftsmen"}, token=False)
    assert resp.status == 302 and resp.headers["Location"] == "/console/craftsmen"
    cookie = resp.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/console"
    assert int(cookie["max-age"]) == 12 * 3600
    board = await agent.get("/console/")
    assert board.status == 200 and "王芳 · 工作人员" in await board.text()
    assert (await staff_row(console, "wangfang")).password_hash.startswith("$argon2id$")  # type: ignore[union-attr]


async def test_login_form_needs_its_csrf_token_and_never_redirects_off_site(console: Console) -> None:
    await console.add_staff("王芳", "staff", login="wangfang", password=PASSWORD)
    agent = console.anonymous()
    await login_form(agent)
    forged = await agent.post("/console/login", {"login": "wangfang", "password": PASSWORD}, token=False)
    assert forged.status == 403 and COOKIE not in forged.cookies
    token = await login_form(agent)
    resp = await agent.post("/console/login", {"_csrf": token, "login": "wangfang", "password": PASSWORD,
                                               "next": "//evil.example/console"}, token=False)
    assert resp.headers["Location"] == "/console/"


async def test_session_expires_and_a_tampered_cookie_is_refused(console: Console, staff: Agent) -> None:
    assert (await staff.get("/console/")).status == 200
    payload, sig = staff.cookie.split(".")
    forged = console.anonymous()
    forged.http.cookie_jar.update_cookies({COOKIE: payload + "." + sig[:-2] + "AA"})
    assert (await forged.get("/console/")).status == 302
    console.pg.clock.advance(timedelta(hours=12, minutes=1))
    assert (await staff.get("/console/")).headers["Location"].startswith("/console/login")


async def test_logout_ends_the_session_on_the_server(console: Console, admin: Agent) -> None:
    resp = await admin.post("/console/logout")
    assert resp.status == 302 and resp.cookies[COOKIE].value == ""
    copied = console.anonymous()
    copied.http.cookie_jar.update_cookies({COOKIE: admin.cookie})  # a copy of the cookie made before logout
    assert (await copied.get("/console/")).status == 302


async def test_one_time_link_from_chat(console: Console) -> None:
    await console.add_staff("陈晓红", "admin", identity=("web", "demo-staff-1"))
    reply = Chat.text_of(await console.pg.person("demo-staff-1").say("登录"))
    assert "10 分钟内有效" in reply
    path = re.search(r"http://127\.0\.0\.1:8080(/console/login/[\w-]+)", reply).group(1)  # type: ignore[union-attr]
    agent = console.anonymous()
    confirm = await agent.get(path)  # a chat app's link preview does this: it must not use the link up
    assert confirm.status == 200 and "陈晓红" in await confirm.text()
    token = re.search(r'name="_csrf" value="([0-9a-f]+)"', await (await agent.get(path)).text()).group(1)  # type: ignore[union-attr]
    resp = await agent.post(path, {"_csrf": token}, token=False)
    assert resp.status == 302 and (await agent.get("/console/")).status == 200
    again = console.anonymous()
    token = await login_form(again)
    assert (await again.post(path, {"_csrf": token}, token=False)).status == 410  # used once
    async with console.app[sessions_key]() as db:
        stored = [t.token_hash for t in (await db.scalars(select(LoginToken))).all()]
    assert path.rsplit("/", 1)[1] not in "".join(stored)  # only hashes are stored


async def test_expired_link_and_non_staff(console: Console) -> None:
    await console.add_staff("陈晓红", "admin", identity=("web", "demo-staff-1"))
    reply = Chat.text_of(await console.pg.person("demo-staff-1").say("登录"))
    path = re.search(r"(/console/login/[\w-]+)", reply).group(1)  # type: ignore[union-attr]
    console.pg.clock.advance(timedelta(minutes=11))
    assert (await console.anonymous().get(path)).status == 410
    assert "/console/login/" not in Chat.text_of(await console.pg.person("demo-firm-1").say("登录"))
