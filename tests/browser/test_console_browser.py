"""The console in a real browser (Chromium through Playwright): log in, watch a case arrive on the live
board, dispatch it and see the offer in the craftsman's chat, upload a roster with a bad row, a group
lead refused another group's case, a ``<script>`` in a case text left unexecuted, phone-width layout.
Screenshots of the board and the report page go to a temp dir (see conftest.keep for docs/)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.demo import DEMO_PASSWORD
from bot.keys import sessions_key, settings_key
from storage.models import Craftsman, Enterprise, Identity, Person
from tests.browser.conftest import TIMEOUT_MS, keep
from tests.chat import Chat, Playground
from tests.console.conftest import FISH, MOLD, Console

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

PASSWORD = DEMO_PASSWORD  # the demo seed gives 陈晓红 the console login "admin"
SUN = "demo-craftsman-1007"
XSS = "冲床的模子崩刃<script>window.pwned = 1</script><img src=x onerror=\"window.pwned = 2\">"


async def expect(locator: Any) -> Any:
    from playwright.async_api import expect as pw_expect

    return pw_expect(locator)


async def history(playground: Playground, *, now: bool) -> None:
    """Months of fictional activity (bot/demo/history.py), so pages and screenshots have content."""
    from bot.demo.history import seed_history

    async with playground.app[sessions_key].begin() as db:
        await seed_history(db, playground.app[settings_key], last_month="2026-10", months=6,
                           now=playground.clock.now() if now else None)


async def new_firm(playground: Playground, user: str, name: str) -> None:
    """An enterprise with no history (the history's firms are busy talking to their craftsmen)."""
    async with playground.app[sessions_key].begin() as db:
        firm = Enterprise(name=name, region="宁波市北仑区", industry="机械制造",
                          created_at=playground.clock.now())
        db.add(firm)
        await db.flush()
        person = Person(role="enterprise", name="李工", enterprise_id=firm.id, created_at=playground.clock.now())
        db.add(person)
        await db.flush()
        db.add(Identity(person_id=person.id, channel="web", channel_user_id=user, extra={}))


async def sign_in(page: Any, base: str, login: str) -> None:
    await page.goto(f"{base}/console/login")
    await page.fill("input[name=login]", login)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/console/")


async def test_live_board_dispatch_reaches_the_craftsman(playground: Playground, page: Any, shots: Path) -> None:
    console = Console(playground)
    await history(playground, now=True)  # open cases in every column, one stalled, for the screenshot
    await new_firm(playground, "web-firm-a", "德清青溪水产专业合作社")
    await new_firm(playground, "web-firm-b", "宁波甬江机械有限公司")
    earlier = await console.submit("web-firm-a", FISH)
    await sign_in(page, console.base, "admin")
    await (await expect(page.locator(f'[data-case="{earlier}"]'))).to_be_visible()

    number = await console.submit("web-firm-b", MOLD)  # a chat message arrives; nobody reloads the page
    card = page.locator(f'[data-column="review"] [data-case="{number}"]')
    await (await expect(card)).to_be_visible()
    await (await expect(card)).to_contain_text("模具制造")
    board_png = shots / "console-board.png"
    await page.screenshot(path=str(board_png), full_page=True)
    keep(board_png)

    async with playground.app[sessions_key]() as db:
        sun = await db.scalar(select(Craftsman.person_id).where(Craftsman.code == "GJ1007"))
    await card.click()
    await page.wait_for_url(re.compile(rf"/console/cases/{number}$"))
    await page.select_option("#dispatch-craftsman", str(sun))
    await page.click("#dispatch-form button[type=submit]")
    await (await expect(page.locator(".flash"))).to_contain_text(f"已将 #{number} 派给 孙卫东")
    await (await expect(page.locator(".timeline"))).to_contain_text("邀请 孙卫东 接单")

    await playground.settle()
    chat = await page.context.new_page()  # the craftsman's side: the web chat playground
    await chat.goto(f"{console.base}/playground")
    await chat.select_option("#person", SUN)
    await (await expect(chat.locator("#log"))).to_contain_text(f"新的服务需求 #{number}")
    await (await expect(chat.locator("#log button", has_text="接单"))).to_be_visible()


async def test_roster_upload_shows_the_rejected_row(playground: Playground, page: Any, tmp_path: Path) -> None:
    console = Console(playground)
    await sign_in(page, console.base, "admin")
    roster = tmp_path / "roster.csv"
    roster.write_text("编号,姓名,小组,手机\nGJ3001,方志刚,焊接工艺,13800001111\nGJ3002,错号码,焊接工艺,12ab\n",
                      encoding="utf-8")
    await page.goto(f"{console.base}/console/roster")
    await page.set_input_files("input[type=file]", str(roster))
    await page.click("#roster-upload button[type=submit]")
    rejected = page.locator("table.rejected")
    await (await expect(rejected)).to_contain_text("第 3 行")
    await (await expect(rejected)).to_contain_text("手机号“12ab”格式不对")
    await (await expect(page.locator("#preview"))).to_contain_text("新增 1 人，更新 0 人，不变 0 人，错误 1 行")
    await page.click("text=确认导入")
    await (await expect(page.locator(".flash"))).to_contain_text("花名册已导入：新增 1 人")
    await page.goto(f"{console.base}/console/craftsmen?q=GJ3001")
    await (await expect(page.locator("table.directory"))).to_contain_text("方志刚")


async def test_group_lead_is_refused_and_script_never_runs(playground: Playground, page: Any) -> None:
    console = Console(playground)
    await console.add_staff("赵组长", "group_lead", groups=["模具制造"], identity=("web", "demo-staff-2"))
    fish = await console.submit("demo-firm-2", FISH)
    mold = await console.submit("demo-firm-1", XSS)
    # The lead signs in the phone way: 登录 in chat, then the one-time link.
    reply = Chat.text_of(await playground.person("demo-staff-2").say("登录"))
    link = re.search(r"/console/login/[\w-]+", reply).group(0)  # type: ignore[union-attr]
    await page.goto(console.base + link)
    await page.click("text=确认登录")
    await page.wait_for_url(f"{console.base}/console/")

    response = await page.goto(f"{console.base}/console/cases/{fish}")
    assert response.status == 403
    await (await expect(page.locator("h1"))).to_have_text("无权访问")
    await (await expect(page.locator("main"))).not_to_contain_text("鱼塘")

    dialogs: list[str] = []
    page.on("dialog", lambda d: dialogs.append(d.message))
    await page.goto(f"{console.base}/console/cases/{mold}")
    await (await expect(page.locator("#case-text"))).to_contain_text("<script>window.pwned = 1</script>")
    assert await page.evaluate("typeof window.pwned") == "undefined" and dialogs == []
    await page.goto(f"{console.base}/console/")
    await (await expect(page.locator(f'[data-case="{mold}"]'))).to_contain_text("<script>")
    assert await page.evaluate("typeof window.pwned") == "undefined"


async def test_report_page_and_phone_width(playground: Playground, page: Any, shots: Path) -> None:
    console = Console(playground)
    await history(playground, now=False)
    await sign_in(page, console.base, "admin")
    await page.goto(f"{console.base}/console/reports")
    await page.select_option("select[name=month]", "2026-10")  # a past month, with its figures
    await page.click("text=查看")
    await (await expect(page.locator("h1"))).to_contain_text("2026年10月 工作进展")
    await (await expect(page.locator(".figures"))).not_to_contain_text("—")
    await (await expect(page.locator("svg.chart").first)).to_be_visible()
    width = await asyncio.wait_for(page.evaluate("""() => new Promise(done => {  // the matplotlib chart
        const img = document.querySelector("img.report-chart");
        if (img.complete) { done(img.naturalWidth); return; }
        img.onload = () => done(img.naturalWidth);
        img.onerror = () => done(0);
    })"""), TIMEOUT_MS / 1000)
    assert width > 0
    report_png = shots / "console-report.png"
    await page.screenshot(path=str(report_png), full_page=True)
    keep(report_png)

    await page.set_viewport_size({"width": 390, "height": 844})  # a phone, as in WeCom's in-app browser
    for path in ("/console/", "/console/reports", "/console/craftsmen"):
        await page.goto(console.base + path)
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (path, overflow)
