"""Quiet hours, public holidays / 调休, and working-hours arithmetic for the nudge clocks.

Quiet hours are per person (``Person.quiet_start/quiet_end``, else ``timers.quiet_hours``; ``quiet_off``
turns them off). A non-urgent reminder due inside someone's quiet hours is not dropped and not sent: its
timer is scheduled again for the end of that person's quiet hours (:func:`hold_for_quiet`), so the
reminder re-checks whether it still applies when it finally goes. Urgent offers and 应急动员 calls never
ask this module.

Working days are Monday to Friday, minus ``holidays.dates``, plus ``holidays.workdays`` (调休).
:func:`add_working_hours` moves a clock forward counting only the hours of working days, so a 24 h
nudge started on Friday 10:00 falls due on Monday 10:00, and one started before 国庆 waits it out.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from handlers import parsing, timers
from handlers.context import HandlerContext
from handlers.settings import Settings
from storage.models import Person, Timer

# The format lives with the other bounded parsers; a person's own window also has bounds there
# (handlers.parsing.parse_quiet_hours). ParseError is a ValueError.
Window = tuple[time, time]
parse_window = parsing.parse_window
_hhmm = parsing.parse_hhmm


def window_of(person: Person | None, settings: Settings) -> Window | None:
    """The person's quiet hours, the default when unset, None when they turned them off."""
    if person is not None and person.quiet_off:
        return None
    if person is not None and person.quiet_start and person.quiet_end:
        return _hhmm(person.quiet_start), _hhmm(person.quiet_end)
    return parse_window(settings.timers.quiet_hours)


def quiet_until(now: datetime, window: Window | None, tz: ZoneInfo) -> datetime | None:
    """When the quiet hours containing ``now`` end (aware UTC-comparable), or None if ``now`` is not quiet."""
    if window is None:
        return None
    start, end = window
    if start == end:
        return None
    local = now.astimezone(tz)
    t = local.time()
    if start < end:  # e.g. 12:00-13:30, within one day
        inside = start <= t < end
        end_day = local.date()
    else:  # e.g. 22:00-07:30, across midnight
        inside = t >= start or t < end
        end_day = local.date() + timedelta(days=1) if t >= start else local.date()
    if not inside:
        return None
    return datetime.combine(end_day, end, tzinfo=tz)


async def person_quiet_until(ctx: HandlerContext, person_id: int, now: datetime | None = None) -> datetime | None:
    person = await ctx.session.get(Person, person_id)
    return quiet_until(now or ctx.now(), window_of(person, ctx.settings), ctx.settings.tz)


async def hold_for_quiet(ctx: HandlerContext, timer: Timer, recipients: list[int]) -> list[int]:
    """Split a reminder's recipients: return those who may be told now.

    For the others the same timer (kind, case, payload) is scheduled again at the end of their quiet
    hours, restricted to them with ``payload["only"]``; because it is a timer of the same kind on the
    same case, whatever cancels the original (a changed appointment, progress) cancels the held copy.
    """
    only = timer.payload.get("only")
    if only is not None:
        recipients = [r for r in recipients if r in only]
    now = ctx.now()
    held: dict[datetime, list[int]] = defaultdict(list)
    ready: list[int] = []
    for pid in recipients:
        until = await person_quiet_until(ctx, pid, now)
        if until is None:
            ready.append(pid)
        else:
            held[until].append(pid)
    for until, pids in held.items():
        timers.schedule(ctx.session, timer.kind, until, now=now, case_id=timer.case_id,
                        person_id=pids[0] if len(pids) == 1 else timer.person_id, offer_id=timer.offer_id,
                        payload={**timer.payload, "only": pids, "held_from": timer.due_at.isoformat()})
    return ready


def is_workday(day: date, settings: Settings) -> bool:
    iso = day.isoformat()
    if iso in settings.holidays.workdays:
        return True
    if iso in settings.holidays.dates:
        return False
    return day.weekday() < 5


def add_working_hours(start: datetime, hours: float, settings: Settings) -> datetime:
    """``start`` + ``hours``, counting only the hours of working days (local zone).

    With ``timers.workdays_only`` off this is plain ``start + hours``.
    """
    if not settings.timers.workdays_only:
        return start + timedelta(hours=hours)
    tz = settings.tz
    cursor = start.astimezone(tz)
    remaining = timedelta(hours=hours)
    for _ in range(3660):  # ten years of days: a config listing every day as a holiday must not hang us
        midnight = datetime.combine(cursor.date() + timedelta(days=1), time(0), tzinfo=tz)
        if is_workday(cursor.date(), settings):
            step = midnight - cursor
            if remaining <= step:
                return cursor + remaining
            remaining -= step
        cursor = midnight
    return start + timedelta(hours=hours)
