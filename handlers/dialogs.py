"""Dialog state as data keyed by the person, written in the message's transaction.

This module is the only one that reads or writes the ``dialogs`` table: the sender's own dialog through
:class:`DialogView`, another person's (the enterprise's rating dialog opened by the craftsman's 完成)
through :func:`open_dialog`. A dialog's step is a member of its flow's ``StrEnum`` (``RequestStep``,
``RatingStep``, …); the stored value is the member's string.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.clock import Clock
from storage.models import Dialog


class DialogView:
    """The person's current multi-turn dialog (at most one), loaded once per handled message."""

    def __init__(self, session: AsyncSession, clock: Clock, person_id: int, row: Dialog | None) -> None:
        self._session = session
        self._clock = clock
        self._person_id = person_id
        self._row = row

    @classmethod
    async def load(cls, session: AsyncSession, clock: Clock, person_id: int) -> DialogView:
        return cls(session, clock, person_id, await session.get(Dialog, person_id))

    @property
    def flow(self) -> str | None:
        return self._row.flow if self._row else None

    @property
    def step(self) -> str | None:
        return self._row.step if self._row else None

    @property
    def updated_at(self) -> datetime | None:
        return self._row.updated_at if self._row else None

    @property
    def data(self) -> dict[str, Any]:
        return dict(self._row.data) if self._row else {}

    def start(self, flow: str, step: StrEnum, data: dict[str, Any] | None = None) -> None:
        if self._row is None:
            self._row = Dialog(person_id=self._person_id, flow=flow, step=step.value, data={},
                               updated_at=self._clock.now())
            self._session.add(self._row)
        self._row.flow = flow
        self._row.step = step.value
        self._row.data = dict(data or {})
        self._row.updated_at = self._clock.now()

    def go(self, step: StrEnum, **updates: Any) -> None:
        """Move to ``step`` and merge ``updates`` into the dialog's data."""
        if self._row is None:
            raise RuntimeError("no dialog to continue")
        self._row.step = step.value
        self._row.data = {**self._row.data, **updates}  # new dict: JSON columns track reassignment only
        self._row.updated_at = self._clock.now()

    async def clear(self) -> None:
        if self._row is not None:
            await self._session.delete(self._row)
            self._row = None


async def open_dialog(session: AsyncSession, clock: Clock, person_id: int, flow: str, step: StrEnum,
                      data: dict[str, Any], *, replace: bool = False) -> bool:
    """Open ``flow`` at ``step`` for ``person_id`` (someone other than the sender) in this transaction.

    A dialog the person already has is kept unless ``replace``; returns whether the dialog was written.
    """
    row = await session.scalar(select(Dialog).where(Dialog.person_id == person_id))
    if row is not None and not replace:
        return False
    if row is None:
        row = Dialog(person_id=person_id)
        session.add(row)
    row.flow, row.step, row.data, row.updated_at = flow, step.value, dict(data), clock.now()
    return True
