"""Download of a monthly report workbook by a signed, expiring link sent in chat.

The console (``bot/console``) serves the same workbook behind its login via
:func:`handlers.reports.bundle.monthly_xlsx`; this route needs no login because the link itself is
the credential (HMAC over month and expiry with ``console.secret_key``), like a presigned URL.
"""

from __future__ import annotations

from aiohttp import web

from bot.keys import clock_key, sessions_key, settings_key
from bot.links import MONTHLY_REPORT_ROUTE
from handlers.parsing import parse_month
from handlers.reports import month_key
from handlers.reports.bundle import monthly_xlsx
from handlers.reports.links import check

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def monthly_download(request: web.Request) -> web.Response:
    """GET /reports/monthly/2026-11.xlsx?exp=…&sig=… → the workbook, or 403."""
    settings = request.app[settings_key]
    try:
        month = month_key(*parse_month(request.match_info["month"]))
    except ValueError:
        raise web.HTTPNotFound() from None
    if not check(settings, month, request.query.get("exp", ""), request.query.get("sig", ""),
                 request.app[clock_key].now()):
        raise web.HTTPForbidden(text="链接无效或已过期，请在聊天中重新发送「月报 " + month + "」获取。")
    async with request.app[sessions_key]() as session:
        body = await monthly_xlsx(session, month, settings=settings)
    return web.Response(body=body, content_type=XLSX, headers={
        "Content-Disposition": f'attachment; filename="report-{month}.xlsx"', "Cache-Control": "private, no-store"})


def setup(app: web.Application) -> None:
    """Add the download route (``bot/app.py`` calls this next to the other routes)."""
    app.router.add_get(MONTHLY_REPORT_ROUTE.replace("{month}", "{month:[0-9]{4}-[0-9]{1,2}}"), monthly_download)
