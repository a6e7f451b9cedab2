"""Shared fixtures: every storage-touching test runs on SQLite and on a real PostgreSQL.

``make test`` starts a throw-away PostgreSQL server and exports ``CRAFTLINK_TEST_PG_URL``; each test
gets a fresh database cloned from a migrated template (so the schema always comes from Alembic).
Without that variable the PostgreSQL half is skipped with a message saying why.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Application, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.app import create_app
from bot.config import Settings, parse_settings
from handlers import candidates
from handlers.clock import ManualClock
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from tests.chat import Playground

PG_URL = os.environ.get("CRAFTLINK_TEST_PG_URL", "")
_templates: dict[str, str] = {}


def pytest_report_header(config: pytest.Config) -> str:
    return f"PostgreSQL for tests: {PG_URL or 'not available (set CRAFTLINK_TEST_PG_URL; make test does)'}"


async def _sqlite_template(tmp_root: Path) -> Path:
    if "sqlite" not in _templates:
        path = tmp_root / "template.db"
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        await upgrade(engine)
        await engine.dispose()
        _templates["sqlite"] = str(path)
    return Path(_templates["sqlite"])


async def _pg_admin(sql: str) -> None:
    engine = create_engine(PG_URL)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


def _pg_url(db: str) -> str:
    return PG_URL.rsplit("/", 1)[0] + "/" + db


async def _pg_template() -> str:
    if "pg" not in _templates:
        name = f"tpl_{uuid.uuid4().hex[:10]}"
        await _pg_admin(f'CREATE DATABASE "{name}"')
        engine = create_engine(_pg_url(name))
        await upgrade(engine)
        await engine.dispose()
        _templates["pg"] = name
    return _templates["pg"]


@pytest.fixture(scope="session")
def tmp_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("craftlink")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgres"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path, tmp_root: Path) -> AsyncIterator[str]:
    """A fresh, migrated database of each backend."""
    candidates.reset_index()
    if request.param == "sqlite":
        path = tmp_path / "craftlink.db"
        shutil.copy(await _sqlite_template(tmp_root), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    if not PG_URL:
        pytest.skip("PostgreSQL not available: no CRAFTLINK_TEST_PG_URL (make test starts a server when initdb exists)")
    template = await _pg_template()
    name = f"t_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield _pg_url(name)
    await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_settings(db_url: str, tmp_path: Path, **sections: dict[str, object]) -> Settings:
    raw: dict[str, object] = {
        "database": {"url": db_url},
        "server": {"playground": True, "host": "127.0.0.1", "port": 8080},
        "bot": {"media_dir": str(tmp_path / "media")},
        "console": {"secret_key": "test-secret-key-0123456789abcdef"},
    }
    if {"wecom", "wechat", "dingtalk"} & set(sections):
        # Channel tests drive a platform fake and the playground side by side, on purpose.
        raw["server"] = {**raw["server"], "playground_with_real_channels": True}  # type: ignore[dict-item]
    for name, values in sections.items():
        raw[name] = {**(raw.get(name) or {}), **values}  # type: ignore[dict-item]
    return parse_settings(raw, source="(tests)")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path)


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(settings.database.url)
    yield eng
    await eng.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)


@pytest.fixture
async def client(settings: Settings, clock: ManualClock) -> AsyncIterator[TestClient[Request, Application]]:
    """The whole service over real HTTP on loopback, scheduler driven by the test."""
    app = create_app(settings, clock=clock, run_scheduler=False)
    server = TestServer(app, host="127.0.0.1")
    async with TestClient(server) as c:
        yield c


@pytest.fixture
async def playground(client: TestClient[Request, Application], clock: ManualClock) -> AsyncIterator[Playground]:
    pg = Playground(client, clock)
    await pg.seed_demo()
    yield pg
