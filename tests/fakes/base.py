"""What every platform fake shares: an aiohttp app served on loopback for the test's lifetime."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from aiohttp.test_utils import TestServer


class LoopbackFake:
    """Subclasses build ``self.app`` (their routes) in ``__init__``; tests ``start()`` and ``close()`` it."""

    app: web.Application
    _server: TestServer | None = None
    _port: int | None = None

    async def start(self) -> None:
        self._server = TestServer(self.app, host="127.0.0.1")
        await self._server.start_server()

    async def close(self) -> None:
        if self._server:
            await self._server.close()

    async def refuse_connections(self) -> None:
        """Stop listening: every connection attempt is refused (the host is up, the service is not)."""
        assert self._server is not None, "start() the fake first"
        self._port = self._server.port
        await self._server.close()

    async def accept_connections(self) -> None:
        """Listen again on the same port, with the same state."""
        self._server = TestServer(self.app, host="127.0.0.1", port=self._port)
        await self._server.start_server()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return str(self._server.make_url("")).rstrip("/")


@dataclass
class Media:
    """A file held by a fake platform (uploaded by us, or a user's photo waiting to be fetched)."""

    data: bytes
    content_type: str
    filename: str


def media_download(media: Media | None) -> web.Response:
    """Tencent's ``media/get`` answer (WeCom and the service account alike): the file, or errcode 40007."""
    if media is None:
        return web.json_response({"errcode": 40007, "errmsg": "invalid media_id"})
    return web.Response(
        body=media.data,
        content_type=media.content_type,
        headers={"Content-Disposition": f'attachment; filename="{media.filename}"'},
    )
