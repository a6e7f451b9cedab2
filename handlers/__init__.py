"""The domain. ``build_router`` is the one visible place where every role's flows are composed."""

from __future__ import annotations

from functools import cache

from handlers.router import Router


@cache
def build_router() -> Router:
    """Compose the routers; order matters only for commands sharing a name (none do across roles)."""
    from handlers import common, feedback, menu, quiet_commands
    from handlers.craftsman import chat as craftsman_chat
    from handlers.craftsman import nudges, offers, profile, progress
    from handlers.enterprise import chat as enterprise_chat
    from handlers.enterprise import intake
    from handlers.staff import dispatching, info, login, mobilisation, reports_chat, review

    return Router("root").include(
        common.router,
        intake.router,
        enterprise_chat.router,
        feedback.router,
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
    )
