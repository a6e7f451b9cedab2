"""The staff web console (``/console/``): board, cases, craftsmen, enterprises, reports, roster, accounts.

Server-rendered with Jinja2 (autoescape on), a little JavaScript for the live board, CSS and JS served
from this package. Every route is wrapped in ``auth.guard`` (roles, CSRF) or marked ``auth.public``;
``tests/console/test_roles.py`` fails if a route is neither. See docs/console.md.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from pathlib import Path

from aiohttp import web

from bot.console import accounts, board, cases, login, people, reports, roster
from bot.console.auth import public
from bot.console.live import BoardHub
from bot.console.render import create_env
from bot.keys import hub_key, jinja_key, secret_key, services_key, settings_key

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")
# Strict by design: no inline script or style, nothing from other sites. The SVG charts are inline
# markup (not script), and Jinja2 escaping plus this policy both stand between a case text and a script.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


@public
async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    path = STATIC / name
    if "/" in name or name.startswith(".") or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Cache-Control": "public, max-age=3600"})


@public
async def root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/console/")


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith("/console"):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        # The login-link page has the token in its URL: never leak it in a Referer.
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if not request.path.startswith("/console/static/"):
            response.headers.setdefault("Cache-Control", "no-store")


def _secret(app: web.Application) -> bytes:
    configured = app[settings_key].console.secret_key
    if not configured:
        # Sessions then end with the process and differ between instances: fine for a demo only.
        log.warning("console.secret_key is not set: using a random key (set CRAFTLINK_CONSOLE_SECRET_KEY)")
        configured = secrets.token_hex(32)
    return hashlib.sha256(f"craftlink-console|{configured}".encode()).digest()


async def _close_hub(app: web.Application) -> None:
    await app[hub_key].close()  # open board streams end, so shutdown does not wait for them


def setup(app: web.Application) -> None:
    """Register the console's routes and state on ``app`` (called once from ``bot.app.create_app``)."""
    app[jinja_key] = create_env()
    app[secret_key] = _secret(app)
    hub = BoardHub()
    app[hub_key] = hub
    services = app[services_key]
    previous = services.on_case_change

    def case_changed() -> None:
        previous()
        hub.changed()

    services.on_case_change = case_changed
    app.on_shutdown.append(_close_hub)
    app.on_response_prepare.append(_headers)
    app.router.add_routes([
        web.get("/console", root),
        web.get("/console/static/{name}", static),
        *login.routes(), *board.routes(), *cases.routes(), *people.routes(), *reports.routes(),
        *roster.routes(), *accounts.routes(),
    ])
