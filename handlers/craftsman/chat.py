"""A craftsman's free text: a message for the enterprise of the current case."""

from __future__ import annotations

from handlers.context import HandlerContext
from handlers.relay import relay
from handlers.router import Router
from storage.models import Role

router = Router("craftsman.chat")


@router.fallback(Role.CRAFTSMAN)
async def craftsman_text(ctx: HandlerContext, text: str) -> None:
    """Relay to the enterprise of the current case, or explain what can be done."""
    if await relay(ctx, text=text):
        return
    await ctx.reply(f"没看懂「{text[:20]}」。您目前没有进行中的案件；有新需求时我会发给您。回复「帮助」查看可用指令。")

