"""Commands every role has: 帮助, 取消, 切换 (免打扰 lives with the quiet-hours code)."""

from __future__ import annotations

from handlers.cases import can_see, get_case, open_cases_of, state_label
from handlers.context import HandlerContext, UserError
from handlers.router import Command, Router
from storage.models import Role

router = Router("common")
ALL = {Role.ENTERPRISE, Role.CRAFTSMAN, Role.STAFF}
ROLE_NAMES = {Role.ENTERPRISE: "企业用户", Role.CRAFTSMAN: "工匠师傅", Role.STAFF: "工作人员"}
INTRO = {
    Role.ENTERPRISE: "直接描述遇到的技术问题即可提交需求（可附照片）；师傅接单后，您发的消息会转达给师傅。",
    Role.CRAFTSMAN: "有匹配的需求会发给您，点「接单」或「婉拒」即可；接单后直接回复消息即转达给企业。",
    Role.STAFF: "需求会自动匹配派单；需要您处理时会提醒。",
}


@router.command("帮助", "help", roles=ALL, summary="帮助 — 查看可用指令")
async def help_(ctx: HandlerContext, cmd: Command) -> None:
    """List the commands of the sender's role."""
    role = Role(ctx.person.role)
    lines = [f"您好，{ctx.person.name or ''}（{ROLE_NAMES[role]}）。{INTRO[role]}", "可用指令："]
    # The router that dispatched this message knows every command (it is the composed one).
    lines += [f"· {line}" for line in (ctx.routes.help_lines(role) if ctx.routes is not None else [])]
    await ctx.reply("\n".join(lines))


@router.command("取消", roles=ALL, summary="取消 — 退出当前的登记或填写")
async def cancel(ctx: HandlerContext, cmd: Command) -> None:
    """Abort the current dialog, whatever step it is at."""
    if ctx.dialog.flow is None:
        await ctx.reply("当前没有进行中的填写。")
        return
    await ctx.dialog.clear()
    await ctx.reply("已取消。需要帮助时随时发消息给我。")


@router.command("切换", roles={Role.ENTERPRISE, Role.CRAFTSMAN}, summary="切换 编号 — 选择当前对话的案件")
async def switch(ctx: HandlerContext, cmd: Command) -> None:
    """Choose which open case free-text messages are relayed to."""
    cases = await open_cases_of(ctx.session, ctx.person)
    if cmd.number is None:
        if not cases:
            await ctx.reply("您目前没有进行中的案件。")
            return
        current = ctx.person.current_case_id
        listing = "\n".join(
            f"{'▶' if c.id == current else '·'} #{c.number} {state_label(c.state)} {c.text[:20]}" for c in cases
        )
        await ctx.reply(f"进行中的案件：\n{listing}\n回复「切换 编号」选择当前案件。")
        return
    case = await get_case(ctx.session, cmd.number)
    if not can_see(ctx.person, case) or case not in cases:
        raise UserError(f"案件 #{cmd.number} 不是您进行中的案件。")
    ctx.person.current_case_id = case.id
    await ctx.reply(f"当前案件已切换为 #{case.number}，接下来的消息会转到这个案件。")
