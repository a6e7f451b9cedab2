"""Per-recipient sliding-window pacing for platforms that silently drop messages over a limit.

WeCom drops (不下发) anything over 30 messages per minute or 1000 per hour to one member, so the
sender must never exceed them: a send that would is refused with a ``retry_after`` for when a slot
frees up, and the outbox tries again then. Nothing is dropped here.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

from bot.channels.base import DeferredSendError
from handlers.clock import Clock

WECOM_MEMBER_LIMITS: tuple[tuple[int, int], ...] = ((60, 30), (3600, 1000))  # (window seconds, max sends)


class Pacer:
    """Counts sends per recipient in this process (one sender per app; the outbox serialises a
    conversation, so a recipient's sends come from one process)."""

    def __init__(self, clock: Clock, limits: tuple[tuple[int, int], ...] = WECOM_MEMBER_LIMITS) -> None:
        self._clock = clock
        self._limits = [(timedelta(seconds=w), n) for w, n in limits]
        self._longest = max(w for w, _ in self._limits)
        self._sent: dict[str, deque[datetime]] = {}

    def reserve(self, recipient: str, count: int = 1) -> None:
        """Take ``count`` slots for ``recipient`` at once, or none and raise DeferredSendError.

        A multi-part message reserves all its parts together, so it is never cut off half-way by
        pacing (a retry would resend the parts already delivered).
        """
        now = self._clock.now()
        times = self._sent.setdefault(recipient, deque())
        while times and now - times[0] >= self._longest:
            times.popleft()
        wait = 0.0
        for window, limit in self._limits:
            if count > limit:
                raise ValueError(f"{count} sends can never fit a limit of {limit}")
            in_window = [t for t in times if now - t < window]
            excess = len(in_window) + count - limit
            if excess > 0:
                # The slot frees when the excess-th oldest send in the window leaves it.
                frees_at = in_window[excess - 1] + window
                wait = max(wait, (frees_at - now).total_seconds())
        if wait > 0:
            raise DeferredSendError("paced", "per-recipient limit", retry_after=wait)
        times.extend([now] * count)
