"""Typed keys for what the console keeps on the aiohttp application."""

from __future__ import annotations

from aiohttp import web
from jinja2 import Environment

from bot.console.live import BoardHub

jinja_key = web.AppKey("console.jinja", Environment)
hub_key = web.AppKey("console.hub", BoardHub)
secret_key = web.AppKey("console.secret", bytes)
