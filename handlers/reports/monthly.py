"""Monthly figures (按月报进展): what the union reports upwards each month.

Definitions (also in ``docs/reminders.md``), all in local calendar months:

* **cases** of a group / region / industry / mode: requests submitted in the month (drafts excluded);
* **solved** and **help hours**: cases the craftsman marked 完成 in the month (``resolved_at``);
* **solved rate**: of the month's requests, the share already solved when the report is made;
* **response time**: submitted → accepted, for cases accepted in the month (median and p90, hours);
* **satisfaction**: ratings given in the month (auto-closed cases count as unrated, not as a score);
* **points**: the ledger entries dated in the month.

Everything is computed in Python over the month's rows: a union's month is hundreds of cases, not
millions, and one pass keeps the figures of every sheet consistent with the totals.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.cases import mode_label
from handlers.reports import add_months, month_bounds, month_key, parse_month
from handlers.settings import Settings
from storage.models import Case, CaseEvent, CaseState, Craftsman, Enterprise, Feedback, Person, PointsEntry

HISTORY_MONTHS = 6  # month over month in the chart


@dataclass
class Row:
    """One line of a breakdown: requests submitted, cases solved, help hours."""

    label: str
    cases: int = 0
    solved: int = 0
    help_hours: float = 0.0


@dataclass
class CraftsmanLine:
    person_id: int
    name: str
    group: str
    cases: int = 0  # solved this month
    help_hours: float = 0.0
    points: float = 0.0
    ratings: list[int] = field(default_factory=list)

    @property
    def rating(self) -> float | None:
        return sum(self.ratings) / len(self.ratings) if self.ratings else None


@dataclass
class CaseStory:
    number: int
    group: str
    enterprise: str
    craftsman: str
    text: str
    solution: str
    rating: int | None
    comment: str
    help_hours: float
    resolved_at: datetime | None


@dataclass
class MonthlyReport:
    month: str
    new_cases: int = 0
    solved: int = 0
    solved_of_new: int = 0
    help_hours: float = 0.0
    response_hours: list[float] = field(default_factory=list)
    ratings: list[int] = field(default_factory=list)
    unrated: int = 0
    by_group: list[Row] = field(default_factory=list)
    by_region: list[Row] = field(default_factory=list)
    by_industry: list[Row] = field(default_factory=list)
    by_mode: list[Row] = field(default_factory=list)
    craftsmen: list[CraftsmanLine] = field(default_factory=list)
    typical: list[CaseStory] = field(default_factory=list)
    history: list[tuple[str, dict[str, Row]]] = field(default_factory=list)  # oldest month first

    @property
    def solved_rate(self) -> float | None:
        return self.solved_of_new / self.new_cases if self.new_cases else None

    @property
    def response_median_h(self) -> float | None:
        return percentile(self.response_hours, 50)

    @property
    def response_p90_h(self) -> float | None:
        return percentile(self.response_hours, 90)

    @property
    def avg_rating(self) -> float | None:
        return sum(self.ratings) / len(self.ratings) if self.ratings else None

    @property
    def satisfied_share(self) -> float | None:
        return sum(1 for r in self.ratings if r >= 4) / len(self.ratings) if self.ratings else None

    @property
    def by_points(self) -> list[CraftsmanLine]:
        return sorted([c for c in self.craftsmen if c.points], key=lambda c: (-c.points, c.name))

    @property
    def by_rating(self) -> list[CraftsmanLine]:
        rated = [c for c in self.craftsmen if c.rating is not None]
        return sorted(rated, key=lambda c: (-(c.rating or 0), -len(c.ratings), c.name))


def percentile(values: Iterable[float], pct: float) -> float | None:
    """Nearest-rank percentile (what a person checks by counting): p50 of 1..10 is 5, p90 is 9."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def _in(when: datetime | None, start: datetime, end: datetime) -> bool:
    return when is not None and start <= when < end


def _rows(acc: dict[str, Row]) -> list[Row]:
    return sorted(acc.values(), key=lambda r: (-r.cases, -r.solved, r.label))


@dataclass
class MonthFacts:
    """The rows a month's figures are computed from, read by :func:`gather_month` (the only step that
    reads the database); :func:`monthly_figures` turns them into the report."""

    month: str
    tz: ZoneInfo
    start: datetime
    end: datetime
    history_start: datetime  # the first of the chart's months
    cases: list[Case]  # submitted in the chart's months, resolved in them, or accepted in the month
    enterprises: dict[int, Enterprise]
    feedback: list[Feedback]  # given in the month
    points: list[tuple[int, float]]  # (craftsman, points) of the ledger entries dated in the month
    rated_cases: dict[int, Case]  # every case rated in the month, by id
    people: dict[int, tuple[str, str]]  # craftsman (person id) → (name, trade group), for the month's craftsmen
    solutions: dict[int, str]  # rated case id → what the craftsman did (its last ``resolved`` event)


async def build_monthly(session: AsyncSession, settings: Settings, month: str) -> MonthlyReport:
    """All figures of one month (``"2026-11"``), plus the previous months' per-group figures for the chart."""
    return monthly_figures(await gather_month(session, settings, month))


async def gather_month(session: AsyncSession, settings: Settings, month: str) -> MonthFacts:
    """Read everything :func:`monthly_figures` needs for ``month``."""
    tz = settings.tz
    year, mon = parse_month(month)
    month = month_key(year, mon)
    start, end = month_bounds(month, tz)
    hist_start, _ = month_bounds(month_key(*add_months(year, mon, 1 - HISTORY_MONTHS)), tz)
    cases = list((await session.scalars(select(Case).where(
        Case.state != CaseState.DRAFT.value,
        or_(and_(Case.submitted_at >= hist_start, Case.submitted_at < end),
            and_(Case.resolved_at >= hist_start, Case.resolved_at < end),
            and_(Case.accepted_at >= start, Case.accepted_at < end)),
    ).order_by(Case.id))).all())
    enterprises = {e.id: e for e in (await session.scalars(select(Enterprise))).all()}
    feedback = list((await session.scalars(
        select(Feedback).where(Feedback.at >= start, Feedback.at < end).order_by(Feedback.id))).all())
    points = [(pid, pts) for pid, pts in (await session.execute(
        select(PointsEntry.craftsman_id, PointsEntry.points).where(PointsEntry.at >= start, PointsEntry.at < end)
    )).all()]
    by_id = {c.id: c for c in cases}
    rated_ids = {fb.case_id for fb in feedback if fb.rating is not None}
    rated = {i: by_id[i] for i in rated_ids if i in by_id}
    missing = rated_ids - set(rated)
    if missing:
        rated |= {c.id: c for c in (await session.scalars(select(Case).where(Case.id.in_(missing)))).all()}
    pids = {c.craftsman_id for c in cases if _in(c.resolved_at, start, end) and c.craftsman_id is not None}
    pids |= {pid for pid, _ in points} | {c.craftsman_id for c in rated.values() if c.craftsman_id is not None}
    names = dict((await session.execute(select(Person.id, Person.name).where(Person.id.in_(pids)))).all()) \
        if pids else {}
    groups = dict((await session.execute(select(Craftsman.person_id, Craftsman.trade_group)
                                         .where(Craftsman.person_id.in_(pids)))).all()) if pids else {}
    solutions: dict[int, str] = {}
    if rated:
        for case_id, detail in (await session.execute(select(CaseEvent.case_id, CaseEvent.detail).where(
                CaseEvent.case_id.in_(list(rated)), CaseEvent.kind == "resolved").order_by(CaseEvent.id))).all():
            solutions[case_id] = detail  # the last one wins
    return MonthFacts(month=month, tz=tz, start=start, end=end, history_start=hist_start, cases=cases,
                      enterprises=enterprises, feedback=feedback, points=points, rated_cases=rated,
                      people={pid: (names.get(pid, str(pid)), groups.get(pid, "")) for pid in pids},
                      solutions=solutions)


def monthly_figures(facts: MonthFacts) -> MonthlyReport:
    """The month's report computed from ``facts`` (pure: no database)."""
    rep = MonthlyReport(month=facts.month)
    _totals(rep, facts)
    _history(rep, facts)
    lines, rated = _craftsmen(rep, facts)
    rep.craftsmen = sorted(lines.values(), key=lambda c: c.name)
    rated.sort(key=lambda fc: (-(fc[0].rating or 0), -(fc[1].help_hours or 0), fc[1].id))
    rep.typical = [_story(facts, case, fb, lines) for fb, case in rated[:3]]
    return rep


def _craftsmen(rep: MonthlyReport, facts: MonthFacts) -> tuple[dict[int, CraftsmanLine], list[tuple[Feedback, Case]]]:
    """Each craftsman's month (solved cases, help hours, points, ratings) and the month's rated cases;
    counts the ratings and the unrated into ``rep``."""
    lines: dict[int, CraftsmanLine] = {}

    def line(pid: int) -> CraftsmanLine:
        if pid not in lines:
            name, group = facts.people.get(pid, (str(pid), ""))
            lines[pid] = CraftsmanLine(pid, name, group)
        return lines[pid]

    for case in facts.cases:
        if _in(case.resolved_at, facts.start, facts.end) and case.craftsman_id is not None:
            cl = line(case.craftsman_id)
            cl.cases += 1
            cl.help_hours += case.help_hours or 0.0
    for pid, pts in facts.points:
        line(pid).points += pts
    rated: list[tuple[Feedback, Case]] = []
    for fb in facts.feedback:
        if fb.rating is None:
            rep.unrated += 1
            continue
        rep.ratings.append(fb.rating)
        case_row = facts.rated_cases.get(fb.case_id)
        if case_row is not None:
            rated.append((fb, case_row))
            if case_row.craftsman_id is not None:
                line(case_row.craftsman_id).ratings.append(fb.rating)
    return lines, rated


def _totals(rep: MonthlyReport, facts: MonthFacts) -> None:
    """The month's totals, response times and breakdowns by group, region, industry and mode."""
    start, end = facts.start, facts.end
    acc: dict[str, dict[str, Row]] = {k: {} for k in ("group", "region", "industry", "mode")}

    def rows_for(case: Case) -> list[Row]:
        ent = facts.enterprises.get(case.enterprise_id or 0)
        keys = {"group": case.trade_group or "未分类", "region": case.region or (ent.region if ent else "") or "未填写",
                "industry": (ent.industry if ent else "") or "未填写", "mode": mode_label(case.mode)}
        return [acc[k].setdefault(v, Row(v)) for k, v in keys.items()]

    for case in facts.cases:
        if _in(case.submitted_at, start, end):
            rep.new_cases += 1
            rep.solved_of_new += case.resolved_at is not None
            for row in rows_for(case):
                row.cases += 1
        if _in(case.resolved_at, start, end):
            rep.solved += 1
            rep.help_hours += case.help_hours or 0.0
            for row in rows_for(case):
                row.solved += 1
                row.help_hours += case.help_hours or 0.0
        if _in(case.accepted_at, start, end) and case.submitted_at is not None and case.accepted_at is not None:
            rep.response_hours.append((case.accepted_at - case.submitted_at).total_seconds() / 3600)
    rep.by_group, rep.by_region = _rows(acc["group"]), _rows(acc["region"])
    rep.by_industry, rep.by_mode = _rows(acc["industry"]), _rows(acc["mode"])


def _history(rep: MonthlyReport, facts: MonthFacts) -> None:
    """Requests and solved cases per trade group in each of the chart's months, oldest first."""
    history: dict[str, dict[str, Row]] = defaultdict(dict)
    for case in facts.cases:
        for when, is_solved in ((case.submitted_at, False), (case.resolved_at, True)):
            if when is None or not _in(when, facts.history_start, facts.end):
                continue
            local = when.astimezone(facts.tz)
            group = case.trade_group or "未分类"
            row = history[month_key(local.year, local.month)].setdefault(group, Row(group))
            if is_solved:
                row.solved += 1
                row.help_hours += case.help_hours or 0.0
            else:
                row.cases += 1
    year, mon = parse_month(facts.month)
    rep.history = [(m, history.get(m, {})) for m in
                   (month_key(*add_months(year, mon, i - HISTORY_MONTHS + 1)) for i in range(HISTORY_MONTHS))]


def _story(facts: MonthFacts, case: Case, fb: Feedback, lines: dict[int, CraftsmanLine]) -> CaseStory:
    """:func:`story` from the gathered facts (every rated case's craftsman has a line)."""
    known = lines.get(case.craftsman_id) if case.craftsman_id is not None else None
    ent = facts.enterprises.get(case.enterprise_id or 0)
    return CaseStory(number=case.number, group=case.trade_group, enterprise=ent.name if ent else "",
                     craftsman=known.name if known else "", text=case.text, solution=facts.solutions.get(case.id, ""),
                     rating=fb.rating, comment=fb.comment, help_hours=case.help_hours or 0.0,
                     resolved_at=case.resolved_at)


async def story(session: AsyncSession, case: Case, fb: Feedback | None, enterprises: dict[int, Enterprise],
                lines: dict[int, CraftsmanLine] | None = None) -> CaseStory:
    """A case told for a report: the request, what the craftsman did, what the enterprise said."""
    solution = await session.scalar(select(CaseEvent.detail).where(
        CaseEvent.case_id == case.id, CaseEvent.kind == "resolved").order_by(CaseEvent.id.desc()).limit(1))
    name = ""
    if case.craftsman_id is not None:
        known = (lines or {}).get(case.craftsman_id)
        person = None if known else await session.get(Person, case.craftsman_id)
        name = known.name if known else (person.name if person else "")
    ent = enterprises.get(case.enterprise_id or 0)
    return CaseStory(number=case.number, group=case.trade_group, enterprise=ent.name if ent else "", craftsman=name,
                     text=case.text, solution=solution or "", rating=fb.rating if fb else case.rating,
                     comment=fb.comment if fb else "", help_hours=case.help_hours or 0.0, resolved_at=case.resolved_at)


def _num(value: float | None, fmt: str = "{:.1f}", none: str = "—") -> str:
    return none if value is None else fmt.format(value)


def summary_text(rep: MonthlyReport) -> str:
    """The short chat summary that goes with the workbook."""
    y, m = parse_month(rep.month)
    lines = [
        f"{y}年{m}月 工作进展",
        f"新增需求 {rep.new_cases} 件，解决 {rep.solved} 件，帮扶时长 {rep.help_hours:g} 小时，"
        f"本月需求解决率 {_num(rep.solved_rate and rep.solved_rate * 100, '{:.0f}%')}。",
        f"响应时间（提交→接单）：中位 {_num(rep.response_median_h)} 小时，P90 {_num(rep.response_p90_h)} 小时。",
        f"满意度：{len(rep.ratings)} 条评价，平均 {_num(rep.avg_rating)} 分，"
        f"满意（4–5 分）{_num(rep.satisfied_share and rep.satisfied_share * 100, '{:.0f}%')}"
        + (f"，{rep.unrated} 件未评价" if rep.unrated else "") + "。",
    ]
    if rep.by_group:
        lines.append("按专业：" + "；".join(f"{r.label} {r.cases}" for r in rep.by_group[:6] if r.cases))
    if rep.by_points:
        lines.append("积分前三：" + "、".join(f"{c.name} {c.points:g}" for c in rep.by_points[:3]))
    if rep.typical:
        lines.append("典型案例：" + "；".join(f"#{s.number} {s.group} {s.text[:16]}" for s in rep.typical))
    return "\n".join(lines)


def craftsman_text(rep: MonthlyReport, line: CraftsmanLine) -> str:
    """The month's personal summary each craftsman receives (service hours, cases, points, rating)."""
    _, m = parse_month(rep.month)
    rating = f"平均评分 {line.rating:.1f} 分（{len(line.ratings)} 条评价）" if line.rating is not None else "暂无评价"
    return (f"{line.name} 师傅您好！{m}月您完成服务 {line.cases} 件，服务时长 {line.help_hours:g} 小时，"
            f"获得积分 {line.points:g} 分，{rating}。感谢您对企业的帮扶！")
