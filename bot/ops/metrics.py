"""The ``/metrics`` route (prometheus-client text format) and the callback-counting middleware.

The counters and histograms live in ``bot/ops/counters.py`` (bumped on the hot paths, a few
microseconds each); the gauges that describe stored state (outbox depth and age, timers due and
unhandled, cases by state) are read from the database here, when ``/metrics`` is scraped, so they are
right whichever instance did the work. What each family counts: ``bot/ops/counters.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select

from bot.channels import registry
from bot.keys import callback_load_key, clock_key, sessions_key, timers_key
from bot.ops.counters import (
    CALLBACKS_IN_FLIGHT,
    CASES,
    DB_UP,
    INBOX_PENDING,
    OUTBOX,
    OUTBOX_AGE,
    REGISTRY,
    TIMERS_DUE,
    TIMERS_FAILED,
    TIMERS_UNHANDLED,
    observe_callback,
)
from bot.pipeline.ackfirst import CallbackLoad
from storage.models import (
    Case,
    CaseState,
    InboxMessage,
    InboxState,
    OutboxMessage,
    OutboxState,
    Timer,
    TimerState,
)

log = logging.getLogger(__name__)

# The callback routes, as the channel registry declares them, so the middleware labels requests by channel.
CALLBACK_CHANNELS = registry.callback_channels()
SCRAPE_TIMEOUT_S = 5.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def callback_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count and time callback requests; every other route passes through untouched."""
    channel = CALLBACK_CHANNELS.get(request.path)
    if channel is None:
        return await handler(request)
    started = time.perf_counter()
    status = 500
    load = request.app[callback_load_key]
    load.enter()
    CALLBACKS_IN_FLIGHT.inc()
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:  # e.g. 413 raised by aiohttp while reading a huge body
        status = exc.status
        raise
    finally:
        load.leave()
        CALLBACKS_IN_FLIGHT.dec()
        observe_callback(channel, status, time.perf_counter() - started)


async def refresh_stored_gauges(request: web.Request) -> None:
    """Read the state gauges from the database; on failure mark it down and keep the old values."""
    now = request.app[clock_key].now()
    known = sorted(request.app[timers_key].kinds())
    try:
        async with request.app[sessions_key]() as session:
            outbox = dict((await session.execute(
                select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state))).all())
            oldest = await session.scalar(
                select(func.min(OutboxMessage.created_at)).where(OutboxMessage.state == OutboxState.PENDING.value))
            cases = dict((await session.execute(select(Case.state, func.count()).group_by(Case.state))).all())
            due = await session.scalar(select(func.count()).select_from(Timer).where(
                Timer.state == TimerState.PENDING.value, Timer.due_at <= now))
            unhandled = (await session.execute(select(Timer.kind, func.count()).where(
                Timer.state == TimerState.PENDING.value, Timer.due_at <= now, Timer.kind.not_in(known))
                .group_by(Timer.kind))).all()
            failed = (await session.execute(select(Timer.kind, func.count()).where(
                Timer.state == TimerState.FAILED.value).group_by(Timer.kind))).all()
            pending = await session.scalar(select(func.count()).select_from(InboxMessage).where(
                InboxMessage.state == InboxState.PENDING.value))
    except Exception as exc:
        log.warning("metrics: database unreadable (%s)", type(exc).__name__)
        DB_UP.set(0)
        return
    DB_UP.set(1)
    for state in OutboxState:
        OUTBOX.labels(state.value).set(int(outbox.get(state.value, 0)))
    OUTBOX_AGE.set(max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0)
    for case_state in {*cases, *(s.value for s in CaseState)}:
        CASES.labels(case_state).set(int(cases.get(case_state, 0)))
    TIMERS_DUE.set(int(due or 0))
    for gauge, rows in ((TIMERS_UNHANDLED, unhandled), (TIMERS_FAILED, failed)):
        gauge.clear()  # a kind that no longer has any is dropped, not left at its old value
        for kind, n in rows:
            gauge.labels(str(kind)).set(int(n))
    INBOX_PENDING.set(int(pending or 0))


async def metrics_view(request: web.Request) -> web.Response:
    try:
        await asyncio.wait_for(refresh_stored_gauges(request), SCRAPE_TIMEOUT_S)
    except TimeoutError:
        DB_UP.set(0)
    body = generate_latest(REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def setup(app: web.Application) -> None:
    app[callback_load_key] = CallbackLoad()
    app.middlewares.append(callback_middleware)
    app.router.add_get("/metrics", metrics_view)
