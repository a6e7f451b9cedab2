"""Digest content, monthly figures, the XLSX workbook, the chart, the CLI, chat commands and signed links."""

from __future__ import annotations

import asyncio
import io
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import create_app
from bot.cli import main
from bot.console import downloads
from bot.demo.history import seed_history
from bot.keys import sessions_key
from handlers.clock import ManualClock
from handlers.reports.chart import monthly_chart
from handlers.reports.digest import build_digest
from handlers.reports.monthly import build_monthly, percentile
from handlers.reports.xlsx import SHEETS, TOTAL_LABEL, monthly_workbook
from handlers.services import Services
from handlers.settings import Settings
from scheduler.jobs import run_monthly
from storage.models import JobRun, OutboxMessage, Person, Role
from tests.chat import Chat, Playground

PNG = b"\x89PNG\r\n\x1a\n"
MONDAY = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai


def test_percentile_is_nearest_rank() -> None:
    assert percentile(range(1, 11), 50) == 5 and percentile(range(1, 11), 90) == 9
    assert percentile([], 50) is None and percentile([7.0], 90) == 7.0


async def test_digest_sections_and_group_lead_view(sessions: async_sessionmaker[AsyncSession],
                                                   settings: Settings) -> None:
    async with sessions() as s, s.begin():
        await seed_history(s, settings, last_month="2026-10", months=1, per_month=4, now=MONDAY)
    async with sessions() as s:
        d = await build_digest(s, settings, today=MONDAY.date(), now=MONDAY)
        lead = await build_digest(s, settings, today=MONDAY.date(), now=MONDAY, groups={"水产养殖"})
    assert not d.empty and d.markdown.startswith("### 工作日报 11月2日")
    for section in ("**11月1日**：新需求 3 · 已接单 1 · 已解决 2", "**评价**：2 条，平均 3.5 分",
                    "**低分评价（≤2 分）（1）**\n- #1010 2 分（郑国庆）师傅来晚了", "**待审核（1）**", "**无人接单，待人工派单（1）**", "**进展停滞（1）**",
                    "**今日预约上门（11月2日）（1）**", "**按专业**：焊接工艺 1 · 水产养殖 1 · 模具制造 1"):
        assert section in d.markdown, section
    assert "超时未评价" not in d.markdown and "未送达" not in d.markdown  # empty sections are left out
    assert "鱼塘夜间缺氧" in lead.markdown and "焊缝返修" not in lead.markdown


async def test_nothing_to_report_is_one_line(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    async with sessions() as s:
        d = await build_digest(s, settings, today=MONDAY.date(), now=MONDAY)
    assert d.empty and "\n" not in d.markdown and "没有新情况" in d.markdown


async def test_monthly_figures_workbook_and_chart(sessions: async_sessionmaker[AsyncSession],
                                                  settings: Settings) -> None:
    async with sessions() as s, s.begin():
        await seed_history(s, settings, last_month="2026-10", months=3, per_month=10)
    async with sessions() as s:
        rep = await build_monthly(s, settings, "2026-10")
    assert rep.new_cases == 14  # 10 + 2 more each month of the three
    assert rep.solved > 0 and rep.help_hours > 0 and rep.response_median_h is not None
    assert rep.response_p90_h is not None and rep.response_p90_h >= rep.response_median_h
    assert len(rep.typical) == 3 and rep.typical[0].rating == 5
    assert rep.by_points[0].points >= rep.by_points[-1].points
    assert [m for m, _ in rep.history][-3:] == ["2026-08", "2026-09", "2026-10"]

    wb = load_workbook(io.BytesIO(monthly_workbook(rep)))
    assert wb.sheetnames == list(SHEETS)
    for sheet in ("按专业", "按地区", "按行业", "按服务方式"):
        rows = list(wb[sheet].iter_rows(values_only=True))
        assert rows[-1][0] == TOTAL_LABEL
        assert rows[-1][1] == rep.new_cases and rows[-1][2] == rep.solved
        assert abs(float(str(rows[-1][3])) - rep.help_hours) < 0.01
    overview = {r[0]: r[1] for r in wb["概览"].iter_rows(min_row=2, values_only=True)}
    assert overview["新增需求（件）"] == rep.new_cases and overview["月份"] == "2026-10"
    assert wb["工匠积分排行"].max_row == len(rep.by_points) + 1

    for font in (True, None):  # with whatever CJK font the machine has, and the romanised fallback
        png = await asyncio.to_thread(monthly_chart, rep, font=font)
        assert png.startswith(PNG) and len(png) > 20_000
        width, height = struct.unpack(">II", png[16:24])
        assert (width, height) == (1000, 750)


async def test_monthly_run_sends_once_with_each_craftsmans_month_and_the_quarter(
        sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    clock = ManualClock(datetime(2026, 10, 1, 1, 30, tzinfo=UTC))  # 1 October 09:30: September and Q3 are due
    services = Services(settings=settings, clock=clock)
    async with sessions() as s, s.begin():
        await seed_history(s, settings, last_month="2026-09", months=3, per_month=8)
        rep = await build_monthly(s, settings, "2026-09")
    active = [c for c in rep.craftsmen if c.cases or c.points]
    queued = await run_monthly(sessions, services)
    assert queued == 2 * 4 + len(active)  # two staff: summary, workbook, chart, quarter; one line per craftsman
    assert await run_monthly(sessions, services) == 0
    async with sessions() as s:
        claims = set((await s.execute(select(JobRun.job, JobRun.period))).all())
        rows = (await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    assert claims == {("report.monthly", "2026-09"), ("report.quarterly", "2026-Q3")}
    kinds = [r.payload["kind"] for r in rows]
    assert kinds.count("file") == 2 and kinds.count("image") == 2
    personal = [r.payload["text"] for r in rows if "师傅您好" in r.payload.get("text", "")]
    assert len(personal) == len(active) and all("服务时长" in t and "积分" in t for t in personal)
    assert any("第3季度 典型案例" in r.payload.get("text", "") for r in rows)


async def test_cli_digest_and_report(sessions: async_sessionmaker[AsyncSession], settings: Settings,
                                     tmp_path: Path) -> None:
    async with sessions() as s, s.begin():
        await seed_history(s, settings, last_month="2026-10", months=2, per_month=6)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[database]\nurl = "{settings.database.url}"\n[bot]\nmedia_dir = "{tmp_path}/m"\n', encoding="utf-8")
    assert await asyncio.to_thread(main, ["--config", str(cfg), "digest", "--now", "--dry-run"]) == 0
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    assert await asyncio.to_thread(main, ["--config", str(cfg), "digest", "--now"]) == 0
    async with sessions() as s:
        staff = await s.scalar(select(func.count()).select_from(Person).where(Person.role == Role.STAFF.value))
        assert await s.scalar(select(func.count()).select_from(OutboxMessage)) == staff == 2
        assert await s.scalar(select(func.count()).select_from(JobRun)) == 1
    out, png = tmp_path / "r.xlsx", tmp_path / "r.png"
    args = ["--config", str(cfg), "report", "--month", "2026-10", "--out", str(out), "--chart", str(png)]
    assert await asyncio.to_thread(main, args) == 0
    assert load_workbook(out).sheetnames == list(SHEETS) and png.read_bytes().startswith(PNG)
    assert await asyncio.to_thread(main, ["--config", str(cfg), "report", "--month", "11/2026"]) == 2


async def test_chat_reports_and_signed_download(settings: Settings, clock: ManualClock) -> None:
    app = create_app(settings, clock=clock, run_scheduler=False)
    if not any(r.resource and "/reports/monthly" in r.resource.canonical for r in app.router.routes()):
        downloads.setup(app)  # until bot/app.py wires it
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        pg = Playground(client, clock)
        async with pg.app[sessions_key]() as s, s.begin():
            await seed_history(s, settings, last_month="2026-10", months=2, per_month=6)
        staff = pg.person("demo-staff-1")
        daily = await staff.say("日报")
        assert daily[-1]["title"].startswith("工作日报")
        got = await staff.say("月报 2026-10")
        assert [m["kind"] for m in got] == ["markdown", "file", "image"]
        link = next(w for w in got[0]["text"].split() if "/reports/monthly/2026-10.xlsx?" in w)
        path = link.split("://", 1)[1].split("/", 1)[1]
        ok = await client.get("/" + path)
        assert ok.status == 200 and (await ok.read()).startswith(b"PK")
        assert (await client.get("/" + path.replace("sig=", "sig=0"))).status == 403
        assert (await client.get("/reports/monthly/2026-09.xlsx?" + path.split("?")[1])).status == 403
        clock.advance(timedelta(hours=settings.timers.report_link_hours + 1))
        assert (await client.get("/" + path)).status == 403
        assert "月份格式不对" in Chat.text_of(await staff.say("月报 下个月"))
