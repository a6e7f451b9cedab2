"""The aiohttp application: one place that lists every subsystem, in dependency order.

``cleanup_ctx`` generators set up before ``yield`` and tear down after it in reverse order, so the
inbox worker and outbox sender stop before the engine they use is disposed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.channels import registry
from bot.channels.media import MediaStore
from bot.console import app as console
from bot.console import downloads
from bot.keys import (
    callback_load_key,
    clock_key,
    engine_key,
    http_key,
    intake_key,
    media_key,
    passive_key,
    read_sessions_key,
    scheduler_key,
    sender_key,
    senders_key,
    services_key,
    sessions_key,
    settings_key,
    timers_key,
    worker_key,
)
from bot.links import ServiceLinks
from bot.ops import counters, guard, health, metrics
from bot.pipeline.ackfirst import AckFirst
from bot.pipeline.intake import Intake
from bot.pipeline.passive import PassiveReplies
from bot.pipeline.sender import OutboxSender
from bot.pipeline.worker import InboxWorker
from bot.pipeline.writegate import WriteGate
from handlers.app import build_timers
from handlers.clock import Clock, SystemClock
from handlers.matching import shipped_taxonomy
from handlers.services import Services
from handlers.settings import Settings
from scheduler.wiring import build_scheduler
from storage.db import create_engine, is_sqlite, read_session_factory, session_factory

log = logging.getLogger(__name__)
WORKER_POLL_S = 0.2  # a worker-role process learns of new inbox rows only by polling


async def engine_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[settings_key]
    engine = create_engine(settings.database.url, pool_size=settings.database.pool_size)
    app[engine_key] = engine
    app[sessions_key] = session_factory(engine)
    app[read_sessions_key] = read_session_factory(engine)
    yield
    await engine.dispose()


async def bootstrap_ctx(app: web.Application) -> AsyncIterator[None]:
    """Staff listed in config become people with their chat identity before anything is handled."""
    from handlers.staff.accounts import sync_config_staff

    async with app[sessions_key]() as session, session.begin():
        await sync_config_staff(session, app[settings_key], app[clock_key].now())
    yield


async def http_ctx(app: web.Application) -> AsyncIterator[None]:
    app[http_key] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
    yield
    await app[http_key].close()


def warm_matching() -> None:
    """Build the shipped taxonomy's analyzer (and so its jieba tokenizer) now rather than at first use."""
    shipped_taxonomy().analyzer.analyze_query("预热")


async def pipeline_ctx(app: web.Application) -> AsyncIterator[None]:
    """Inbox worker, outbox sender and intake, as ``server.role`` asks; intake last up, first down.

    ``intake`` runs only the intake (callbacks are verified and stored, nothing is handled here);
    ``worker`` runs the worker and the sender, which then find new messages by polling quickly
    (:data:`WORKER_POLL_S`) since no intake in this process wakes them; ``all`` runs everything.
    """
    role = app[settings_key].server.role
    services = app[services_key]
    gate = WriteGate(enabled=is_sqlite(app[settings_key].database.url))  # see bot/pipeline/writegate.py
    reads = app[read_sessions_key]
    pumps: list[OutboxSender | InboxWorker] = []
    on_stored = lambda: None  # noqa: E731
    if role != "intake":
        sender = OutboxSender(app[sessions_key], services, app[senders_key], gate=gate, reads=reads)
        passive = None
        if registry.answers_in_callback(app[settings_key]):  # a configured channel may reply in its callback
            passive = PassiveReplies(app[sessions_key], app[clock_key], gate=gate, on_released=sender.wake)
            app[passive_key] = passive
        worker = InboxWorker(app[sessions_key], services, app[senders_key], channels=registry.BY_NAME, gate=gate,
                             reads=reads, passive=passive)
        if role == "worker":
            worker.poll_seconds = WORKER_POLL_S
        services.on_outbox = sender.wake
        app[sender_key] = sender
        app[worker_key] = worker
        on_stored = worker.wake
        pumps = [sender, worker]
    intake = Intake(app[engine_key], app[clock_key], on_stored=on_stored, gate=gate)
    app[intake_key] = intake
    if role == "all":  # one process takes the callbacks and works them: acknowledging comes first
        for pump in pumps:
            pump.ack_first = AckFirst(app[callback_load_key].saturated)
    if pumps:
        # Matching's jieba dictionary takes ~1.4 s to load. Loaded lazily, it froze the loop at the
        # first request of a served process: every callback in that second waited, ack p95 ~0.8 s at
        # 40/s (docs/benchmarks.md). Loaded here, on a thread, before the pumps start.
        await asyncio.to_thread(warm_matching)
    for pump in pumps:
        await pump.start()
    await intake.start()
    yield
    await intake.stop()
    for pump in reversed(pumps):
        await pump.stop()


def app_scheduler(app: web.Application) -> AsyncIOScheduler:
    """The scheduler over this app's database, services and timer registry; each firing is counted."""
    return build_scheduler(app[sessions_key], app[services_key], app[timers_key], on_fired=counters.observe_timer)


async def scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    """Started with the app, after the pipeline (its catch-up run queues to a running sender); stopped first."""
    sched = app_scheduler(app)
    app[scheduler_key] = sched
    sched.start()
    yield
    sched.shutdown(wait=False)


def create_app(settings: Settings, *, clock: Clock | None = None, run_scheduler: bool = True) -> web.Application:
    """Build the service. Tests pass a ManualClock and drive the scheduler themselves."""
    app = web.Application(client_max_size=settings.server.max_body_bytes)
    app[settings_key] = settings
    app[clock_key] = clock or SystemClock()
    app[services_key] = Services(
        settings=settings,
        clock=app[clock_key],
        instance=settings.server.instance_name or f"{settings.server.host}:{settings.server.port}",
        links=ServiceLinks(settings.server.public_url),  # the URLs of bot/'s pages, for chat messages
        verified_channels=registry.verified_channels(),  # not the web chat: no login links there
    )
    app[senders_key] = {}
    app[media_key] = MediaStore.from_settings(settings.bot)  # one store, shared by every channel
    app[timers_key] = build_timers()  # every timer kind's handler, known before the first poll
    app.cleanup_ctx.append(engine_ctx)
    app.cleanup_ctx.append(bootstrap_ctx)
    app.cleanup_ctx.append(http_ctx)
    registry.setup_channels(app, settings)  # routes + sender contexts of every configured channel, web chat too
    downloads.setup(app)
    console.setup(app)
    app.cleanup_ctx.append(pipeline_ctx)
    if run_scheduler and settings.server.role != "intake":
        app.cleanup_ctx.append(scheduler_ctx)
    health.setup(app)
    metrics.setup(app)
    guard.setup(app)
    return app
