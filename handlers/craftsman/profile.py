"""A craftsman's own settings: availability (休息 / 上线) and how we introduce them."""

from __future__ import annotations

from handlers.context import HandlerContext
from handlers.router import Command, Router
from storage.models import Craftsman, Person, Role

router = Router("craftsman.profile")


async def craftsman_intro(ctx: HandlerContext, person: Person) -> str:
    c = await ctx.session.get(Craftsman, person.id)
    if c is None:
        return f"{person.name}师傅"
    return f"{person.name}师傅（{c.trade_group}）"


@router.command("休息", roles={Role.CRAFTSMAN}, summary="休息 — 暂停接收派单")
async def go_off(ctx: HandlerContext, cmd: Command) -> None:
    """Stop receiving offers until 上线."""
    c = await ctx.session.get(Craftsman, ctx.person.id)
    if c is not None:
        c.available = False
        c.updated_at = ctx.now()
    await ctx.reply("已设为休息，暂不给您派单。回复「上线」恢复接单。进行中的案件不受影响。")


@router.command("上线", roles={Role.CRAFTSMAN}, summary="上线 — 恢复接收派单")
async def go_on(ctx: HandlerContext, cmd: Command) -> None:
    """Receive offers again."""
    c = await ctx.session.get(Craftsman, ctx.person.id)
    if c is not None:
        c.available = True
        c.leave_until = None
        c.updated_at = ctx.now()
    await ctx.reply("已上线，有合适的需求会第一时间派给您。")
