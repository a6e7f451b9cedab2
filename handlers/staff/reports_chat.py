"""Staff reports in chat: 日报 (the daily digest now) and 月报 2026-11 (a month's report with workbook and chart)."""

from __future__ import annotations

from handlers.context import HandlerContext
from handlers.messages import markdown
from handlers.parsing import parse_month
from handlers.reports import month_key, previous_month
from handlers.reports.bundle import build_bundle
from handlers.reports.digest import build_digest
from handlers.router import Command, Router
from handlers.visibility import scope_of
from storage.models import Role

router = Router("staff.reports")
STAFF = {Role.STAFF}


@router.command("日报", roles=STAFF, summary="日报 — 立即查看昨日工作日报")
async def daily(ctx: HandlerContext, cmd: Command) -> None:
    """The digest the sender would get this morning (a group lead sees their groups)."""
    scope = await scope_of(ctx.session, ctx.person.id)
    today = ctx.now().astimezone(ctx.settings.tz).date()
    digest = await build_digest(ctx.session, ctx.settings, today=today, now=ctx.now(), groups=scope.group_set())
    await ctx.reply(markdown(digest.title, digest.markdown))


@router.command("月报", roles=STAFF, summary="月报 2026-11 — 某月工作进展（含 Excel 报表和图表）")
async def monthly(ctx: HandlerContext, cmd: Command) -> None:
    """A month's summary, workbook, chart and download link (default: last month)."""
    raw = cmd.tail  # not cmd.rest: the command parser reads 「2026-11」 as the number 2026
    if not raw:
        month = previous_month(ctx.now(), ctx.settings.tz)
    else:
        # Bounded (years 2000–2100, not after this month); a ParseError is the polite answer.
        month = month_key(*parse_month(raw, now=ctx.now(), tz=ctx.settings.tz))
    bundle = await build_bundle(ctx.session, ctx.services, month)
    for msg in bundle.messages():
        await ctx.reply(msg)
