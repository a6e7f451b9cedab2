"""The offer state machine: the one place an offer is answered (accepted, declined, expired, taken, withdrawn).

Like ``handlers/cases.py::transition`` for cases: a table of allowed source states and a conditional
``UPDATE … WHERE state IN (allowed sources)``, so when a tap, a timeout and a staff withdrawal race for
the same pending offer exactly one of them changes the row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from storage.models import Offer, OfferState

# Which states an answer may start from: only a pending offer is answered, whoever answers it.
# (Re-offering a declined craftsman is not an answer: ``handlers/dispatch.py::make_offer`` reopens the row.)
ALLOWED: dict[OfferState, tuple[OfferState, ...]] = {
    OfferState.ACCEPTED: (OfferState.PENDING,),
    OfferState.DECLINED: (OfferState.PENDING,),
    OfferState.EXPIRED: (OfferState.PENDING,),
    OfferState.TAKEN: (OfferState.PENDING,),
    OfferState.WITHDRAWN: (OfferState.PENDING,),
}


async def answer_offer(session: AsyncSession, offer: Offer, to_state: OfferState, *, now: datetime,
                       reason: str | None = None) -> bool:
    """Move ``offer`` to ``to_state`` if its row is still in one of ``ALLOWED[to_state]``; True if this call won.

    Contract: one conditional UPDATE in the caller's transaction (``answered_at = now``, and ``reason``
    when given). When it wins, the loaded ``offer`` shows the new state at once, without another
    write at flush. When it loses (another answer came first, or the state was never allowed), nothing
    is written and ``offer`` is reloaded, so the caller sees the state that won.
    """
    values: dict[str, Any] = {"state": to_state.value, "answered_at": now}
    if reason is not None:
        values["reason"] = reason
    result = await session.execute(
        update(Offer)
        .where(Offer.id == offer.id, Offer.state.in_([s.value for s in ALLOWED[to_state]]))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        await session.refresh(offer)
        return False
    for key, value in values.items():  # the bulk UPDATE does not touch loaded objects
        set_committed_value(offer, key, value)
    return True
