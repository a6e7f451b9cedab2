"""Local media store: photos, voice notes and files people send, kept on disk by content.

File names are the SHA-256 of the content plus the suffix (``ab/abcdef….jpg``), so the same photo
sent twice (or fetched again after a retry) is stored once, and a path never points at other bytes.
Writes go to a temporary file first and are renamed into place, so a crash never leaves half a file
under a final name.

One store per app, built by ``bot/app.py::create_app`` from ``bot.*`` settings and shared by every
channel as ``app[bot.keys.media_key]``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from pathlib import Path

from handlers.settings import BotSettings

_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,10}$")


class MediaTooLargeError(ValueError):
    """The content is over ``bot.media_max_bytes``; nothing was stored."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"media of {size} bytes is over the limit of {limit} bytes")
        self.size = size
        self.limit = limit


class MediaStore:
    """Content-addressed files under one directory, each at most ``max_bytes``."""

    def __init__(self, directory: str | Path, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes

    @classmethod
    def from_settings(cls, bot: BotSettings) -> MediaStore:
        return cls(bot.media_dir, bot.media_max_bytes)

    async def store(self, data: bytes, suffix: str) -> str:
        """Store ``data`` and return its local path. ``suffix`` is like ``.jpg`` (anything else → ``.bin``).

        Raises :class:`MediaTooLargeError` over the size limit.
        """
        if len(data) > self.max_bytes:
            raise MediaTooLargeError(len(data), self.max_bytes)
        if not _SUFFIX.match(suffix):
            suffix = ".bin"  # the suffix may come from a remote file name: never let it shape the path
        digest = hashlib.sha256(data).hexdigest()
        path = self.directory / digest[:2] / f"{digest}{suffix.lower()}"
        await asyncio.to_thread(_write_once, path, data)
        return str(path)


def _write_once(path: Path, data: bytes) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
