"""What handlers need beyond one message: settings, clock, links to the service's pages, wake-up hooks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from handlers.clock import Clock
from handlers.settings import Settings


def _noop() -> None:
    return None


class Links(Protocol):
    """Absolute URLs of the service's own pages, which bot/ serves (``bot/links.py``); the domain only
    decides what a link carries (a login token, a signed month), never where it points."""

    def console_login(self, token: str) -> str:
        """The page that redeems a one-time console login token."""
        ...

    def monthly_report(self, month: str, exp: int, sig: str) -> str:
        """The signed download of a month's workbook (``handlers/reports/links.py`` signs it)."""
        ...


@dataclass
class Services:
    settings: Settings
    clock: Clock
    instance: str = "craftlink"
    links: Links | None = None  # None outside the service (CLI, tests): no links are given out
    on_outbox: Callable[[], None] = field(default=_noop)  # wakes the outbox sender after a commit
    on_case_change: Callable[[], None] = field(default=_noop)  # wakes live views (console board)
    # Channels whose platform does not vouch for who is typing (bot/ fills it from its channel
    # declarations: the web chat); an identity there is never handed anything that grants access.
    unverified_channels: frozenset[str] = frozenset()
