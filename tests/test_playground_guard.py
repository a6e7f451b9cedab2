"""The playground (anyone acts as anyone) never runs next to real channels or real staff unless the
operator says so, and outside demo mode no console login link ever goes to a web-chat identity."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.cli import main
from bot.config import ConfigError, parse_settings
from handlers.clock import ManualClock
from handlers.settings import demo_mode
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import Identity, Person
from tests.chat import Chat, Playground
from tests.conftest import make_settings

WECOM = {"corp_id": "c", "agent_id": 1, "secret": "s", "token": "t", "encoding_aes_key": "k" * 43}


def test_playground_next_to_a_real_channel_is_refused_with_one_line() -> None:
    for section in ("wecom", "wechat", "dingtalk"):
        values = WECOM if section == "wecom" else {"app_id": "a", "app_secret": "s", "token": "t", "app_key": "k",
                                                   "robot_code": "r"}
        values = {k: v for k, v in values.items() if k in {
            "wecom": WECOM.keys(), "wechat": {"app_id", "app_secret", "token"},
            "dingtalk": {"app_key", "app_secret", "robot_code"}}[section]}
        with pytest.raises(ConfigError) as err:
            parse_settings({"server": {"playground": True}, section: values})
        assert str(err.value).startswith("server.playground:") and f"[{section}]" in str(err.value)
        assert "\n" not in str(err.value)
        ok = parse_settings({"server": {"playground": True, "playground_with_real_channels": True}, section: values})
        assert not demo_mode(ok)  # said in so many words: allowed, but not the demo


def test_staff_must_name_a_channel_and_listed_staff_refuse_the_playground() -> None:
    with pytest.raises(ConfigError, match=r"^staff\[0\]\.channel: expected one of"):
        parse_settings({"staff": [{"name": "陈晓红", "role": "admin", "user_id": "chen"}]})
    admin = {"name": "陈晓红", "role": "admin", "channel": "web", "user_id": "chen"}
    for channel in ("web", "wecom"):  # on web anyone could be them; elsewhere they are real people
        with pytest.raises(ConfigError, match=r"^server\.playground: refused with \[\[staff\]\] entries"):
            parse_settings({"server": {"playground": True}, "staff": [{**admin, "channel": channel}]})
    assert parse_settings({"staff": [admin]})  # without the playground a web entry is merely unreachable
    assert parse_settings({"staff": [admin], "server": {"playground": True, "playground_with_real_channels": True}})


@pytest.fixture
def public_settings(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The playground on next to a real channel, as an operator who opted in would run it."""
    return make_settings(db_url, tmp_path, wecom={**WECOM, "api_base": "http://127.0.0.1:9"})


async def test_no_login_link_to_web_chat_outside_demo_mode(public_settings, clock: ManualClock,  # type: ignore[no-untyped-def]
                                                           caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.channels.webchat"):
        app = create_app(public_settings, clock=clock, run_scheduler=False)
    assert any("PLAYGROUND ON" in r.getMessage() and "REAL CHANNELS" in r.getMessage() for r in caplog.records)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        pg = Playground(client, clock)
        await pg.seed_demo()
        reply = Chat.text_of(await pg.person("demo-staff-1").say("登录"))  # the demo's admin, on web chat
        assert "/console/login/" not in reply and "网页聊天中不能获取控制台登录链接" in reply


async def test_demo_mode_still_hands_out_links_and_warns(settings, clock: ManualClock,  # type: ignore[no-untyped-def]
                                                         caplog: pytest.LogCaptureFixture) -> None:
    assert demo_mode(settings)
    with caplog.at_level(logging.WARNING, logger="bot.channels.webchat"):
        app = create_app(settings, clock=clock, run_scheduler=False)
    assert any("PLAYGROUND ON" in r.getMessage() for r in caplog.records)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        pg = Playground(client, clock)
        await pg.seed_demo()
        assert "/console/login/" in Chat.text_of(await pg.person("demo-staff-1").say("登录"))


async def test_serve_refuses_the_playground_on_a_database_with_real_channel_people(
        db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    engine = create_engine(db_url)
    await upgrade(engine)
    async with session_factory(engine).begin() as db:
        person = Person(role="staff", name="陈晓红", created_at=ManualClock().now())
        db.add(person)
        await db.flush()
        db.add(Identity(person_id=person.id, channel="wecom", channel_user_id="ChenXiaoHong", extra={}))
    await engine.dispose()
    config = tmp_path / "demo-on-prod.toml"
    config.write_text(f'[server]\nplayground = true\n[database]\nurl = "{db_url}"\n'
                      '[console]\nsecret_key = "test-secret-key-0123456789abcdef"\n', encoding="utf-8")
    assert await asyncio.to_thread(main, ["--config", str(config), "serve"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: server.playground: refused on a database with real-channel people (wecom: 1)")
    assert "\n" not in err
