"""The monthly report as the messages staff receive: summary, workbook, chart and download link.

Also :func:`monthly_xlsx`, the one call the staff console makes for its authenticated download.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.messages import OutgoingKind, OutgoingMessage, markdown
from handlers.reports.chart import monthly_chart
from handlers.reports.links import monthly_link
from handlers.reports.monthly import MonthlyReport, build_monthly, summary_text
from handlers.reports.xlsx import monthly_workbook
from handlers.services import Services
from handlers.settings import Settings


@dataclass
class MonthlyBundle:
    report: MonthlyReport
    xlsx_path: Path
    chart_path: Path
    link: str | None

    def messages(self) -> list[OutgoingMessage]:
        text = summary_text(self.report)
        if self.link:
            text += f"\n\n下载完整报表（{self.xlsx_path.name}）：{self.link}"
        return [
            markdown(f"{self.report.month} 月报", text),
            OutgoingMessage(kind=OutgoingKind.FILE, media_path=str(self.xlsx_path), file_name=self.xlsx_path.name),
            OutgoingMessage(kind=OutgoingKind.IMAGE, media_path=str(self.chart_path)),
        ]


async def monthly_xlsx(session: AsyncSession, month: str, *, settings: Settings | None = None) -> bytes:
    """The month's workbook as bytes, for the console's download page (``month`` like ``"2026-11"``)."""
    rep = await build_monthly(session, settings or Settings(), month)
    return await asyncio.to_thread(monthly_workbook, rep)


async def build_bundle(session: AsyncSession, services: Services, month: str) -> MonthlyBundle:
    """Compute the month, write ``report-<month>.xlsx`` and ``chart-<month>.png`` under ``bot.media_dir``."""
    settings, now = services.settings, services.clock.now()
    rep = await build_monthly(session, settings, month)
    folder = Path(settings.bot.media_dir) / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    xlsx_path, chart_path = folder / f"report-{rep.month}.xlsx", folder / f"chart-{rep.month}.png"
    # Rendering takes a second of CPU: keep it off the event loop that serves callbacks.
    xlsx_path.write_bytes(await asyncio.to_thread(monthly_workbook, rep))
    chart_path.write_bytes(await asyncio.to_thread(monthly_chart, rep))
    return MonthlyBundle(rep, xlsx_path, chart_path, monthly_link(settings, services.links, rep.month, now))
