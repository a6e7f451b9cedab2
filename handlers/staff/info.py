"""Staff views in chat: 查 (a case's full timeline) and 统计 (this month at a glance)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from handlers.cases import get_case, summary
from handlers.context import HandlerContext
from handlers.router import Command, Router
from storage.models import Case, CaseEvent, CaseState, Enterprise, Person, Role

router = Router("staff.info")
STAFF = {Role.STAFF}


async def timeline_lines(ctx: HandlerContext, case: Case) -> list[str]:
    tz = ctx.settings.tz
    events = (await ctx.session.scalars(
        select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.at, CaseEvent.id)
    )).all()
    return [f"{e.at.astimezone(tz):%m-%d %H:%M} {e.actor_label}：{e.detail or e.kind}" for e in events]


@router.command("查", "查询", roles=STAFF, summary="查 编号 — 查看案件全过程")
async def show(ctx: HandlerContext, cmd: Command) -> None:
    """The full timeline of a case, with its match reasons."""
    case = await get_case(ctx.session, cmd.number)
    enterprise = await ctx.session.get(Enterprise, case.enterprise_id) if case.enterprise_id else None
    lines = [summary(case, enterprise.name if enterprise else "")]
    if case.craftsman_id:
        craftsman = await ctx.session.get(Person, case.craftsman_id)
        lines.append(f"师傅：{craftsman.name if craftsman else case.craftsman_id}")
    if case.help_hours is not None:
        lines.append(f"用时：{case.help_hours:g} 小时")
    if case.rating is not None:
        lines.append(f"评分：{case.rating} 分")
    if case.match_reasons:
        lines.append("匹配推荐：")
        lines += [f"· {m['name']}：{'；'.join(m['reasons'][:4])}" for m in case.match_reasons[:3]]
    lines.append("过程：")
    lines += await timeline_lines(ctx, case)
    await ctx.reply("\n".join(lines))


def month_start(now: datetime, ctx: HandlerContext) -> datetime:
    local = now.astimezone(ctx.settings.tz)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


@router.command("统计", roles=STAFF, summary="统计 — 本月新增、解决、帮扶时长、满意度")
async def stats(ctx: HandlerContext, cmd: Command) -> None:
    """This month: new, solved, help hours, average rating, per trade group."""
    start = month_start(ctx.now(), ctx)
    new = await ctx.session.scalar(select(func.count()).select_from(Case).where(
        Case.submitted_at >= start, Case.state != CaseState.DRAFT.value))
    solved_row = (await ctx.session.execute(
        select(func.count(), func.coalesce(func.sum(Case.help_hours), 0.0), func.avg(Case.rating))
        .where(Case.resolved_at >= start)
    )).one()
    per_group = (await ctx.session.execute(
        select(Case.trade_group, func.count()).where(Case.submitted_at >= start, Case.state != CaseState.DRAFT.value)
        .group_by(Case.trade_group).order_by(func.count().desc())
    )).all()
    avg = f"{solved_row[2]:.1f} 分" if solved_row[2] is not None else "暂无"
    lines = [
        f"{start:%Y年%m月} 统计：",
        f"新增需求 {new or 0} 件，已解决 {solved_row[0]} 件，帮扶时长 {float(solved_row[1]):g} 小时，平均评分 {avg}。",
    ]
    if per_group:
        lines.append("按专业：" + "；".join(f"{g or '未分类'} {n}" for g, n in per_group))
    await ctx.reply("\n".join(lines))
