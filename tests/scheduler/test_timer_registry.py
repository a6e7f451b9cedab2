"""The timer registry and the poller's failure handling (SQLite and PostgreSQL).

A kind without a handler is never consumed; a handler that raises is rolled back, backs off, does not
hold up the timers behind it, and after ``timers.max_attempts`` ends FAILED with one staff alert.
"""

from __future__ import annotations

import ast
import inspect
import logging
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

import handlers
from bot.keys import sessions_key, settings_key, timers_key
from handlers import timers
from handlers.app import build_timers
from handlers.context import HandlerContext
from handlers.settings import ConfigError
from scheduler.poller import BATCH, backoff
from storage.models import OutboxMessage, Person, Role, Timer, TimerState
from tests.chat import Playground
from tests.conftest import make_settings
from tests.ops.metrics_util import scrape, value

SEC = timedelta(seconds=1)
ALERT = "定时提醒多次执行失败"


async def _schedule(pg: Playground, kind: str, *, ago: timedelta = SEC, n: int = 1) -> list[int]:
    now = pg.clock.now()
    async with pg.app[sessions_key]() as s, s.begin():
        rows = [timers.schedule(s, kind, now - ago, now=now - ago, payload={"i": i}) for i in range(n)]
        await s.flush()
        return [r.id for r in rows]


async def _timer(pg: Playground, timer_id: int) -> Timer:
    async with pg.app[sessions_key]() as s:
        t = await s.get(Timer, timer_id)
        assert t is not None
        return t


async def _staff_alerts(pg: Playground) -> Counter[int]:
    async with pg.app[sessions_key]() as s:
        rows = (await s.execute(select(OutboxMessage.person_id, OutboxMessage.payload))).all()
    return Counter(pid for pid, payload in rows if ALERT in str(payload.get("text", "")))


async def test_unknown_kind_stays_pending_is_shown_and_fires_once_registered(
        playground: Playground, caplog: pytest.LogCaptureFixture) -> None:
    registry = playground.app[timers_key]
    # More unknown timers than one batch, all older than a known one: they must not crowd it out.
    unknown = await _schedule(playground, "test.later", ago=timedelta(hours=2), n=BATCH + 5)
    fired: list[int] = []

    async def known(ctx: HandlerContext, timer: Timer) -> None:
        fired.append(timer.id)

    registry.register("test.known", known)
    (known_id,) = await _schedule(playground, "test.known")
    with caplog.at_level(logging.ERROR, logger="scheduler.poller"):
        assert await playground.fire_timers() == 1
    assert fired == [known_id]
    assert {(await _timer(playground, i)).state for i in unknown[:3]} == {TimerState.PENDING.value}
    assert any("test.later" in r.getMessage() and "no handler" in r.getMessage() for r in caplog.records)
    scraped = await scrape(playground.client)
    assert value(scraped, "craftlink_timers_unhandled", kind="test.later") == BATCH + 5
    assert value(scraped, "craftlink_timers_unhandled", kind="test.known") == 0

    async def later(ctx: HandlerContext, timer: Timer) -> None:
        fired.append(timer.id)

    registry.register("test.later", later)  # a process that knows the kind (after a deploy)
    assert await playground.fire_timers() == BATCH + 5
    assert sorted(fired[1:]) == unknown
    assert (await _timer(playground, unknown[0])).state == TimerState.FIRED.value
    scraped = await scrape(playground.client)
    assert value(scraped, "craftlink_timers_unhandled", kind="test.later") == 0


async def test_raising_handler_backs_off_without_blocking_and_fails_once_with_one_alert(
        playground: Playground) -> None:
    registry = playground.app[timers_key]
    calls: list[int] = []

    async def boom(ctx: HandlerContext, timer: Timer) -> None:
        calls.append(timer.id)
        await ctx.outbox.to_staff("这条不该发出")  # rolled back with the failed firing
        raise RuntimeError("handler is broken")

    async def fine(ctx: HandlerContext, timer: Timer) -> None:
        calls.append(timer.id)

    registry.register("test.boom", boom)
    registry.register("test.fine", fine)
    (bad,) = await _schedule(playground, "test.boom", ago=timedelta(minutes=5))  # first in the batch
    good = await _schedule(playground, "test.fine", n=3)
    assert await playground.fire_timers() == 3  # the failing one does not stop the batch
    assert calls == [bad, *good]
    t = await _timer(playground, bad)
    assert (t.state, t.attempts) == (TimerState.PENDING.value, 1)
    assert "RuntimeError: handler is broken" in t.last_error
    assert t.due_at == playground.clock.now() + backoff(1)
    assert await playground.fire_timers() == 0 and calls.count(bad) == 1  # no spinning at every poll

    max_attempts = playground.app[settings_key].timers.max_attempts
    assert max_attempts == 5  # the default
    for attempt in range(2, max_attempts + 1):
        assert await playground.fire_timers(advance=backoff(attempt - 1) - SEC) == 0
        assert calls.count(bad) == attempt - 1  # not before its backoff is over
        assert await playground.fire_timers(advance=SEC) == 0
        assert calls.count(bad) == attempt
    t = await _timer(playground, bad)
    assert (t.state, t.attempts) == (TimerState.FAILED.value, max_attempts)
    alerts = await _staff_alerts(playground)
    async with playground.app[sessions_key]() as s:
        staff = set((await s.scalars(select(Person.id).where(Person.role == Role.STAFF.value))).all())
        payloads = (await s.scalars(select(OutboxMessage.payload))).all()
    assert alerts and set(alerts) <= staff and set(alerts.values()) == {1}, alerts  # one alert each
    assert not [p for p in payloads if "这条不该发出" in str(p)]
    assert await playground.fire_timers(advance=timedelta(days=2)) == 0
    assert calls.count(bad) == max_attempts and await _staff_alerts(playground) == alerts
    assert value(await scrape(playground.client), "craftlink_timers_failed", kind="test.boom") == 1


def test_backoff_is_capped_exponential() -> None:
    assert [backoff(n).total_seconds() for n in range(1, 5)] == [30, 60, 120, 240]
    assert backoff(30) == timedelta(hours=1)


def test_every_scheduled_kind_has_a_handler() -> None:
    """Each ``timers.schedule(session, KIND, ...)`` in handlers/ names a kind that build_timers knows."""
    known = build_timers().kinds()
    root = Path(inspect.getfile(handlers)).parent
    scheduled: set[str] = set()
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        consts = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
                  and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
                  for t in n.targets if isinstance(t, ast.Name)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "schedule"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "timers"):
                arg = node.args[1]
                if isinstance(arg, ast.Name):
                    scheduled.add(consts[arg.id])
    assert len(scheduled) >= 10, scheduled
    assert scheduled <= known, scheduled - known
    assert build_timers() is not build_timers()  # a fresh registry each time: tests may add kinds


def test_max_attempts_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^timers\.max_attempts: expected a positive integer, got 0$"):
        make_settings("sqlite+aiosqlite:///x.db", tmp_path, timers={"max_attempts": 0})
