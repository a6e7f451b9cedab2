"""Bounded parsers for everything a person types as a number, month, date, time, duration or rating.

The contract: a parser here returns a value inside sane bounds, or raises :class:`ParseError` with the
polite Chinese sentence to send back. ``ParseError`` is a :class:`~handlers.context.UserError` (the
pipeline rolls the handler's writes back and sends only that sentence) and a ``ValueError`` (the CLI,
the console and library callers keep catching ``ValueError``). No handler converts a person's text
with ``int()`` / ``float()`` / ``strptime`` itself: an unbounded number reached the database (a
25-digit case number overflowed the driver's integer) and a bare "10" was read as one star.

Full-width digits and punctuation (``１０２４``, ``＃``, ``：``, ``－``) are normalised first; only ASCII
digits count as digits afterwards, so other Unicode digits (``²``, ``٣``) are text, not numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from handlers.context import UserError
from storage.models import CASE_NUMBER_OFFSET, Mode

# Any number a command carries (case, menu item, mobilisation) fits a PostgreSQL ``integer`` column.
NUMBER_MAX = 2**31 - 1
CASE_NUMBER_MIN = CASE_NUMBER_OFFSET + 1
CASE_NUMBER_MAX = 10**9
# Months and dates a person may ask about (reports, console filters, leave).
YEAR_MIN, YEAR_MAX = 2000, 2100
# Appointments: strictly in the future, at most this far ahead.
APPOINTMENT_MAX_AHEAD = timedelta(days=365)
# Help hours: more than the plausible limit for the mode is confirmed with the craftsman first;
# more than the hard limit is refused. The online limit is a working day of remote guidance.
HOURS_PLAUSIBLE_ONLINE = 12.0
HOURS_PLAUSIBLE_OTHER = 72.0
HOURS_MAX = 1000.0
# Quiet hours: a window longer than this would hold most reminders of the day.
QUIET_MAX = timedelta(hours=16)

# One character for one character, so a match in the normalised text has the same offsets in the original.
_WIDE = str.maketrans({
    **{chr(0xFF10 + i): str(i) for i in range(10)},
    "＃": "#", "：": ":", "－": "-", "−": "-", "﹣": "-", "／": "/", "．": ".", "\u3000": " ",
})


class ParseError(UserError, ValueError):
    """Input out of format or bounds; the message is the polite Chinese answer."""


def normalise(text: str) -> str:
    """Full-width digits and the punctuation around numbers → ASCII; everything else unchanged."""
    return text.translate(_WIDE)


def _shown(digits: str) -> str:
    return digits if len(digits) <= 12 else digits[:12] + "…"


# --- numbers -----------------------------------------------------------------------------------

_LEADING_NUMBER = re.compile(r"^#?\s*([0-9]+)\b\s*(.*)$", re.S)


def leading_number(text: str) -> tuple[str | None, str]:
    """``"#1024 用时3小时"`` → ("1024", "用时3小时"); the digits stay text until :func:`bounded_number`."""
    m = _LEADING_NUMBER.match(normalise(text))
    if not m:
        return None, text
    return m.group(1), text[m.start(2):].strip()  # the rest as typed (a note keeps its full-width marks)


def bounded_number(digits: str) -> int:
    """The number a command carries, within ``0..NUMBER_MAX``; a longer one is refused, not converted."""
    stripped = digits.lstrip("0") or "0"
    if not stripped.isascii() or not stripped.isdigit() or len(stripped) > 10 or int(stripped) > NUMBER_MAX:
        raise ParseError(f"没有找到编号 {_shown(digits)}，请检查编号后重新发送。")
    return int(stripped)


def case_number(number: int | None) -> int:
    """A case number (``1001..CASE_NUMBER_MAX``); None asks for one, anything else is not found."""
    if number is None:
        raise ParseError("请带上案件编号，例如「查 1024」。")
    if not CASE_NUMBER_MIN <= number <= CASE_NUMBER_MAX:
        raise ParseError(f"没有找到案件 #{_shown(str(number))}，请检查编号。")
    return number


def case_number_in(text: str) -> int | None:
    """A typed ``1024`` / ``#1024`` / ``＃１０２４`` as a case number, or None if it is not one (search boxes)."""
    raw = normalise(text).strip().lstrip("#").strip()
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10:
        return None
    number = int(raw)
    return number if CASE_NUMBER_MIN <= number <= CASE_NUMBER_MAX else None


def ascii_int(text: str, *, max_digits: int) -> int | None:
    """ASCII digits only (``str.isdigit`` also takes ``²``, which ``int()`` then refuses), at most ``max_digits``."""
    if not text or len(text) > max_digits or not text.isascii() or not text.isdigit():
        return None
    return int(text)


def record_id(text: str) -> int | None:
    """A typed row id (menu item, mobilisation) within ``1..NUMBER_MAX``, else None."""
    raw = normalise(text).strip().lstrip("#").strip()
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10:
        return None
    value = int(raw)
    return value if 1 <= value <= NUMBER_MAX else None


# --- months and dates ------------------------------------------------------------------------

_MONTH = re.compile(r"^([0-9]{4})\s*[-/.年]\s*([0-9]{1,2})\s*月?$")
_DATE = re.compile(r"^([0-9]{4})\s*[-/.年]\s*([0-9]{1,2})\s*[-/.月]\s*([0-9]{1,2})\s*[日号]?$")
MONTH_FORMAT = "月份格式不对，请写成 2026-11 这样的「年-月」。"


def split_month(text: str) -> tuple[int, int]:
    """Our own month keys (``"2026-11"``, also ``2026年11月``) → (year, month); format only, any year 1..9999."""
    m = _MONTH.match(normalise(text).strip())
    if not m or not 1 <= int(m.group(2)) <= 12 or not 1 <= int(m.group(1)) <= 9999:
        raise ParseError(MONTH_FORMAT)
    return int(m.group(1)), int(m.group(2))


def parse_month(text: str, *, now: datetime | None = None, tz: ZoneInfo | None = None) -> tuple[int, int]:
    """A month a person asked for: years ``YEAR_MIN..YEAR_MAX``; with ``now``, not after the current month."""
    year, month = split_month(text)
    if not YEAR_MIN <= year <= YEAR_MAX:
        raise ParseError(f"月份超出范围，请写 {YEAR_MIN}–{YEAR_MAX} 年之间的月份，例如 2026-11。")
    if now is not None:
        local = now.astimezone(tz) if tz is not None else now
        if (year, month) > (local.year, local.month):
            raise ParseError("不能查看未来的月份。")
    return year, month


def parse_date(text: str) -> date:
    """``2026-11-30`` (also ``2026年11月30日``) within ``YEAR_MIN..YEAR_MAX``."""
    m = _DATE.match(normalise(text).strip())
    if not m:
        raise ParseError("日期格式不对，请写成 2026-11-30。")
    y, mo, d = (int(g) for g in m.groups())
    if not YEAR_MIN <= y <= YEAR_MAX:
        raise ParseError(f"日期超出范围，请写 {YEAR_MIN}–{YEAR_MAX} 年之间的日期。")
    try:
        return date(y, mo, d)
    except ValueError:
        raise ParseError(f"没有 {y}-{mo:02d}-{d:02d} 这一天，请检查日期。") from None


# --- appointments ----------------------------------------------------------------------------

_WHEN = re.compile(r"([0-9]{4})\s*[-/.年]\s*([0-9]{1,2})\s*[-/.月]\s*([0-9]{1,2})\s*[日号]?\s*(?:T\s*)?"
                   r"([0-9]{1,2})\s*[:点时]\s*([0-9]{1,2})?\s*分?")


def parse_appointment(text: str, now: datetime, tz: ZoneInfo, *, example: str) -> datetime:
    """The first ``2026-12-01 09:00`` in ``text`` as an aware local time, after ``now`` and at most
    ``APPOINTMENT_MAX_AHEAD`` later. ``example`` is the command to show when the format is wrong."""
    m = _WHEN.search(normalise(text))
    if not m:
        raise ParseError(f"时间格式不对，请写成「{example}」。")
    y, mo, d, h, mi = (int(g) if g else 0 for g in m.groups())
    if not YEAR_MIN <= y <= YEAR_MAX:
        raise ParseError(f"预约时间的年份 {y} 不对，请写一年以内的时间，例如「{example}」。")
    try:
        when = datetime(y, mo, d, h, mi, tzinfo=tz)
    except ValueError:
        raise ParseError(f"没有 {y}-{mo:02d}-{d:02d} {h:02d}:{mi:02d} 这个时间，请检查日期和钟点，例如「{example}」。") from None
    if when <= now:
        raise ParseError("预约时间已经过去了，请换一个将来的时间。")
    if when - now > APPOINTMENT_MAX_AHEAD:
        raise ParseError(f"预约时间 {when:%Y-%m-%d %H:%M} 离现在超过一年，是不是年份写错了？"
                         f"请写一年以内的时间，例如「{example}」。")
    return when


# --- help hours ------------------------------------------------------------------------------

_DURATION = re.compile(
    r"(?P<kw>用时|耗时|工时)?\s*[:]?\s*(?P<sign>(?<![0-9A-Za-z])[-+])?\s*(?P<num>[0-9]+(?:\.[0-9]+)?)\s*个?\s*"
    r"(?P<unit>小时|钟头|hours?|hrs?|h|分钟|mins?)(?:\s*(?P<min>[0-9]{1,2})\s*(?:分钟|分|mins?))?",
    re.I,
)


def parse_hours(text: str, *, example: str) -> tuple[float | None, str]:
    """「用时3小时 说明」 → (3.0, "说明"); also ``3.5h``, ``90分钟``, ``2小时30分``. None when no duration is given.

    A duration after 用时/耗时/工时 wins over one elsewhere in the note. Negative, zero and more than
    ``HOURS_MAX`` hours are refused; whether the value is plausible is :func:`hours_plausible`'s call.
    """
    norm = normalise(text)
    found = list(_DURATION.finditer(norm))
    if not found:
        return None, text.strip()
    m = next((f for f in found if f.group("kw")), found[0])
    if m.group("sign") == "-":
        raise ParseError(f"用时不能是负数，请写成「{example}」。")
    num = m.group("num")
    if len(num) > 7:
        raise ParseError(f"用时 {_shown(num)} 超出合理范围（最多 {HOURS_MAX:g} 小时），请核对后重新发送，例如「{example}」。")
    value = float(num)
    if m.group("unit").lower() in ("分钟", "min", "mins"):
        value /= 60
    elif m.group("min"):
        value += int(m.group("min")) / 60
    hours = round(value, 2)
    if hours <= 0:
        raise ParseError(f"用时要大于 0，请写上实际服务时长，例如「{example}」。")
    if hours > HOURS_MAX:
        raise ParseError(f"用时 {hours:g} 小时超出合理范围（最多 {HOURS_MAX:g} 小时），请核对后重新发送，例如「{example}」。")
    return hours, (text[: m.start()] + text[m.end():]).strip()


def hours_limit(mode: str) -> float:
    """The most help hours that need no confirmation for a case of this mode."""
    return HOURS_PLAUSIBLE_ONLINE if mode == Mode.ONLINE.value else HOURS_PLAUSIBLE_OTHER


def hours_plausible(hours: float, mode: str) -> bool:
    return hours <= hours_limit(mode)


# --- ratings ---------------------------------------------------------------------------------

_RATING = re.compile(r"^\s*(?P<num>[-+]?[0-9]+(?:[.,][0-9]+)?)\s*(?P<unit>分|星|颗星)?(?P<rest>.*)$", re.S)
_SEPARATOR = re.compile(r"^[\s,，。.!！、;；]")


@dataclass(frozen=True)
class Rating:
    """A rating-shaped answer: ``value`` is 1..5, or None when the number is not a valid score."""

    value: int | None
    typed: str
    comment: str
    attached: bool  # the number ran straight into other text (「10点」, 「3号线」): maybe not a rating at all


def read_rating(text: str) -> Rating | None:
    """``"5 师傅很专业"`` → Rating(5, …); ``"10"``, ``"5.5"``, ``"0"`` → Rating(None, …); no leading number → None."""
    m = _RATING.match(normalise(text))
    if not m:
        return None
    typed, rest, after = m.group("num"), text[m.start("rest"):], text[m.end("num"):]
    attached = bool(after) and not m.group("unit") and not _SEPARATOR.match(after)
    comment = rest.strip().lstrip(",，。.!！、;；").strip()
    value = int(typed) if typed.isdigit() and len(typed) == 1 and 1 <= int(typed) <= 5 else None
    return Rating(value, typed, comment, attached)


def rating_question(typed: str, example: str) -> str:
    return f"评分只能是 1–5 的整数，您写的是「{_shown(typed)}」。请问想打几分？例如「{example}」。"


# --- quiet hours -----------------------------------------------------------------------------

Window = tuple[time, time]
_HHMM = re.compile(r"^([0-9]{1,2})(?::([0-9]{1,2}))?$")
WINDOW_FORMAT = "时间格式不对，请写成「免打扰 22:00-07:00」，或「免打扰 关」。"


def parse_hhmm(text: str) -> time:
    """``"22:00"`` / ``"7"`` → time; hours 0–23, minutes 0–59."""
    m = _HHMM.match(normalise(text).strip())
    if not m or int(m.group(1)) > 23 or int(m.group(2) or 0) > 59:
        raise ParseError(WINDOW_FORMAT)
    return time(int(m.group(1)), int(m.group(2) or 0))


def parse_window(text: str) -> Window:
    """``"22:00-07:30"`` → (22:00, 07:30), format only (the configured default goes through here too)."""
    norm = normalise(text)
    for dash in ("–", "—", "～", "~"):
        norm = norm.replace(dash, "-")
    start, sep, end = norm.partition("-")
    if not sep:
        raise ParseError(WINDOW_FORMAT)
    return parse_hhmm(start), parse_hhmm(end)


def window_length(window: Window) -> timedelta:
    start, end = window
    minutes = (end.hour * 60 + end.minute - start.hour * 60 - start.minute) % (24 * 60)
    return timedelta(minutes=minutes)


def parse_quiet_hours(text: str) -> Window:
    """Quiet hours a person sets: a window of more than zero and at most ``QUIET_MAX``."""
    window = parse_window(text)
    length = window_length(window)
    if not length:
        raise ParseError("开始和结束时间不能相同。关闭免打扰请发「免打扰 关」。")
    if length > QUIET_MAX:
        hours, minutes = divmod(int(length.total_seconds()) // 60, 60)
        raise ParseError(
            f"免打扰 {window[0]:%H:%M}–{window[1]:%H:%M} 长达 {hours} 小时 {minutes} 分钟，一天里大部分提醒都会被推迟。"
            f"是不是把开始和结束写反了？免打扰最长 {QUIET_MAX.total_seconds() / 3600:g} 小时，"
            "例如夜间免打扰请写「免打扰 22:00-07:00」。"
        )
    return window
