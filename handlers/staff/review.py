"""Staff review gate: 待审 lists, 审核 approves (matching starts) or rejects with a reason."""

from __future__ import annotations

from sqlalchemy import select

from handlers import candidates
from handlers.cases import add_event, get_case, summary, transition
from handlers.context import HandlerContext, UserError
from handlers.dispatch import start_matching
from handlers.messages import Button, card
from handlers.router import Command, Router
from storage.models import Case, CaseState, Enterprise, Role

router = Router("staff.review")
STAFF = {Role.STAFF}


async def notify_review(ctx: HandlerContext, case: Case) -> None:
    """Tell staff a case waits for review, with the classifier's view and one-tap actions."""
    enterprise = await ctx.session.get(Enterprise, case.enterprise_id) if case.enterprise_id else None
    body = summary(case, enterprise.name if enterprise else "")
    if case.trade_group:
        body += f"\n系统判断：{case.trade_group}（置信度 {case.group_confidence:.2f}）"
    else:
        body += "\n系统未能判断专业，请人工指定。"
    ranked = await candidates.rank(ctx.session, case, now=ctx.now(), exclude=set(), top_k=3)
    if ranked:
        body += "\n推荐师傅："
        body += "".join(f"\n· {r.name}（编号 {r.code}）：{'；'.join(r.reasons[:3])}" for r in ranked)
    else:
        body += "\n暂无匹配的师傅，请人工指定。"
    buttons = [Button("通过", f"审核 {case.number} 通过")]
    buttons += [Button(f"派给{r.name}", f"派单 {case.number} {r.code}") for r in ranked[:3]]
    buttons.append(Button("驳回", f"审核 {case.number} 驳回"))
    await ctx.outbox.to_staff(card(f"待审核：案件 #{case.number}", body, buttons), case_id=case.id,
                              groups=(case.trade_group,))


@router.command("待审", roles=STAFF, summary="待审 — 查看待审核的需求")
async def pending(ctx: HandlerContext, cmd: Command) -> None:
    """List cases waiting for review."""
    cases = (await ctx.session.scalars(
        select(Case).where(Case.state == CaseState.SUBMITTED.value).order_by(Case.id).limit(20)
    )).all()
    if not cases:
        await ctx.reply("目前没有待审核的需求。")
        return
    lines = [f"待审核 {len(cases)} 件："]
    lines += [f"· #{c.number} {c.trade_group or '未分类'} {c.text[:30]}" for c in cases]
    lines.append("回复「审核 编号 通过」或「审核 编号 驳回 原因」。")
    await ctx.reply("\n".join(lines))


@router.command("审核", roles=STAFF, summary="审核 编号 通过|驳回 原因 — 审核需求")
async def review(ctx: HandlerContext, cmd: Command) -> None:
    """Approve (matching starts at once) or reject with a reason the enterprise is told."""
    case = await get_case(ctx.session, cmd.number)
    verdict, _, reason = cmd.rest.partition(" ")
    reason = reason.strip()
    if case.state != CaseState.SUBMITTED:
        raise UserError(f"案件 #{case.number} 不在待审核状态（当前：{case.state}）。")
    if verdict in ("通过", "同意", "批准"):
        await transition(ctx, case, CaseState.APPROVED, actor=ctx.person, detail="审核通过")
        await ctx.reply(f"#{case.number} 已通过，开始匹配师傅。")
        await ctx.outbox.to_person(case.requester_id, f"您的需求 #{case.number} 已通过审核，正在为您匹配工匠师傅。",
                                   case_id=case.id)
        await start_matching(ctx, case, actor=ctx.person)
        return
    if verdict in ("驳回", "拒绝", "不通过"):
        if not reason:
            raise UserError(f"驳回需要写明原因，例如「审核 {case.number} 驳回 不属于服务范围」。")
        await transition(ctx, case, CaseState.REJECTED, actor=ctx.person, detail=reason, values={"close_reason": reason})
        await ctx.outbox.to_person(
            case.requester_id,
            f"很抱歉，您的需求 #{case.number} 暂时无法受理：{reason}。\n如有疑问可以补充说明后重新提交，谢谢理解。",
            case_id=case.id,
        )
        await ctx.reply(f"#{case.number} 已驳回，已告知企业。")
        return
    raise UserError(f"请写「审核 {case.number} 通过」或「审核 {case.number} 驳回 原因」。")


async def add_note(ctx: HandlerContext, case: Case, note: str) -> None:
    await add_event(ctx, ctx.session, case, "note", at=ctx.now(), actor=ctx.person, detail=note)
