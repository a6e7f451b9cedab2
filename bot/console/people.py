"""Craftsmen directory and pages (with skills/availability editing), enterprises list and pages."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from aiohttp import web
from sqlalchemy import func, select

from bot.console.auth import forbidden, guard, viewer_of
from bot.console.render import redirect, render
from bot.console.viewer import ADMIN, ROLES, STAFF
from bot.keys import clock_key, sessions_key, settings_key
from handlers.parsing import parse_date
from handlers.roster import split_skills
from storage.models import ACTIVE_STATES, OPEN_STATES, Case, Craftsman, Enterprise, Person, PointsEntry

log = logging.getLogger(__name__)


@dataclass
class DirectoryRow:
    person: Person
    craftsman: Craftsman
    open_load: int
    points: float
    rating: float | None
    help_hours: float


def _pid(request: web.Request) -> int:
    try:
        return int(request.match_info["pid"])
    except ValueError:
        raise web.HTTPNotFound() from None


async def directory(request: web.Request) -> web.Response:
    """工匠: group, skills, region, availability, open load, points, rating, help hours."""
    viewer = viewer_of(request)
    group, region = request.query.get("group", "").strip(), request.query.get("region", "").strip()
    q = request.query.get("q", "").strip().lower()
    stmt = select(Person, Craftsman).join(Craftsman, Craftsman.person_id == Person.id).order_by(
        Craftsman.trade_group, Craftsman.code)
    stmt = viewer.scope.restrict(stmt, Craftsman.trade_group)
    if group:
        stmt = stmt.where(Craftsman.trade_group == group)
    if region:
        stmt = stmt.where(Craftsman.region.contains(region, autoescape=True))
    async with request.app[sessions_key]() as db:
        rows = (await db.execute(stmt.limit(3000))).all()
        load = dict((await db.execute(
            select(Case.craftsman_id, func.count()).where(Case.state.in_([s.value for s in ACTIVE_STATES]))
            .group_by(Case.craftsman_id))).all())
        points = dict((await db.execute(
            select(PointsEntry.craftsman_id, func.sum(PointsEntry.points)).group_by(PointsEntry.craftsman_id)
        )).all())
        served = {cid: (avg, hours) for cid, avg, hours in (await db.execute(
            select(Case.craftsman_id, func.avg(Case.rating), func.coalesce(func.sum(Case.help_hours), 0.0))
            .where(Case.craftsman_id.is_not(None)).group_by(Case.craftsman_id))).all()}
        groups = sorted(set((await db.scalars(select(Craftsman.trade_group).distinct())).all()))
    groups = viewer.scope.visible(groups)
    out = []
    for person, craftsman in rows:
        text = " ".join([person.name, craftsman.code, craftsman.bio, *map(str, craftsman.skills)]).lower()
        if q and q not in text:
            continue
        avg, hours = served.get(person.id, (None, 0.0))
        out.append(DirectoryRow(person, craftsman, load.get(person.id, 0), float(points.get(person.id) or 0.0),
                                float(avg) if avg is not None else None, float(hours or 0.0)))
    return render(request, "craftsmen.html", rows=out, groups=groups, group=group, region=region,
                  q=request.query.get("q", ""))


async def _craftsman(request: web.Request) -> tuple[Person, Craftsman]:
    async with request.app[sessions_key]() as db:
        person = await db.get(Person, _pid(request))
        craftsman = await db.get(Craftsman, _pid(request))
    if person is None or craftsman is None:
        raise web.HTTPNotFound(text="没有这位师傅。")
    if not viewer_of(request).scope.sees(craftsman.trade_group):
        raise forbidden(request, "这位师傅不属于您负责的专业小组。")
    return person, craftsman


async def craftsman_page(request: web.Request) -> web.Response:
    """A craftsman: profile, edit form, their cases, their points ledger."""
    person, craftsman = await _craftsman(request)
    viewer = viewer_of(request)
    async with request.app[sessions_key]() as db:
        cases = (await db.scalars(select(Case).where(Case.craftsman_id == person.id)
                                  .order_by(Case.id.desc()).limit(200))).all()
        ledger = (await db.scalars(select(PointsEntry).where(PointsEntry.craftsman_id == person.id)
                                   .order_by(PointsEntry.at.desc(), PointsEntry.id.desc()).limit(500))).all()
    return render(request, "craftsman.html", person=person, craftsman=craftsman,
                  cases=[c for c in cases if viewer.scope.sees(c.trade_group)], ledger=ledger,
                  total=sum(e.points for e in ledger), skills="、".join(map(str, craftsman.skills)))


async def craftsman_edit(request: web.Request) -> web.StreamResponse:
    """Save skills and availability; ``updated_at`` moves, so the matcher re-indexes."""
    person, _ = await _craftsman(request)
    form = await request.post()
    skills = list(split_skills(str(form.get("skills", ""))[:1000]))
    available = form.get("available") == "1"
    leave_until: datetime | None = None
    raw_leave = str(form.get("leave_until", "")).strip()
    if raw_leave:
        try:
            leave_day = parse_date(raw_leave)  # bounded: the day after 9999-12-31 would overflow
        except ValueError:
            raise redirect(f"/console/craftsmen/{person.id}", "休假截止日期格式应为 2026-11-30。", error=True) from None
        leave_until = datetime.combine(leave_day + timedelta(days=1), time(), request.app[settings_key].tz)
    async with request.app[sessions_key].begin() as db:
        craftsman = await db.get(Craftsman, person.id)
        assert craftsman is not None
        craftsman.skills, craftsman.available, craftsman.leave_until = skills, available, leave_until
        craftsman.updated_at = request.app[clock_key].now()
    # Not a case, so no case event: the log keeps who changed a craftsman.
    log.info("console: %s edited craftsman %s (%s)", viewer_of(request).name, craftsman.code, person.name)
    raise redirect(f"/console/craftsmen/{person.id}", "已保存。")


async def enterprises(request: web.Request) -> web.Response:
    """企业: every enterprise with its open and total cases."""
    q = request.query.get("q", "").strip()
    stmt = select(Enterprise).order_by(Enterprise.name)
    if q:
        stmt = stmt.where(Enterprise.name.contains(q, autoescape=True))
    async with request.app[sessions_key]() as db:
        firms = (await db.scalars(stmt.limit(2000))).all()
        counts: dict[int, list[int]] = {}
        for eid, state, n in (await db.execute(
            select(Case.enterprise_id, Case.state, func.count()).where(Case.enterprise_id.is_not(None))
            .group_by(Case.enterprise_id, Case.state))).all():
            total = counts.setdefault(eid or 0, [0, 0])
            total[1] += n
            if state in {s.value for s in OPEN_STATES}:
                total[0] += n
    return render(request, "enterprises.html", firms=firms, counts=counts, q=q)


async def enterprise_page(request: web.Request) -> web.Response:
    """An enterprise: its contacts and all its cases."""
    async with request.app[sessions_key]() as db:
        firm = await db.get(Enterprise, _pid(request))
        if firm is None:
            raise web.HTTPNotFound(text="没有这家企业。")
        contacts = (await db.scalars(select(Person).where(Person.enterprise_id == firm.id).order_by(Person.id))).all()
        rows = (await db.execute(
            select(Case, Person.name).outerjoin(Person, Person.id == Case.craftsman_id)
            .where(Case.enterprise_id == firm.id, Case.state != "draft").order_by(Case.id.desc()).limit(500))).all()
    return render(request, "enterprise.html", firm=firm, contacts=contacts, cases=rows)


def routes() -> list[web.RouteDef]:
    everyone, office = guard(*ROLES), guard(ADMIN, STAFF)
    return [
        web.get("/console/craftsmen", everyone(directory)),
        web.get("/console/craftsmen/{pid}", everyone(craftsman_page)),
        web.post("/console/craftsmen/{pid}/edit", everyone(craftsman_edit)),
        web.get("/console/enterprises", office(enterprises)),
        web.get("/console/enterprises/{pid}", office(enterprise_page)),
    ]
