"""Fixtures of the operations tests: a service whose handler fails on demand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from handlers import pipeline
from handlers.clock import ManualClock
from handlers.context import HandlerContext
from handlers.messages import IncomingMessage
from tests.chat import Playground
from tests.conftest import make_settings


@pytest.fixture
async def failing(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Playground]:
    """The service where a message starting with 坏 makes the handler raise (a parser bug, say)."""
    real_route = pipeline.route

    async def route(ctx: HandlerContext, msg: IncomingMessage) -> None:
        if msg.text.startswith("坏"):
            raise RuntimeError("parser exploded")
        await real_route(ctx, msg)

    monkeypatch.setattr(pipeline, "route", route)
    clock = ManualClock()
    app = create_app(make_settings(db_url, tmp_path), clock=clock, run_scheduler=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        pg = Playground(client, clock)
        await pg.seed_demo()
        yield pg
