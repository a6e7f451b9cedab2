"""Liveness and readiness: /healthz (the process answers), /readyz (database reachable and current)."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import text

from bot.keys import engine_key
from storage.migrate import current_revision, head_revision


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    engine = request.app[engine_key]
    try:
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
