"""The monthly report as an XLSX workbook (openpyxl): one sheet per view, totals where they add up.

Every row goes through :func:`handlers.sheets.append_row`: names and texts people typed are string
cells, never formulas.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.worksheet.worksheet import Worksheet

from handlers.reports.monthly import MonthlyReport, Row
from handlers.sheets import append_row

SHEETS = ("概览", "按专业", "按地区", "按行业", "按服务方式", "工匠积分排行", "工匠评分排行", "典型案例", "逐月对比")
TOTAL_LABEL = "合计"
_BOLD = Font(bold=True)


def _header(ws: Worksheet, *titles: str) -> None:
    append_row(ws, list(titles))
    for cell in ws[1]:
        cell.font = _BOLD
    ws.freeze_panes = "A2"


def _breakdown(ws: Worksheet, first: str, rows: Sequence[Row]) -> None:
    _header(ws, first, "新增需求（件）", "解决（件）", "帮扶时长（小时）")
    for r in rows:
        append_row(ws, [r.label, r.cases, r.solved, round(r.help_hours, 2)])
    append_row(ws, [TOTAL_LABEL, sum(r.cases for r in rows), sum(r.solved for r in rows),
               round(sum(r.help_hours for r in rows), 2)])
    for cell in ws[ws.max_row]:
        cell.font = _BOLD
    ws.column_dimensions["A"].width = 18


def _r(value: float | None, digits: int = 1) -> float | str:
    return "" if value is None else round(value, digits)


def monthly_workbook(rep: MonthlyReport) -> bytes:
    """Build the workbook and return it as bytes (the sheets are listed in :data:`SHEETS`)."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = SHEETS[0]
    _header(ws, "指标", "数值")
    for label, value in (
        ("月份", rep.month),
        ("新增需求（件）", rep.new_cases),
        ("解决（件）", rep.solved),
        ("帮扶时长（小时）", round(rep.help_hours, 2)),
        ("本月需求解决率", _r(rep.solved_rate, 3)),
        ("响应时间中位数（小时，提交→接单）", _r(rep.response_median_h, 2)),
        ("响应时间 P90（小时）", _r(rep.response_p90_h, 2)),
        ("评价数", len(rep.ratings)),
        ("平均评分", _r(rep.avg_rating, 2)),
        ("满意率（4–5 分）", _r(rep.satisfied_share, 3)),
        ("未评价结案（件）", rep.unrated),
    ):
        append_row(ws, [label, value])
    ws.column_dimensions["A"].width = 34
    for title, first, rows in ((SHEETS[1], "专业组", rep.by_group), (SHEETS[2], "地区", rep.by_region),
                               (SHEETS[3], "行业", rep.by_industry), (SHEETS[4], "服务方式", rep.by_mode)):
        _breakdown(wb.create_sheet(title), first, rows)
    ws = wb.create_sheet(SHEETS[5])
    _header(ws, "名次", "师傅", "专业组", "积分", "服务件数", "服务时长（小时）")
    for i, c in enumerate(rep.by_points, start=1):
        append_row(ws, [i, c.name, c.group, round(c.points, 2), c.cases, round(c.help_hours, 2)])
    ws = wb.create_sheet(SHEETS[6])
    _header(ws, "名次", "师傅", "专业组", "平均评分", "评价数")
    for i, c in enumerate(rep.by_rating, start=1):
        append_row(ws, [i, c.name, c.group, _r(c.rating, 2), len(c.ratings)])
    ws = wb.create_sheet(SHEETS[7])
    _header(ws, "编号", "专业组", "企业", "师傅", "需求", "做法", "评分", "企业评价", "用时（小时）")
    for s in rep.typical:
        append_row(ws, [f"#{s.number}", s.group, s.enterprise, s.craftsman, s.text, s.solution, s.rating or "",
                   s.comment, s.help_hours])
    ws = wb.create_sheet(SHEETS[8])
    _header(ws, "月份", "专业组", "新增需求（件）", "解决（件）", "帮扶时长（小时）")
    for month, groups in rep.history:
        for g in sorted(groups.values(), key=lambda r: r.label):
            append_row(ws, [month, g.label, g.cases, g.solved, round(g.help_hours, 2)])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
