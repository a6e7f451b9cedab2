"""Typed keys for what the aiohttp application holds (aiohttp ``AppKey``)."""

from __future__ import annotations

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.channels.base import ChannelSender
from bot.intake import Intake
from bot.passive import PassiveReplies
from handlers.clock import Clock
from handlers.messages import Channel
from handlers.services import Services
from handlers.settings import Settings

settings_key = web.AppKey("settings", Settings)
clock_key = web.AppKey("clock", Clock)
engine_key = web.AppKey("engine", AsyncEngine)
sessions_key = web.AppKey("sessions", async_sessionmaker[AsyncSession])
read_sessions_key = web.AppKey("read_sessions", async_sessionmaker[AsyncSession])  # never take the write lock
intake_key = web.AppKey("intake", Intake)
senders_key = web.AppKey("senders", dict[Channel, ChannelSender])
services_key = web.AppKey("services", Services)
http_key = web.AppKey("http", aiohttp.ClientSession)
passive_key = web.AppKey("passive_replies", PassiveReplies)  # only where this process handles messages
