"""The bot's own chasing: progress nudges, appointment reminders, feedback reminders, auto-close and
the enterprise follow-up.

Every reminder is a ``timers`` row scheduled in the transaction of the milestone it follows;
re-scheduling cancels the previous rows of the same kinds, so a changed appointment never reminds
at the old time. Clocks of "no answer for N hours" count working hours only (``handlers/quiet.py``);
a reminder that falls due in a recipient's quiet hours is held until they end, never dropped.
What is sent when is described for people in ``docs/reminders.md``.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import select

from handlers import timers
from handlers.cases import add_event
from handlers.context import HandlerContext
from handlers.messages import Button, OutgoingMessage, card
from handlers.quiet import add_working_hours, hold_for_quiet
from handlers.ratings import close_unrated, rating_buttons
from handlers.visibility import told_of
from storage.models import ACTIVE_STATES, Case, CaseState, RelayedMessage, Timer

PROGRESS_NUDGE = "progress_nudge"
PROGRESS_ESCALATE = "progress_escalate"
APPOINTMENT_EVE = "appointment_eve"
APPOINTMENT_SOON = "appointment_soon"
FEEDBACK_NUDGE = "feedback_nudge"
FEEDBACK_CLOSE = "feedback_close"
ENTERPRISE_FOLLOWUP = "enterprise_followup"


async def staff_ids(ctx: HandlerContext, groups: tuple[str, ...] = ()) -> list[int]:
    """Who ``Outbox.to_staff`` would tell (``handlers/visibility.py::told_of``)."""
    return await told_of(ctx.session, groups)


async def _tell(ctx: HandlerContext, timer: Timer, recipients: list[int], message: OutgoingMessage | str,
                case: Case) -> list[int]:
    """Send ``message`` to the recipients not in quiet hours (the rest are held); return who was told."""
    ready = await hold_for_quiet(ctx, timer, recipients)
    for pid in ready:
        await ctx.outbox.to_person(pid, message, case_id=case.id)
    return ready


async def reset_progress_clock(ctx: HandlerContext, case: Case) -> None:
    """Any progress, message or appointment restarts the 24 h nudge / 48 h staff alert."""
    t = ctx.settings.timers
    now = ctx.now()
    await timers.cancel(ctx.session, case_id=case.id, kinds=[PROGRESS_NUDGE, PROGRESS_ESCALATE])
    timers.schedule(ctx.session, PROGRESS_NUDGE, add_working_hours(now, t.progress_nudge_h, ctx.settings), now=now,
                    case_id=case.id, person_id=case.craftsman_id)
    timers.schedule(ctx.session, PROGRESS_ESCALATE, add_working_hours(now, t.progress_escalate_h, ctx.settings),
                    now=now, case_id=case.id)


async def schedule_appointment(ctx: HandlerContext, case: Case) -> None:
    """The evening before (18:00 local) and one hour before, to both sides."""
    assert case.appointment_at is not None
    t = ctx.settings.timers
    now = ctx.now()
    await timers.cancel(ctx.session, case_id=case.id, kinds=[APPOINTMENT_EVE, APPOINTMENT_SOON])
    local = case.appointment_at.astimezone(ctx.settings.tz)
    hh, mm = (int(x) for x in t.appointment_eve_at.split(":"))
    eve = datetime.combine(local.date() - timedelta(days=1), time(hh, mm), tzinfo=ctx.settings.tz)
    soon = case.appointment_at - timedelta(minutes=t.appointment_before_min)
    when = case.appointment_at.isoformat()
    if eve > now:
        timers.schedule(ctx.session, APPOINTMENT_EVE, eve, now=now, case_id=case.id, payload={"at": when})
    if soon > now:
        timers.schedule(ctx.session, APPOINTMENT_SOON, soon, now=now, case_id=case.id, payload={"at": when})


async def schedule_feedback(ctx: HandlerContext, case: Case) -> None:
    """After 完成: a rating nudge, then auto-close as unrated (both counted in working hours)."""
    t = ctx.settings.timers
    now = ctx.now()
    await timers.cancel(ctx.session, case_id=case.id, kinds=[PROGRESS_NUDGE, PROGRESS_ESCALATE, ENTERPRISE_FOLLOWUP,
                                                            FEEDBACK_NUDGE, FEEDBACK_CLOSE])
    timers.schedule(ctx.session, FEEDBACK_NUDGE, add_working_hours(now, t.feedback_nudge_h, ctx.settings), now=now,
                    case_id=case.id, person_id=case.requester_id)
    timers.schedule(ctx.session, FEEDBACK_CLOSE, add_working_hours(now, t.feedback_autoclose_h, ctx.settings),
                    now=now, case_id=case.id)


async def track_enterprise_answer(ctx: HandlerContext, case: Case) -> None:
    """A relayed message: restart the follow-up clock while the craftsman's question waits, else stop it."""
    await timers.cancel(ctx.session, case_id=case.id, kinds=[ENTERPRISE_FOLLOWUP])
    if case.awaiting_enterprise and CaseState(case.state) in ACTIVE_STATES:
        now = ctx.now()
        due = add_working_hours(now, ctx.settings.timers.enterprise_followup_h, ctx.settings)
        timers.schedule(ctx.session, ENTERPRISE_FOLLOWUP, due, now=now, case_id=case.id, person_id=case.requester_id)


async def _case(ctx: HandlerContext, timer: Timer) -> Case | None:
    return await ctx.session.get(Case, timer.case_id) if timer.case_id else None


async def on_progress_nudge(ctx: HandlerContext, timer: Timer) -> None:
    """24 h without progress: ask the craftsman, with one-tap answers."""
    case = await _case(ctx, timer)
    if case is None or CaseState(case.state) not in ACTIVE_STATES or case.craftsman_id is None:
        return
    n = case.number
    if not await _tell(ctx, timer, [case.craftsman_id], card(
        f"#{n} 进展如何？",
        f"案件 #{n} 已超过 {ctx.settings.timers.progress_nudge_h:g} 小时没有进展记录。\n{case.text[:60]}",
        [Button("已在处理", f"已在处理 {n}"), Button("需要协助", f"需要协助 {n}"), Button("无法继续", f"无法继续 {n}")],
    ), case):
        return
    await add_event(ctx, ctx.session, case, "nudge", at=ctx.now(), detail="提醒师傅更新进展")


async def on_progress_escalate(ctx: HandlerContext, timer: Timer) -> None:
    """48 h without progress: staff are told."""
    case = await _case(ctx, timer)
    if case is None or CaseState(case.state) not in ACTIVE_STATES:
        return
    hours = ctx.settings.timers.progress_escalate_h
    message = f"⚠️ 案件 #{case.number}（{case.trade_group}）已 {hours:g} 小时没有进展，请跟进。回复「查 {case.number}」查看。"
    told = await _tell(ctx, timer, await staff_ids(ctx, (case.trade_group,)), message, case)
    if "only" not in timer.payload:  # a copy held for staff in quiet hours adds no second event
        await add_event(ctx, ctx.session, case, "stalled", at=ctx.now(),
                        detail=f"{hours:g} 小时无进展，" + ("已通知工作人员" if told else "工作人员免打扰中，稍后通知"))


async def _appointment_reminder(ctx: HandlerContext, timer: Timer, when_text: str) -> None:
    case = await _case(ctx, timer)
    if case is None or CaseState(case.state) not in ACTIVE_STATES or case.appointment_at is None:
        return
    at = timer.payload.get("at")
    if at is None or datetime.fromisoformat(at) != case.appointment_at:
        return  # the appointment moved: this reminder belongs to the old time (compared as instants, not text)
    shown = case.appointment_at.astimezone(ctx.settings.tz).strftime("%m月%d日 %H:%M")
    addr = f"，地址：{case.address}" if case.address else ""
    recipients = [case.requester_id] + ([case.craftsman_id] if case.craftsman_id else [])
    for pid in await hold_for_quiet(ctx, timer, recipients):
        text = (f"提醒：{when_text}（{shown}）工匠师傅将上门服务（#{case.number}）{addr}。" if pid == case.requester_id
                else f"提醒：{when_text}（{shown}）请上门服务 #{case.number}{addr}。")
        await ctx.outbox.to_person(pid, text, case_id=case.id)


async def on_appointment_eve(ctx: HandlerContext, timer: Timer) -> None:
    """The evening before an on-site visit."""
    await _appointment_reminder(ctx, timer, "明天")


async def on_appointment_soon(ctx: HandlerContext, timer: Timer) -> None:
    """An hour before an on-site visit."""
    await _appointment_reminder(ctx, timer, "一小时后")


async def on_feedback_nudge(ctx: HandlerContext, timer: Timer) -> None:
    """24 h after 完成 without a rating: ask once more."""
    case = await _case(ctx, timer)
    if case is None or case.state != CaseState.RESOLVED:
        return
    await _tell(ctx, timer, [case.requester_id], card(
        f"请为 #{case.number} 打分", "师傅的服务您还满意吗？点一下星级即可（1–5 分）。", rating_buttons(case.number)
    ), case)


async def on_feedback_close(ctx: HandlerContext, timer: Timer) -> None:
    """72 h without a rating: close as unrated (not as a score)."""
    case = await _case(ctx, timer)
    if case is None or case.state != CaseState.RESOLVED:
        return
    await close_unrated(ctx, case)


async def on_enterprise_followup(ctx: HandlerContext, timer: Timer) -> None:
    """The craftsman's question has waited 24 working hours: a gentle reminder to the enterprise."""
    case = await _case(ctx, timer)
    if case is None or not case.awaiting_enterprise or CaseState(case.state) not in ACTIVE_STATES:
        return
    question = await ctx.session.scalar(
        select(RelayedMessage.text).where(RelayedMessage.case_id == case.id, RelayedMessage.from_id == case.craftsman_id)
        .order_by(RelayedMessage.at.desc(), RelayedMessage.id.desc()).limit(1)
    )
    asked = f"：「{question[:60]}」" if question else ""
    if await _tell(ctx, timer, [case.requester_id],
                   f"您好，#{case.number} 的师傅还在等您的答复{asked}\n方便时直接回复这里即可，我会转达给师傅。", case):
        await add_event(ctx, ctx.session, case, "followup", at=ctx.now(), detail="提醒企业答复师傅的问题")
