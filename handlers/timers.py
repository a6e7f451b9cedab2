"""Timers are rows: scheduled in the transaction of what they belong to, fired once by the poller.

Handlers register what a kind of timer does with :func:`on_timer`; ``scheduler/poller.py`` claims due
rows and calls :func:`fire` inside one transaction per timer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import HandlerContext
from storage.models import Timer, TimerState

TimerHandler = Callable[[HandlerContext, Timer], Awaitable[None]]
_HANDLERS: dict[str, TimerHandler] = {}


def on_timer(kind: str) -> Callable[[TimerHandler], TimerHandler]:
    def register(fn: TimerHandler) -> TimerHandler:
        _HANDLERS[kind] = fn
        return fn

    return register


def handler_for(kind: str) -> TimerHandler | None:
    return _HANDLERS.get(kind)


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
