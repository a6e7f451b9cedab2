"""One bad message never refuses the others it shares a group commit with (SQLite and PostgreSQL).

A DingTalk body may carry ``\\u0000`` or a lone surrogate in its JSON text, or ids longer than the
inbox columns. PostgreSQL refuses such a row where SQLite stores it; in a group commit that used to
refuse the whole batch, so 40 valid WeCom callbacks sent alongside got 503. Now the intake cleans
what it can (``bot/pipeline/intake.py::checked``), refuses what is not a real platform id (400), and if the
database still refuses a batch, stores its rows one by one so only the bad one is refused.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.channels import registry
from bot.channels.media import MediaStore
from bot.config import DingTalkSettings, Settings, WeComSettings
from bot.keys import clock_key, http_key, intake_key, media_key, senders_key, sessions_key, settings_key
from bot.pipeline.intake import BadMessage, Intake
from handlers.clock import ManualClock
from handlers.messages import IncomingKind, IncomingMessage
from storage.db import create_engine, session_factory
from storage.models import InboxMessage
from tests.channels.wx_harness import WECOM_AES, WECOM_CORP, WECOM_TOKEN
from tests.fakes.dingtalk_api import FakeDingTalk
from tests.fakes.wecom_api import WeComPlatform, message_xml

WECOM = WeComPlatform(WECOM_TOKEN, WECOM_AES, WECOM_CORP)
VALID = 40


@dataclass
class Both:
    client: TestClient[web.Request, web.Application]
    dingtalk: FakeDingTalk
    clock: ManualClock
    sessions: async_sessionmaker[AsyncSession]

    async def wecom(self, i: int) -> int:
        now = int(self.clock.now().timestamp())
        xml = message_xml(WECOM_CORP, f"wu{i}", now, "text", f"<Content>漏水了 {i}</Content>", 7000 + i)
        query, body = WECOM.post(xml, timestamp=str(now), nonce=str(i))
        resp = await self.client.post("/wecom/callback", params=query, data=body)
        return resp.status

    async def ding(self, body: dict[str, Any]) -> int:
        data = json.dumps(body, ensure_ascii=True).encode()  # \u0000 and lone surrogates as JSON escapes
        resp = await self.client.post("/dingtalk/callback", data=data, headers=self.dingtalk.headers())
        return resp.status

    async def rows(self) -> list[InboxMessage]:
        async with self.sessions() as session:
            return list((await session.scalars(select(InboxMessage).order_by(InboxMessage.id))).all())


@asynccontextmanager
async def both_channels(tmp_path: Path, db_url: str) -> AsyncIterator[Both]:
    """WeCom and DingTalk adapters and the real intake on the test's database; no worker runs."""
    clock = ManualClock()
    fake = FakeDingTalk(clock)
    await fake.start()
    settings = Settings()
    settings.database.url = db_url
    settings.bot.media_dir = str(tmp_path / "media")
    settings.server.public_url = "https://craftlink.example.cn"
    settings.sections["dingtalk"] = DingTalkSettings(
        app_key=fake.app_key, app_secret=fake.app_secret, robot_code=fake.robot_code, api_base=fake.base_url
    )
    settings.sections["wecom"] = WeComSettings(
        corp_id=WECOM_CORP, agent_id=1000002, secret="s", token=WECOM_TOKEN, encoding_aes_key=WECOM_AES,
        api_base="http://127.0.0.1:9", timestamp_window_s=0,
    )
    engine = create_engine(db_url)
    sessions = session_factory(engine)
    app = web.Application(client_max_size=settings.server.max_body_bytes)
    app[settings_key], app[clock_key], app[sessions_key], app[senders_key] = settings, clock, sessions, {}
    app[media_key] = MediaStore.from_settings(settings.bot)

    async def http_ctx(app: web.Application) -> AsyncIterator[None]:
        app[http_key] = aiohttp.ClientSession()
        yield
        await app[http_key].close()

    async def intake_ctx(app: web.Application) -> AsyncIterator[None]:
        app[intake_key] = Intake(engine, clock)
        await app[intake_key].start()
        yield
        await app[intake_key].stop()

    app.cleanup_ctx.append(http_ctx)
    registry.setup_channels(app, settings)
    app.cleanup_ctx.append(intake_ctx)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield Both(client, fake, clock, sessions)
    finally:
        await client.close()
        await fake.close()
        await engine.dispose()


def _text_body(fake: FakeDingTalk, **over: Any) -> dict[str, Any]:
    body = fake.message("dstaff", "设备报警了", msg_id="dbad")
    text_value = over.pop("text", None)
    if text_value is not None:
        body["text"] = {"content": text_value}
    body.update(over)
    return body


# (what the DingTalk body carries, the status it gets, the text stored — None: nothing stored)
BAD_BODIES = {
    "nul-in-text": ({"text": "漏\u0000水"}, 200, "漏水"),
    "lone-surrogate-in-text": ({"text": "漏\ud800水"}, 200, "漏\ufffd水"),
    "nul-in-nick": ({"senderNick": "张\u0000三"}, 200, "设备报警了"),
    "msgid-too-long": ({"msgId": "m" * 129}, 400, None),
    "sender-too-long": ({"senderStaffId": "s" * 129}, 400, None),
    "nul-in-msgid": ({"msgId": "m\u00001"}, 400, None),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
async def test_one_bad_dingtalk_callback_does_not_refuse_40_wecom_ones(
    tmp_path: Path, db_url: str, case: str
) -> None:
    over, status, stored_text = BAD_BODIES[case]
    async with both_channels(tmp_path, db_url) as h:
        bad = _text_body(h.dingtalk, **dict(over))
        statuses = await asyncio.gather(*(h.wecom(i) for i in range(VALID)), h.ding(bad))
        assert list(statuses[:VALID]) == [200] * VALID
        assert statuses[VALID] == status
        rows = await h.rows()
        assert sorted(r.sender for r in rows if r.channel == "wecom") == sorted(f"wu{i}" for i in range(VALID))
        ding = [r for r in rows if r.channel == "dingtalk"]
        if stored_text is None:
            assert ding == []
        else:
            assert [r.text for r in ding] == [stored_text]
            assert "\x00" not in json.dumps(ding[0].payload) and "\\u0000" not in json.dumps(ding[0].payload)


def _msg(i: int, text_value: str = "你好", **over: Any) -> IncomingMessage:
    fields: dict[str, Any] = {
        "channel": "wecom", "sender": f"u{i}", "platform_msg_id": f"m{i}", "kind": IncomingKind.TEXT,
        "text": text_value, **over,
    }
    return IncomingMessage(**fields)


async def _refuse_text(engine: AsyncEngine, refused: str) -> None:
    """Make the database itself refuse rows with this text: a stand-in for any refusal we cannot foresee."""
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text(
                "CREATE FUNCTION refuse_bad() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.text = '{refused}' THEN RAISE EXCEPTION 'refused row'; END IF; RETURN NEW; END $$ "
                "LANGUAGE plpgsql"
            ))
            await conn.execute(text(
                "CREATE TRIGGER refuse_bad BEFORE INSERT ON inbox FOR EACH ROW EXECUTE FUNCTION refuse_bad()"
            ))
        else:
            await conn.execute(text(
                f"CREATE TRIGGER refuse_bad BEFORE INSERT ON inbox WHEN NEW.text = '{refused}' "
                "BEGIN SELECT RAISE(ABORT, 'refused row'); END"
            ))


async def test_a_batch_the_database_refuses_is_stored_row_by_row(db_url: str, engine: AsyncEngine) -> None:
    await _refuse_text(engine, "坏")
    intake = Intake(engine, ManualClock())
    await intake.start()
    try:
        # Queued in the same loop turn, so all 41 go in one batch (the intake task runs after them).
        results = await asyncio.gather(
            *(intake.accept(_msg(i)) for i in range(VALID)), intake.accept(_msg(99, "坏")),
            return_exceptions=True,
        )
    finally:
        await intake.stop()
    assert results[:VALID] == [True] * VALID
    assert isinstance(results[VALID], ConnectionError)
    async with session_factory(engine)() as session:
        stored = (await session.scalars(select(InboxMessage.platform_msg_id))).all()
    assert sorted(stored) == sorted(f"m{i}" for i in range(VALID))


async def test_accept_cleans_text_and_payload_and_refuses_impossible_ids(engine: AsyncEngine) -> None:
    intake = Intake(engine, ManualClock())
    await intake.start()
    try:
        nested = {"nick": "a\u0000b", "list": ["x\ud83d", {"k\u0000": "v"}], "n": 3}
        assert await intake.accept(_msg(1, "a\u0000\ud800b", media_ref="ref\u00001", extra=nested))
        for bad in (
            {"platform_msg_id": "x" * 129},
            {"platform_msg_id": ""},
            {"platform_msg_id": "a\ud800"},
            {"sender": "s" * 129},
            {"sender": "s\u0000"},
        ):
            with pytest.raises(BadMessage):
                await intake.accept(_msg(2, **bad))
        assert await intake.accept(_msg(3, platform_msg_id="x" * 128, sender="s" * 128))
    finally:
        await intake.stop()
    async with session_factory(engine)() as session:
        rows = (await session.scalars(select(InboxMessage).order_by(InboxMessage.id))).all()
    assert [r.platform_msg_id for r in rows] == ["m1", "x" * 128]
    assert rows[0].text == "a\ufffdb"
    assert rows[0].payload == {
        "media_ref": "ref1", "directory_user": False,
        "extra": {"nick": "ab", "list": ["x\ufffd", {"k": "v"}], "n": 3},
    }
