"""The live service board: open cases in five columns, filters, search, stalled marks, SSE refresh."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from aiohttp import web
from sqlalchemy import Select, false, or_, select
from sqlalchemy.orm import aliased

from bot.console.auth import guard, viewer_of
from bot.console.live import stream
from bot.console.render import age_label, render
from bot.console.viewer import ROLES, Viewer
from bot.keys import clock_key, hub_key, sessions_key, settings_key
from handlers.cases import number_to_id
from handlers.parsing import case_number_in, normalise, parse_date
from storage.models import Case, CaseState, Craftsman, Enterprise, Offer, OfferState, Person


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    states: tuple[CaseState, ...]


COLUMNS = (
    Column("review", "待审核", (CaseState.SUBMITTED,)),
    Column("matching", "匹配中", (CaseState.APPROVED, CaseState.MATCHING, CaseState.ESCALATED)),
    Column("offered", "待接单", (CaseState.OFFERED,)),
    Column("service", "服务中", (CaseState.ASSIGNED, CaseState.IN_PROGRESS)),
    Column("feedback", "待评价", (CaseState.RESOLVED,)),
)
BoardQuery = Select[Case, str, str]
BOARD_STATES = tuple(s.value for c in COLUMNS for s in c.states)


@dataclass
class BoardFilter:
    group: str = ""
    region: str = ""
    state: str = ""  # a Column.key
    date_from: date | None = None
    date_to: date | None = None
    q: str = ""

    @classmethod
    def from_query(cls, query: Any) -> BoardFilter:
        def day(name: str) -> date | None:
            try:
                return parse_date(query.get(name, "")[:40])  # bounded: 9999-12-31 + 1 day must not overflow
            except ValueError:
                return None

        state = query.get("state", "")
        return cls(group=query.get("group", "").strip()[:60], region=query.get("region", "").strip()[:100],
                   state=state if state in {c.key for c in COLUMNS} else "", date_from=day("from"),
                   date_to=day("to"), q=query.get("q", "").strip()[:100])

    @property
    def active(self) -> bool:
        return any((self.group, self.region, self.state, self.date_from, self.date_to, self.q))


@dataclass
class Card:
    case: Case
    enterprise: str
    craftsman: str
    offered_to: list[str]
    age: str
    stalled: bool


@dataclass
class BoardColumn:
    column: Column
    cards: list[Card] = field(default_factory=list)


def _apply(stmt: BoardQuery, f: BoardFilter, viewer: Viewer, tz: tzinfo) -> BoardQuery:
    stmt = viewer.scope.restrict(stmt, Case.trade_group)
    if f.group:
        stmt = stmt.where(Case.trade_group == f.group)
    if f.region:
        stmt = stmt.where(Case.region.contains(f.region, autoescape=True))
    if f.state:
        states = next(c.states for c in COLUMNS if c.key == f.state)
        stmt = stmt.where(Case.state.in_([s.value for s in states]))
    if f.date_from:
        stmt = stmt.where(Case.submitted_at >= datetime.combine(f.date_from, time(), tz))
    if f.date_to:
        stmt = stmt.where(Case.submitted_at < datetime.combine(f.date_to + timedelta(days=1), time(), tz))
    if f.q:
        digits = normalise(f.q).lstrip("#").strip()
        if digits.isascii() and digits.isdigit():  # a case number: only that case, or none if out of range
            number = case_number_in(digits)
            stmt = stmt.where(Case.id == number_to_id(number) if number is not None else false())
        else:
            stmt = stmt.where(or_(Case.text.contains(f.q, autoescape=True),
                                  Enterprise.name.contains(f.q, autoescape=True)))
    return stmt


async def load_board(request: web.Request, f: BoardFilter) -> list[BoardColumn]:
    """The open cases the viewer may see, filtered, oldest first in each column."""
    viewer = viewer_of(request)
    settings = request.app[settings_key]
    now = request.app[clock_key].now()
    nudge = timedelta(hours=settings.timers.progress_nudge_h)
    worker = aliased(Person)
    stmt = (select(Case, Enterprise.name, worker.name)
            .outerjoin(Enterprise, Enterprise.id == Case.enterprise_id)
            .outerjoin(worker, worker.id == Case.craftsman_id)
            .where(Case.state.in_(BOARD_STATES)).order_by(Case.submitted_at, Case.id).limit(500))
    async with request.app[sessions_key]() as db:
        rows = (await db.execute(_apply(stmt, f, viewer, settings.tz))).all()
        ids = [r[0].id for r in rows]
        offered: dict[int, list[str]] = {}
        if ids:
            for case_id, name in (await db.execute(
                select(Offer.case_id, Person.name).join(Person, Person.id == Offer.craftsman_id)
                .where(Offer.case_id.in_(ids), Offer.state == OfferState.PENDING.value).order_by(Offer.id)
            )).all():
                offered.setdefault(case_id, []).append(name)
    columns = [BoardColumn(c) for c in COLUMNS]
    by_state = {s.value: col for col in columns for s in col.column.states}
    for case, enterprise, craftsman in rows:
        since = case.submitted_at or case.created_at
        last = case.last_activity_at or since
        stalled = case.state == CaseState.ESCALATED or now - last > nudge
        by_state[case.state].cards.append(Card(case, enterprise or "", craftsman or "", offered.get(case.id, []),
                                               age_label(now - since), stalled))
    return columns


async def _options(request: web.Request) -> list[str]:
    viewer = viewer_of(request)
    if viewer.scope.groups is not None:
        return sorted(viewer.scope.groups)
    async with request.app[sessions_key]() as db:
        groups = set((await db.scalars(select(Craftsman.trade_group).distinct())).all())
    return sorted(g for g in groups if g)


async def board_page(request: web.Request) -> web.Response:
    """看板: the whole page, with filters; console.js keeps it live."""
    f = BoardFilter.from_query(request.query)
    return render(request, "board.html", columns=await load_board(request, f), f=f, groups=await _options(request),
                  column_defs=COLUMNS, query=request.query_string)


async def board_cards(request: web.Request) -> web.Response:
    """Just the columns, for the live refresh."""
    f = BoardFilter.from_query(request.query)
    return render(request, "board_cards.html", columns=await load_board(request, f), f=f)


async def board_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: ``change`` whenever a case moved anywhere."""
    return await stream(request, request.app[hub_key])


def routes() -> list[web.RouteDef]:
    everyone = guard(*ROLES)
    return [
        web.get("/console/", everyone(board_page)),
        web.get("/console/board/cards", everyone(board_cards)),
        web.get("/console/board/events", everyone(board_events)),
    ]
