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
    # Channels whose platform vouches for who is typing (bot/ fills it from its channel declarations:
    # all but the web chat). Only an identity there is handed anything that grants access (a console
    # login link); empty by default, so a Services built without bot/'s list hands out nothing.
    verified_channels: frozenset[str] = frozenset()
