"""The bounded parsers of ``handlers.parsing``: formats, bounds, full-width input, and — for any text at
all — either a value inside the bounds or a ParseError, never another exception."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers import parsing
from handlers.context import UserError
from handlers.parsing import ParseError
from handlers.router import parse_command
from storage.models import Mode

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # Monday 09:00 in Shanghai
HUGE = "1" * 25


def test_parse_error_is_both_a_user_error_and_a_value_error() -> None:
    err = ParseError("月份格式不对")
    assert isinstance(err, UserError) and isinstance(err, ValueError) and str(err) == "月份格式不对"


@pytest.mark.parametrize("text,digits,rest", [
    ("接单 1024", "1024", ""), ("接单1024", "1024", ""), ("接单 #1024", "1024", ""), ("接单 ＃１０２４", "1024", ""),
    ("完成 1024 用时3小时，更换了接触器", "1024", "用时3小时，更换了接触器"), ("接单　１０２４", "1024", ""),
    (f"接单 {HUGE}", HUGE, ""), ("接单 -5", None, "-5"), ("接单 ²", None, "²"),
])
def test_commands_keep_the_typed_digits(text: str, digits: str | None, rest: str) -> None:
    cmd = parse_command(text, {"接单", "完成"})
    assert cmd is not None and cmd.number_text == digits and cmd.rest == rest


def test_a_command_number_is_bounded_when_read() -> None:
    assert parse_command("接单 ＃１０２４", {"接单"}).number == 1024  # type: ignore[union-attr]
    assert parse_command("报名 2147483647", {"报名"}).number == parsing.NUMBER_MAX  # type: ignore[union-attr]
    for text in (f"接单 {HUGE}", "报名 2147483648", f"接单 {'9' * 2000}"):
        cmd = parse_command(text, {"接单", "报名"})
        assert cmd is not None
        with pytest.raises(ParseError, match="没有找到编号"):
            _ = cmd.number
    assert parse_command("接单", {"接单"}).number is None  # type: ignore[union-attr]


def test_tail_is_the_argument_as_typed() -> None:
    cmd = parse_command("新需求 3台冲床，模具崩刃", {"新需求"})
    assert cmd is not None and cmd.tail == "3台冲床，模具崩刃"
    cmd = parse_command("免打扰 22:00-07:00", {"免打扰"})
    assert cmd is not None and cmd.tail == "22:00-07:00"


def test_case_numbers() -> None:
    assert parsing.case_number(1001) == 1001 and parsing.case_number(10**9) == 10**9
    with pytest.raises(ParseError, match="请带上案件编号"):
        parsing.case_number(None)
    for bad in (1000, 0, -1, 10**9 + 1, int(HUGE)):
        with pytest.raises(ParseError, match="没有找到案件"):
            parsing.case_number(bad)
    assert parsing.case_number_in("＃１００２") == 1002 and parsing.case_number_in("#1002") == 1002
    for text in (HUGE, "12", "abc", "", "²", "-1002"):
        assert parsing.case_number_in(text) is None
    assert parsing.ascii_int("1764000000", max_digits=12) == 1764000000
    for text in ("²", "٣", "9" * 13, "-1", "", "1.5"):
        assert parsing.ascii_int(text, max_digits=12) is None
    assert parsing.record_id("５") == 5
    for text in (HUGE, "0", "", "²", "x", "2147483648"):
        assert parsing.record_id(text) is None


@pytest.mark.parametrize("text,expected", [
    ("2026-11", (2026, 11)), ("2026年11月", (2026, 11)), ("２０２６－１１", (2026, 11)), ("2026/1", (2026, 1)),
    (" 2000-01 ", (2000, 1)), ("2026.10", (2026, 10)),
])
def test_months(text: str, expected: tuple[int, int]) -> None:
    assert parsing.parse_month(text) == expected


@pytest.mark.parametrize("text,message", [
    ("0001-01", "超出范围"), ("9999-12", "超出范围"), ("1999-12", "超出范围"), ("2101-01", "超出范围"),
    ("2026-13", "格式"), ("2026-0", "格式"), ("abc", "格式"), ("", "格式"), (HUGE, "格式"), ("2026-11-01", "格式"),
])
def test_months_out_of_format_or_range(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parsing.parse_month(text)


def test_future_months_are_refused_when_now_is_given() -> None:
    assert parsing.parse_month("2026-11", now=NOW, tz=TZ) == (2026, 11)
    with pytest.raises(ParseError, match="未来"):
        parsing.parse_month("2026-12", now=NOW, tz=TZ)
    assert parsing.split_month("1999-08") == (1999, 8)  # our own derived months (history) are not bounded


def test_dates() -> None:
    assert parsing.parse_date("2026-11-30") == date(2026, 11, 30)
    assert parsing.parse_date("２０２６年１１月３０日") == date(2026, 11, 30)
    for text in ("9999-12-31", "0001-01-01", "2026-02-30", "2026-13-01", "下周", ""):
        with pytest.raises(ParseError):
            parsing.parse_date(text)


def appointment(text: str) -> datetime:
    return parsing.parse_appointment(text, NOW, TZ, example="预约 1024 2026-12-01 09:00")


def test_appointments() -> None:
    assert appointment("2026-12-01 09:00") == datetime(2026, 12, 1, 9, 0, tzinfo=TZ)
    assert appointment("明天 ２０２６－１１－０３ ９：３０ 上门") == datetime(2026, 11, 3, 9, 30, tzinfo=TZ)
    assert appointment("2026年11月3日 14点") == datetime(2026, 11, 3, 14, 0, tzinfo=TZ)
    assert appointment("2027-11-02 09:00") - NOW == timedelta(days=365)  # a year ahead, to the minute, is fine
    cases = {
        "2027-11-02 09:01": "超过一年", "9999-12-31 23:59": "年份", "2028-01-01 09:00": "超过一年",
        "2026-11-02 08:59": "已经过去", "2020-01-01 09:00": "已经过去", "0001-01-01 00:30": "年份",
        "2026-02-30 09:00": "没有", "2026-12-01 25:00": "没有", "2026-12-01 09:61": "没有", "明天上午": "时间格式不对",
    }
    for text, message in cases.items():
        with pytest.raises(ParseError, match=message):
            appointment(text)


def hours(text: str) -> tuple[float | None, str]:
    return parsing.parse_hours(text, example="完成 1024 用时3小时")


def test_hours() -> None:
    assert hours("用时3小时 更换了接触器") == (3.0, "更换了接触器")
    assert hours("3.5h") == (3.5, "") and hours("用时 90分钟") == (1.5, "") and hours("用时2小时30分") == (2.5, "")
    assert hours("用时：３个小时，换了继电器") == (3.0, "，换了继电器")  # the note keeps its full-width comma
    assert hours("停机了48小时，换了继电器 用时2小时") == (2.0, "停机了48小时，换了继电器")  # 用时 wins
    assert hours("型号A-3小时") == (3.0, "型号A-")  # a hyphen after a word is not a minus sign
    assert hours("搞定了") == (None, "搞定了")
    for text, message in {"用时-3小时": "负数", "用时－3小时": "负数", "用时 -90分钟": "负数", "-2h": "负数",
                          "用时0小时": "大于 0", "用时0.001小时": "大于 0", f"用时{HUGE}小时": "超出合理范围",
                          "用时1001小时": "超出合理范围"}.items():
        with pytest.raises(ParseError, match=message):
            hours(text)


def test_plausible_hours_depend_on_the_mode() -> None:
    assert parsing.hours_plausible(12, Mode.ONLINE.value) and not parsing.hours_plausible(12.5, Mode.ONLINE.value)
    assert parsing.hours_plausible(72, Mode.ONSITE.value) and not parsing.hours_plausible(73, Mode.TRAINING.value)


@pytest.mark.parametrize("text,value,comment,attached", [
    ("5", 5, "", False), ("４ 很专业", 4, "很专业", False), ("5分", 5, "", False), ("5星，很好", 5, "很好", False),
    ("3，还行", 3, "还行", False), ("5师傅好", 5, "师傅好", True), ("10", None, "", False), ("0", None, "", False),
    ("5.5", None, "", False), ("６", None, "", False), ("10分", None, "", False), ("-3", None, "", False),
    ("5,5", None, "", False), ("10点前能来吗", None, "点前能来吗", True), ("3号线又坏了", 3, "号线又坏了", True),
    (HUGE, None, "", False),
])
def test_ratings(text: str, value: int | None, comment: str, attached: bool) -> None:
    answer = parsing.read_rating(text)
    assert answer is not None and (answer.value, answer.comment, answer.attached) == (value, comment, attached)


def test_no_leading_number_is_no_rating() -> None:
    assert parsing.read_rating("很好") is None and parsing.read_rating("") is None and parsing.read_rating("五星") is None


@pytest.mark.parametrize("text,window", [
    ("22:00-07:00", (time(22), time(7))), ("２２：００－０７：００", (time(22), time(7))),
    ("12:00～13:30", (time(12), time(13, 30))), ("22-7", (time(22), time(7))), ("06:00-22:00", (time(6), time(22))),
])
def test_quiet_hours(text: str, window: tuple[time, time]) -> None:
    assert parsing.parse_quiet_hours(text) == window


@pytest.mark.parametrize("text,message", [
    ("23:59-23:58", "23 小时 59 分钟"), ("06:00-22:01", "16 小时 1 分钟"), ("08:00-08:00", "不能相同"),
    ("24:00-07:00", "格式"), ("22:00-07:60", "格式"), ("22点到7点", "格式"), ("", "格式"), (f"{HUGE}:00-07:00", "格式"),
])
def test_quiet_hours_refused(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parsing.parse_quiet_hours(text)


ANY_TEXT = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from(["2026", "-", "－", "11", "１１", "年", "月", "日", ":", "：", "00", "9999", "0001", HUGE,
                              " ", "用时", "小时", "分钟", "h", ".", "5", "10", "#", "＃", "😀", "²", "٣", "~"]),
             max_size=12).map("".join),
)


@settings(max_examples=400, deadline=None)
@given(text=ANY_TEXT)
def test_any_text_gives_a_bounded_value_or_a_parse_error(text: str) -> None:
    def bounded(fn: Callable[[], Any], check: Callable[[Any], bool]) -> None:
        try:
            value = fn()
        except ParseError as err:  # any other exception fails the test
            assert str(err) and any("\u4e00" <= c <= "\u9fff" for c in str(err))
            return
        assert check(value), (text, value)

    bounded(lambda: parsing.parse_month(text), lambda v: parsing.YEAR_MIN <= v[0] <= parsing.YEAR_MAX and 1 <= v[1] <= 12)
    bounded(lambda: parsing.parse_date(text), lambda v: parsing.YEAR_MIN <= v.year <= parsing.YEAR_MAX)
    bounded(lambda: appointment(text), lambda v: NOW < v <= NOW + parsing.APPOINTMENT_MAX_AHEAD)
    bounded(lambda: hours(text), lambda v: v[0] is None or 0 < v[0] <= parsing.HOURS_MAX)
    bounded(lambda: parsing.parse_quiet_hours(text),
            lambda v: timedelta(0) < parsing.window_length(v) <= parsing.QUIET_MAX)
    bounded(lambda: parsing.case_number_in(text), lambda v: v is None or parsing.CASE_NUMBER_MIN <= v <= parsing.CASE_NUMBER_MAX)
    bounded(lambda: parsing.record_id(text), lambda v: v is None or 1 <= v <= parsing.NUMBER_MAX)
    bounded(lambda: parsing.read_rating(text), lambda v: v is None or v.value is None or 1 <= v.value <= 5)
    cmd = parse_command("接单 " + text, {"接单"})
    assert cmd is not None
    bounded(lambda: cmd.number, lambda v: v is None or 0 <= v <= parsing.NUMBER_MAX)
