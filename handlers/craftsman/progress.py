"""Craftsman commands on an assigned case: 进展, 预约 (on-site appointment), 完成."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from sqlalchemy import select

from handlers import reminders
from handlers.cases import add_event, get_case, mode_label, transition
from handlers.context import HandlerContext, UserError
from handlers.messages import card
from handlers.parsing import hours_limit, hours_plausible, normalise, parse_appointment, parse_hours
from handlers.ratings import await_rating, rating_buttons
from handlers.router import Command, Router
from storage.models import ACTIVE_STATES, Case, CaseState, Offer, OfferState, Role

router = Router("craftsman.progress")
CONFIRM_HOURS = "confirm_hours"  # implausible help hours wait here for the craftsman's 确认


class ConfirmHoursStep(StrEnum):
    """Steps of the :data:`CONFIRM_HOURS` dialog (the stored values)."""

    CONFIRM = "confirm"


_YES = {"确认", "确定", "是", "是的", "对", "没错", "确认无误"}


async def _my_active_case(ctx: HandlerContext, cmd: Command) -> Case:
    return await _my_active(ctx, cmd.number)


async def _my_active(ctx: HandlerContext, number: int | None) -> Case:
    case = await get_case(ctx.session, number)
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
    await reminders.reset_progress_clock(ctx, case)


@router.command("预约", roles={Role.CRAFTSMAN}, summary="预约 编号 2026-12-01 09:00 — 约定上门时间")
async def appointment(ctx: HandlerContext, cmd: Command) -> None:
    """Set (or change) an on-site appointment; both sides are told and reminded."""
    case = await _my_active_case(ctx, cmd)
    when = parse_appointment(cmd.rest, ctx.now(), ctx.settings.tz, example=f"预约 {case.number} 2026-12-01 09:00")
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
    await reminders.schedule_appointment(ctx, case)
    await reminders.reset_progress_clock(ctx, case)


@router.command("完成", roles={Role.CRAFTSMAN}, summary="完成 编号 用时3小时 说明 — 服务完成，请企业评价")
async def complete(ctx: HandlerContext, cmd: Command) -> None:
    """Mark the case resolved with the help hours; the enterprise is asked for a 1–5 rating.

    Hours beyond what is plausible for the case's mode are not stored: the craftsman is asked to
    confirm them first (dialog ``CONFIRM_HOURS``), and only a 确认 resolves the case.
    """
    case = await _my_active_case(ctx, cmd)
    example = f"完成 {case.number} 用时3小时 更换了接触器"
    hours, note = parse_hours(cmd.rest, example=example)
    if hours is None:
        raise UserError(f"请写上服务用时，例如「{example}」。")
    if not hours_plausible(hours, case.mode):
        ctx.dialog.start(CONFIRM_HOURS, ConfirmHoursStep.CONFIRM, {"number": case.number, "hours": hours, "note": note})
        await ctx.reply(
            f"您填写的 #{case.number} 用时是 {hours:g} 小时，{mode_label(case.mode)}一般不超过 "
            f"{hours_limit(case.mode):g} 小时。确实用了 {hours:g} 小时吗？\n"
            f"确认无误请回复「确认」；写错了请重新发送，例如「{example}」。"
        )
        return
    if ctx.dialog.flow == CONFIRM_HOURS:
        await ctx.dialog.clear()  # a corrected 完成 answers a question still open
    await resolve(ctx, case, hours, note)


@router.dialog(CONFIRM_HOURS, ttl=timedelta(minutes=30))
async def confirm_hours(ctx: HandlerContext, text: str) -> None:
    """The answer to the implausible-hours question: 确认 resolves the case, anything else drops it."""
    data = dict(ctx.dialog.data)
    number = int(data["number"])
    await ctx.dialog.clear()
    if normalise(text).strip().rstrip("。.!！") not in _YES:
        await ctx.reply(f"好的，#{number} 暂未标记完成（这条消息没有转给企业）。"
                        f"请重新发送「完成 {number} 用时3小时 说明」。")
        return
    try:
        case = await _my_active(ctx, number)
    except UserError as err:  # answered, not raised: the cleared question must stay cleared
        await ctx.reply(str(err))
        return
    await resolve(ctx, case, float(data["hours"]), str(data.get("note", "")))


async def resolve(ctx: HandlerContext, case: Case, hours: float, note: str) -> None:
    await transition(
        ctx, case, CaseState.RESOLVED, actor=ctx.person, detail=note or "服务完成",
        values={"help_hours": hours, "resolved_at": ctx.now()},
    )
    await add_event(ctx, ctx.session, case, "resolved", at=ctx.now(), actor=ctx.person,
                    detail=f"用时 {hours:g} 小时。{note}", data={"hours": hours})
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
    await await_rating(ctx, case)  # the enterprise may answer with just a digit: remember which case it rates
    await ctx.reply(f"辛苦了！#{case.number} 已标记完成（{hours:g} 小时），正在请企业评价。")
    await reminders.schedule_feedback(ctx, case)

