"""Rows into openpyxl worksheets without formula injection (OWASP "CSV injection").

openpyxl turns any ``str`` that starts with ``=`` into a formula cell (``<f>`` in the file), so a
company called ``=HYPERLINK("http://…"&A1,"点此")`` would become a live link in the workbook staff
open. :func:`append_row` is the only way our workbooks (monthly report, roster export) add rows: every
``str`` is written as a string cell (``t="inlineStr"``, never ``<f>``), and one that starts with
``= + - @``, tab or CR also gets the quote-prefix style, Excel's own "this is text" mark (what a
leading ``'`` typed by hand does), so editing the cell keeps it text. The value itself is not changed,
so the roster still round-trips through the importer.
"""

from __future__ import annotations

from collections.abc import Iterable

from openpyxl.cell.cell import Cell
from openpyxl.worksheet.worksheet import Worksheet

RISKY_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(cell: Cell) -> Cell:
    """Make ``cell`` a plain string cell if it holds a ``str`` (see the module docstring)."""
    if isinstance(cell.value, str):
        cell.data_type = "s"
        if cell.value.startswith(RISKY_START):
            cell.quotePrefix = True
    return cell


def append_row(ws: Worksheet, values: Iterable[object]) -> None:
    """``ws.append(values)`` with every string cell made safe; numbers stay numbers."""
    ws.append(list(values))
    for cell in ws[ws.max_row]:
        safe_cell(cell)
