"""Jinja2 rendering (autoescape on for every template), flash messages and display helpers."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from bot.console import csrf
from bot.console.viewer import ADMIN, LEAD, STAFF, VIEWER
from bot.keys import clock_key, jinja_key, settings_key
from handlers.cases import state_label

TEMPLATES = Path(__file__).with_name("templates")
FLASH = "cl_flash"


def age_label(delta: timedelta) -> str:
    """How long ago, the way staff say it: 刚刚 / 25分钟 / 5小时 / 3天."""
    minutes = int(delta.total_seconds() // 60)
    if minutes < 1:
        return "刚刚"
    if minutes < 60:
        return f"{minutes}分钟"
    if minutes < 48 * 60:
        return f"{minutes // 60}小时"
    return f"{minutes // (24 * 60)}天"


def create_env() -> Environment:
    # autoescape=True for every template (not select_autoescape): there is no non-HTML template here,
    # and a case text with <script> must always come out as text.
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["state"] = state_label
    env.filters["num"] = lambda v: f"{v:g}" if isinstance(v, float) else str(v)
    return env


def _context(request: web.Request, extra: dict[str, Any]) -> dict[str, Any]:
    tz = request.app[settings_key].tz

    def local(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        return value.astimezone(tz).strftime(fmt) if value else ""

    flash = None
    raw = request.cookies.get(FLASH)
    if raw:
        try:
            flash = json.loads(unquote(raw))
        except ValueError:
            flash = None
    return {
        "viewer": request.get(VIEWER),
        "csrf_token": csrf.token_for(request),
        "local": local,
        "now": request.app[clock_key].now(),
        "flash": flash if isinstance(flash, dict) else None,
        "ADMIN": ADMIN, "STAFF": STAFF, "LEAD": LEAD,
        "path": request.path,
        **extra,
    }


def render_text(request: web.Request, template: str, **extra: Any) -> str:
    return request.app[jinja_key].get_template(template).render(_context(request, extra))


def render(request: web.Request, template: str, *, status: int = 200, **extra: Any) -> web.Response:
    resp = web.Response(text=render_text(request, template, **extra), status=status, content_type="text/html")
    if request.cookies.get(FLASH):
        resp.del_cookie(FLASH, path="/console")
    csrf.remember_pre(request, resp)
    return resp


def redirect(location: str, message: str = "", *, error: bool = False) -> web.HTTPFound:
    """Post/redirect/get, with a one-shot message shown on the next page."""
    exc = web.HTTPFound(location)
    if message:
        value = quote(json.dumps({"kind": "error" if error else "ok", "text": message[:600]}, ensure_ascii=False))
        exc.set_cookie(FLASH, value, path="/console", httponly=True, samesite="Lax", max_age=60)
    return exc
