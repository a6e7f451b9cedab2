"""Acting for a person outside a chat message (console buttons, CLI commands, scheduled jobs).

The console's 审核 / 派单 / 改派 / 取消 buttons call the very handlers the chat commands call, through
a context built here, so there is one code path and one audit trail.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.app import build_router
from handlers.context import HandlerContext, UserError
from handlers.dialogs import DialogView
from handlers.outbox import Outbox
from handlers.router import Command, parse_command
from handlers.services import Services
from storage.models import Person, Role


async def context_for(session: AsyncSession, services: Services, person: Person) -> HandlerContext:
    return HandlerContext(
        session=session,
        services=services,
        person=person,
        dialog=await DialogView.load(session, services.clock, person.id),
        outbox=Outbox(session, services.clock),
    )


async def run_command(session: AsyncSession, services: Services, person: Person, text: str) -> str:
    """Run a chat command as ``person`` (e.g. ``派单 1024 张三``) and return the reply text.

    Raises :class:`UserError` with the polite explanation when the command is refused; the caller's
    transaction should then be rolled back.
    """
    router = build_router()
    role = Role(person.role)
    cmd: Command | None = parse_command(text, router.names_for(role))
    if cmd is None:
        raise UserError(f"不认识的指令「{text[:20]}」。")
    ctx = await context_for(session, services, person)
    await router.run_command(ctx, cmd)
    if ctx.outbox.written:
        services.on_outbox()
    return "\n".join(m.plain_text for m in ctx.replies)
