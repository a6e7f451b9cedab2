"""The composition of the domain: ``build_router`` is the one visible place where every role's flows
are composed, and ``build_timers`` the one place where every kind of timer gets its handler.

This module sits on top of handlers/: it imports the routers and the timer handlers, and nothing in
handlers/ imports it except the pipeline (the entry of a handled message) and ``actions`` (the entry
of a console or CLI action). A handler that needs the composed routes (``帮助``) reads them from the
context (``HandlerContext.routes``), set by the router that dispatched the message.
"""

from __future__ import annotations

from functools import cache

from handlers import common, dispatch, failures, menu, quiet_commands, reminders
from handlers.craftsman import chat as craftsman_chat
from handlers.craftsman import nudges, offers, profile, progress
from handlers.enterprise import chat as enterprise_chat
from handlers.enterprise import intake, rating
from handlers.router import Router
from handlers.staff import chat as staff_chat
from handlers.staff import dispatching, info, login, mobilisation, reports_chat, review
from handlers.timers import TimerRegistry


@cache
def build_router() -> Router:
    """Compose the routers; order matters only for commands sharing a name (none do across roles)."""
    return Router("root").include(
        common.router,
        intake.router,
        enterprise_chat.router,
        rating.router,
        offers.router,
        progress.router,
        nudges.router,
        profile.router,
        craftsman_chat.router,
        review.router,
        dispatching.router,
        info.router,
        login.router,
        reports_chat.router,
        quiet_commands.router,
        menu.router,
        mobilisation.router,
        staff_chat.router,
    )


def build_timers() -> TimerRegistry:
    """Every timer kind and its handler. A new kind is added here, or its timers stay pending (and show
    on ``/metrics`` as ``craftlink_timers_unhandled``) instead of firing. A fresh registry per call: the
    app builds one at start (``bot/app.py::create_app``) and hands it to the poller."""
    return TimerRegistry({
        dispatch.OFFER_SEND: dispatch.on_offer_send,
        dispatch.OFFER_TIMEOUT: dispatch.on_offer_timeout,
        reminders.PROGRESS_NUDGE: reminders.on_progress_nudge,
        reminders.PROGRESS_ESCALATE: reminders.on_progress_escalate,
        reminders.APPOINTMENT_EVE: reminders.on_appointment_eve,
        reminders.APPOINTMENT_SOON: reminders.on_appointment_soon,
        reminders.FEEDBACK_NUDGE: reminders.on_feedback_nudge,
        reminders.FEEDBACK_CLOSE: reminders.on_feedback_close,
        reminders.ENTERPRISE_FOLLOWUP: reminders.on_enterprise_followup,
        mobilisation.DEADLINE: mobilisation.report,
        failures.ALERT: failures.send_failure_alert,
    })
