"""Craftsman side of an offer: 接单 / 婉拒, with exactly one winner when several tap at once."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from sqlalchemy import select

from handlers import reminders, timers
from handlers.cases import add_event, get_case, transition
from handlers.context import HandlerContext, UserError
from handlers.craftsman.profile import craftsman_intro
from handlers.dispatch import OFFER_TIMEOUT, offer_next, withdraw_pending
from handlers.offer_states import answer_offer
from handlers.router import Command, Router
from storage.models import Case, CaseState, Enterprise, Offer, OfferState, Person, Role

router = Router("craftsman.offers")
DECLINE_REASON = "decline_reason"  # dialog flow: the optional reason after a bare 婉拒


class DeclineStep(StrEnum):
    """Steps of the :data:`DECLINE_REASON` dialog (the stored values)."""

    REASON = "reason"


# What a tapped offer card shows instead of its buttons (WeCom button labels: ≤ 10 characters).
TAP_ACCEPTED = "已接单"
TAP_TAKEN = "已被他人接单"
TAP_DECLINED = "已婉拒"
_TAP_CLOSED = {OfferState.EXPIRED: "邀请已超时", OfferState.WITHDRAWN: "邀请已撤回"}


async def _my_offer(ctx: HandlerContext, case_id: int) -> Offer | None:
    return await ctx.session.scalar(
        select(Offer).where(Offer.case_id == case_id, Offer.craftsman_id == ctx.person.id)
    )


@router.command("接单", roles={Role.CRAFTSMAN}, summary="接单 编号 — 接受派给您的需求")
async def accept(ctx: HandlerContext, cmd: Command) -> None:
    """Accept an offer: a conditional state change makes exactly one craftsman the winner."""
    case = await get_case(ctx.session, cmd.number)
    offer = await _my_offer(ctx, case.id)
    if offer is None:
        raise UserError(f"案件 #{case.number} 没有派给您，无法接单。")
    if offer.state == OfferState.ACCEPTED:
        ctx.tap_outcome = TAP_ACCEPTED
        await ctx.reply(f"您已接下案件 #{case.number}。")
        return
    if offer.state != OfferState.PENDING:
        taken = case.craftsman_id is not None and case.craftsman_id != ctx.person.id
        raise UserError(
            f"案件 #{case.number} 已由其他师傅接单，感谢您的支持！" if taken
            else f"案件 #{case.number} 的邀请已失效（{_offer_label(offer.state)}）。",
            tap_outcome=_tap_label(ctx, case, offer),
        )
    won = await transition(
        ctx, case, CaseState.ASSIGNED, actor=ctx.person, detail=f"{ctx.person.name} 接单",
        values={"craftsman_id": ctx.person.id, "accepted_at": ctx.now()},
    )
    if not won:
        await answer_offer(ctx.session, offer, OfferState.TAKEN, now=ctx.now())
        ctx.tap_outcome = TAP_TAKEN
        await ctx.reply(f"案件 #{case.number} 已由其他师傅接单，感谢您的支持！")
        return
    await answer_offer(ctx.session, offer, OfferState.ACCEPTED, now=ctx.now())
    ctx.tap_outcome = TAP_ACCEPTED
    await withdraw_pending(ctx, case, state=OfferState.TAKEN, notify=f"案件 #{case.number} 已由其他师傅接单，感谢您的支持！")
    await timers.cancel(ctx.session, case_id=case.id, kinds=[OFFER_TIMEOUT])
    ctx.person.current_case_id = case.id
    requester = await ctx.session.get(Person, case.requester_id)
    if requester is not None:
        requester.current_case_id = case.id
    enterprise = await ctx.session.get(Enterprise, case.enterprise_id) if case.enterprise_id else None
    intro = await craftsman_intro(ctx, ctx.person)
    await ctx.outbox.to_person(
        case.requester_id,
        f"好消息！案件 #{case.number} 已由{intro}接单。\n"
        "您可以直接在这里发消息和照片，我会转达给师傅；师傅的回复也会发到这里。",
        case_id=case.id,
    )
    contact = requester.name if requester else ""
    phone = f"，电话 {requester.phone}" if ctx.settings.bot.share_phone and requester and requester.phone else ""
    await ctx.reply(
        f"接单成功：案件 #{case.number}。\n企业：{enterprise.name if enterprise else ''}，联系人 {contact}{phone}。\n"
        f"需求：{case.text}\n"
        f"直接回复消息即转达给企业。\n"
        f"进展：「进展 {case.number} 内容」 预约上门：「预约 {case.number} 2026-12-01 09:00」 "
        f"完成：「完成 {case.number} 用时3小时 说明」"
    )
    await reminders.reset_progress_clock(ctx, case)  # the progress nudge and staff alert start now


def _offer_label(state: str) -> str:
    return {"declined": "您已婉拒", "expired": "已超时", "taken": "他人已接", "withdrawn": "已撤回"}.get(state, state)


def _tap_label(ctx: HandlerContext, case: Case, offer: Offer) -> str | None:
    """What the offer card should show once ``offer`` is answered (None while it is still open)."""
    state = OfferState(offer.state)
    if state == OfferState.ACCEPTED:
        return TAP_ACCEPTED
    if state == OfferState.TAKEN or (case.craftsman_id is not None and case.craftsman_id != ctx.person.id):
        return TAP_TAKEN
    if state == OfferState.DECLINED:
        return TAP_DECLINED
    return _TAP_CLOSED.get(state)


@router.command("婉拒", "拒绝", roles={Role.CRAFTSMAN}, summary="婉拒 编号 原因 — 婉拒派单（原因可选）")
async def decline(ctx: HandlerContext, cmd: Command) -> None:
    """Decline an offer; the next candidate gets it. A reason is recorded when given."""
    case = await get_case(ctx.session, cmd.number)
    offer = await _my_offer(ctx, case.id)
    if offer is None or offer.state != OfferState.PENDING:
        raise UserError(f"案件 #{case.number} 目前没有待您答复的邀请。",
                        tap_outcome=_tap_label(ctx, case, offer) if offer is not None else None)
    reason = cmd.rest.strip()[:300]
    if not await answer_offer(ctx.session, offer, OfferState.DECLINED, now=ctx.now(), reason=reason):
        raise UserError(f"案件 #{case.number} 的邀请已失效。", tap_outcome=_tap_label(ctx, case, offer))
    ctx.tap_outcome = TAP_DECLINED
    await timers.cancel(ctx.session, offer_id=offer.id)
    await add_event(ctx, ctx.session, case, "offer_declined", at=ctx.now(), actor=ctx.person,
                    detail=f"{ctx.person.name} 婉拒：{reason or '未说明原因'}", data={"reason": reason})
    if reason:
        await ctx.reply(f"已婉拒案件 #{case.number}，感谢告知。")
    else:
        ctx.dialog.start(DECLINE_REASON, DeclineStep.REASON, {"case_id": case.id})
        await ctx.reply(f"已婉拒案件 #{case.number}。方便的话回复一句原因（如：本周出差），直接忽略也可以。")
    if case.state == CaseState.OFFERED:
        await offer_next(ctx, case)


@router.dialog(DECLINE_REASON, ttl=timedelta(minutes=15))
async def decline_reason(ctx: HandlerContext, text: str) -> None:
    """The optional reason after a bare 婉拒."""
    case_id = int(ctx.dialog.data["case_id"])
    await ctx.dialog.clear()
    offer = await _my_offer(ctx, case_id)
    if offer is not None and not offer.reason:
        offer.reason = text.strip()[:300]
        case = await ctx.session.get(Case, case_id)
        if case is not None:
            await add_event(ctx, ctx.session, case, "note", at=ctx.now(), actor=ctx.person,
                            detail=f"婉拒原因：{offer.reason}")
            if case.state == CaseState.ESCALATED:  # staff already got the story: complete it
                await ctx.outbox.to_staff(f"补充 #{case.number}：{ctx.person.name} 婉拒原因：{offer.reason}",
                                          case_id=case.id, groups=(case.trade_group,))
    await ctx.reply("收到，谢谢！")
