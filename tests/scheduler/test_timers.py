"""Every timer kind fires at its time and only once (web chat + ManualClock, SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.keys import sessions_key
from storage.models import CaseEvent, CaseState, Offer, OfferState, Timer, TimerState
from tests.chat import Chat, Playground
from tests.scheduler.helpers import STAFF1, SUN, ZHOU, accepted_case, case_row, submit

MIN, HOUR = timedelta(minutes=1), timedelta(hours=1)


async def test_offer_timeout_moves_on_and_escalates_once(playground: Playground) -> None:
    await submit(playground)
    sun, zhou, staff = playground.person(SUN), playground.person(ZHOU), playground.person(STAFF1)
    assert "#1001" in Chat.text_of(await sun.read())
    assert await playground.fire_timers(advance=29 * MIN) == 0
    assert await zhou.read() == []
    assert await playground.fire_timers(advance=2 * MIN) == 1
    assert "已超时" in Chat.text_of(await sun.read())
    assert "#1001" in Chat.text_of(await zhou.read())
    assert await playground.fire_timers() == 0  # fired once: nothing left due
    await staff.read()
    assert await playground.fire_timers(advance=31 * MIN) == 1  # zhou times out; no mould craftsman left → staff
    assert "需要人工派单" in Chat.text_of(await staff.read())
    assert (await case_row(playground)).state == CaseState.ESCALATED
    assert await playground.fire_timers(advance=10 * HOUR) == 0
    assert await staff.read() == []
    async with playground.app[sessions_key]() as s:
        states = (await s.scalars(select(Offer.state).order_by(Offer.id))).all()
    assert states == [OfferState.EXPIRED] * 2


async def test_progress_nudge_then_staff_then_give_up(playground: Playground) -> None:
    _, sun = await accepted_case(playground)
    staff = playground.person(STAFF1)
    await staff.read()
    assert await playground.fire_timers(advance=24 * HOUR - MIN) == 0
    assert await sun.read() == []
    assert await playground.fire_timers(advance=2 * MIN) == 1
    nudge = await sun.read()
    assert [b["label"] for b in nudge[-1]["buttons"]] == ["已在处理", "需要协助", "无法继续"]
    assert await playground.fire_timers(advance=HOUR) == 0
    assert await playground.fire_timers(advance=23 * HOUR) == 1  # 48 h: staff are told
    assert "没有进展" in Chat.text_of(await staff.read())
    assert await sun.read() == []
    back = Chat.text_of(await sun.say("无法继续 1001 设备厂家已派人处理"))
    assert "已退回 #1001" in back
    case = await case_row(playground)
    assert case.craftsman_id is None and case.state == CaseState.OFFERED  # back to matching → next offer
    async with playground.app[sessions_key]() as s:
        detail = await s.scalar(select(CaseEvent.detail).where(CaseEvent.to_state == CaseState.MATCHING.value)
                                .order_by(CaseEvent.id.desc()))
    assert detail is not None and "设备厂家已派人处理" in detail


async def test_still_working_restarts_the_clock(playground: Playground) -> None:
    _, sun = await accepted_case(playground)
    await playground.fire_timers(advance=24 * HOUR + MIN)
    await sun.read()
    await sun.tap("已在处理")
    assert await playground.fire_timers(advance=23 * HOUR) == 0  # the 48 h staff alert was cancelled too
    assert await playground.fire_timers(advance=2 * HOUR) == 1
    assert "进展如何" in Chat.text_of(await sun.read())


async def test_appointment_reminders_both_sides_and_moving_cancels(playground: Playground) -> None:
    firm, sun = await accepted_case(playground)  # Monday 09:00
    await sun.say("预约 1001 2026-11-05 10:00")
    await sun.say("预约 1001 2026-11-04 10:00")  # moved a day earlier: the old reminders must not fire
    await firm.read()
    # Tuesday 18:00 is the eve; the progress nudge (Tuesday 09:00) fires on the way.
    await playground.fire_timers(advance=timedelta(hours=33) + MIN)
    await sun.read()
    eve = Chat.text_of(await firm.read())
    assert "提醒：明天（11月04日 10:00）" in eve
    await playground.fire_timers(advance=timedelta(hours=15))  # Wednesday 09:01: one hour before
    assert "一小时后（11月04日 10:00）" in Chat.text_of(await firm.read())
    assert "一小时后（11月04日 10:00）请上门服务 #1001" in Chat.text_of(await sun.read())
    await playground.fire_timers(advance=timedelta(days=1, hours=1))  # past the old 11-05 times
    assert "11月05日" not in Chat.text_of(await firm.read())


async def test_feedback_nudge_and_autoclose_unrated(playground: Playground) -> None:
    firm, sun = await accepted_case(playground)
    await sun.say("完成 1001 用时2小时 调整间隙")
    await firm.read()
    assert await playground.fire_timers(advance=24 * HOUR + MIN) == 1
    assert "请为 #1001 打分" in Chat.text_of(await firm.read())
    assert await playground.fire_timers(advance=24 * HOUR) == 0
    assert await playground.fire_timers(advance=24 * HOUR) == 1  # 72 h: closed as unrated
    case = await case_row(playground)
    assert case.state == CaseState.CLOSED and case.rating is None
    assert "企业未评价" in Chat.text_of(await sun.read())
    assert await playground.fire_timers(advance=72 * HOUR) == 0


async def test_enterprise_followup_after_an_unanswered_question(playground: Playground) -> None:
    firm, sun = await accepted_case(playground)
    await sun.say("模具材料是什么？")
    await firm.read()
    await playground.fire_timers(advance=23 * HOUR)
    assert await firm.read() == []
    await playground.fire_timers(advance=2 * HOUR)
    got = Chat.text_of(await firm.read())
    assert "还在等您的答复：「模具材料是什么？」" in got
    # An answer stops it: a new question, answered in time, brings no reminder.
    await sun.say("硬度测过吗？")
    await firm.say("测过，HRC58")
    await firm.read()
    await playground.fire_timers(advance=30 * HOUR)
    assert "还在等您的答复" not in Chat.text_of(await firm.read())


async def test_weekend_and_holidays_are_skipped_by_nudge_clocks(playground: Playground) -> None:
    # Accepted on Friday 2026-11-06 09:00: 24 working hours later is Monday 09:00, not Saturday.
    playground.clock.advance(timedelta(days=4))
    _, sun = await accepted_case(playground)
    await playground.fire_timers(advance=timedelta(days=2, hours=23))  # Monday 08:00
    assert "进展如何" not in Chat.text_of(await sun.read())
    await playground.fire_timers(advance=timedelta(hours=1, minutes=1))
    assert "进展如何" in Chat.text_of(await sun.read())
    async with playground.app[sessions_key]() as s:
        fired = (await s.scalars(select(Timer.kind).where(Timer.state == TimerState.FIRED.value))).all()
    assert list(fired).count("progress_nudge") == 1
