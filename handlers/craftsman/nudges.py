"""One-tap answers to a progress nudge: 已在处理 / 需要协助 / 无法继续."""

from __future__ import annotations

from handlers import reminders, timers
from handlers.cases import add_event, get_case, transition
from handlers.context import HandlerContext, UserError
from handlers.dispatch import offer_next
from handlers.router import Command, Router
from storage.models import ACTIVE_STATES, Case, CaseState, Role

router = Router("craftsman.nudges")


async def _mine(ctx: HandlerContext, cmd: Command) -> Case:
    case = await get_case(ctx.session, cmd.number)
    if case.craftsman_id != ctx.person.id or CaseState(case.state) not in ACTIVE_STATES:
        raise UserError(f"案件 #{case.number} 不是您正在服务的案件。")
    return case


@router.command("已在处理", roles={Role.CRAFTSMAN}, summary="已在处理 编号 — 答复进展提醒")
async def working(ctx: HandlerContext, cmd: Command) -> None:
    """Still on it: restart the progress clock."""
    case = await _mine(ctx, cmd)
    await add_event(ctx, ctx.session, case, "progress", at=ctx.now(), actor=ctx.person, detail="师傅确认仍在处理")
    case.last_activity_at = ctx.now()
    await reminders.reset_progress_clock(ctx, case)
    await ctx.reply(f"好的，#{case.number} 继续由您跟进。有进展可发「进展 {case.number} 内容」。")


@router.command("需要协助", roles={Role.CRAFTSMAN}, summary="需要协助 编号 说明 — 请工作人员协助")
async def need_help(ctx: HandlerContext, cmd: Command) -> None:
    """Ask staff for help on the case."""
    case = await _mine(ctx, cmd)
    note = cmd.rest.strip() or "未说明"
    await add_event(ctx, ctx.session, case, "help_requested", at=ctx.now(), actor=ctx.person, detail=f"请求协助：{note}")
    await ctx.outbox.to_staff(f"🙋 {ctx.person.name} 师傅在 #{case.number} 请求协助：{note}。回复「查 {case.number}」查看。",
                              case_id=case.id, groups=(case.trade_group,))
    await ctx.reply("已通知工作人员，他们会尽快联系您。")


@router.command("无法继续", roles={Role.CRAFTSMAN}, summary="无法继续 编号 原因 — 退回重新匹配")
async def give_up(ctx: HandlerContext, cmd: Command) -> None:
    """The craftsman cannot go on: the case returns to matching with the reason recorded."""
    case = await _mine(ctx, cmd)
    reason = cmd.rest.strip() or "未说明原因"
    await transition(ctx, case, CaseState.MATCHING, actor=ctx.person, detail=f"师傅无法继续：{reason}",
                     values={"craftsman_id": None, "accepted_at": None})
    await timers.cancel(ctx.session, case_id=case.id)
    ctx.person.current_case_id = None
    await ctx.outbox.to_person(case.requester_id, f"案件 #{case.number} 的师傅因故无法继续，正在为您重新匹配，请稍候。",
                               case_id=case.id)
    await ctx.reply(f"已退回 #{case.number}，原因已记录，谢谢告知。")
    await offer_next(ctx, case)
