"""What handlers need beyond one message: settings, clock, the matching index, wake-up hooks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from handlers.clock import Clock
from handlers.settings import Settings


def _noop() -> None:
    return None


@dataclass
class Services:
    settings: Settings
    clock: Clock
    instance: str = "craftlink"
    on_outbox: Callable[[], None] = field(default=_noop)  # wakes the outbox sender after a commit
    on_case_change: Callable[[], None] = field(default=_noop)  # wakes live views (console board)
