"""A minimal craftlink app for the WeCom and service-account adapters' tests: a migrated SQLite
database, the real intake, the adapters' routes and senders, a ManualClock, and the fakes on loopback.

No inbox worker or handlers run here: tests look at inbox rows and at what the fakes received. The
end-to-end flow uses the lead's ``create_app`` instead.
"""

from __future__ import annotations

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

from bot.channels import registry
from bot.channels.media import MediaStore
from bot.config import Settings, WeChatSettings, WeComSettings
from bot.keys import clock_key, http_key, intake_key, media_key, senders_key, sessions_key, settings_key
from bot.pipeline.intake import Intake
from handlers.clock import ManualClock
from handlers.messages import Channel
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import InboxMessage
from tests.fakes.wechat_api import FakeWeChat
from tests.fakes.wecom_api import FakeWeCom

# The official WeCom sample account (platforms.md §2 A) and the service-account sample (§2 D).
WECOM_TOKEN = "QDG6eK"
WECOM_AES = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
WECOM_CORP = "wx5823bf96d3bd56c7"
# The newer WeCom Python sample (platforms.md §2 B).
WECOM_B = (
    "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
    "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
    "ww1436e0e65a779aee",
)
WECHAT_TOKEN = "pamtest"
WECHAT_AES = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
WECHAT_APPID = "wxb11529c136998cb6"


@dataclass
class Harness:
    client: TestClient[web.Request, web.Application]
    wecom: FakeWeCom
    wechat: FakeWeChat
    clock: ManualClock
    sessions: async_sessionmaker[AsyncSession]
    settings: Settings

    @property
    def app(self) -> web.Application:
        return self.client.app

    def sender(self, channel: Channel) -> Any:
        return self.app[senders_key][channel]

    async def inbox(self) -> list[InboxMessage]:
        async with self.sessions() as session:
            return list((await session.scalars(select(InboxMessage).order_by(InboxMessage.id))).all())

    async def inbox_count(self) -> int:
        async with self.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(InboxMessage)) or 0)


def make_settings(
    tmp_path: Path,
    wecom: FakeWeCom,
    wechat: FakeWeChat,
    *,
    wechat_aes: str = WECHAT_AES,
    wecom_creds: tuple[str, str, str] = (WECOM_TOKEN, WECOM_AES, WECOM_CORP),
) -> Settings:
    settings = Settings()
    settings.database.url = f"sqlite+aiosqlite:///{tmp_path / 'craftlink.db'}"
    settings.bot.media_dir = str(tmp_path / "media")
    settings.server.max_body_bytes = 16384
    settings.sections["wecom"] = WeComSettings(
        corp_id=wecom_creds[2],
        agent_id=wecom.agent_id,
        secret=wecom.secret,
        token=wecom_creds[0],
        encoding_aes_key=wecom_creds[1],
        api_base=wecom.base_url,
        timestamp_window_s=0,
    )
    settings.sections["wechat"] = WeChatSettings(
        app_id=WECHAT_APPID,
        app_secret=wechat.secret,
        token=WECHAT_TOKEN,
        encoding_aes_key=wechat_aes,
        api_base=wechat.base_url,
        timestamp_window_s=0,
    )
    return settings


@asynccontextmanager
async def running(tmp_path: Path, **kwargs: Any) -> AsyncIterator[Harness]:
    """Start both fakes, the database and an app with both adapters; tear it all down afterwards."""
    clock = ManualClock()
    wecom = FakeWeCom(clock, corp_id=kwargs.get("wecom_creds", (WECOM_TOKEN, WECOM_AES, WECOM_CORP))[2])
    wechat = FakeWeChat(clock, app_id=WECHAT_APPID)
    await wecom.start()
    await wechat.start()
    settings = make_settings(tmp_path, wecom, wechat, **kwargs)
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
    registry.setup_channels(app, settings)
    app.cleanup_ctx.append(intake_ctx)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield Harness(client, wecom, wechat, clock, sessions, settings)
    finally:
        await client.close()
        await wecom.close()
        await wechat.close()
        await engine.dispose()
