"""``server.role``: an intake-only process stores callbacks; a worker-role process handles them."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import WORKER_POLL_S, create_app
from bot.cli import main
from bot.keys import passive_key, scheduler_key, sender_key, sessions_key, worker_key
from handlers.clock import ManualClock
from handlers.matching import shipped_taxonomy
from handlers.settings import ConfigError
from storage.db import create_engine
from storage.migrate import upgrade
from storage.models import InboxMessage, InboxState
from tests.chat import Playground
from tests.conftest import make_settings


async def test_intake_stores_and_a_worker_process_handles(db_url: str, tmp_path: Path) -> None:
    clock = ManualClock()
    intake_app = create_app(make_settings(db_url, tmp_path, server={"role": "intake"}), clock=clock)
    worker_app = create_app(make_settings(db_url, tmp_path, server={"role": "worker"}), clock=clock,
                            run_scheduler=False)
    async with TestClient(TestServer(intake_app, host="127.0.0.1")) as front, \
            TestClient(TestServer(worker_app, host="127.0.0.1")) as back:
        for key in (worker_key, sender_key, passive_key, scheduler_key):
            assert key not in front.app  # the intake process handles, sends and schedules nothing
        assert back.app[worker_key].poll_seconds == WORKER_POLL_S
        # Acknowledging happens in another process: nothing here for the worker to step aside for.
        assert back.app[worker_key].ack_first is None and back.app[sender_key].ack_first is None
        await Playground(back, clock).seed_demo()

        resp = await front.post("/webchat/send", json={"user": "role-firm", "text": "你好", "id": "m-1"})
        assert resp.status == 200
        async with front.app[sessions_key]() as s:
            row = await s.scalar(select(InboxMessage).where(InboxMessage.platform_msg_id == "m-1"))
            assert row is not None and row.state == InboxState.PENDING

        await back.app[worker_key].settle()  # what the worker's poll finds
        await back.app[sender_key].settle()
        got = await front.get("/webchat/messages", params={"user": "role-firm", "after": "0"})
        texts = [m["text"] for m in (await got.json())["messages"]]
        assert any("企业）的全称" in t for t in texts)


def test_unknown_role_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="server.role"):
        make_settings("sqlite+aiosqlite:///x.db", tmp_path, server={"role": "both"})


def test_serve_rejects_an_unknown_role_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--role", "both"])
    assert exc.value.code == 2
    assert "invalid choice: 'both'" in capsys.readouterr().err


async def test_a_handling_process_loads_matching_before_it_works_and_an_intake_does_not(tmp_path: Path) -> None:
    """The jieba dictionary (~1.4 s) is loaded at startup, off the loop, not at the first request."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'warm.db'}"
    engine = create_engine(url)
    await upgrade(engine)
    await engine.dispose()
    shipped_taxonomy.cache_clear()
    intake_app = create_app(make_settings(url, tmp_path, server={"role": "intake"}), clock=ManualClock())
    async with TestClient(TestServer(intake_app, host="127.0.0.1")):
        assert "analyzer" not in vars(shipped_taxonomy())  # an intake never matches: nothing to load
    app = create_app(make_settings(url, tmp_path), clock=ManualClock(), run_scheduler=False)
    async with TestClient(TestServer(app, host="127.0.0.1")):
        assert "analyzer" in vars(shipped_taxonomy())
