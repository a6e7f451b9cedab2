"""What the WeCom and WeChat service-account callbacks share: the checks a request passes before
anything is stored, and the encoding of a button's command into a platform key.

Every check raises :class:`Rejected` with the HTTP status to answer and a short reason for the one
log line; the endpoints turn it into a response, so no failure of a hostile body becomes a 500.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
from datetime import datetime
from typing import Any

import xmltodict
from aiohttp import web

from bot.channels.flatxml import FlatXml, parse_flat

log = logging.getLogger(__name__)

# A card button key carries the command it stands for. Keys are free text up to 1024 bytes on WeCom,
# but their allowed characters are not documented, so the command travels as base64url (ASCII only).
KEY_PREFIX = "c1."
MAX_KEY_BYTES = 1024


class Rejected(Exception):
    """The callback must be refused with ``status``; nothing about it is stored."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def rejected_response(channel: str, err: Rejected) -> web.Response:
    log.warning("%s callback rejected (%d): %s", channel, err.status, err.reason)
    return web.Response(status=err.status, text="")


def query_params(request: web.Request, *names: str) -> list[str]:
    values = [request.query.get(n, "") for n in names]
    missing = [n for n, v in zip(names, values, strict=True) if not v]
    if missing:
        raise Rejected(400, f"missing query parameter(s) {','.join(missing)}")
    return values


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    """The request body, refusing more than ``max_bytes`` (413) without reading it all."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise Rejected(413, f"body of {request.content_length} bytes")
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(65536):
        size += len(chunk)
        if size > max_bytes:
            raise Rejected(413, f"body over {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _flat(data: bytes | str) -> FlatXml:
    try:
        doc = parse_flat(data)
    except Exception as exc:  # UnsafeXml, ExpatError, UnicodeError...
        raise Rejected(400, f"unsafe or malformed XML ({type(exc).__name__})") from None
    if doc.root != "xml":
        raise Rejected(400, f"unexpected XML root <{doc.root}>")
    return doc


def xml_fields(data: bytes | str) -> dict[str, str]:
    """The top-level fields of a callback XML document, parsed with DTDs and entities refused.

    Refusing the DTD outright stops billion-laughs expansion and external entities (XXE) before any
    parsing work happens; platform callbacks never carry a DTD.
    """
    return _flat(data).fields


def message_fields(data: bytes | str) -> dict[str, Any]:
    """The fields of a decrypted message as wechatpy's parser gives them (``message._data``).

    Parsed once, safely (see :func:`xml_fields`). A message is flat — one text per field — except a
    few events with nested parts (e.g. a card's ``SelectedItems``); those take xmltodict, which
    wechatpy uses, for the same nested dicts. Texts are stripped, as xmltodict does.
    """
    doc = _flat(data)
    if not doc.flat:
        return dict(xmltodict.parse(data)["xml"] or {})  # safe: the DTD and entities were refused above
    return {name: text.strip() for name, text in doc.fields.items()}


def sha1_signature(*parts: str) -> str:
    """The platforms' signature: SHA-1 of the sorted parts concatenated."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def check_signature(given: str, *parts: str) -> None:
    # Constant-time: wechatpy compares with ``!=``, which leaks how much of a forgery matched.
    if not hmac.compare_digest(given.lower().encode("ascii", "replace"), sha1_signature(*parts).encode()):
        raise Rejected(403, "signature mismatch")


def check_timestamp(timestamp: str, now: datetime, window_s: int) -> None:
    """Refuse a callback whose timestamp is more than ``window_s`` away from now (0 disables)."""
    if not timestamp.isdigit():
        raise Rejected(400, "timestamp is not a number")
    if window_s > 0 and abs(now.timestamp() - int(timestamp)) > window_s:
        raise Rejected(403, "timestamp outside the allowed window")


def encode_command(command: str) -> str:
    """A card/menu key that carries ``command``; raises ValueError if it would exceed the key limit."""
    key = KEY_PREFIX + base64.urlsafe_b64encode(command.encode("utf-8")).decode("ascii").rstrip("=")
    if len(key) > MAX_KEY_BYTES:
        raise ValueError(f"command of {len(command)} characters is too long for a button key")
    return key


def decode_key(key: str) -> str:
    """The command a key stands for. Keys we did not encode (menu keys set up by hand in the admin
    console) are the command themselves."""
    if not key.startswith(KEY_PREFIX):
        return key.strip()
    raw = key[len(KEY_PREFIX) :]
    try:
        # validate=True: by default base64 silently skips foreign characters and decodes garbage to "".
        return base64.b64decode(raw + "=" * (-len(raw) % 4), altchars=b"-_", validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Rejected(400, "undecodable button key") from None


def event_id(source: str, create_time: Any, *parts: str) -> str:
    """Dedupe key for events, which have no MsgId: FromUserName + CreateTime (+ what was tapped).

    The tapped part is hashed so a long key still fits the 128-character inbox column.
    """
    base = f"ev:{source}:{create_time}"
    extra = "\x1f".join(p for p in parts if p)
    if not extra:
        return base
    return f"{base}:{hashlib.sha1(extra.encode('utf-8')).hexdigest()[:16]}"


def split_utf8(text: str, limit: int) -> list[str]:
    """Split ``text`` into pieces of at most ``limit`` UTF-8 bytes, at line ends where possible.

    A single line longer than the limit is cut between characters (never inside one).
    """
    if len(text.encode("utf-8")) <= limit:
        return [text]
    pieces: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        if len((current + line).encode("utf-8")) <= limit:
            current += line
            continue
        if current:
            pieces.append(current)
            current = ""
        while len(line.encode("utf-8")) > limit:
            cut = _prefix_within(line, limit)
            pieces.append(line[:cut])
            line = line[cut:]
        current = line
    if current:
        pieces.append(current)
    return [p.rstrip("\n") for p in pieces if p.strip()]


def _prefix_within(line: str, limit: int) -> int:
    size = 0
    for i, ch in enumerate(line):
        size += len(ch.encode("utf-8"))
        if size > limit:
            return max(i, 1)
    return len(line)
