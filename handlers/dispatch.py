"""Matching a case to craftsmen and offering it: sequential (one at a time) or parallel for urgent cases.

An offer is a row plus an ``offer_timeout`` timer; a decline or a timeout moves to the next candidate,
and after ``bot.max_candidates`` offers the case is escalated to staff with the whole story.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from handlers import candidates, timers
from handlers.cases import add_event, summary, transition
from handlers.context import HandlerContext
from handlers.messages import Button, card
from handlers.offer_states import answer_offer
from handlers.quiet import person_quiet_until
from storage.models import Case, CaseState, Craftsman, Enterprise, Offer, OfferState, Person, Timer

OFFER_TIMEOUT = "offer_timeout"
OFFER_SEND = "offer_send"  # a non-urgent offer held through the craftsman's quiet hours


async def offers_of(ctx: HandlerContext, case: Case) -> list[Offer]:
    return list((await ctx.session.scalars(select(Offer).where(Offer.case_id == case.id).order_by(Offer.id))).all())


async def start_matching(ctx: HandlerContext, case: Case, *, actor: Person | None = None, detail: str = "") -> None:
    """Approved (or returned) case → matching → offers to the best candidates."""
    if case.state != CaseState.MATCHING and not await transition(
        ctx, case, CaseState.MATCHING, actor=actor, detail=detail or "开始匹配"
    ):
        return
    await offer_next(ctx, case)


async def offer_next(ctx: HandlerContext, case: Case) -> None:
    """Offer the case to the next best candidate(s), or escalate when there are none left."""
    offers = await offers_of(ctx, case)
    if any(o.state == OfferState.PENDING for o in offers):
        return  # parallel offers still open: wait for them
    settings = ctx.settings.bot
    tried = len([o for o in offers if o.state != OfferState.WITHDRAWN])
    if tried >= settings.max_candidates:
        await escalate(ctx, case, f"已有 {tried} 位师傅未接单")
        return
    ranked = await candidates.rank(
        ctx.session, case, now=ctx.now(), exclude={o.craftsman_id for o in offers}, top_k=10
    )
    if not case.match_reasons:
        case.match_reasons = [
            {"person_id": int(r.key), "name": r.name, "score": round(r.score, 3), "reasons": list(r.reasons)}
            for r in ranked[:5]
        ]
    if not ranked:
        await escalate(ctx, case, "没有符合条件的空闲师傅")
        return
    parallel = case.urgent and settings.offer_policy == "parallel"
    count = min(settings.parallel_offers if parallel else 1, settings.max_candidates - tried)
    for rank_no, result in enumerate(ranked[:count], start=tried + 1):
        await make_offer(ctx, case, int(result.key), rank=rank_no, score=result.score, reasons=list(result.reasons))


async def make_offer(
    ctx: HandlerContext,
    case: Case,
    craftsman_id: int,
    *,
    rank: int = 0,
    score: float = 0.0,
    reasons: list[str] | None = None,
    actor: Person | None = None,
) -> Offer:
    now = ctx.now()
    existing = await ctx.session.scalar(
        select(Offer).where(Offer.case_id == case.id, Offer.craftsman_id == craftsman_id)
    )
    if existing is not None:  # staff may re-offer to someone who declined earlier
        offer = existing
        offer.state, offer.created_at, offer.answered_at, offer.reason = OfferState.PENDING.value, now, None, ""
    else:
        offer = Offer(
            case_id=case.id, craftsman_id=craftsman_id, rank=rank, score=score, reasons=reasons or [], created_at=now
        )
        ctx.session.add(offer)
    await ctx.session.flush()
    if case.state != CaseState.OFFERED:
        await transition(ctx, case, CaseState.OFFERED, actor=actor, detail="发出接单邀请")
    person = await ctx.session.get(Person, craftsman_id)
    name = person.name if person else str(craftsman_id)
    await add_event(
        ctx, ctx.session, case, "offer", at=now, actor=actor, detail=f"邀请 {name} 接单",
        data={"craftsman_id": craftsman_id, "reasons": reasons or []},
    )
    if not case.urgent:
        until = await person_quiet_until(ctx, craftsman_id, now)
        if until is not None:  # a non-urgent offer waits for the morning; its answer clock starts then
            timers.schedule(ctx.session, OFFER_SEND, until, now=now, case_id=case.id, offer_id=offer.id,
                            person_id=craftsman_id)
            await add_event(ctx, ctx.session, case, "offer_held", at=now,
                            detail=f"{name} 免打扰中，邀请将于 {until.astimezone(ctx.settings.tz):%m-%d %H:%M} 发出")
            return offer
    await send_offer(ctx, case, offer, reasons=reasons)
    return offer


async def send_offer(ctx: HandlerContext, case: Case, offer: Offer, *, reasons: list[str] | None = None) -> None:
    """The offer card and its answer clock (``offer_timeout``)."""
    now = ctx.now()
    enterprise = await ctx.session.get(Enterprise, case.enterprise_id) if case.enterprise_id else None
    minutes = ctx.settings.bot.offer_timeout_min
    title = f"{'【紧急】' if case.urgent else ''}新的服务需求 #{case.number}"
    body = summary(case, enterprise.name if enterprise else "")
    reasons = offer.reasons if reasons is None else reasons
    if reasons:
        body += "\n推荐理由：" + "；".join(reasons[:3])
    body += f"\n请在 {minutes} 分钟内答复。"
    if case.urgent and await person_quiet_until(ctx, offer.craftsman_id, now) is not None:
        body += "\n（紧急需求：虽在您的免打扰时段，仍及时通知您，敬请谅解。）"
    buttons = [Button("接单", f"接单 {case.number}"), Button("婉拒", f"婉拒 {case.number}")]
    await ctx.outbox.to_person(offer.craftsman_id, card(title, body, buttons, urgent=case.urgent), case_id=case.id)
    timers.schedule(
        ctx.session, OFFER_TIMEOUT, now + timedelta(minutes=minutes), now=now, case_id=case.id, offer_id=offer.id,
        person_id=offer.craftsman_id,
    )


async def on_offer_send(ctx: HandlerContext, timer: Timer) -> None:
    """The craftsman's quiet hours ended: send the offer that waited, if it is still open."""
    offer = await ctx.session.get(Offer, timer.offer_id)
    case = await ctx.session.get(Case, timer.case_id) if timer.case_id else None
    if offer is None or case is None or offer.state != OfferState.PENDING or case.state != CaseState.OFFERED:
        return
    await send_offer(ctx, case, offer)


async def escalate(ctx: HandlerContext, case: Case, why: str) -> None:
    """Nobody took it: staff get the story (who was offered, who declined and why, who timed out)."""
    if case.state != CaseState.ESCALATED and not await transition(
        ctx, case, CaseState.ESCALATED, actor=None, detail=why
    ):
        return
    lines = [f"⚠️ 案件 #{case.number} 需要人工派单：{why}", summary(case)]
    offers = await offers_of(ctx, case)
    if offers:
        lines.append("已邀请：")
        for o in offers:
            p = await ctx.session.get(Person, o.craftsman_id)
            outcome = {
                OfferState.DECLINED: f"婉拒（{o.reason or '未说明原因'}）",
                OfferState.EXPIRED: "超时未答复",
                OfferState.WITHDRAWN: "已撤回",
                OfferState.TAKEN: "他人已接",
                OfferState.PENDING: "待答复",
                OfferState.ACCEPTED: "已接单",
            }[OfferState(o.state)]
            lines.append(f"· {p.name if p else o.craftsman_id}：{outcome}")
    if case.match_reasons:
        lines.append("候选师傅：")
        for m in case.match_reasons[:3]:
            lines.append(f"· {m['name']}（{'；'.join(m['reasons'][:3])}）")
    lines.append(f"回复「派单 {case.number} 姓名」指定师傅。")
    await ctx.outbox.to_staff("\n".join(lines), case_id=case.id, groups=(case.trade_group,))


async def withdraw_pending(ctx: HandlerContext, case: Case, *, state: OfferState, notify: str = "") -> None:
    """Close every still-pending offer of ``case`` (taken by another, or withdrawn by staff)."""
    for o in await offers_of(ctx, case):
        if o.state != OfferState.PENDING:
            continue
        if not await answer_offer(ctx.session, o, state, now=ctx.now()):
            continue
        if notify:
            await ctx.outbox.to_person(o.craftsman_id, notify, case_id=case.id)
    await timers.cancel(ctx.session, case_id=case.id, kinds=[OFFER_TIMEOUT, OFFER_SEND])


async def on_offer_timeout(ctx: HandlerContext, timer: Timer) -> None:
    """No answer in time: the offer expires and the next candidate gets it."""
    offer = await ctx.session.get(Offer, timer.offer_id)
    if offer is None or offer.state != OfferState.PENDING:
        return
    if not await answer_offer(ctx.session, offer, OfferState.EXPIRED, now=ctx.now()):
        return
    case = await ctx.session.get(Case, offer.case_id)
    if case is None:
        return
    craftsman = await ctx.session.get(Person, offer.craftsman_id)
    await add_event(ctx, ctx.session, case, "offer_expired", at=ctx.now(),
                    detail=f"{craftsman.name if craftsman else ''} 超时未答复")
    await ctx.outbox.to_person(offer.craftsman_id, f"案件 #{case.number} 的接单邀请已超时，已转给其他师傅。", case_id=case.id)
    if case.state == CaseState.OFFERED:
        await offer_next(ctx, case)


async def craftsman_of(ctx: HandlerContext, person_id: int) -> Craftsman | None:
    return await ctx.session.get(Craftsman, person_id)
