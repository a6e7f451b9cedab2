"""Liveness and readiness: /healthz (the process answers), /readyz (database reachable and current)."""

from __future__ import annotations

import asyncio

from aiohttp import web
from sqlalchemy import text

from bot.keys import engine_key
from storage.migrate import current_revision, head_revision

READY_TIMEOUT_S = 3.0  # a stopped PostgreSQL can make a connect hang; the probe must answer anyway


async def healthz(request: web.Request) -> web.Response:
    """The process answers; no dependency is checked (a load balancer restarts on failure here)."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready to take traffic: the database answers within a few seconds and its schema is current."""
    engine = request.app[engine_key]
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            current = await current_revision(engine)
    except Exception as exc:
        return web.json_response({"status": "unavailable", "database": type(exc).__name__}, status=503)
    head = head_revision()
    if current != head:
        return web.json_response({"status": "migrations pending", "current": current, "head": head}, status=503)
    return web.json_response({"status": "ready", "revision": current})


def setup(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
