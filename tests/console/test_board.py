"""The board: columns by state, stalled marks, filters, search, escaping, and the live event stream."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.keys import hub_key
from tests.console.conftest import FISH, MOLD, Agent, Console

XSS = "焊缝开裂<script>window.pwned=1</script>请看看"


def column(page: str, key: str) -> str:
    """The HTML of one board column."""
    start = page.index(f'data-column="{key}"')
    end = page.find('data-column="', start + 20)
    return page[start:end if end > 0 else None]


async def test_cases_sit_in_their_columns_with_age_group_and_enterprise(console: Console, admin: Agent) -> None:
    mold = await console.submit("demo-firm-1", MOLD)
    fish = await console.submit("demo-firm-2", FISH)
    await admin.post(f"/console/cases/{fish}/approve")  # → offered to an aquaculture craftsman
    await console.pg.settle()
    console.pg.clock.advance(timedelta(hours=2))
    page = await (await admin.get("/console/")).text()
    review, offered = column(page, "review"), column(page, "offered")
    assert f"#{mold}" in review and "模具制造" in review and "宁波明州精密机械有限公司" in review and "2小时" in review
    assert f"#{fish}" in offered and "水产养殖" in offered and "邀请 " in offered
    assert "stalled" not in page


async def test_stalled_past_the_nudge_is_marked_red(console: Console, admin: Agent) -> None:
    number = await console.submit("demo-firm-1", MOLD)
    console.pg.clock.advance(timedelta(hours=25))  # timers.progress_nudge_h = 24
    admin = await console.agent(admin.person_id)  # the first session expired meanwhile (12 h)
    page = await (await admin.get("/console/")).text()
    at = page.index(f'data-case="{number}"')
    card = page[at - 80:at + 400]
    assert 'class="card stalled"' in card and "停滞" in card
    await admin.post(f"/console/cases/{number}/note", {"note": "已跟进"})  # a note is not progress
    assert 'class="card stalled"' in (await (await admin.get("/console/")).text())


async def test_filters_and_search(console: Console, admin: Agent) -> None:
    mold = await console.submit("demo-firm-1", MOLD)
    fish = await console.submit("demo-firm-2", FISH)

    async def shown(query: str) -> set[int]:
        page = await (await admin.get("/console/board/cards?" + query)).text()
        return {n for n in (mold, fish) if f"#{n}<" in page.replace("</strong>", "<")}

    assert await shown("") == {mold, fish}
    assert await shown("group=水产养殖") == {fish}
    assert await shown("region=湖州") == {fish}
    assert await shown("state=review") == {mold, fish} and await shown("state=service") == set()
    assert await shown(f"q={mold}") == {mold} and await shown(f"q=%23{fish}") == {fish}
    assert await shown("q=增氧机") == {fish} and await shown("q=明州精密") == {mold}
    assert await shown("from=2026-11-02&to=2026-11-02") == {mold, fish}
    assert await shown("from=2026-11-03") == set() and await shown("to=2026-11-01") == set()
    assert await shown("q=100%25") == set()  # LIKE wildcards are escaped


async def test_script_in_a_case_text_is_shown_as_text(console: Console, admin: Agent) -> None:
    number = await console.submit("demo-firm-1", XSS)
    for path in ("/console/", f"/console/cases/{number}"):
        page = await (await admin.get(path)).text()
        assert "<script>window.pwned" not in page and "&lt;script&gt;window.pwned=1&lt;/script&gt;" in page


async def test_the_event_stream_announces_a_moved_case(console: Console, admin: Agent) -> None:
    console.app[hub_key].settle_s = 0  # publish at once: the test waits on the stream, not on a delay
    stream = await admin.get("/console/board/events")
    assert stream.headers["Content-Type"] == "text/event-stream"
    assert await asyncio.wait_for(stream.content.readline(), 5) == b"retry: 5000\n"
    await console.submit("demo-firm-1", MOLD)  # a chat message files a case: the board must hear of it

    async def next_event() -> bytes:
        while True:
            line = await stream.content.readline()
            if line.startswith(b"event:"):
                return line

    assert await asyncio.wait_for(next_event(), 5) == b"event: change\n"
    stream.close()
