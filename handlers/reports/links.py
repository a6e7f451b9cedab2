"""Signed, expiring download links for monthly reports sent in chat (HMAC-SHA256 with the console key).

A link carries the month, an expiry (unix seconds) and a signature over both; the server route in
``bot/console/downloads.py`` checks them and needs no login. With no ``console.secret_key`` there are no
links (the workbook is still attached to the chat message). Where the route is, is bot/'s
(:class:`handlers.services.Links`); what it carries and how it is signed, is decided here.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

from handlers.parsing import ascii_int
from handlers.services import Links
from handlers.settings import Settings


def signature(secret: str, month: str, expires: int) -> str:
    msg = f"report.monthly:{month}:{expires}".encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()[:40]


def monthly_link(settings: Settings, links: Links | None, month: str, now: datetime) -> str | None:
    """The URL to give out, valid for ``timers.report_link_hours``; None without a secret key or links."""
    secret = settings.console.secret_key
    if not secret or links is None:
        return None
    expires = int((now + timedelta(hours=settings.timers.report_link_hours)).timestamp())
    return links.monthly_report(month, expires, signature(secret, month, expires))


def check(settings: Settings, month: str, exp: str, sig: str, now: datetime) -> bool:
    """True when ``sig`` signs ``month`` and ``exp`` and the link has not expired."""
    secret = settings.console.secret_key
    expires = ascii_int(exp, max_digits=12)
    if not secret or expires is None:
        return False
    if expires < now.timestamp():
        return False
    # Bytes, not str: compare_digest raises TypeError on a non-ASCII str (``sig=签名`` would be a 500).
    return hmac.compare_digest(signature(secret, month, expires).encode(), sig.encode())
