"""Console query and path parameters are bounded (issue 13, item 7): a bad month is a 400 page, never a 500."""

from __future__ import annotations

from tests.console.conftest import Agent, Console

HUGE = "1" * 25


async def test_console_reports_answer_400_with_a_chinese_page(console: Console, admin: Agent) -> None:
    for month in ("0001-01", "9999-12", "1999-12", "2026-13", "abc", "1" * 25):
        page = await admin.get(f"/console/reports?month={month}")
        assert page.status == 400, (month, page.status)
        body = await page.text()
        assert "月份" in body and "<html" in body.lower(), body
    for month in ("0001-01", "9999-12"):
        for ext in ("xlsx", "png"):
            resp = await admin.get(f"/console/reports/{month}.{ext}")
            assert resp.status == 400, (month, ext, resp.status)


async def test_console_board_search_and_dates_are_bounded(console: Console, admin: Agent) -> None:
    for query in (f"q={HUGE}", f"q=%23{HUGE}", "from=0001-01-01", "to=9999-12-31", "from=9999-12-31&to=0001-01-01"):
        resp = await admin.get("/console/board/cards?" + query)
        assert resp.status == 200, (query, resp.status)
    assert (await admin.get(f"/console/cases/{HUGE}")).status == 404


async def test_report_link_expiry_must_be_ascii_digits(console: Console) -> None:
    """``exp=²`` passed str.isdigit() and then failed int(): a 500 instead of a refused link."""
    anon = console.anonymous()
    for exp in ("²", "٣", "9" * 5000, "-1", ""):
        resp = await anon.get("/reports/monthly/2026-11.xlsx", params={"exp": exp, "sig": "x"})
        assert resp.status == 403, (exp[:5], resp.status)
