"""Hooks where case milestones schedule their follow-up timers (nudges, reminders, feedback).

Each hook is called inside the milestone's transaction, so a timer exists exactly when its milestone
does. The timer kinds and what they do live in ``handlers/reminders.py``.
"""

from __future__ import annotations

from handlers.context import HandlerContext
from storage.models import Case


async def after_accept(ctx: HandlerContext, case: Case) -> None:
    from handlers import reminders

    await reminders.reset_progress_clock(ctx, case)


async def after_activity(ctx: HandlerContext, case: Case) -> None:
    from handlers import reminders

    await reminders.reset_progress_clock(ctx, case)


async def after_appointment(ctx: HandlerContext, case: Case) -> None:
    from handlers import reminders

    await reminders.schedule_appointment(ctx, case)
    await reminders.reset_progress_clock(ctx, case)


async def after_resolve(ctx: HandlerContext, case: Case) -> None:
    from handlers import reminders

    await reminders.schedule_feedback(ctx, case)


async def after_message(ctx: HandlerContext, case: Case) -> None:
    """A relayed message: it counts as activity, and it starts or answers the enterprise follow-up."""
    from handlers import reminders
    from storage.models import ACTIVE_STATES, CaseState

    if CaseState(case.state) in ACTIVE_STATES:
        await reminders.reset_progress_clock(ctx, case)
    await reminders.track_enterprise_answer(ctx, case)
