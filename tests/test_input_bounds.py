"""Numbers, months, dates, durations, ratings and quiet hours from people are bounded (issue 13, items 7 and 9).

Out-of-range input gets a clear Chinese answer or question, is handled on the first attempt (no retries,
no staff alert) and changes nothing.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from bot.keys import sessions_key
from storage.models import Case, CaseEvent, CaseState, Feedback, InboxMessage, InboxState, Person
from tests.chat import Chat, Playground
from tests.test_pipeline import submit_case

HUGE = "1" * 25
CRAFTSMAN, FIRM, STAFF = "demo-craftsman-1007", "demo-firm-1", "demo-staff-1"


def chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


async def inbox_all_done_first_time(pg: Playground) -> None:
    async with pg.app[sessions_key]() as s:
        rows = (await s.scalars(select(InboxMessage))).all()
    bad = [(r.text, r.state, r.attempts, r.error) for r in rows if r.state != InboxState.DONE or r.attempts != 1]
    assert not bad, bad


async def events(pg: Playground) -> int:
    async with pg.app[sessions_key]() as s:
        return int(await s.scalar(select(func.count()).select_from(CaseEvent)) or 0)


async def case_row(pg: Playground, number: int) -> Case:
    async with pg.app[sessions_key]() as s:
        case = await s.get(Case, number - 1000)
        assert case is not None
        return case


async def assigned_case(pg: Playground) -> int:
    number = await submit_case(pg)  # 线上指导, offered to 孙卫东 (demo-craftsman-1007)
    assert "接单成功" in Chat.text_of(await pg.person(CRAFTSMAN).say(f"接单 {number}"))
    return number


async def test_huge_case_numbers_are_refused_politely_in_every_command(playground: Playground) -> None:
    said = {
        CRAFTSMAN: ["接单", "婉拒", "完成", "进展", "预约", "切换", "报名", "已在处理", "需要协助", "无法继续"],
        FIRM: ["评价", "切换", "预约"],
        STAFF: ["审核", "派单", "改派", "取消案件", "查"],
    }
    before = await events(playground)
    for user, names in said.items():
        chat = playground.person(user)
        for name in names:
            for arg in (HUGE, f"#{HUGE}", f"-{HUGE}", f"＃{'９' * 25}"):
                playground.clock.advance(timedelta(seconds=4))  # under the per-sender rate limit
                reply = Chat.text_of(await chat.say(f"{name} {arg} 5 用时3小时 2026-12-01 09:00"))
                assert chinese(reply) and "系统暂时出了点问题" not in reply, (name, arg, reply)
    for text in (f"菜单 删除 {HUGE}", f"菜单 删除 ９{HUGE}"):
        reply = Chat.text_of(await playground.person(CRAFTSMAN).say(text))
        assert "没有找到您的这条菜单" in reply, reply
    await inbox_all_done_first_time(playground)
    assert await events(playground) == before


async def test_full_width_digits_and_hash_are_case_numbers(playground: Playground) -> None:
    number = await submit_case(playground)
    wide = str(number).translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    reply = Chat.text_of(await playground.person(STAFF).say(f"查 ＃{wide}"))
    assert f"案件 #{number}" in reply, reply


async def test_monthly_report_refuses_months_out_of_range(playground: Playground) -> None:
    staff = playground.person(STAFF)
    for month in ("0001-01", "9999-12", "1999-12", "2026-13", "２０２６－１３"):
        reply = Chat.text_of(await staff.say(f"月报 {month}"))
        assert "月份" in reply and "系统暂时出了点问题" not in reply, (month, reply)
    reply = Chat.text_of(await staff.say("月报 2027-05"))
    assert "未来" in reply, reply
    assert "2026年10月" in Chat.text_of(await staff.say("月报 ２０２６年１０月"))
    await inbox_all_done_first_time(playground)


# --- item 9: nonsense that used to be accepted is asked about, and nothing is stored ---


async def resolved_case(pg: Playground) -> int:
    number = await assigned_case(pg)
    assert "已标记完成" in Chat.text_of(await pg.person(CRAFTSMAN).say(f"完成 {number} 用时2小时"))
    return number


async def test_a_bare_ten_after_completion_is_not_one_star(playground: Playground) -> None:
    number = await resolved_case(playground)
    firm = playground.person(FIRM)
    for text in ("10", "0", "5.5", "６", "10分"):
        reply = Chat.text_of(await firm.say(text))
        assert "1–5" in reply and "整数" in reply, (text, reply)
        assert (await case_row(playground, number)).state == CaseState.RESOLVED
    assert "感谢评价" in Chat.text_of(await firm.say("４ 很专业"))
    case = await case_row(playground, number)
    assert case.state == CaseState.CLOSED and case.rating == 4
    await inbox_all_done_first_time(playground)


async def test_rating_command_refuses_fractions_and_out_of_range(playground: Playground) -> None:
    number = await resolved_case(playground)
    firm = playground.person(FIRM)
    for score in ("5.5", "10", "0", "-3", "5,5", HUGE):
        reply = Chat.text_of(await firm.say(f"评价 {number} {score}"))
        assert "1–5" in reply and "整数" in reply, (score, reply)
    async with playground.app[sessions_key]() as s:
        assert await s.scalar(select(func.count()).select_from(Feedback)) == 0
    assert (await case_row(playground, number)).state == CaseState.RESOLVED
    assert "感谢评价" in Chat.text_of(await firm.say(f"评价 {number} 5 师傅很专业"))
    assert (await case_row(playground, number)).rating == 5


async def test_negative_hours_are_refused(playground: Playground) -> None:
    number = await assigned_case(playground)
    before = await events(playground)
    for text in ("用时-3小时", "用时－3小时", "用时 -90分钟", "用时0小时", "用时0.001小时"):
        reply = Chat.text_of(await playground.person(CRAFTSMAN).say(f"完成 {number} {text} 更换接触器"))
        assert "用时" in reply and "已标记完成" not in reply, (text, reply)
    case = await case_row(playground, number)
    assert case.state == CaseState.ASSIGNED and case.help_hours is None
    assert await events(playground) == before


async def test_implausible_hours_are_confirmed_before_anything_is_stored(playground: Playground) -> None:
    number = await assigned_case(playground)
    sun = playground.person(CRAFTSMAN)
    before = await events(playground)
    question = Chat.text_of(await sun.say(f"完成 {number} 用时500小时 更换了接触器"))
    assert "500 小时" in question and "确认" in question and "？" in question, question
    case = await case_row(playground, number)
    assert case.state == CaseState.ASSIGNED and case.help_hours is None
    assert await events(playground) == before
    # Anything but a confirmation drops the question: the message goes on as usual, nothing is stored.
    assert "未标记完成" in Chat.text_of(await sun.say("发错了"))
    assert (await case_row(playground, number)).help_hours is None
    await sun.say(f"完成 {number} 用时500小时 更换了接触器")
    done = Chat.text_of(await sun.say("确认"))
    assert "已标记完成（500 小时）" in done, done
    case = await case_row(playground, number)
    assert case.state == CaseState.RESOLVED and case.help_hours == 500
    await inbox_all_done_first_time(playground)


async def test_absurd_hours_are_refused_outright(playground: Playground) -> None:
    number = await assigned_case(playground)
    reply = Chat.text_of(await playground.person(CRAFTSMAN).say(f"完成 {number} 用时{HUGE}小时"))
    assert "用时" in reply and "确认" not in reply, reply
    assert (await case_row(playground, number)).help_hours is None


async def test_appointments_more_than_a_year_ahead_are_refused(playground: Playground) -> None:
    number = await assigned_case(playground)
    sun = playground.person(CRAFTSMAN)
    before = await events(playground)
    for when in ("9999-12-31 23:59", "2028-01-01 09:00", "0001-01-01 09:00", "2026-02-30 09:00", "2026-12-01 25:00"):
        reply = Chat.text_of(await sun.say(f"预约 {number} {when}"))
        assert "预约" in reply or "时间" in reply, reply
        assert "已预约" not in reply, (when, reply)
    assert (await case_row(playground, number)).appointment_at is None
    assert await events(playground) == before
    assert "已预约" in Chat.text_of(await sun.say(f"预约 {number} ２０２６－１２－０１ ０９：００"))


async def test_quiet_hours_of_nearly_a_day_are_refused(playground: Playground) -> None:
    chat = playground.person(STAFF)
    for window in ("23:59-23:58", "08:00-08:00", "06:00-23:00", "25:00-07:00", "22:00-07:61"):
        reply = Chat.text_of(await chat.say(f"免打扰 {window}"))
        assert "免打扰" in reply and "不再发送" not in reply, (window, reply)
    async with playground.app[sessions_key]() as s:
        person = await s.scalar(select(Person).where(Person.name == "陈晓红"))
        assert person is not None and person.quiet_start is None and person.quiet_end is None
    assert "不再发送" in Chat.text_of(await chat.say("免打扰 ２２：００－０７：００"))
    playground.clock.advance(timedelta(minutes=1))
    await inbox_all_done_first_time(playground)
