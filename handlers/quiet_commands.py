"""免打扰: everyone can see, change or switch off their own quiet hours."""

from __future__ import annotations

from handlers.context import HandlerContext
from handlers.parsing import parse_quiet_hours
from handlers.quiet import window_of
from handlers.router import Command, Router
from storage.models import Role

router = Router("quiet")
ALL = {Role.ENTERPRISE, Role.CRAFTSMAN, Role.STAFF}
_OFF = {"关", "关闭", "off", "取消"}
_DEFAULT = {"默认", "恢复", "恢复默认", "开", "打开", "on"}


@router.command("免打扰", roles=ALL, summary="免打扰 22:00-07:00 / 免打扰 关 — 设置夜间免打扰时段")
async def quiet_hours(ctx: HandlerContext, cmd: Command) -> None:
    """Show, set (``免打扰 22:00-07:00``), reset (``免打扰 默认``) or switch off (``免打扰 关``) quiet hours."""
    person = ctx.person
    arg = cmd.tail.replace(" ", "").lower()  # not cmd.rest: 「22:00」 would parse as case 22
    default = ctx.settings.timers.quiet_hours
    if not arg:
        window = window_of(person, ctx.settings)
        now = "已关闭" if window is None else f"{window[0]:%H:%M}-{window[1]:%H:%M}"
        await ctx.reply(f"您的免打扰时段：{now}（默认 {default}）。\n"
                        "修改：「免打扰 22:00-07:00」；关闭：「免打扰 关」；恢复默认：「免打扰 默认」。")
        return
    if arg in _OFF:
        person.quiet_off = True
        await ctx.reply("已关闭免打扰：提醒会随时发送给您。恢复：「免打扰 默认」。")
        return
    if arg in _DEFAULT:
        person.quiet_off, person.quiet_start, person.quiet_end = False, None, None
        await ctx.reply(f"已恢复默认免打扰时段 {default}。")
        return
    start, end = parse_quiet_hours(arg)  # format and bounds; a ParseError is the polite answer
    person.quiet_off = False
    person.quiet_start, person.quiet_end = f"{start:%H:%M}", f"{end:%H:%M}"
    await ctx.reply(f"好的，{start:%H:%M}–{end:%H:%M} 不再发送一般提醒，时段结束后再发给您。"
                    "紧急需求和应急动员仍会及时通知。")
