"""/healthz and /readyz: up, ready, and honest when the database is gone or behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.keys import engine_key
from handlers.clock import ManualClock
from storage.db import create_engine
from storage.migrate import head_revision
from tests.conftest import make_settings
from tests.ops.metrics_util import scrape, value


async def test_healthz_and_readyz_when_all_is_well(client: TestClient[Any, Any]) -> None:
    assert (await client.get("/healthz")).status == 200
    resp = await client.get("/readyz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ready", "revision": head_revision()}


@pytest.mark.filterwarnings("ignore:Changing state:DeprecationWarning")
async def test_readyz_refuses_when_the_database_is_unreachable(client: TestClient[Any, Any]) -> None:
    app = client.app
    assert app is not None
    good = app[engine_key]
    app[engine_key] = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")  # nothing listens on :1
    try:
        resp = await client.get("/readyz")
        assert resp.status == 503
        assert (await resp.json())["status"] == "unavailable"
        assert (await client.get("/healthz")).status == 200  # the process itself is fine
    finally:
        await app[engine_key].dispose()
        app[engine_key] = good


async def test_readyz_refuses_when_migrations_are_pending(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", tmp_path)
    engine = create_engine(settings.database.url)
    async with engine.begin() as conn:  # only the staff table bootstrap needs; no alembic version row
        from storage.models import Base

        await conn.run_sync(Base.metadata.create_all)
    await engine.dispose()
    async with TestClient(TestServer(create_app(settings, clock=ManualClock(), run_scheduler=False))) as c:
        resp = await c.get("/readyz")
        assert resp.status == 503
        assert (await resp.json())["status"] == "migrations pending"
        samples = await scrape(c)  # metrics still answer, reading what tables exist
        assert value(samples, "craftlink_database_up") == 1
