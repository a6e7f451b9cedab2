"""Acknowledging comes first: while callbacks pile up, the same process's handling steps aside.

A platform that waits more than a few seconds for an acknowledgement retries, and after a few retries
drops the message. An acknowledged message is durable in the inbox and only waits. So when one process
both takes the callbacks and handles them (``server.role = "all"``) and the callbacks saturate it, the
inbox worker starts a message only every ``every_s`` seconds: handling never starves, and it neither
takes the CPU from the callbacks nor holds SQLite's write lock in front of their group commit. When the
callbacks ease off, handling takes the backlog at full speed. (docs/ARCHITECTURE.md, "Ack first".)

Saturation is read from the callbacks in flight (received, not yet answered): under a light load a
callback is answered in a millisecond or two and a handful are ever in flight; when the event loop
cannot keep up, they queue in it by the dozen.
"""

from __future__ import annotations

import time
from collections.abc import Callable

SATURATED_IN_FLIGHT = 16
HOLD_S = 0.25  # saturation lasts this long after the last sight of it: the load comes in waves


class CallbackLoad:
    """Callbacks in flight in this process; the callback middleware counts them."""

    def __init__(self, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.in_flight = 0
        self._monotonic = monotonic
        self._seen_at = float("-inf")

    def enter(self) -> None:
        self.in_flight += 1
        if self.in_flight >= SATURATED_IN_FLIGHT:
            self._seen_at = self._monotonic()

    def leave(self) -> None:
        self.in_flight -= 1

    def saturated(self) -> bool:
        return self.in_flight >= SATURATED_IN_FLIGHT or self._monotonic() - self._seen_at < HOLD_S


class AckFirst:
    """Whether the inbox worker may start a message now (see the module docstring)."""

    def __init__(self, saturated: Callable[[], bool], *, every_s: float = 0.25,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._saturated = saturated
        self._every_s = every_s
        self._monotonic = monotonic
        self._last = float("-inf")

    def may_start(self) -> bool:
        now = self._monotonic()
        if self._saturated() and now - self._last < self._every_s:
            return False
        self._last = now
        return True
