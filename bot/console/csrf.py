"""CSRF tokens: an HMAC of the session id (signed in) or of a random pre-login cookie (login forms).

Every form carries ``_csrf``; :func:`check_form` runs on every POST through ``auth.guard`` and on
the login forms. SameSite=Lax cookies already stop most cross-site posts; the token covers the rest
(old browsers, in-app browsers with odd cookie rules).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from aiohttp import web

from bot.console.viewer import VIEWER
from bot.keys import secret_key

PRE_COOKIE = "cl_pre"
_PRE_KEY = web.RequestKey("console.pre", str)
_FIELD = "_csrf"


def _binding(request: web.Request) -> str:
    viewer = request.get(VIEWER)
    if viewer is not None:
        return f"s:{viewer.session_id}"
    pre = request.get(_PRE_KEY) or request.cookies.get(PRE_COOKIE, "")
    if not pre:
        pre = secrets.token_urlsafe(18)
        request[_PRE_KEY] = pre  # set as a cookie by remember_pre() on the response
    return f"p:{pre}"


def token(key: bytes, binding: str) -> str:
    return hmac.new(key, f"csrf|{binding}".encode(), hashlib.sha256).hexdigest()


def token_for(request: web.Request) -> str:
    return token(request.app[secret_key], _binding(request))


def session_token(key: bytes, session_id: str) -> str:
    """The token of a signed-in session (what every form of that session carries)."""
    return token(key, f"s:{session_id}")


def remember_pre(request: web.Request, response: web.StreamResponse) -> None:
    """Set the pre-login cookie if a login form was just rendered with a new one."""
    pre = request.get(_PRE_KEY)
    if pre and request.cookies.get(PRE_COOKIE) != pre:
        response.set_cookie(PRE_COOKIE, pre, path="/console", httponly=True, samesite="Lax", max_age=3600)


def valid(request: web.Request, token: object) -> bool:
    # Bytes, not str: compare_digest raises TypeError on a non-ASCII str (a forged field would be a 500).
    return isinstance(token, str) and bool(token) and hmac.compare_digest(token.encode(), token_for(request).encode())


async def check_form(request: web.Request) -> None:
    """403 unless the posted form (or the X-CSRF-Token header) carries the right token."""
    token = request.headers.get("X-CSRF-Token")
    if token is None:
        form = await request.post()
        token = form.get(_FIELD)  # type: ignore[assignment]
    if not valid(request, token):
        raise web.HTTPForbidden(text="表单已过期或来源不明（CSRF 校验失败），请刷新页面后重试。")
