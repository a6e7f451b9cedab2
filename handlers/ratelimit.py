"""Per-sender flood control: at most N messages per sliding minute, one polite notice per flood.

The window is counted on each message's *arrival* time (``received_at``), not on when it is handled,
so a backlog after downtime is not mistaken for a flood. A sender over the limit has the extra
messages recorded but not handled; the first of them in a flood earns one notice, further ones are
silent until the sender is back under the limit (then a new flood earns a new notice). Other senders
are never affected: the state is per ``(channel, sender)``.

The state lives in the process (the inbox worker owns one limiter). With N instances each one
counts the messages it handles, so the effective limit is between N and N× the setting; the point
is protecting the handlers from a runaway client, not exact accounting.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

WINDOW = timedelta(minutes=1)
MAX_TRACKED = 50_000  # senders remembered at once; the stalest are forgotten first
NOTICE = "您发送消息太频繁了，请稍等一分钟再发。这段时间内多发的消息没有被处理，重要内容请稍后重新发送。"


class Verdict(Enum):
    ALLOW = "allow"
    NOTIFY = "notify"  # over the limit, first time in this flood: drop and tell the sender once
    DROP = "drop"  # over the limit, already told


@dataclass
class _Sender:
    times: deque[datetime] = field(default_factory=deque)
    notified: bool = False
    last: datetime | None = None


class RateLimiter:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._senders: dict[tuple[str, str], _Sender] = {}

    def check(self, channel: str, sender: str, at: datetime) -> Verdict:
        """Record a message from ``sender`` that arrived at ``at`` and say what to do with it."""
        if self.per_minute <= 0:
            return Verdict.ALLOW
        key = (channel, sender)
        state = self._senders.pop(key, None) or _Sender()
        self._senders[key] = state  # re-insert: dict order is least recently seen first
        state.last = at
        while state.times and at - state.times[0] >= WINDOW:
            state.times.popleft()
        if len(self._senders) > MAX_TRACKED:
            self._senders.pop(next(iter(self._senders)))
        if len(state.times) < self.per_minute:
            state.times.append(at)
            state.notified = False
            return Verdict.ALLOW
        if state.notified:
            return Verdict.DROP
        state.notified = True
        return Verdict.NOTIFY
