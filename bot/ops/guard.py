"""Malformed request bodies are the client's fault: answer 400, never 500.

``request.post()`` raises ``ValueError`` on a multipart body without its boundary, and
``request.json()`` / ``request.text()`` raise ``ValueError`` / ``UnicodeDecodeError`` on bad JSON or
bytes that are not UTF-8. A handler that does not catch these would answer 500, which a platform
retries forever and which hides real bugs in the error rate. This middleware turns exactly those
exceptions — the ones raised while aiohttp's ``Request`` was reading the body (found by walking the
traceback) — into a 400; any other exception still surfaces as the bug it is.

A body must also *arrive*: aiohttp bounds the wait for headers only by its keep-alive timeout, and
the wait for a body not at all, so a client that sent headers and half a body held its connection
(and a handler) open for as long as it liked. :func:`body_deadline` gives the whole body
``server.read_timeout_s`` from the moment the handler starts (the headers are complete by then): past
that, every read of it raises :class:`BodyTimeout`, the answer is 408 and the connection is closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType

from aiohttp import StreamReader, web
from aiohttp.typedefs import Middleware

from bot.keys import settings_key

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


class BodyTimeout(TimeoutError):
    """The request body was not complete ``server.read_timeout_s`` after its headers."""


def _expire(body: StreamReader, timeout_s: float) -> None:
    if not body.is_eof():  # wakes a reader waiting on it, and fails every later read
        body.set_exception(BodyTimeout(f"request body incomplete after {timeout_s:g} s"))


def body_deadline(timeout_s: float) -> Middleware:
    """A middleware that refuses a request body still incomplete ``timeout_s`` after its headers."""

    @web.middleware
    async def body_deadline_middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        body = request.content
        if body.is_eof():  # no body, or all of it already here (a callback usually is): nothing to wait for
            return await handler(request)
        timer = asyncio.get_running_loop().call_later(timeout_s, _expire, body, timeout_s)
        try:
            response = await handler(request)
        except BodyTimeout:
            response = None
        finally:
            timer.cancel()
        if response is not None and not isinstance(body.exception(), BodyTimeout):
            return response
        log.warning("request body on %s incomplete after %g s; answered 408 and closed", request.path, timeout_s)
        if response is None or not response.prepared:  # a handler that caught the error answered without a body
            response = web.Response(status=408, text="请求超时。")
        response.force_close()  # the rest of that body must never be read as the next request
        return response

    return body_deadline_middleware


def setup(app: web.Application) -> None:
    app.middlewares.append(body_deadline(app[settings_key].server.read_timeout_s))
    app.middlewares.append(bad_body_middleware)
