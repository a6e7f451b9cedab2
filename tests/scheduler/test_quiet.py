"""Quiet hours hold and release; holidays and 调休 in the working-hours clock; the 免打扰 command."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from handlers.quiet import add_working_hours, parse_window, quiet_until
from handlers.settings import Settings, parse_settings
from tests.chat import Chat, Playground
from tests.scheduler.helpers import SUN, accepted_case, submit

SH = ZoneInfo("Asia/Shanghai")


def local(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SH)


def test_quiet_until_across_midnight_and_within_a_day() -> None:
    night = parse_window("22:00-07:30")
    assert quiet_until(local(2026, 11, 2, 23, 0), night, SH) == local(2026, 11, 3, 7, 30)
    assert quiet_until(local(2026, 11, 3, 6, 59), night, SH) == local(2026, 11, 3, 7, 30)
    assert quiet_until(local(2026, 11, 3, 7, 30), night, SH) is None
    assert quiet_until(local(2026, 11, 3, 21, 59), night, SH) is None
    noon = parse_window("12:00～13:30")
    assert quiet_until(local(2026, 11, 3, 12, 15), noon, SH) == local(2026, 11, 3, 13, 30)
    assert quiet_until(local(2026, 11, 3, 11, 0), noon, SH) is None
    assert quiet_until(local(2026, 11, 3, 23, 0), None, SH) is None  # 免打扰 关
    with pytest.raises(ValueError):
        parse_window("22点到7点")
    assert parse_window("22：00-7:00") == (time(22), time(7))


def _settings(**timers: object) -> Settings:
    return parse_settings({"holidays": {"dates": ["2026-10-01", "2026-10-02", "2026-10-05"],
                                        "workdays": ["2026-10-10"]}, "timers": timers})


def test_working_hours_skip_weekends_and_holidays_and_count_tiaoxiu() -> None:
    s = _settings()
    # Wednesday 2026-09-30 10:00 + 24 h: 10-01/02 holidays, 03/04 weekend, 10-05 holiday → Tuesday 10-06 10:00.
    assert add_working_hours(local(2026, 9, 30, 10, 0), 24, s) == local(2026, 10, 6, 10, 0)
    # Friday 10-09 15:00 + 24 h: Saturday 10-10 is a 调休 workday → Saturday 15:00.
    assert add_working_hours(local(2026, 10, 9, 15, 0), 24, s) == local(2026, 10, 10, 15, 0)
    # Started on a Sunday: counting begins Monday 00:00.
    assert add_working_hours(local(2026, 11, 8, 20, 0), 2, s) == local(2026, 11, 9, 2, 0)
    plain = _settings(workdays_only=False)
    start = datetime(2026, 10, 1, 2, 0, tzinfo=UTC)
    assert add_working_hours(start, 24, plain) == start + timedelta(hours=24)


async def test_quiet_hours_hold_a_nudge_until_they_end(playground: Playground) -> None:
    _, sun = await accepted_case(playground)  # Monday 09:00
    assert "不再发送一般提醒" in Chat.text_of(await sun.say("免打扰 08:30-12:00"))
    await playground.fire_timers(advance=timedelta(hours=24, minutes=1))  # Tuesday 09:01: held
    assert await sun.read() == []
    await playground.fire_timers(advance=timedelta(hours=2, minutes=58))  # 11:59
    assert await sun.read() == []
    await playground.fire_timers(advance=timedelta(minutes=2))  # 12:01: released, once
    assert "进展如何" in Chat.text_of(await sun.read())
    await playground.fire_timers(advance=timedelta(hours=1))
    assert await sun.read() == []


async def test_quiet_off_and_default(playground: Playground) -> None:
    sun = playground.person(SUN)
    assert "22:00-07:30" in Chat.text_of(await sun.say("免打扰"))
    assert "已关闭免打扰" in Chat.text_of(await sun.say("免打扰 关"))
    assert "已关闭" in Chat.text_of(await sun.say("免打扰"))
    assert "格式不对" in Chat.text_of(await sun.say("免打扰 晚上"))
    assert "已恢复默认" in Chat.text_of(await sun.say("免打扰 默认"))


async def test_non_urgent_offer_waits_for_morning_urgent_goes_with_a_note(playground: Playground) -> None:
    playground.clock.advance(timedelta(hours=14))  # Monday 23:00 in Shanghai
    await submit(playground)
    sun = playground.person(SUN)
    assert await sun.read() == []
    await playground.fire_timers(advance=timedelta(hours=8))  # 07:00: still quiet, and no timeout ran
    assert await sun.read() == []
    await playground.fire_timers(advance=timedelta(minutes=31))  # 07:31
    offer = await sun.read()
    assert len(offer) == 1 and "#1001" in offer[0]["title"] and "免打扰" not in offer[0]["text"]
    assert "接单成功" in Chat.text_of(await sun.tap("接单"))  # its 30-minute clock started at 07:30


async def test_urgent_offer_goes_through_quiet_hours_and_says_so(playground: Playground) -> None:
    playground.clock.advance(timedelta(hours=14))  # Monday 23:00 in Shanghai
    await submit(playground, urgent=True)
    offer = await playground.person(SUN).read()
    assert len(offer) == 1 and "【紧急】" in offer[0]["title"]
    assert "虽在您的免打扰时段" in offer[0]["text"]


def test_config_example_documents_new_timer_settings() -> None:
    text = Path(__file__).resolve().parents[2].joinpath("config.example.toml").read_text(encoding="utf-8")
    for key in ("workdays_only", "quarterly_cases", "digest_catch_up_days", "report_link_hours"):
        assert f"\n{key} = " in text
