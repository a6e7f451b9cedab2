"""A minimal craftlink app for the DingTalk adapter's tests: a migrated SQLite inbox, the real intake,
the adapter's routes and sender, a ManualClock, and the fake DingTalk on loopback.

No inbox worker or handlers run here: the tests look at the inbox rows and at what the fake received.
The end-to-end flow tests use the lead's ``create_app`` instead.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import config
from bot.channels import dingtalk
from bot.channels.dingtalk_sender import DingTalkSender
from bot.channels.media import MediaStore
from bot.config import DingTalkSettings, Settings
from bot.keys import (
    clock_key,
    dingtalk_key,
    http_key,
    intake_key,
    media_key,
    senders_key,
    sessions_key,
    settings_key,
)
from bot.pipeline.intake import Intake
from handlers.clock import ManualClock
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import InboxMessage
from tests.fakes.dingtalk_api import FakeDingTalk

PUBLIC_URL = "https://craftlink.example.cn"


@dataclass
class Harness:
    client: TestClient[web.Request, web.Application]
    fake: FakeDingTalk
    clock: ManualClock
    sessions: async_sessionmaker[AsyncSession]
    settings: Settings

    @property
    def app(self) -> web.Application:
        return self.client.app

    @property
    def sender(self) -> DingTalkSender:
        sender = self.app[dingtalk_key].sender
        assert sender is not None
        return sender

    async def post(self, body: Any, headers: dict[str, str] | None = None) -> aiohttp.ClientResponse:
        data = body if isinstance(body, (bytes, str)) else _json(body)
        return await self.client.post("/dingtalk/callback", data=data, headers=headers or self.fake.headers())

    async def inbox(self) -> list[InboxMessage]:
        async with self.sessions() as session:
            return list((await session.scalars(select(InboxMessage).order_by(InboxMessage.id))).all())

    async def inbox_count(self) -> int:
        async with self.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(InboxMessage)) or 0)


def _json(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


def make_settings(tmp_path: Path, fake: FakeDingTalk, **dingtalk_overrides: Any) -> Settings:
    settings = Settings()
    settings.database.url = f"sqlite+aiosqlite:///{tmp_path / 'craftlink.db'}"
    settings.server.public_url = PUBLIC_URL
    settings.bot.media_dir = str(tmp_path / "media")
    settings.sections["dingtalk"] = DingTalkSettings(
        app_key=fake.app_key,
        app_secret=fake.app_secret,
        robot_code=fake.robot_code,
        api_base=fake.base_url,
        **dingtalk_overrides,
    )
    return settings


@asynccontextmanager
async def running(
    tmp_path: Path, *, app_secret: str = "dingsecret", **dingtalk_overrides: Any
) -> AsyncIterator[Harness]:
    """Start the fake, the database, and the adapter's app; tear all of it down afterwards."""
    clock = ManualClock()
    fake = FakeDingTalk(clock, app_secret=app_secret)
    await fake.start()
    settings = make_settings(tmp_path, fake, **dingtalk_overrides)
    engine = create_engine(settings.database.url)
    await upgrade(engine)
    sessions = session_factory(engine)

    app = web.Application(client_max_size=settings.server.max_body_bytes)
    app[settings_key] = settings
    app[clock_key] = clock
    app[sessions_key] = sessions
    app[senders_key] = {}
    app[media_key] = MediaStore.from_settings(settings.bot)

    async def http_ctx(app: web.Application) -> AsyncIterator[None]:
        app[http_key] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        yield
        await app[http_key].close()

    async def intake_ctx(app: web.Application) -> AsyncIterator[None]:
        intake = Intake(engine, clock)
        app[intake_key] = intake
        await intake.start()
        yield
        await intake.stop()

    app.cleanup_ctx.append(http_ctx)
    section = config.dingtalk(settings)
    assert section is not None
    dingtalk.setup(app, section)
    app.cleanup_ctx.append(intake_ctx)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield Harness(client=client, fake=fake, clock=clock, sessions=sessions, settings=settings)
    finally:
        await client.close()
        await fake.close()
        await engine.dispose()
