"""Craftsmen, enterprises, reports, roster upload/download and staff accounts pages."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import aiohttp
import openpyxl
from sqlalchemy import select

from bot.channels.registry import roster_channels
from bot.keys import sessions_key
from handlers.roster import parse_roster_bytes
from storage.models import Case, Craftsman, PointsEntry, StaffMember
from tests.console.conftest import MOLD, Agent, Console

ROSTER = (
    "编号,姓名,小组,技能专长,地区,渠道,账号\n"
    "GJ1007,孙卫东,模具制造,冲压模具、模具修复、级进模,宁波市余姚市,web,demo-craftsman-1007\n"
    "GJ2001,方志刚,焊接工艺,氩弧焊,宁波市北仑区,,\n"
    ",无编号,焊接工艺,,,,\n"
    "GJ2002,坏渠道,焊接工艺,,,QQ,123\n"
)


async def upload(agent: Agent, data: bytes, filename: str, *, token: bool = True) -> aiohttp.ClientResponse:
    form = aiohttp.FormData()
    if token:
        form.add_field("_csrf", agent.csrf)
    form.add_field("file", data, filename=filename, content_type="application/octet-stream")
    return await agent.http.post(agent.base + "/console/roster/upload", data=form, allow_redirects=False)


async def craftsman(console: Console, code: str) -> Craftsman:
    async with console.app[sessions_key]() as db:
        row = await db.scalar(select(Craftsman).where(Craftsman.code == code))
        assert row is not None
        return row


async def test_directory_shows_load_points_rating_and_hours(console: Console, staff: Agent) -> None:
    sun = await craftsman(console, "GJ1007")
    number = await console.submit("demo-firm-1", MOLD)
    async with console.app[sessions_key].begin() as db:
        case = await db.get(Case, number - 1000)
        assert case is not None
        case.craftsman_id, case.state, case.help_hours, case.rating = sun.person_id, "closed", 3.5, 5
        db.add(PointsEntry(craftsman_id=sun.person_id, case_id=case.id, points=17.0, rule="case", note="完成服务",
                           at=console.pg.clock.now()))
    page = await (await staff.get("/console/craftsmen?group=模具制造")).text()
    row = page[page.index("孙卫东"):page.index("</tr>", page.index("孙卫东"))]
    assert re.findall(r"<td>([^<]*)</td>", row)[-4:] == ["0", "17", "5.0", "3.5 小时"]
    assert "周明华" in page and "张翼飞" not in page
    assert "孙卫东" in await (await staff.get("/console/craftsmen?q=崩刃")).text()
    detail = await (await staff.get(f"/console/craftsmen/{sun.person_id}")).text()
    assert f"#{number}" in detail and "完成服务" in detail and "17" in detail


async def test_edit_skills_and_availability(console: Console, lead: Agent) -> None:
    sun = await craftsman(console, "GJ1007")
    console.pg.clock.advance(timedelta(minutes=5))
    page = await lead.flash(await lead.post(f"/console/craftsmen/{sun.person_id}/edit",
                                            {"skills": "冲压模具；级进模、模具修复", "leave_until": "2026-11-20"}))
    assert "已保存" in page
    after = await craftsman(console, "GJ1007")
    assert after.skills == ["冲压模具", "级进模", "模具修复"] and after.available is False
    assert after.leave_until is not None and after.updated_at > sun.updated_at  # the matcher re-indexes
    bad = await lead.flash(await lead.post(f"/console/craftsmen/{sun.person_id}/edit", {"leave_until": "下周"}))
    assert "日期格式" in bad and (await craftsman(console, "GJ1007")).skills == after.skills


async def test_enterprises_list_and_page(console: Console, staff: Agent) -> None:
    number = await console.submit("demo-firm-1", MOLD)
    listing = await (await staff.get("/console/enterprises")).text()
    assert "宁波明州精密机械有限公司" in listing and "德清绿水水产养殖合作社" in listing
    firm_id = re.search(r'/console/enterprises/(\d+)">宁波明州', listing).group(1)  # type: ignore[union-attr]
    page = await (await staff.get(f"/console/enterprises/{firm_id}")).text()
    assert f"#{number}" in page and "王经理" in page and "待审核" in page
    assert (await staff.get("/console/enterprises/9999")).status == 404


async def test_reports_page_chart_and_workbook(console: Console, admin: Agent) -> None:
    await console.submit("demo-firm-1", MOLD)
    page = await (await admin.get("/console/reports")).text()
    assert "2026年11月 工作进展" in page and "<svg" in page and "模具制造" in page
    assert '<span class="big">1</span>新增需求' in page
    old = await (await admin.get("/console/reports?month=2026-09")).text()
    assert "2026年09月 工作进展" in old and '<span class="big">0</span>新增需求' in old
    assert (await admin.get("/console/reports?month=2027-01")).status == 400
    xlsx = await admin.get("/console/reports/2026-11.xlsx")
    assert xlsx.status == 200 and "craftlink-2026-11.xlsx" in xlsx.headers["Content-Disposition"]
    openpyxl.load_workbook(io.BytesIO(await xlsx.read()))  # a real workbook
    png = await admin.get("/console/reports/2026-11.png")
    assert png.content_type == "image/png" and (await png.read()).startswith(b"\x89PNG")


async def test_roster_download_round_trips(console: Console, staff: Agent) -> None:
    resp = await staff.get("/console/roster.xlsx")
    assert resp.status == 200
    parsed = parse_roster_bytes(await resp.read(), "roster.xlsx", channels=roster_channels())
    assert not parsed.errors and len(parsed.rows) == 40
    sun = next(r for r in parsed.rows if r.code == "GJ1007")
    assert (sun.name, sun.group, sun.channel, sun.channel_user_id) == ("孙卫东", "模具制造", "web", "demo-craftsman-1007")


async def test_roster_upload_previews_then_confirms(console: Console, admin: Agent) -> None:
    resp = await upload(admin, ROSTER.encode(), "roster.csv")
    page = await resp.text()
    assert resp.status == 200 and "新增 1 人，更新 1 人，不变 0 人，错误 2 行" in page
    assert "第 4 行" in page and "缺少编号" in page and "第 5 行" in page and "渠道“QQ”无效" in page
    assert (await craftsman(console, "GJ1007")).skills != ["冲压模具", "模具修复", "级进模"]  # preview wrote nothing
    fields = dict(re.findall(r'name="(upload_id|suffix|filename)" value="([^"]*)"', page))
    done = await admin.flash(await admin.post("/console/roster/confirm", fields))
    assert "花名册已导入：新增 1 人，更新 1 人" in done
    assert (await craftsman(console, "GJ1007")).skills == ["冲压模具", "模具修复", "级进模"]
    assert (await craftsman(console, "GJ2001")).trade_group == "焊接工艺"
    again = await admin.flash(await admin.post("/console/roster/confirm", fields))
    assert "已过期" in again  # the parked file is used once


async def test_roster_upload_limits(console: Console, admin: Agent, staff: Agent) -> None:
    assert (await upload(admin, ROSTER.encode(), "roster.csv", token=False)).status == 403
    assert (await upload(admin, b"x", "roster.exe")).status == 415
    assert (await upload(admin, b"not a zip", "roster.xlsx")).status == 415
    assert (await upload(admin, b"a" * (2 * 1024 * 1024 + 10), "roster.csv")).status == 413
    bad = await upload(admin, "姓名,地区\n张三,宁波\n".encode(), "roster.csv")
    assert bad.status == 422 and "缺少必填列" in await bad.text()
    assert (await upload(staff, ROSTER.encode(), "roster.csv")).status == 403


async def test_accounts_page_changes_roles_and_unlocks(console: Console, admin: Agent, staff: Agent) -> None:
    async with console.app[sessions_key].begin() as db:
        row = await db.get(StaffMember, staff.person_id)
        assert row is not None
        row.failed_logins = 7  # wrong passwords since the last login (the throttle itself is per address)
    page = await (await admin.get("/console/accounts")).text()
    assert "刘志明" in page and "密码错误 7 次" in page
    done = await admin.flash(await admin.post(f"/console/accounts/{staff.person_id}",
                                              {"role": "group_lead", "groups": "焊接工艺，维修电工", "unlock": "1"}))
    assert "账号已更新" in done
    async with console.app[sessions_key]() as db:
        row = await db.get(StaffMember, staff.person_id)
        assert row is not None and row.staff_role == "group_lead" and row.groups == ["焊接工艺", "维修电工"]
        assert row.failed_logins == 0 and row.locked_until is None
    refused = await admin.flash(await admin.post(f"/console/accounts/{admin.person_id}", {"role": "staff"}))
    assert "不能取消自己的管理员权限" in refused
    lead_without_groups = await admin.flash(await admin.post(f"/console/accounts/{staff.person_id}",
                                                             {"role": "group_lead", "groups": ""}))
    assert "组长未指定专业小组" in lead_without_groups
