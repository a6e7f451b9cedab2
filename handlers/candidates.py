"""Ranking craftsmen for a case: the matching index fed from the database.

The index (``handlers.matching.MatchIndex``) is built once per process and refreshed when the roster
changes (a cheap fingerprint query per dispatch), so a roster import takes effect without a restart.
The dynamic part (load, recent offers, response history, rating, leave) is read fresh each time.

Off the event loop: building the index, classifying a text and ranking are pure CPU work on data
already read, so they run on a worker thread (``asyncio.to_thread``); only the database reads run on
the loop, before. The GIL is shared, but it switches every 5 ms, so the loop keeps answering callbacks,
``/healthz`` and other people's messages while a long request or a rebuild is analysed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from datetime import datetime, timedelta

from sqlalchemy import case as sql_case
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.matching import (
    Classification,
    CraftsmanProfile,
    CraftsmanStatus,
    MatchIndex,
    MatchRequest,
    MatchResult,
    shipped_taxonomy,
)
from storage.models import ACTIVE_STATES, Case, CaseState, Craftsman, Offer, OfferState, Person

_index: MatchIndex | None = None
_fingerprint: tuple[object, ...] | None = None
_installed = 0  # generation of _index: an older build finishing late never replaces a newer one
_generation = 0  # of the newest build started
# The build in progress, shared by every request that needs the same roster meanwhile. A thread-safe
# future (it must not belong to one event loop); None as its result means "that build failed".
_building: tuple[tuple[object, ...], concurrent.futures.Future[MatchIndex | None]] | None = None


async def _roster_fingerprint(session: AsyncSession) -> tuple[object, ...]:
    row = (
        await session.execute(select(func.count(), func.max(Craftsman.updated_at), func.sum(Craftsman.person_id)))
    ).one()
    closed = await session.scalar(
        select(func.count()).select_from(Case).where(Case.state == CaseState.CLOSED.value)
    )
    return (str(session.get_bind().engine.url), *row, closed)


async def _profiles(session: AsyncSession) -> list[CraftsmanProfile]:
    rows = (await session.execute(select(Craftsman, Person).join(Person, Person.id == Craftsman.person_id))).all()
    solved: dict[int, list[str]] = {}
    for cid, text in (
        await session.execute(
            select(Case.craftsman_id, Case.text)
            .where(Case.state == CaseState.CLOSED.value, Case.craftsman_id.is_not(None))
            .order_by(Case.id.desc())
            .limit(5000)
        )
    ).all():
        if cid is not None and len(solved.setdefault(cid, [])) < 20:
            solved[cid].append(text)
    return [
        CraftsmanProfile(
            key=str(c.person_id),
            code=c.code,
            name=p.name,
            group=c.trade_group,
            skills=tuple(c.skills),
            region=c.region,
            bio=c.bio,
            solved_texts=tuple(solved.get(c.person_id, ())),
        )
        for c, p in rows
    ]


def _build(profiles: list[CraftsmanProfile]) -> MatchIndex:
    return MatchIndex(shipped_taxonomy(), profiles)


async def match_index(session: AsyncSession) -> MatchIndex:
    """The process-wide index, rebuilt (on a thread) when the roster or the set of solved cases changed."""
    global _index, _fingerprint, _installed, _generation, _building
    fp = await _roster_fingerprint(session)
    if _index is not None and fp == _fingerprint:
        return _index
    pending = _building
    if pending is not None and pending[0] == fp:
        # shield: a waiter being cancelled must not cancel the build the others wait for.
        shared = await asyncio.shield(asyncio.wrap_future(pending[1]))
        if shared is not None:
            return shared
    _generation += 1
    generation = _generation
    future: concurrent.futures.Future[MatchIndex | None] = concurrent.futures.Future()
    _building = (fp, future)
    try:
        index = await asyncio.to_thread(_build, await _profiles(session))
    except BaseException:
        future.set_result(None)  # the waiters build their own
        raise
    finally:
        if _building is not None and _building[1] is future:
            _building = None
    future.set_result(index)
    if generation > _installed:
        _index, _fingerprint, _installed = index, fp, generation
    return index


async def classify(session: AsyncSession, text: str) -> Classification:
    """The trade group of a request text (see ``MatchIndex.classify``), computed on a thread."""
    index = await match_index(session)
    return await asyncio.to_thread(index.classify, text)


async def statuses(session: AsyncSession, now: datetime) -> dict[str, CraftsmanStatus]:
    load = dict(
        (
            await session.execute(
                select(Case.craftsman_id, func.count())
                .where(Case.state.in_([s.value for s in ACTIVE_STATES]), Case.craftsman_id.is_not(None))
                .group_by(Case.craftsman_id)
            )
        ).all()
    )
    recent = dict(
        (
            await session.execute(
                select(Offer.craftsman_id, func.count())
                .where(Offer.created_at >= now - timedelta(days=7))
                .group_by(Offer.craftsman_id)
            )
        ).all()
    )
    answered_states = [OfferState.ACCEPTED.value, OfferState.DECLINED.value, OfferState.TAKEN.value]
    history = {
        cid: (total, answered or 0)
        for cid, total, answered in (
            await session.execute(
                select(
                    Offer.craftsman_id,
                    func.count(),
                    func.sum(sql_case((Offer.state.in_(answered_states), 1), else_=0)),
                ).group_by(Offer.craftsman_id)
            )
        ).all()
    }
    ratings: dict[int | None, float | None] = dict(
        (
            await session.execute(
                select(Case.craftsman_id, func.avg(Case.rating))
                .where(Case.rating.is_not(None))
                .group_by(Case.craftsman_id)
            )
        ).all()
    )
    result: dict[str, CraftsmanStatus] = {}
    for c in (await session.scalars(select(Craftsman))).all():
        total, answered = history.get(c.person_id, (0, 0))
        avg = ratings.get(c.person_id)
        result[str(c.person_id)] = CraftsmanStatus(
            available=c.available,
            on_leave=c.leave_until is not None and c.leave_until > now,
            open_load=int(load.get(c.person_id, 0)),
            recent_offers=int(recent.get(c.person_id, 0)),
            offers_total=int(total),
            offers_answered=int(answered),
            avg_rating=float(avg) if avg is not None else None,
        )
    return result


async def rank(
    session: AsyncSession, case: Case, *, now: datetime, exclude: set[int], top_k: int = 5
) -> list[MatchResult]:
    """Best craftsmen for ``case``, hard filters applied, each with its Chinese reasons."""
    index = await match_index(session)
    text = case.text if not case.trade_group else f"{case.trade_group} {case.text}"
    request = MatchRequest(text=text, region=case.address or case.region, mode=case.mode)
    status = await statuses(session, now)  # read on the loop; only the ranking runs on the thread
    return await asyncio.to_thread(
        index.match, request, top_k=top_k, status=status, exclude={str(e) for e in exclude}
    )


def reset_index() -> None:
    """Forget the cached index (tests that swap databases call this)."""
    global _index, _fingerprint, _building
    _index = None
    _fingerprint = None
    _building = None
