"""按季报案例: the quarter's solved cases with the highest ratings, told as short stories."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.reports import parse_quarter, quarter_bounds
from handlers.reports.monthly import CaseStory, story
from handlers.settings import Settings
from storage.models import Case, Enterprise, Feedback


@dataclass
class QuarterlyCollection:
    quarter: str
    solved: int = 0
    stories: list[CaseStory] = field(default_factory=list)


async def build_quarterly(session: AsyncSession, settings: Settings, quarter: str) -> QuarterlyCollection:
    """Cases rated in the quarter, best first (rating, then help hours), at most ``timers.quarterly_cases``."""
    start, end = quarter_bounds(quarter, settings.tz)
    rows = (await session.execute(select(Feedback, Case).join(Case, Case.id == Feedback.case_id).where(
        Feedback.at >= start, Feedback.at < end))).all()
    enterprises = {e.id: e for e in (await session.scalars(select(Enterprise))).all()}
    rated = sorted(((fb, c) for fb, c in rows if fb.rating is not None),
                   key=lambda fc: (-(fc[0].rating or 0), -(fc[1].help_hours or 0), fc[1].id))
    out = QuarterlyCollection(quarter=quarter, solved=len(rows))
    out.stories = [await story(session, c, fb, enterprises) for fb, c in rated[: settings.timers.quarterly_cases]]
    return out


def quarterly_markdown(col: QuarterlyCollection) -> str:
    y, q = parse_quarter(col.quarter)
    lines = [f"### {y}年第{q}季度 典型案例", "", f"本季度结案 {col.solved} 件，以下为评价最高的 {len(col.stories)} 件：", ""]
    if not col.stories:
        return f"{y}年第{q}季度 暂无已评价的结案案例。"
    for i, s in enumerate(col.stories, start=1):
        stars = "★" * (s.rating or 0)
        lines.append(f"**{i}. #{s.number} {s.group}｜{s.enterprise}｜{s.craftsman} 师傅** {stars}")
        lines.append(f"- 需求：{s.text[:80]}")
        if s.solution:
            lines.append(f"- 做法：{s.solution[:80]}")
        if s.comment:
            lines.append(f"- 企业评价：{s.comment[:60]}")
        lines.append(f"- 用时 {s.help_hours:g} 小时")
        lines.append("")
    return "\n".join(lines).rstrip()
