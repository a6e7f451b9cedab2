"""Craftsman commands on an assigned case: 进展, 预约 (on-site appointment), 完成."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select

from handlers.cases import add_event, get_case, transition
from handlers.context import HandlerContext, UserError
from handlers.messages import card
from handlers.router import Command, Router
from storage.models import ACTIVE_STATES, Case, CaseState, Offer, OfferState, Role

router = Router("craftsman.progress")
_HOURS = re.compile(r"(?:用时|耗时|工时)?\s*(\d+(?:\.\d+)?)\s*(?:个)?(小时|h|H|钟头|分钟|min)")
_WHEN = re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?\s*(\d{1,2})[:：点时](\d{2})?分?")


async def _my_active_case(ctx: HandlerContext, cmd: Command) -> Case:
    case = await get_case(ctx.session, cmd.number)
    if case.craftsman_id != ctx.person.id:
        offered = await ctx.session.scalar(select(Offer.id).where(
            Offer.case_id == case.id, Offer.craftsman_id == ctx.person.id, Offer.state == OfferState.PENDING.value))
        if offered is not None:
            raise UserError(f"您还没有接下案件 #{case.number}，请先回复「接单 {case.number}」。")
        raise UserError(f"案件 #{case.number} 不是您负责的案件。")
    if CaseState(case.state) not in ACTIVE_STATES:
        raise UserError(f"案件 #{case.number} 当前不在服务中，无法操作。")
    return case


@router.command("进展", roles={Role.CRAFTSMAN}, summary="进展 编号 内容 — 记录进展并告知企业")
async def progress(ctx: HandlerContext, cmd: Command) -> None:
    """Record progress and tell the enterprise."""
    case = await _my_active_case(ctx, cmd)
    note = cmd.rest.strip()
    if not note:
        raise UserError(f"请写上进展内容，例如「进展 {case.number} 已更换接触器，观察中」。")
    if case.state == CaseState.ASSIGNED:
        await transition(ctx, case, CaseState.IN_PROGRESS, actor=ctx.person, detail=note)
    await add_event(ctx, ctx.session, case, "progress", at=ctx.now(), actor=ctx.person, detail=note)
    case.last_activity_at = ctx.now()
    await ctx.outbox.to_person(case.requester_id, f"【#{case.number} 进展】{ctx.person.name} 师傅：{note}", case_id=case.id)
    await ctx.reply(f"已记录 #{case.number} 的进展并告知企业。")
    from handlers.followups import after_activity

    await after_activity(ctx, case)


def parse_when(text: str, tz_name: str) -> datetime | None:
    from zoneinfo import ZoneInfo

    m = _WHEN.search(text)
    if not m:
        return None
    y, mo, d, h, mi = (int(g) if g else 0 for g in m.groups())
    try:
        return datetime(y, mo, d, h, mi, tzinfo=ZoneInfo(tz_name))
    except ValueError:
        return None


@router.command("预约", roles={Role.CRAFTSMAN}, summary="预约 编号 2026-12-01 09:00 — 约定上门时间")
async def appointment(ctx: HandlerContext, cmd: Command) -> None:
    """Set (or change) an on-site appointment; both sides are told and reminded."""
    case = await _my_active_case(ctx, cmd)
    when = parse_when(cmd.rest, ctx.settings.bot.timezone)
    if when is None:
        raise UserError(f"时间格式不对，请写成「预约 {case.number} 2026-12-01 09:00」。")
    if when <= ctx.now():
        raise UserError("预约时间已经过去了，请换一个将来的时间。")
    changed = case.appointment_at is not None
    case.appointment_at = when
    case.last_activity_at = ctx.now()
    if case.state == CaseState.ASSIGNED:
        await transition(ctx, case, CaseState.IN_PROGRESS, actor=ctx.person, detail="约定上门")
    shown = when.strftime("%Y-%m-%d %H:%M")
    await add_event(ctx, ctx.session, case, "appointment", at=ctx.now(), actor=ctx.person,
                    detail=f"{'改约' if changed else '预约'}上门：{shown}", data={"at": when.isoformat()})
    addr = f"，地址：{case.address}" if case.address else ""
    await ctx.outbox.to_person(
        case.requester_id,
        f"【#{case.number}】{ctx.person.name} 师傅{'改约' if changed else '预约'}于 {shown} 上门{addr}。",
        case_id=case.id,
    )
    await ctx.reply(f"已{'改约' if changed else '预约'} #{case.number}：{shown}，已告知企业，届时会提醒双方。")
    from handlers.followups import after_appointment

    await after_appointment(ctx, case)


def parse_hours(text: str) -> tuple[float | None, str]:
    """「用时3小时 说明」 → (3.0, "说明"); minutes are converted to hours."""
    m = _HOURS.search(text)
    if not m:
        return None, text.strip()
    value = float(m.group(1))
    if m.group(2) in ("分钟", "min"):
        value = value / 60
    return round(value, 2), (text[: m.start()] + text[m.end() :]).strip()


@router.command("完成", roles={Role.CRAFTSMAN}, summary="完成 编号 用时3小时 说明 — 服务完成，请企业评价")
async def complete(ctx: HandlerContext, cmd: Command) -> None:
    """Mark the case resolved with the help hours; the enterprise is asked for a 1–5 rating."""
    case = await _my_active_case(ctx, cmd)
    hours, note = parse_hours(cmd.rest)
    if hours is None or hours <= 0 or hours > 500:
        raise UserError(f"请写上服务用时，例如「完成 {case.number} 用时3小时 更换了接触器」。")
    await transition(
        ctx, case, CaseState.RESOLVED, actor=ctx.person, detail=note or "服务完成",
        values={"help_hours": hours, "resolved_at": ctx.now()},
    )
    await add_event(ctx, ctx.session, case, "resolved", at=ctx.now(), actor=ctx.person,
                    detail=f"用时 {hours:g} 小时。{note}", data={"hours": hours})
    from handlers.feedback import RATING, rating_buttons

    ctx.person.current_case_id = None
    await ctx.outbox.to_person(
        case.requester_id,
        card(
            f"#{case.number} 服务已完成",
            f"{ctx.person.name} 师傅已完成服务（用时 {hours:g} 小时）。{note}\n请为本次服务打分（1–5 分，可附一句评价）：",
            rating_buttons(case.number),
        ),
        case_id=case.id,
    )
    from sqlalchemy import select

    from storage.models import Dialog

    # The enterprise may answer with just a digit: remember which case the digit is for.
    existing = await ctx.session.scalar(select(Dialog).where(Dialog.person_id == case.requester_id))
    if existing is None:
        ctx.session.add(Dialog(person_id=case.requester_id, flow=RATING, step="rating",
                               data={"case_id": case.id}, updated_at=ctx.now()))
    await ctx.reply(f"辛苦了！#{case.number} 已标记完成（{hours:g} 小时），正在请企业评价。")
    from handlers.followups import after_resolve

    await after_resolve(ctx, case)

