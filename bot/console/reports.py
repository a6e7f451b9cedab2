"""Reports: this month or any past month, as figures, SVG charts and tables; the monthly XLSX download.

The figures come from ``handlers/reports/monthly.py`` (one definition for the chat summary, the
workbook and this page), so the page and the XLSX can never disagree.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from bot.console import charts
from bot.console.auth import guard
from bot.console.render import render, render_text
from bot.console.viewer import ADMIN, STAFF
from bot.keys import clock_key, sessions_key, settings_key
from handlers.parsing import ParseError, parse_month
from handlers.reports import add_months, month_key
from handlers.reports.monthly import MonthlyReport, build_monthly
from handlers.reports.xlsx import monthly_workbook

MONTHS_LISTED = 24


def _month(request: web.Request, raw: str | None) -> str:
    """The month asked for (default: this one); out of format or bounds, or in the future → a 400 page."""
    tz = request.app[settings_key].tz
    now = request.app[clock_key].now().astimezone(tz)
    if not raw:
        return month_key(now.year, now.month)
    try:
        return month_key(*parse_month(raw, now=now, tz=tz))
    except ParseError as err:
        raise web.HTTPBadRequest(text=render_text(request, "error.html", title="月份有误", message=str(err)),
                                 content_type="text/html") from None


async def _build(request: web.Request, month: str) -> MonthlyReport:
    async with request.app[sessions_key]() as db:
        return await build_monthly(db, request.app[settings_key], month)


async def report_page(request: web.Request) -> web.Response:
    """报表: the month's figures, per-group charts and tables, month-over-month chart."""
    month = _month(request, request.query.get("month"))
    rep = await _build(request, month)
    now = request.app[clock_key].now().astimezone(request.app[settings_key].tz)
    months = [month_key(*add_months(now.year, now.month, -i)) for i in range(MONTHS_LISTED)]
    groups = [r for r in rep.by_group if r.cases or r.solved]
    by_group = charts.hbar([(r.label, [r.cases, r.solved]) for r in groups], ["需求", "解决"],
                           title="各专业小组需求与解决件数")
    hours = charts.hbar([(r.label, [round(r.help_hours, 1)]) for r in groups if r.help_hours], ["帮扶时长"],
                        title="各专业小组帮扶时长（小时）", unit="h")
    trend = charts.columns(
        [(m[5:] + "月", [float(sum(r.cases for r in rows.values())), float(sum(r.solved for r in rows.values()))])
         for m, rows in rep.history], ["需求", "解决"], title="近六个月需求与解决")
    return render(request, "reports.html", rep=rep, month=month, months=months, groups=groups,
                  chart_groups=by_group, chart_hours=hours, chart_trend=trend)


async def report_xlsx(request: web.Request) -> web.Response:
    """The monthly workbook (the same one the monthly job sends), rendered off the event loop."""
    month = _month(request, request.match_info["month"])
    rep = await _build(request, month)
    data = await asyncio.to_thread(monthly_workbook, rep)
    return web.Response(body=data, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers={"Content-Disposition": f"attachment; filename=craftlink-{month}.xlsx"})


async def report_png(request: web.Request) -> web.Response:
    """The month-over-month chart of the monthly report (matplotlib, rendered off the event loop)."""
    from handlers.reports.chart import monthly_chart

    rep = await _build(request, _month(request, request.match_info["month"]))
    return web.Response(body=await asyncio.to_thread(monthly_chart, rep), content_type="image/png")


def routes() -> list[web.RouteDef]:
    office = guard(ADMIN, STAFF)
    return [
        web.get("/console/reports", office(report_page)),
        web.get("/console/reports/{month}.xlsx", office(report_xlsx)),
        web.get("/console/reports/{month}.png", office(report_png)),
    ]
