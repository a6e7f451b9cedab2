"""Console fixtures: the whole service with the demo people, cases made through the web chat, and
signed-in staff of each role (sessions stored the way a login stores them, without paying argon2)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.web import Application

from bot.console import csrf
from bot.console.accounts import save_account
from bot.console.auth import COOKIE, new_session, sign_session
from bot.keys import secret_key, sessions_key
from handlers.settings import Settings
from storage.models import Case
from tests.chat import Chat, Playground
from tests.conftest import make_settings

MOLD = "冲床的模子老是崩刃，麻烦看看"  # 模具制造
FISH = "鱼塘水发绿了，增氧机开着鱼还是浮头"  # 水产养殖
LEAD_GROUPS = ["模具制造"]


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    # Review on: new cases wait in 待审核, where every console action can start from.
    return make_settings(db_url, tmp_path, bot={"review_required": True})


@dataclass
class Agent:
    """One signed-in staff member with their own cookie jar; posts carry the session's CSRF token."""

    http: aiohttp.ClientSession
    base: str
    person_id: int
    csrf: str
    name: str = ""
    cookie: str = ""  # the signed session cookie, for tests that copy or tamper with it

    async def get(self, path: str, **kw: Any) -> aiohttp.ClientResponse:
        return await self.http.get(self.base + path, allow_redirects=False, **kw)

    async def post(self, path: str, data: dict[str, str] | None = None, *, token: bool = True) -> aiohttp.ClientResponse:
        form = dict(data or {})
        if token:
            form["_csrf"] = self.csrf
        return await self.http.post(self.base + path, data=form, allow_redirects=False)

    async def flash(self, resp: aiohttp.ClientResponse) -> str:
        """Follow a post/redirect/get and return the page it lands on."""
        assert resp.status == 302, (resp.status, await resp.text())
        page = await self.http.get(self.base + resp.headers["Location"], allow_redirects=False)
        return await page.text()


@dataclass
class Console:
    pg: Playground
    agents: list[Agent] = field(default_factory=list)

    @property
    def app(self) -> Application:
        return self.pg.app

    @property
    def base(self) -> str:
        return str(self.pg.client.make_url("")).rstrip("/")

    async def add_staff(self, name: str, role: str, *, groups: list[str] | None = None, login: str | None = None,
                        password: str | None = None, identity: tuple[str, str] | None = None) -> int:
        async with self.app[sessions_key].begin() as db:
            account = await save_account(db, name=name, role=role, login=login, groups=groups or [],
                                         password=password, now=self.pg.clock.now(), identity=identity)
            return account.person.id

    async def agent(self, person_id: int, name: str = "") -> Agent:
        async with self.app[sessions_key].begin() as db:
            sid, expires = await new_session(db, person_id, self.pg.clock.now(), 12)
        key = self.app[secret_key]
        cookie = sign_session(key, sid, person_id, expires)
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), cookies={COOKIE: cookie})
        agent = Agent(http, self.base, person_id, csrf.session_token(key, sid), name, cookie)
        self.agents.append(agent)
        return agent

    def anonymous(self) -> Agent:
        agent = Agent(aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)), self.base, 0, "")
        self.agents.append(agent)
        return agent

    async def submit(self, user: str, text: str) -> int:
        """An enterprise files a request in chat; returns the case number."""
        chat = self.pg.person(user)
        await chat.say(text)
        await chat.tap("线上指导")
        await chat.tap("普通")
        done = Chat.text_of(await chat.tap("提交"))
        assert "案件编号 #" in done, done
        number = int(done.split("案件编号 #")[1][:4])
        return number

    async def case(self, number: int) -> Case:
        async with self.app[sessions_key]() as db:
            case = await db.get(Case, number - 1000)
            assert case is not None
            return case


@pytest.fixture
async def console(playground: Playground) -> AsyncIterator[Console]:
    c = Console(playground)
    yield c
    for agent in c.agents:
        await agent.http.close()


@pytest.fixture
async def admin(console: Console) -> Agent:
    return await console.agent(await console.add_staff("陈晓红", "admin", identity=("web", "demo-staff-1")), "陈晓红")


@pytest.fixture
async def staff(console: Console) -> Agent:
    return await console.agent(await console.add_staff("刘志明", "staff", identity=("web", "demo-staff-2")), "刘志明")


@pytest.fixture
async def lead(console: Console) -> Agent:
    return await console.agent(await console.add_staff("赵组长", "group_lead", groups=LEAD_GROUPS), "赵组长")

