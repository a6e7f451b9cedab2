"""Time as an injected dependency: production uses :class:`SystemClock`, tests a :class:`ManualClock`.

Nothing in craftlink calls ``datetime.now()`` directly, so no test ever sleeps on real time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # Monday 09:00 in Shanghai

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("ManualClock.set needs an aware datetime")
        self._now = when


TEST_CLOCK_ENV = "CRAFTLINK_TEST_CLOCK_FILE"


class FileClock:
    """Test-only: the time written in a file (ISO 8601 with offset), read again at every call.

    ``craftlink serve`` uses it only when the ``CRAFTLINK_TEST_CLOCK_FILE`` variable names such a
    file, so a fault test can move the clock of a real server process the way a ManualClock moves an
    in-process one. Write the file atomically (write a sibling, then rename) to move time.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def now(self) -> datetime:
        when = datetime.fromisoformat(self.path.read_text(encoding="utf-8").strip())
        if when.tzinfo is None:
            raise ValueError(f"{self.path}: expected a time with an offset, got {when.isoformat()}")
        return when.astimezone(UTC)

    @staticmethod
    def write(path: str | Path, when: datetime) -> None:
        """Set the time a FileClock reading ``path`` returns (atomically)."""
        p = Path(path)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(when.isoformat(), encoding="utf-8")
        tmp.replace(p)
