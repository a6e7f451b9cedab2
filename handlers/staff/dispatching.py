"""Staff dispatch: 派单 to a chosen craftsman, 改派 to the next candidate, 取消案件."""

from __future__ import annotations

from sqlalchemy import or_, select

from handlers import timers
from handlers.cases import get_case, transition
from handlers.context import HandlerContext, UserError
from handlers.dispatch import make_offer, offer_next, withdraw_pending
from handlers.router import Command, Router
from handlers.visibility import scope_of
from storage.models import ACTIVE_STATES, Case, CaseState, Craftsman, OfferState, Person, Role

router = Router("staff.dispatching")
STAFF = {Role.STAFF}
DISPATCHABLE = (CaseState.SUBMITTED, CaseState.APPROVED, CaseState.MATCHING, CaseState.OFFERED, CaseState.ESCALATED)


async def find_craftsman(ctx: HandlerContext, who: str) -> Person:
    """By 编号 or by name; a name that fits several craftsmen is refused with the candidates listed."""
    who = who.strip()
    if not who:
        raise UserError("请写上师傅的姓名或编号。")
    rows = (await ctx.session.execute(
        select(Person, Craftsman).join(Craftsman, Craftsman.person_id == Person.id)
        .where(or_(Craftsman.code == who, Person.name == who))
    )).all()
    if not rows:
        raise UserError(f"没有找到师傅「{who}」，请检查姓名或编号。")
    if len(rows) > 1:
        listing = "、".join(f"{p.name}（编号 {c.code}，{c.trade_group}）" for p, c in rows)
        raise UserError(f"有多位师傅叫「{who}」：{listing}。请用编号指定。")
    return rows[0][0]


async def check_lead_may_dispatch(ctx: HandlerContext, case: Case, craftsman: Person) -> None:
    """A group lead dispatches their groups' cases to their groups' craftsmen only; crossing groups is
    an admin or staff action (the scope is ``handlers/visibility.py``'s)."""
    scope = await scope_of(ctx.session, ctx.person.id)
    if scope.groups is None:
        return
    mine = "、".join(scope.groups) or "无"
    if not scope.sees(case.trade_group):
        raise UserError(f"案件 #{case.number} 不属于您负责的专业小组（{mine}），请联系工作人员派单。")
    group = await ctx.session.scalar(select(Craftsman.trade_group).where(Craftsman.person_id == craftsman.id))
    if not scope.sees(group):
        raise UserError(f"组长只能派给本组（{mine}）的师傅；{craftsman.name}属于{group or '其他小组'}，"
                        "跨组派单请联系工作人员。")


async def dispatch_to(ctx: HandlerContext, case: Case, craftsman: Person) -> None:
    """One code path for chat 派单 and the console's dispatch button."""
    if CaseState(case.state) not in DISPATCHABLE:
        raise UserError(f"案件 #{case.number} 当前状态不能派单。")
    await check_lead_may_dispatch(ctx, case, craftsman)
    if case.state == CaseState.SUBMITTED:
        await transition(ctx, case, CaseState.APPROVED, actor=ctx.person, detail="派单即审核通过")
    if case.state in (CaseState.APPROVED, CaseState.ESCALATED):
        await transition(ctx, case, CaseState.MATCHING, actor=ctx.person, detail=f"人工派单给 {craftsman.name}")
    await withdraw_pending(ctx, case, state=OfferState.WITHDRAWN, notify=f"案件 #{case.number} 已由工作人员另行安排，邀请撤回。")
    await make_offer(ctx, case, craftsman.id, reasons=[f"工作人员 {ctx.person.name} 指定"], actor=ctx.person)


@router.command("派单", roles=STAFF, summary="派单 编号 师傅姓名或编号 — 指定师傅")
async def dispatch(ctx: HandlerContext, cmd: Command) -> None:
    """Offer the case to the chosen craftsman (they still accept with one tap)."""
    case = await get_case(ctx.session, cmd.number)
    craftsman = await find_craftsman(ctx, cmd.rest)
    await dispatch_to(ctx, case, craftsman)
    await ctx.reply(f"已将 #{case.number} 派给 {craftsman.name}，等待师傅接单。")


async def redispatch_case(ctx: HandlerContext, case: Case, reason: str = "") -> None:
    """Take the case from its craftsman (or withdraw pending offers) and offer it to the next candidate."""
    state = CaseState(case.state)
    if state in ACTIVE_STATES:
        old = case.craftsman_id
        await transition(ctx, case, CaseState.MATCHING, actor=ctx.person, detail=f"改派：{reason or '工作人员调整'}",
                         values={"craftsman_id": None, "accepted_at": None})
        if old is not None:
            await ctx.outbox.to_person(old, f"案件 #{case.number} 已由工作人员改派他人，感谢您的付出。", case_id=case.id)
        await ctx.outbox.to_person(case.requester_id, f"案件 #{case.number} 正在为您更换师傅，请稍候。", case_id=case.id)
    elif state in (CaseState.OFFERED, CaseState.ESCALATED, CaseState.APPROVED):
        await withdraw_pending(ctx, case, state=OfferState.WITHDRAWN, notify=f"案件 #{case.number} 的邀请已撤回。")
        await transition(ctx, case, CaseState.MATCHING, actor=ctx.person, detail=f"改派：{reason or '工作人员调整'}")
    else:
        raise UserError(f"案件 #{case.number} 当前状态不能改派。")
    await offer_next(ctx, case)


@router.command("改派", roles=STAFF, summary="改派 编号 — 换下一位候选师傅")
async def redispatch(ctx: HandlerContext, cmd: Command) -> None:
    """Re-dispatch to the next candidate."""
    case = await get_case(ctx.session, cmd.number)
    await redispatch_case(ctx, case, cmd.rest)
    await ctx.reply(f"#{case.number} 已改派，正在联系下一位候选师傅。")


async def cancel_case(ctx: HandlerContext, case: Case, reason: str) -> None:
    if not reason:
        raise UserError(f"取消需要写明原因，例如「取消案件 {case.number} 企业已自行解决」。")
    old = case.craftsman_id
    if not await transition(ctx, case, CaseState.CANCELLED, actor=ctx.person, detail=reason, values={"close_reason": reason}):
        raise UserError(f"案件 #{case.number} 当前状态不能取消。")
    await withdraw_pending(ctx, case, state=OfferState.WITHDRAWN, notify=f"案件 #{case.number} 已取消，邀请撤回。")
    await timers.cancel(ctx.session, case_id=case.id)
    await ctx.outbox.to_person(case.requester_id, f"案件 #{case.number} 已取消：{reason}。", case_id=case.id)
    if old is not None:
        await ctx.outbox.to_person(old, f"案件 #{case.number} 已取消：{reason}。", case_id=case.id)


@router.command("取消案件", roles=STAFF, summary="取消案件 编号 原因 — 取消一个案件")
async def cancel(ctx: HandlerContext, cmd: Command) -> None:
    """Cancel a case with a reason; both sides are told."""
    case = await get_case(ctx.session, cmd.number)
    await cancel_case(ctx, case, cmd.rest.strip())
    await ctx.reply(f"#{case.number} 已取消。")
