"""One person writing on two channels at once, handled by two instances: neither dialog update is lost.

The two channels are two conversations, so the inbox claim lets them be handled at the same time; the
handling transaction locks the person's row (PostgreSQL) so the second waits for the first to commit
and then reads the dialog the first wrote. On SQLite the single writer serialises them anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, text

from bot.app import create_app
from bot.keys import intake_key, sessions_key, worker_key
from bot.pipeline.worker import InboxWorker
from handlers import pipeline
from handlers.clock import ManualClock
from handlers.context import HandlerContext
from handlers.messages import IncomingKind, IncomingMessage
from storage.db import create_engine
from storage.models import Dialog, Identity, InboxMessage, InboxState, Person, Role
from tests.conftest import make_settings


@pytest.fixture
async def twins(db_url: str, tmp_path: Path) -> AsyncIterator[list[TestClient[Any, Any]]]:
    """Two instances of the service on one database, their pumps stopped: the test hands out the rows."""
    clock = ManualClock()
    async with AsyncExitStack() as stack:
        clients = []
        for _ in range(2):
            app = create_app(make_settings(db_url, tmp_path), clock=clock, run_scheduler=False)
            clients.append(await stack.enter_async_context(TestClient(TestServer(app, host="127.0.0.1"))))
        for c in clients:
            await c.app[worker_key].stop()
        yield clients


async def _lock_waiters(db_url: str) -> int:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'")) or 0)
    finally:
        await engine.dispose()


class _Step(StrEnum):  # the test-only dialog's one step
    NEXT = "next"


async def test_one_person_on_two_channels_loses_no_dialog_update(
    twins: list[TestClient[Any, Any]], db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def route(ctx: HandlerContext, msg: IncomingMessage) -> None:  # a test-only dialog step
        if msg.text == "慢":
            entered.set()
            await release.wait()  # the dialog was loaded before this: the step writes on top of it
        ctx.dialog.go(_Step.NEXT, **{msg.channel: msg.text})

    monkeypatch.setattr(pipeline, "route", route)
    a, b = twins
    now = ManualClock().now()
    async with a.app[sessions_key]() as s, s.begin():
        person = Person(role=Role.ENTERPRISE.value, name="林", created_at=now)
        s.add(person)
        await s.flush()
        s.add(Identity(person_id=person.id, channel="wecom", channel_user_id="lin-wecom", extra={}))
        s.add(Identity(person_id=person.id, channel="web", channel_user_id="lin-web", extra={}))
        s.add(Dialog(person_id=person.id, flow="test", step="start", data={}, updated_at=now))
    for app, channel, sender, body in ((a.app, "wecom", "lin-wecom", "慢"), (b.app, "web", "lin-web", "快")):
        await app[intake_key].accept(IncomingMessage(channel=channel, sender=sender, platform_msg_id=f"{sender}-1",
                                                     kind=IncomingKind.TEXT, text=body, received_at=now))
    async with a.app[sessions_key]() as s:
        ids = {r.text: r.id for r in (await s.scalars(select(InboxMessage))).all()}
    worker_a: InboxWorker = a.app[worker_key]
    worker_b: InboxWorker = b.app[worker_key]

    first = asyncio.create_task(worker_a.handle_one(ids["慢"]))
    await asyncio.wait_for(entered.wait(), 30)  # instance A is inside its step, the dialog read
    second = asyncio.create_task(worker_b.handle_one(ids["快"]))
    if db_url.startswith("postgresql"):
        # Without the person lock B would finish now, on the dialog A has not written yet; with it, B waits.
        while not second.done() and not await _lock_waiters(db_url):  # noqa: ASYNC110 (a server state: no event)
            await asyncio.sleep(0.01)
    else:
        await asyncio.sleep(0.05)  # B meets SQLite's write lock, whichever way it is serialised
    b_waited = not second.done()  # B is waiting for A (the person's lock, or SQLite's write lock)
    release.set()
    await asyncio.wait_for(asyncio.gather(first, second), 60)
    assert b_waited

    async with a.app[sessions_key]() as s:
        dialog = await s.get(Dialog, person.id)
        states = {r.text: r.state for r in (await s.scalars(select(InboxMessage))).all()}
    assert states == {"慢": InboxState.DONE.value, "快": InboxState.DONE.value}
    assert worker_a.handled == 1 and worker_b.handled == 1  # both instances took part
    assert dialog is not None and dialog.data == {"wecom": "慢", "web": "快"}  # neither update lost
