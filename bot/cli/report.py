"""``craftlink digest --now [--dry-run]`` and ``craftlink report --month 2026-11 [--out report.xlsx]``.

They produce exactly what the scheduled jobs send (same builders). ``digest --now`` queues the digest to
every staff member through the outbox (the running service delivers it) and claims today's period so
the 08:30 run does not send it again; ``--dry-run`` only prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from bot.config import Settings, load_settings


async def _digest(settings: Settings, *, dry_run: bool) -> str:
    from handlers.clock import SystemClock
    from handlers.services import Services
    from scheduler.jobs import run_daily_digest
    from storage.db import create_engine, session_factory

    services = Services(settings=settings, clock=SystemClock(), instance="cli")
    engine = create_engine(settings.database.url)
    try:
        sent = await run_daily_digest(session_factory(engine), services, on_demand=True, dry_run=dry_run)
    finally:
        await engine.dispose()
    if not sent:
        return "没有工作人员账号：日报无人接收。"
    bodies = list(dict.fromkeys(body for _, body in sent))
    head = "（预览，未发送）" if dry_run else f"已写入发件箱，共 {len(sent)} 位工作人员（服务运行时发出）。"
    return head + "\n\n" + "\n\n---\n\n".join(bodies)


def cmd_digest(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    sys.stdout.write(asyncio.run(_digest(settings, dry_run=args.dry_run)) + "\n")
    return 0


async def _report(settings: Settings, month: str, out: Path, chart: Path | None) -> str:
    from handlers.reports.chart import monthly_chart
    from handlers.reports.monthly import build_monthly, summary_text
    from handlers.reports.xlsx import monthly_workbook
    from storage.db import create_engine, session_factory

    engine = create_engine(settings.database.url)
    try:
        async with session_factory(engine)() as session:
            rep = await build_monthly(session, settings, month)
    finally:
        await engine.dispose()
    out.write_bytes(monthly_workbook(rep))
    lines = [summary_text(rep), "", f"报表：{out}"]
    if chart is not None:
        chart.write_bytes(monthly_chart(rep))
        lines.append(f"图表：{chart}")
    return "\n".join(lines)


def cmd_report(args: argparse.Namespace) -> int:
    from handlers.parsing import parse_month
    from handlers.reports import month_key

    settings = load_settings(args.config)
    try:
        month = month_key(*parse_month(args.month))
    except ValueError:
        sys.stderr.write(f"error: --month expects a month like 2026-11, got {args.month!r}\n")
        return 2
    out = Path(args.out or f"report-{month}.xlsx")
    chart = Path(args.chart) if args.chart else None
    sys.stdout.write(asyncio.run(_report(settings, month, out, chart)) + "\n")
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``digest`` and ``report`` on the ``craftlink`` command."""
    digest = sub.add_parser("digest", help="the staff daily digest, on demand")
    digest.add_argument("--now", action="store_true", required=True, help="build it now (for yesterday)")
    digest.add_argument("--dry-run", action="store_true", help="print it, send nothing")
    digest.set_defaults(func=cmd_digest)
    report = sub.add_parser("report", help="the monthly report (XLSX), on demand")
    report.add_argument("--month", required=True, help="e.g. 2026-11")
    report.add_argument("--out", default=None, help="workbook path (default report-<month>.xlsx)")
    report.add_argument("--chart", default=None, help="also write the chart PNG here")
    report.set_defaults(func=cmd_report)
