"""A client that sends headers and part of a body is cut off after ``server.read_timeout_s``.

These tests use a real (short) timeout: it is the server's socket deadline, measured by the event loop,
not domain time, so a ManualClock has nothing to say about it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from bot.app import create_app
from handlers.clock import ManualClock
from handlers.settings import ConfigError
from storage.db import create_engine
from storage.migrate import upgrade
from tests.channels.wx_harness import WECOM_AES, WECOM_CORP, WECOM_TOKEN
from tests.conftest import make_settings

TIMEOUT_S = 0.5
BODY = b'{"user": "slow-firm", "text": "\xe4\xbd\xa0\xe5\xa5\xbd", "id": "slow-1"}'


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[TestServer]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'craftlink.db'}"
    engine = create_engine(url)
    await upgrade(engine)
    await engine.dispose()
    # role intake: the read deadline is the HTTP server's, the same in every role; no matching to load
    wecom = {"corp_id": WECOM_CORP, "agent_id": 1000002, "secret": "s", "token": WECOM_TOKEN,
             "encoding_aes_key": WECOM_AES, "timestamp_window_s": 0}
    settings = make_settings(url, tmp_path, server={"role": "intake", "read_timeout_s": TIMEOUT_S}, wecom=wecom)
    srv = TestServer(create_app(settings, clock=ManualClock()), host="127.0.0.1")
    await srv.start_server()
    yield srv
    await srv.close()


WEBCHAT = "/webchat/send"
# The WeCom handler turns any failure while reading into its own 400: still a 408, and closed.
WECOM = "/wecom/callback?msg_signature=0&timestamp=1&nonce=1"


def _head(length: int, path: str = WEBCHAT) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


@pytest.mark.parametrize("path", [WEBCHAT, WECOM])
async def test_a_body_that_stops_half_way_is_answered_408_and_closed(server: TestServer, path: str) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(_head(len(BODY), path) + BODY[:10])  # and then nothing
        await writer.drain()
        started = time.monotonic()
        answer = await asyncio.wait_for(reader.read(), 3)  # read() returns only once the server closes
        waited = time.monotonic() - started
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
    assert TIMEOUT_S * 0.8 <= waited < 2, waited


async def test_a_body_that_arrives_in_pieces_within_the_deadline_is_served(server: TestServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(_head(len(BODY)) + BODY[:10])
        await writer.drain()
        await asyncio.sleep(0.05)  # a slow client, well inside the deadline
        writer.write(BODY[10:])
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 3)
    finally:
        writer.close()
    assert status_line.startswith(b"HTTP/1.1 200"), status_line


def test_read_timeout_must_be_positive(tmp_path: Path) -> None:
    for bad in (0, -1, 601):
        with pytest.raises(ConfigError, match="server.read_timeout_s"):
            make_settings("sqlite+aiosqlite:///x.db", tmp_path, server={"read_timeout_s": bad})
