"""Staff free text that is no command: point to 帮助 (staff relay nothing; they act by commands)."""

from __future__ import annotations

from handlers.context import HandlerContext
from handlers.router import Router
from storage.models import Role

router = Router("staff.chat")


@router.fallback(Role.STAFF)
async def staff_text(ctx: HandlerContext, text: str) -> None:
    """Staff typed something that is not a command."""
    await ctx.reply(f"没看懂「{text[:20]}」。回复「帮助」查看工作人员可用的指令。")
