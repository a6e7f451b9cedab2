"""Timers are rows: scheduled in the transaction of what they belong to, fired once by the poller.

What a kind of timer does is looked up in a :class:`TimerRegistry`, built explicitly in one place
(``handlers/app.py::build_timers``, beside ``build_router``) and handed to the poller
(``scheduler/poller.py``), which claims due rows and runs their handler in one transaction per timer.
Nothing registers itself on import: a process knows every kind from the moment it starts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import HandlerContext
from storage.models import Timer, TimerState

TimerHandler = Callable[[HandlerContext, Timer], Awaitable[None]]


class TimerRegistry:
    """Timer kind → handler. A due timer of a kind not in the registry is left pending, never consumed."""

    def __init__(self, handlers: Mapping[str, TimerHandler] | None = None) -> None:
        self._handlers: dict[str, TimerHandler] = {}
        for kind, handler in (handlers or {}).items():
            self.register(kind, handler)

    def register(self, kind: str, handler: TimerHandler) -> None:
        if kind in self._handlers:
            raise ValueError(f"timer kind {kind!r} registered twice")
        self._handlers[kind] = handler

    def handler_for(self, kind: str) -> TimerHandler | None:
        return self._handlers.get(kind)

    def kinds(self) -> frozenset[str]:
        return frozenset(self._handlers)


def schedule(
    session: AsyncSession,
    kind: str,
    due_at: datetime,
    *,
    now: datetime,
    case_id: int | None = None,
    person_id: int | None = None,
    offer_id: int | None = None,
    payload: dict[str, Any] | None = None,
) -> Timer:
    timer = Timer(
        kind=kind,
        due_at=due_at,
        case_id=case_id,
        person_id=person_id,
        offer_id=offer_id,
        payload=payload or {},
        created_at=now,
    )
    session.add(timer)
    return timer


async def cancel(
    session: AsyncSession,
    *,
    case_id: int | None = None,
    offer_id: int | None = None,
    kinds: Iterable[str] | None = None,
) -> None:
    """Cancel pending timers of a case or an offer (optionally only some kinds)."""
    stmt = update(Timer).where(Timer.state == TimerState.PENDING.value)
    if case_id is not None:
        stmt = stmt.where(Timer.case_id == case_id)
    if offer_id is not None:
        stmt = stmt.where(Timer.offer_id == offer_id)
    if kinds is not None:
        stmt = stmt.where(Timer.kind.in_(list(kinds)))
    await session.execute(stmt.values(state=TimerState.CANCELLED.value).execution_options(synchronize_session=False))
