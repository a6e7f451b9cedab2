"""The staff daily digest: one compact markdown message about the previous day (or days, after downtime).

Sections with nothing in them are left out; a day with nothing at all is one line. A group lead gets
the digest of their trade groups only (``handlers/visibility.py``).

Two steps: :func:`gather_digest` reads the figures from the database into :class:`DigestFacts`, and
:func:`render_digest`, a pure function, writes the message. A new figure is a field of the facts, read
in the first step and shown in the second.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.reports import day_start
from handlers.settings import Settings
from handlers.visibility import EVERY_GROUP, Scope
from storage.models import (
    ACTIVE_STATES,
    Case,
    CaseState,
    Feedback,
    Offer,
    OfferState,
    OutboxMessage,
    OutboxState,
    Person,
)

LIST_MAX = 8  # lines per section before "等 N 件"


@dataclass(frozen=True)
class Digest:
    title: str
    markdown: str
    empty: bool


@dataclass(frozen=True)
class CaseLine:
    """A case as a digest line names it."""

    number: int
    group: str
    text: str

    @classmethod
    def of(cls, case: Case) -> CaseLine:
        return cls(case.number, case.trade_group, case.text)

    def render(self, extra: str = "") -> str:
        return f"#{self.number} {self.group or '未分类'} {self.text[:18]}{extra}"


@dataclass(frozen=True)
class Stalled:
    case: CaseLine
    craftsman: str
    hours: float  # since the last activity


@dataclass(frozen=True)
class Visit:
    at: datetime  # local time of the appointment
    case: CaseLine
    craftsman: str


@dataclass(frozen=True)
class LowRating:
    number: int
    rating: int
    craftsman: str
    comment: str


@dataclass
class DigestFacts:
    """Everything the digest sent on ``today`` reports, for ``first`` up to the end of the day before."""

    today: date
    first: date
    new_cases: int = 0
    assigned: int = 0
    solved: int = 0
    review: list[CaseLine] = field(default_factory=list)  # waiting for review
    untaken: list[CaseLine] = field(default_factory=list)  # escalated: nobody took it
    expired_offers: int = 0
    stalled: list[Stalled] = field(default_factory=list)
    visits: list[Visit] = field(default_factory=list)  # appointments on ``today``, earliest first
    feedback: int = 0  # cases closed in the period, rated or not
    ratings: list[int] = field(default_factory=list)
    low: list[LowRating] = field(default_factory=list)  # ratings of 2 or less
    per_group: list[tuple[str, int]] = field(default_factory=list)  # new cases by trade group, most first
    undelivered: list[tuple[str, int]] = field(default_factory=list)  # (outbox state, messages)

    @property
    def yesterday(self) -> date:
        return self.today - timedelta(days=1)


def _d(day: date) -> str:
    return f"{day.month}月{day.day}日"


def _span(first: date, last: date) -> str:
    return _d(first) if first == last else f"{_d(first)}–{_d(last)}"


def _section(title: str, items: list[str]) -> list[str]:
    if not items:
        return []
    shown = items[:LIST_MAX]
    more = [f"- 等共 {len(items)} 项"] if len(items) > LIST_MAX else []
    return [f"**{title}（{len(items)}）**", *[f"- {i}" for i in shown], *more, ""]


async def build_digest(
    session: AsyncSession,
    settings: Settings,
    *,
    today: date,
    now: datetime,
    first_day: date | None = None,
    groups: set[str] | None = None,
) -> Digest:
    """The digest sent on ``today``: covers ``first_day`` (default yesterday) up to the end of yesterday.

    ``first_day`` earlier than yesterday is how a digest after downtime reports the days whose own
    digest was never sent. ``groups`` limits everything to those trade groups (a group lead's view).
    """
    return render_digest(await gather_digest(session, settings, today=today, now=now, first_day=first_day,
                                             scope=Scope.limited_to(groups)))


class _Names:
    """People's names, each read once."""

    def __init__(self, session: AsyncSession) -> None:
        self._session, self._names = session, dict[int, str]()

    async def __call__(self, pid: int | None) -> str:
        if pid is None:
            return ""
        if pid not in self._names:
            person = await self._session.get(Person, pid)
            self._names[pid] = person.name if person else str(pid)
        return self._names[pid]


async def gather_digest(session: AsyncSession, settings: Settings, *, today: date, now: datetime,
                        first_day: date | None = None, scope: Scope = EVERY_GROUP) -> DigestFacts:
    """The figures of the digest sent on ``today``, as ``scope`` sees them (see :func:`build_digest`)."""
    yesterday = today - timedelta(days=1)
    facts = DigestFacts(today=today, first=min(first_day or yesterday, yesterday))
    start, end = day_start(facts.first, settings.tz), day_start(today, settings.tz)
    names = _Names(session)
    recent = [c for c in (await session.scalars(select(Case).where(
        Case.state != CaseState.DRAFT.value, Case.submitted_at >= start, Case.submitted_at < end).order_by(Case.id)
    )).all() if scope.sees(c.trade_group)]
    facts.new_cases = len(recent)
    facts.per_group = Counter(c.trade_group or "未分类" for c in recent).most_common()
    facts.assigned = await session.scalar(select(func.count()).select_from(Case).where(
        Case.accepted_at >= start, Case.accepted_at < end, *scope.clauses(Case.trade_group))) or 0
    facts.solved = await session.scalar(select(func.count()).select_from(Case).where(
        Case.resolved_at >= start, Case.resolved_at < end, *scope.clauses(Case.trade_group))) or 0
    await _open_cases(session, settings, facts, scope, names, now=now, end=end)
    expired = (await session.execute(select(Offer, Case).join(Case, Case.id == Offer.case_id).where(
        Offer.state == OfferState.EXPIRED.value, Offer.answered_at >= start, Offer.answered_at < end))).all()
    facts.expired_offers = sum(1 for _, c in expired if scope.sees(c.trade_group))
    feedback = [(fb, c) for fb, c in (await session.execute(select(Feedback, Case).join(Case, Case.id == Feedback.case_id)
                .where(Feedback.at >= start, Feedback.at < end).order_by(Feedback.id))).all() if scope.sees(c.trade_group)]
    facts.feedback = len(feedback)
    facts.ratings = [fb.rating for fb, _ in feedback if fb.rating is not None]
    facts.low = [LowRating(c.number, fb.rating, await names(c.craftsman_id), fb.comment)
                 for fb, c in feedback if fb.rating is not None and fb.rating <= 2]
    facts.undelivered = [(state, n) for state, n in (await session.execute(
        select(OutboxMessage.state, func.count()).where(
            OutboxMessage.state.in_([OutboxState.HELD.value, OutboxState.DEAD.value]),
            OutboxMessage.created_at >= start, OutboxMessage.created_at < end).group_by(OutboxMessage.state))).all()]
    return facts


async def _open_cases(session: AsyncSession, settings: Settings, facts: DigestFacts, scope: Scope, names: _Names,
                      *, now: datetime, end: datetime) -> None:
    """The open cases' part of the facts: review, untaken, stalled, today's visits."""
    open_cases = [c for c in (await session.scalars(select(Case).where(Case.state.in_(
        [CaseState.SUBMITTED.value, CaseState.ESCALATED.value, *[s.value for s in ACTIVE_STATES]])).order_by(Case.id)
    )).all() if scope.sees(c.trade_group)]
    facts.review = [CaseLine.of(c) for c in open_cases if c.state == CaseState.SUBMITTED]
    facts.untaken = [CaseLine.of(c) for c in open_cases if c.state == CaseState.ESCALATED]
    stall_after = timedelta(hours=settings.timers.progress_nudge_h)
    active = [c for c in open_cases if CaseState(c.state) in ACTIVE_STATES]
    for c in active:
        last = c.last_activity_at or c.accepted_at
        if last is not None and now - last >= stall_after:
            facts.stalled.append(Stalled(CaseLine.of(c), await names(c.craftsman_id),
                                         (now - last).total_seconds() / 3600))
    day_end = end + timedelta(days=1)
    for c in sorted((c for c in active if c.appointment_at is not None and end <= c.appointment_at < day_end),
                    key=lambda c: c.appointment_at or end):
        assert c.appointment_at is not None
        facts.visits.append(Visit(c.appointment_at.astimezone(settings.tz), CaseLine.of(c),
                                  await names(c.craftsman_id)))


def render_digest(facts: DigestFacts) -> Digest:
    """The digest message of ``facts`` (pure: no database, no clock)."""
    title = f"工作日报 {_d(facts.today)}"
    first, yesterday = facts.first, facts.yesterday
    span = _span(first, yesterday)
    body: list[str] = []
    if first < yesterday:
        body += [f"（服务曾中断，{_span(first, yesterday - timedelta(days=1))} 的日报未发出，已并入本报。）", ""]
    counts = [f"新需求 {facts.new_cases}", f"已接单 {facts.assigned}", f"已解决 {facts.solved}"]
    if facts.new_cases or facts.assigned or facts.solved:
        body += [f"**{span}**：" + " · ".join(counts), ""]
    body += _section("待审核", [c.render() for c in facts.review])
    body += _section("无人接单，待人工派单", [c.render() for c in facts.untaken])
    if facts.expired_offers:
        body += [f"另有 {facts.expired_offers} 次接单邀请超时未答复。", ""]
    body += _section("进展停滞", [s.case.render(f"（{s.craftsman}，{s.hours:.0f} 小时无进展）") for s in facts.stalled])
    body += _section(f"今日预约上门（{_d(facts.today)}）",
                     [f"{v.at:%H:%M} " + v.case.render(f"（{v.craftsman}）") for v in facts.visits])
    body += _feedback(facts)
    if facts.per_group:
        body += ["**按专业**：" + " · ".join(f"{g} {n}" for g, n in facts.per_group), ""]
    if facts.undelivered:
        labels = {OutboxState.HELD.value: "平台暂不允许发送（已暂存）", OutboxState.DEAD.value: "发送失败"}
        body += ["**未送达消息**：" + "；".join(f"{labels[s]} {n} 条" for s, n in facts.undelivered), ""]
    if not [b for b in body if b and not b.startswith("（服务曾中断")]:
        return Digest(title, f"{title}：{span}没有新情况，也没有待处理的事项。", True)
    return Digest(title, "\n".join([f"### {title}", "", *body]).rstrip(), False)


def _feedback(facts: DigestFacts) -> list[str]:
    ratings = facts.ratings
    if not ratings:
        return [f"**评价**：{facts.feedback} 件超时未评价，自动结案", ""] if facts.feedback else []
    avg = sum(ratings) / len(ratings)
    unrated = f"，另 {facts.feedback - len(ratings)} 件超时未评价" if facts.feedback > len(ratings) else ""
    return [f"**评价**：{len(ratings)} 条，平均 {avg:.1f} 分{unrated}", "",
            *_section("低分评价（≤2 分）", [f"#{r.number} {r.rating} 分（{r.craftsman}）{r.comment[:30]}" for r in facts.low])]
