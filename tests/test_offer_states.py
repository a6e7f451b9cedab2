"""``handlers/offer_states.py::answer_offer``: one conditional UPDATE, exactly one winner, the loser sees it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.demo import seed
from handlers.offer_states import ALLOWED, answer_offer
from storage.models import Case, CaseState, Offer, OfferState, Person, Role

NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


async def _offer(s: AsyncSession) -> int:
    await seed(s, NOW - timedelta(days=30))
    requester = await s.scalar(select(Person).where(Person.role == Role.ENTERPRISE.value).limit(1))
    craftsman = await s.scalar(select(Person).where(Person.role == Role.CRAFTSMAN.value).limit(1))
    assert requester is not None and craftsman is not None
    case = Case(requester_id=requester.id, state=CaseState.OFFERED.value, created_at=NOW, text="x")
    s.add(case)
    await s.flush()
    offer = Offer(case_id=case.id, craftsman_id=craftsman.id, created_at=NOW)
    s.add(offer)
    await s.flush()
    return offer.id


def test_only_a_pending_offer_is_answered() -> None:
    assert set(ALLOWED) == set(OfferState) - {OfferState.PENDING}
    assert all(sources == (OfferState.PENDING,) for sources in ALLOWED.values())


async def test_first_answer_wins_and_the_loser_sees_the_winner(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as s, s.begin():
        offer_id = await _offer(s)
    later = NOW + timedelta(minutes=5)
    async with sessions() as a, sessions() as b:
        async with b.begin():  # b loads the offer while it is pending (no lock kept: SQLite has one writer)
            theirs = await b.get(Offer, offer_id)
        async with a.begin():
            mine = await a.get(Offer, offer_id)
            assert mine is not None and theirs is not None
            assert await answer_offer(a, mine, OfferState.DECLINED, now=later, reason="出差")
            assert (mine.state, mine.reason, mine.answered_at) == ("declined", "出差", later)
            assert not a.dirty  # shown at once, nothing left to write at flush
        async with b.begin():
            assert theirs.state == OfferState.PENDING  # a stale view: the other answer came first
            assert not await answer_offer(b, theirs, OfferState.EXPIRED, now=later + timedelta(minutes=1))
            assert (theirs.state, theirs.reason) == ("declined", "出差")  # reloaded: the winner's answer
    async with sessions() as s:
        row = await s.get(Offer, offer_id)
        assert row is not None and row.state == OfferState.DECLINED and row.answered_at == later


async def test_an_answer_without_reason_keeps_the_reason(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as s, s.begin():
        offer = await s.get(Offer, await _offer(s))
        assert offer is not None
        offer.reason = "备注"
        await s.flush()
        assert await answer_offer(s, offer, OfferState.WITHDRAWN, now=NOW)
        assert not await answer_offer(s, offer, OfferState.ACCEPTED, now=NOW)
    async with sessions() as s:
        row = (await s.scalars(select(Offer))).one()
        assert (row.state, row.reason) == ("withdrawn", "备注")
