"""The staff daily digest: one compact markdown message about the previous day (or days, after downtime).

Sections with nothing in them are left out; a day with nothing at all is one line. A group lead gets
the digest of their trade groups only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.reports import day_start
from handlers.settings import Settings
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
    tz = settings.tz
    yesterday = today - timedelta(days=1)
    first = min(first_day or yesterday, yesterday)
    start, end = day_start(first, tz), day_start(today, tz)
    title = f"工作日报 {_d(today)}"

    def mine(case: Case) -> bool:
        return groups is None or case.trade_group in groups

    def line(case: Case, extra: str = "") -> str:
        return f"#{case.number} {case.trade_group or '未分类'} {case.text[:18]}{extra}"

    names: dict[int, str] = {}

    async def name(pid: int | None) -> str:
        if pid is None:
            return ""
        if pid not in names:
            person = await session.get(Person, pid)
            names[pid] = person.name if person else str(pid)
        return names[pid]

    recent = [c for c in (await session.scalars(select(Case).where(
        Case.state != CaseState.DRAFT.value, Case.submitted_at >= start, Case.submitted_at < end).order_by(Case.id)
    )).all() if mine(c)]
    assigned = await session.scalar(select(func.count()).select_from(Case).where(
        Case.accepted_at >= start, Case.accepted_at < end,
        *([Case.trade_group.in_(groups)] if groups is not None else [])))
    solved = await session.scalar(select(func.count()).select_from(Case).where(
        Case.resolved_at >= start, Case.resolved_at < end,
        *([Case.trade_group.in_(groups)] if groups is not None else [])))
    open_cases = [c for c in (await session.scalars(select(Case).where(Case.state.in_(
        [CaseState.SUBMITTED.value, CaseState.ESCALATED.value, *[s.value for s in ACTIVE_STATES]])).order_by(Case.id)
    )).all() if mine(c)]

    review = [line(c) for c in open_cases if c.state == CaseState.SUBMITTED]
    untaken = [line(c) for c in open_cases if c.state == CaseState.ESCALATED]
    expired = (await session.execute(select(Offer, Case).join(Case, Case.id == Offer.case_id).where(
        Offer.state == OfferState.EXPIRED.value, Offer.answered_at >= start, Offer.answered_at < end))).all()
    expired_n = sum(1 for _, c in expired if mine(c))
    stall_after = timedelta(hours=settings.timers.progress_nudge_h)
    stalled = []
    for c in open_cases:
        last = c.last_activity_at or c.accepted_at
        if CaseState(c.state) in ACTIVE_STATES and last is not None and now - last >= stall_after:
            hours = (now - last).total_seconds() / 3600
            stalled.append(line(c, f"（{await name(c.craftsman_id)}，{hours:.0f} 小时无进展）"))
    day_end = end + timedelta(days=1)
    appointments = sorted((c for c in open_cases if c.appointment_at is not None and end <= c.appointment_at < day_end
                           and CaseState(c.state) in ACTIVE_STATES), key=lambda c: c.appointment_at or end)
    visits = [f"{c.appointment_at.astimezone(tz):%H:%M} " + line(c, f"（{await name(c.craftsman_id)}）")
              for c in appointments if c.appointment_at is not None]
    feedback = [(fb, c) for fb, c in (await session.execute(select(Feedback, Case).join(Case, Case.id == Feedback.case_id)
                .where(Feedback.at >= start, Feedback.at < end).order_by(Feedback.id))).all() if mine(c)]
    ratings = [fb.rating for fb, _ in feedback if fb.rating is not None]
    low = [f"#{c.number} {fb.rating} 分（{await name(c.craftsman_id)}）{fb.comment[:30]}"
           for fb, c in feedback if fb.rating is not None and fb.rating <= 2]
    undelivered = (await session.execute(select(OutboxMessage.state, func.count()).where(
        OutboxMessage.state.in_([OutboxState.HELD.value, OutboxState.DEAD.value]),
        OutboxMessage.created_at >= start, OutboxMessage.created_at < end).group_by(OutboxMessage.state))).all()

    span = _span(first, yesterday)
    body: list[str] = []
    if first < yesterday:
        body += [f"（服务曾中断，{_span(first, yesterday - timedelta(days=1))} 的日报未发出，已并入本报。）", ""]
    counts = [f"新需求 {len(recent)}", f"已接单 {assigned or 0}", f"已解决 {solved or 0}"]
    if recent or assigned or solved:
        body += [f"**{span}**：" + " · ".join(counts), ""]
    body += _section("待审核", review)
    body += _section("无人接单，待人工派单", untaken)
    if expired_n:
        body += [f"另有 {expired_n} 次接单邀请超时未答复。", ""]
    body += _section("进展停滞", stalled)
    body += _section(f"今日预约上门（{_d(today)}）", visits)
    if ratings:
        avg = sum(ratings) / len(ratings)
        body += [f"**评价**：{len(ratings)} 条，平均 {avg:.1f} 分"
                 + (f"，另 {len(feedback) - len(ratings)} 件超时未评价" if len(feedback) > len(ratings) else ""), ""]
        body += _section("低分评价（≤2 分）", low)
    elif feedback:
        body += [f"**评价**：{len(feedback)} 件超时未评价，自动结案", ""]
    per_group = Counter(c.trade_group or "未分类" for c in recent)
    if per_group:
        body += ["**按专业**：" + " · ".join(f"{g} {n}" for g, n in per_group.most_common()), ""]
    if undelivered:
        labels = {OutboxState.HELD.value: "平台暂不允许发送（已暂存）", OutboxState.DEAD.value: "发送失败"}
        body += ["**未送达消息**：" + "；".join(f"{labels[s]} {n} 条" for s, n in undelivered), ""]
    if not [b for b in body if b and not b.startswith("（服务曾中断")]:
        return Digest(title, f"{title}：{span}没有新情况，也没有待处理的事项。", True)
    return Digest(title, "\n".join([f"### {title}", "", *body]).rstrip(), False)
