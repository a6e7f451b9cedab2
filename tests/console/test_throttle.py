"""Password login is throttled per (login, client address) with growing waits, atomically; a stranger's
wrong passwords never lock the real admin out from their own address."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot.console import auth
from bot.console.auth import COOKIE
from bot.keys import sessions_key, settings_key
from storage.models import LoginThrottle, StaffMember
from tests.console.conftest import Agent, Console
from tests.console.test_auth import PASSWORD, login_form, password_login

FREE = 5  # console.lockout_attempts (default)


def agent_from(console: Console, address: str) -> Agent:
    """An anonymous browser whose connections come from ``address`` (any 127.x reaches loopback)."""
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0)),
                                 cookie_jar=aiohttp.CookieJar(unsafe=True))
    agent = Agent(http, console.base, 0, "")
    console.agents.append(agent)
    return agent


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every argon2 verification the server makes."""
    seen: list[str] = []
    real = auth._hasher

    class Counting:
        def verify(self, stored: str, password: str) -> bool:
            seen.append(password)
            return real.verify(stored, password)

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    monkeypatch.setattr(auth, "_hasher", Counting())
    return seen


async def throttle_rows(console: Console) -> dict[tuple[str, str], LoginThrottle]:
    async with console.app[sessions_key]() as db:
        return {(r.login, r.address): r for r in (await db.scalars(select(LoginThrottle))).all()}


async def test_waits_grow_and_a_success_resets(console: Console, checks: list[str]) -> None:
    await console.add_staff("王芳", "staff", login="wangfang", password=PASSWORD)
    agent = console.anonymous()
    for _ in range(FREE):
        assert await password_login(agent, "wangfang", "wrong password") == 401
    assert await password_login(agent, "wangfang", "wrong password") == 401  # the 6th is checked, then 1 s
    # Every try counts, a refused one too: hammering only makes one's own wait longer.
    token = await login_form(agent)
    early = await agent.post("/console/login", {"_csrf": token, "login": "wangfang", "password": PASSWORD}, token=False)
    assert early.status == 429 and "尝试次数过多" in await early.text()
    assert len(checks) == FREE + 1  # the early try was refused without looking at the password
    console.pg.clock.advance(timedelta(seconds=1))
    assert await password_login(agent, "wangfang", "wrong password") == 401  # the 8th try: wait 4 s
    assert len(checks) == FREE + 2
    console.pg.clock.advance(timedelta(seconds=3))
    assert await password_login(agent, "wangfang", PASSWORD) == 429  # even the right password, unchecked
    async with console.app[sessions_key].begin() as db:  # a guessed login nobody tried for two days
        db.add(LoginThrottle(login="ghost", address="198.51.100.1", failures=3,
                             updated_at=console.pg.clock.now() - timedelta(days=2)))
    console.pg.clock.advance(timedelta(seconds=1))
    assert await password_login(agent, "wangfang", PASSWORD) == 302
    assert await throttle_rows(console) == {}  # reset by the success, the stale pair swept with it
    async with console.app[sessions_key]() as db:
        row = await db.scalar(select(StaffMember).where(StaffMember.login == "wangfang"))
        assert row is not None and row.failed_logins == 0 and row.locked_until is None


async def test_waits_are_capped(console: Console) -> None:
    await console.add_staff("王芳", "staff", login="wangfang", password=PASSWORD)
    console.app[settings_key].console.lockout_attempts = 0  # waits from the first failure: a shorter test
    agent = console.anonymous()
    for _ in range(12):  # past 2 ** 10 s, more than the 15-minute cap
        await password_login(agent, "wangfang", "wrong password")
        console.pg.clock.advance(timedelta(minutes=15))
    assert await password_login(agent, "wangfang", PASSWORD) == 302  # never more than lockout_minutes


async def test_parallel_wrong_passwords_are_counted_atomically(console: Console, checks: list[str]) -> None:
    """40 wrong passwords at once over real HTTP: each is counted, only the free ones (+1) are checked."""
    pid = await console.add_staff("高明", "admin", login="chenxh", password=PASSWORD)
    attacker = console.anonymous()
    token = await login_form(attacker)
    form = {"_csrf": token, "login": "chenxh", "password": "guess"}
    answers = await asyncio.gather(*(attacker.post("/console/login", form, token=False) for _ in range(40)))
    statuses = sorted(r.status for r in answers)
    assert statuses.count(401) == len(checks) == FREE + 1, statuses  # the free tries and one more
    assert statuses.count(429) == 40 - len(checks)
    rows = await throttle_rows(console)
    assert rows[("chenxh", "127.0.0.1")].failures == 40  # every try counted, none lost to a race
    async with console.app[sessions_key]() as db:
        staff = await db.get(StaffMember, pid)
        assert staff is not None and staff.failed_logins == len(checks)

    # The real admin, from their own address, signs in at once with the right password.
    admin = agent_from(console, "127.0.0.2")
    assert await password_login(admin, "chenxh", PASSWORD) == 302
    assert COOKIE in {c.key for c in admin.http.cookie_jar}
    assert (await admin.get("/console/")).status == 200
    assert await password_login(attacker, "chenxh", PASSWORD) == 429  # the flooded address still waits


async def test_proxy_header_names_the_client(console: Console, checks: list[str]) -> None:
    console.app[settings_key].console.client_address_header = "X-Forwarded-For"
    await console.add_staff("王芳", "staff", login="wangfang", password=PASSWORD)
    agent = console.anonymous()
    for _ in range(FREE + 1):
        token = await login_form(agent)
        resp = await agent.http.post(console.base + "/console/login", allow_redirects=False,
                                     data={"_csrf": token, "login": "wangfang", "password": "x"},
                                     headers={"X-Forwarded-For": "spoofed, 203.0.113.7"})
        assert resp.status == 401
    rows = await throttle_rows(console)
    assert set(rows) == {("wangfang", "203.0.113.7")}  # the entry nginx appended, not what the client sent
    assert await password_login(agent, "wangfang", PASSWORD) == 302  # no header: another client


async def test_unlock_clears_the_throttle(console: Console, admin: Agent) -> None:
    pid = await console.add_staff("王芳", "staff", login="wangfang", password=PASSWORD)
    agent = console.anonymous()
    for _ in range(FREE + 1):
        await password_login(agent, "wangfang", "wrong password")
    assert await password_login(agent, "wangfang", PASSWORD) == 429
    await admin.flash(await admin.post(f"/console/accounts/{pid}", {"role": "staff", "groups": "", "unlock": "1"}))
    assert await throttle_rows(console) == {}
    assert await password_login(agent, "wangfang", PASSWORD) == 302
