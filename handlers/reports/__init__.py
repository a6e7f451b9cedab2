"""Report content: the daily digest, monthly figures (按月报进展), the quarterly case collection.

Everything here reads the database and returns data or text; sending, claiming ``(job, period)``
rows and scheduling live in ``scheduler/jobs.py``, the CLI in ``bot/cli/report.py``, chat commands in
``handlers/staff/reports_chat.py``. Periods are local (``bot.timezone``) calendar months and days.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from handlers.parsing import split_month

_QUARTER = re.compile(r"^([0-9]{4})-?[Qq]([1-4])$")


def parse_month(text: str) -> tuple[int, int]:
    """Our own month keys: ``"2026-11"`` → (2026, 11); ValueError otherwise.

    Format only, for months the code derived (history, previous month). A month a person typed goes
    through ``handlers.parsing.parse_month``, which also bounds the year.
    """
    return split_month(text)


def month_key(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def add_months(year: int, month: int, n: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + n
    return index // 12, index % 12 + 1


def month_bounds(month: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Start (inclusive) and end (exclusive) of a local calendar month."""
    y, m = parse_month(month)
    ny, nm = add_months(y, m, 1)
    return datetime(y, m, 1, tzinfo=tz), datetime(ny, nm, 1, tzinfo=tz)


def previous_month(now: datetime, tz: ZoneInfo) -> str:
    local = now.astimezone(tz)
    return month_key(*add_months(local.year, local.month, -1))


def parse_quarter(text: str) -> tuple[int, int]:
    """``"2026-Q3"`` → (2026, 3); ValueError otherwise."""
    m = _QUARTER.match(text.strip())
    if not m:
        raise ValueError(text)
    return int(m.group(1)), int(m.group(2))


def quarter_bounds(quarter: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    y, q = parse_quarter(quarter)
    ey, em = add_months(y, 3 * (q - 1) + 1, 3)
    return datetime(y, 3 * (q - 1) + 1, 1, tzinfo=tz), datetime(ey, em, 1, tzinfo=tz)


def quarter_of(year: int, month: int) -> str:
    return f"{year:04d}-Q{(month - 1) // 3 + 1}"


def day_start(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)
