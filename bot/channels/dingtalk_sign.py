"""DingTalk signatures: the robot callback check, and craftlink's own signed links.

The callback check is the platform's (platforms.md §2F): ``sign = Base64(HmacSHA256(key=appSecret,
msg=timestamp + "\\n" + appSecret))`` in the ``sign`` header, ``timestamp`` (ms) in another. It covers
only the timestamp and the secret, never the body, so a captured pair can be replayed with any body
inside the window: HTTPS and the ``msgId`` dedupe are the rest of the defence.

The links are ours: ActionCard buttons can only open URLs, so each button is a URL that carries a
signed, expiring payload (:class:`LinkSigner`). The signing key is derived from the app secret with a
per-purpose label, so a media link can never be replayed as a tap and neither as anything else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any


def callback_sign(timestamp: str, app_secret: str) -> str:
    """The ``sign`` header DingTalk sends with a robot callback at ``timestamp`` (ms, as sent)."""
    digest = hmac.new(app_secret.encode(), f"{timestamp}\n{app_secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_callback(timestamp: str, sign: str, app_secret: str, *, now_ms: int, window_s: int) -> bool:
    """True if ``sign`` is right for ``timestamp`` and the timestamp is within ``window_s`` of now.

    ``window_s == 0`` disables the time check (for replaying recorded vectors, never in production).
    """
    if not timestamp.isdigit() or not sign or len(timestamp) > 16:
        return False
    if window_s > 0 and abs(now_ms - int(timestamp)) > window_s * 1000:
        return False
    return hmac.compare_digest(sign.encode(), callback_sign(timestamp, app_secret).encode())


class LinkError(Exception):
    """A link that must not act. ``reason`` is ``forged`` (bad signature or shape) or ``expired``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LinkSigner:
    """Signs small JSON payloads into URL-safe tokens ``<payload>.<mac>`` with an expiry ``e`` (epoch s).

    Signed, not encrypted: put nothing secret in a payload. Tokens are bearer tokens; single use, where
    it matters, is the caller's job (taps use the inbox's unique key).
    """

    def __init__(self, app_secret: str, purpose: str) -> None:
        if not app_secret:
            raise ValueError("LinkSigner needs the app secret")
        label = f"craftlink/dingtalk/{purpose}".encode()
        self._key = hmac.new(app_secret.encode(), label, hashlib.sha256).digest()

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())

    def make(self, payload: dict[str, Any], *, expires_at: int) -> str:
        body = _b64(
            json.dumps({**payload, "e": expires_at}, ensure_ascii=False, separators=(",", ":")).encode()
        )
        return f"{body}.{self._mac(body)}"

    def read(self, token: str, *, now_s: int) -> dict[str, Any]:
        """The payload of a valid token; raises :class:`LinkError` if forged, malformed or expired."""
        body, dot, mac = token.partition(".")
        if not dot or not body or not hmac.compare_digest(mac.encode(), self._mac(body).encode()):
            raise LinkError("forged")
        try:
            payload = json.loads(_unb64(body))
        except (ValueError, binascii.Error):  # only reachable with our own key: a bug, not an attack
            raise LinkError("forged") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("e"), int):
            raise LinkError("forged")
        if payload["e"] < now_s:
            raise LinkError("expired")
        return payload
