"""Malformed request bodies are the client's fault: answer 400, never 500.

``request.post()`` raises ``ValueError`` on a multipart body without its boundary, and
``request.json()`` / ``request.text()`` raise ``ValueError`` / ``UnicodeDecodeError`` on bad JSON or
bytes that are not UTF-8. A handler that does not catch these would answer 500, which a platform
retries forever and which hides real bugs in the error rate. This middleware turns exactly those
exceptions — the ones raised while aiohttp's ``Request`` was reading the body (found by walking the
traceback) — into a 400; any other exception still surfaces as the bug it is.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from types import TracebackType

from aiohttp import web

log = logging.getLogger(__name__)
_BODY_READERS = ("aiohttp/web_request.py", "aiohttp/multipart.py", "aiohttp/helpers.py")


def _from_body_reader(tb: TracebackType | None) -> bool:
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(_BODY_READERS):
            return True
        tb = tb.tb_next
    return False


@web.middleware
async def bad_body_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> web.StreamResponse:
    try:
        return await handler(request)
    except ValueError as exc:
        if not _from_body_reader(exc.__traceback__):
            raise
        log.info("malformed request body on %s (%s)", request.path, type(exc).__name__)
        return web.Response(status=400, text="请求格式不正确。")


def setup(app: web.Application) -> None:
    app.middlewares.append(bad_body_middleware)
