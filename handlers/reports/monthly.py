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


async def build_monthly(session: AsyncSession, settings: Settings, month: str) -> MonthlyReport:
    """All figures of one month (``"2026-11"``), plus the previous months' per-group figures for the chart."""
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
    points = (await session.execute(
        select(PointsEntry.craftsman_id, PointsEntry.points).where(PointsEntry.at >= start, PointsEntry.at < end)
    )).all()
    rep = MonthlyReport(month=month)
    acc: dict[str, dict[str, Row]] = {k: {} for k in ("group", "region", "industry", "mode")}

    def rows_for(case: Case) -> list[Row]:
        ent = enterprises.get(case.enterprise_id or 0)
        keys = {"group": case.trade_group or "未分类", "region": case.region or (ent.region if ent else "") or "未填写",
                "industry": (ent.industry if ent else "") or "未填写", "mode": mode_label(case.mode)}
        return [acc[k].setdefault(v, Row(v)) for k, v in keys.items()]

    history: dict[str, dict[str, Row]] = defaultdict(dict)
    by_id = {c.id: c for c in cases}
    for case in cases:
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
        for when, is_solved in ((case.submitted_at, False), (case.resolved_at, True)):
            if _in(when, hist_start, end):
                assert when is not None
                local = when.astimezone(tz)
                row = history[month_key(local.year, local.month)].setdefault(case.trade_group or "未分类",
                                                                             Row(case.trade_group or "未分类"))
                if is_solved:
                    row.solved += 1
                    row.help_hours += case.help_hours or 0.0
                else:
                    row.cases += 1
    rep.by_group, rep.by_region = _rows(acc["group"]), _rows(acc["region"])
    rep.by_industry, rep.by_mode = _rows(acc["industry"]), _rows(acc["mode"])
    rep.history = [(m, history.get(m, {})) for m in
                   (month_key(*add_months(year, mon, i - HISTORY_MONTHS + 1)) for i in range(HISTORY_MONTHS))]

    lines: dict[int, CraftsmanLine] = {}

    async def line(pid: int) -> CraftsmanLine:
        if pid not in lines:
            person = await session.get(Person, pid)
            craftsman = await session.get(Craftsman, pid)
            lines[pid] = CraftsmanLine(pid, person.name if person else str(pid), craftsman.trade_group if craftsman else "")
        return lines[pid]

    for case in cases:
        if _in(case.resolved_at, start, end) and case.craftsman_id is not None:
            cl = await line(case.craftsman_id)
            cl.cases += 1
            cl.help_hours += case.help_hours or 0.0
    for pid, pts in points:
        (await line(pid)).points += pts
    rated: list[tuple[Feedback, Case]] = []
    for fb in feedback:
        if fb.rating is None:
            rep.unrated += 1
            continue
        rep.ratings.append(fb.rating)
        case_row = by_id.get(fb.case_id) or await session.get(Case, fb.case_id)
        if case_row is not None:
            rated.append((fb, case_row))
            if case_row.craftsman_id is not None:
                (await line(case_row.craftsman_id)).ratings.append(fb.rating)
    rep.craftsmen = sorted(lines.values(), key=lambda c: c.name)
    rated.sort(key=lambda fc: (-(fc[0].rating or 0), -(fc[1].help_hours or 0), fc[1].id))
    rep.typical = [await story(session, case, fb, enterprises, lines) for fb, case in rated[:3]]
    return rep


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
