"""Typed keys for everything the aiohttp application holds (aiohttp ``AppKey``): the one place they live.

Each key's type is imported from a module that does not import this one (``handlers/``, the
pipeline's classes, the channels' state, the console's hub), so holding every key here adds no import
cycle. Keep it so: a module whose class has a key here never imports ``bot.keys``.
"""

from __future__ import annotations

import aiohttp
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from jinja2 import Environment
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.channels.base import ChannelSender
from bot.channels.dingtalk_state import DingTalkState
from bot.channels.media import MediaStore
from bot.console.live import BoardHub
from bot.pipeline.ackfirst import CallbackLoad
from bot.pipeline.intake import Intake
from bot.pipeline.passive import PassiveReplies
from bot.pipeline.sender import OutboxSender
from bot.pipeline.worker import InboxWorker
from handlers.clock import Clock
from handlers.messages import Channel
from handlers.services import Services
from handlers.settings import Settings
from handlers.timers import TimerRegistry

# The service's foundations (bot/app.py).
settings_key = web.AppKey("settings", Settings)
clock_key = web.AppKey("clock", Clock)
engine_key = web.AppKey("engine", AsyncEngine)
sessions_key = web.AppKey("sessions", async_sessionmaker[AsyncSession])
read_sessions_key = web.AppKey("read_sessions", async_sessionmaker[AsyncSession])  # never take the write lock
services_key = web.AppKey("services", Services)
http_key = web.AppKey("http", aiohttp.ClientSession)

# The message pipeline (bot/pipeline/); worker, sender and passive only where this process handles messages.
intake_key = web.AppKey("intake", Intake)
senders_key = web.AppKey("senders", dict[Channel, ChannelSender])
passive_key = web.AppKey("passive_replies", PassiveReplies)
worker_key = web.AppKey("inbox_worker", InboxWorker)
sender_key = web.AppKey("outbox_sender", OutboxSender)
callback_load_key = web.AppKey("callback_load", CallbackLoad)  # set by bot/ops/metrics.py, read by ack-first

# Time (scheduler/): every timer kind's handler (``handlers.build_timers``), known before the first
# poll, and the APScheduler instance that triggers the pollers (only where the scheduler runs).
timers_key = web.AppKey("timers", TimerRegistry)
scheduler_key = web.AppKey("scheduler", AsyncIOScheduler)

# Channels (bot/channels/): the media store every channel shares, and DingTalk's adapter state.
media_key = web.AppKey("media", MediaStore)
dingtalk_key = web.AppKey("dingtalk", DingTalkState)

# The console (bot/console/).
jinja_key = web.AppKey("console.jinja", Environment)
hub_key = web.AppKey("console.hub", BoardHub)
secret_key = web.AppKey("console.secret", bytes)
