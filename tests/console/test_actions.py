"""Every staff action on the case page: it runs the chat handlers, tells the parties, and leaves a
case event with the staff member's name; refusals change nothing."""

from __future__ import annotations

from sqlalchemy import select

from bot.keys import sessions_key
from storage.models import CaseEvent, CaseState, Craftsman, Offer, OfferState, Person
from tests.chat import Chat
from tests.console.conftest import FISH, MOLD, Agent, Console

SUN = "demo-craftsman-1007"  # 孙卫东, 模具制造


async def events(console: Console, number: int) -> list[CaseEvent]:
    async with console.app[sessions_key]() as db:
        return list((await db.scalars(select(CaseEvent).where(CaseEvent.case_id == number - 1000)
                                      .order_by(CaseEvent.id))).all())


async def person_id(console: Console, code: str) -> int:
    async with console.app[sessions_key]() as db:
        craftsman = await db.scalar(select(Craftsman).where(Craftsman.code == code))
        assert craftsman is not None
        return craftsman.person_id


async def test_approve_starts_matching_and_tells_the_enterprise(console: Console, admin: Agent) -> None:
    number = await console.submit("demo-firm-1", MOLD)
    assert (await console.case(number)).state == CaseState.SUBMITTED
    page = await admin.flash(await admin.post(f"/console/cases/{number}/approve"))
    await console.pg.settle()
    assert f"#{number} 已通过" in page
    assert (await console.case(number)).state == CaseState.OFFERED
    approved = [e for e in await events(console, number) if e.to_state == CaseState.APPROVED]
    assert [(e.actor_label, e.detail) for e in approved] == [("陈晓红", "审核通过")]
    assert "已通过审核" in Chat.text_of(await console.pg.person("demo-firm-1").read())


async def test_reject_needs_a_reason_and_the_enterprise_hears_it(console: Console, staff: Agent) -> None:
    number = await console.submit("demo-firm-1", MOLD)
    page = await staff.flash(await staff.post(f"/console/cases/{number}/reject", {"reason": "  "}))
    assert "驳回需要写明原因" in page
    assert (await console.case(number)).state == CaseState.SUBMITTED
    await staff.post(f"/console/cases/{number}/reject", {"reason": "不属于服务范围"})
    await console.pg.settle()
    case = await console.case(number)
    assert case.state == CaseState.REJECTED and case.close_reason == "不属于服务范围"
    assert (await events(console, number))[-1].actor_label == "刘志明"
    assert "暂时无法受理：不属于服务范围" in Chat.text_of(await console.pg.person("demo-firm-1").read())


async def test_dispatch_to_a_chosen_craftsman_reaches_their_chat(console: Console, staff: Agent) -> None:
    number = await console.submit("demo-firm-1", MOLD)
    sun = await person_id(console, "GJ1007")
    page = await staff.flash(await staff.post(f"/console/cases/{number}/dispatch", {"craftsman": str(sun)}))
    await console.pg.settle()
    assert f"已将 #{number} 派给 孙卫东" in page
    assert (await console.case(number)).state == CaseState.OFFERED
    offer = (await console.pg.person(SUN).read())[-1]
    assert f"#{number}" in offer["title"] and [b["command"] for b in offer["buttons"]] == [f"接单 {number}", f"婉拒 {number}"]
    offered = [e for e in await events(console, number) if e.kind == "offer"]
    assert [(e.actor_label, e.detail) for e in offered] == [("刘志明", "邀请 孙卫东 接单")]
    # The craftsman accepts in chat: the console's dispatch is the chat's dispatch.
    assert "接单成功" in Chat.text_of(await console.pg.person(SUN).tap("接单"))
    assert (await console.case(number)).state == CaseState.ASSIGNED


async def test_dispatch_by_code_and_unknown_code(console: Console, admin: Agent) -> None:
    number = await console.submit("demo-firm-1", MOLD)
    page = await admin.flash(await admin.post(f"/console/cases/{number}/dispatch", {"code": "GJ9999"}))
    assert "没有找到师傅「GJ9999」" in page and (await console.case(number)).state == CaseState.SUBMITTED
    page = await admin.flash(await admin.post(f"/console/cases/{number}/dispatch", {"code": "GJ1008"}))
    assert "派给 周明华" in page


async def test_redispatch_withdraws_and_offers_the_next(console: Console, admin: Agent) -> None:
    number = await console.submit("demo-firm-1", MOLD)
    sun = await person_id(console, "GJ1007")
    await admin.post(f"/console/cases/{number}/dispatch", {"craftsman": str(sun)})
    page = await admin.flash(await admin.post(f"/console/cases/{number}/redispatch", {"reason": "师傅出差"}))
    await console.pg.settle()
    assert f"#{number} 已改派" in page
    async with console.app[sessions_key]() as db:
        offers = (await db.scalars(select(Offer).where(Offer.case_id == number - 1000).order_by(Offer.id))).all()
    assert offers[0].craftsman_id == sun and offers[0].state == OfferState.WITHDRAWN
    assert len(offers) == 2 and offers[1].state == OfferState.PENDING and offers[1].craftsman_id != sun
    assert "邀请已撤回" in Chat.text_of(await console.pg.person(SUN).read())
    assert any(e.detail == "改派：师傅出差" and e.actor_label == "陈晓红" for e in await events(console, number))


async def test_cancel_needs_a_reason_and_tells_both_sides(console: Console, staff: Agent) -> None:
    number = await console.submit("demo-firm-1", MOLD)
    page = await staff.flash(await staff.post(f"/console/cases/{number}/cancel", {"reason": ""}))
    assert "取消需要写明原因" in page and (await console.case(number)).state == CaseState.SUBMITTED
    await staff.post(f"/console/cases/{number}/cancel", {"reason": "企业已自行解决"})
    await console.pg.settle()
    assert (await console.case(number)).state == CaseState.CANCELLED
    assert "已取消：企业已自行解决" in Chat.text_of(await console.pg.person("demo-firm-1").read())
    # A cancelled case cannot be approved: refused, nothing written.
    before = len(await events(console, number))
    page = await staff.flash(await staff.post(f"/console/cases/{number}/approve"))
    assert "不在待审核状态" in page and len(await events(console, number)) == before


async def test_note_is_an_event_with_the_staff_name(console: Console, lead: Agent) -> None:
    number = await console.submit("demo-firm-1", MOLD)
    page = await lead.flash(await lead.post(f"/console/cases/{number}/note", {"note": "已电话联系企业 <b>王经理</b>"}))
    assert "备注已添加" in page
    note = (await events(console, number))[-1]
    assert (note.kind, note.actor_label, note.detail) == ("note", "赵组长", "已电话联系企业 <b>王经理</b>")
    assert "已电话联系企业 &lt;b&gt;王经理&lt;/b&gt;" in page  # shown as text on the case page
    empty = await lead.flash(await lead.post(f"/console/cases/{number}/note", {"note": " "}))
    assert "备注不能为空" in empty


async def test_csrf_is_required_on_every_action(console: Console, admin: Agent, staff: Agent) -> None:
    number = await console.submit("demo-firm-1", MOLD)
    missing = await admin.post(f"/console/cases/{number}/approve", token=False)
    assert missing.status == 403 and "CSRF" in await missing.text()
    foreign = await admin.post(f"/console/cases/{number}/cancel", {"_csrf": staff.csrf, "reason": "x"}, token=False)
    assert foreign.status == 403  # another session's token is no token
    assert (await console.case(number)).state == CaseState.SUBMITTED and await events(console, number)


async def test_group_lead_cannot_act_on_another_groups_case(console: Console, lead: Agent) -> None:
    number = await console.submit("demo-firm-2", FISH)
    assert (await console.case(number)).trade_group == "水产养殖"
    before = len(await events(console, number))
    for action, data in (("approve", {}), ("cancel", {"reason": "x"}), ("note", {"note": "x"})):
        resp = await lead.post(f"/console/cases/{number}/{action}", data)
        assert resp.status == 403, action
        assert FISH not in await resp.text()
    assert (await console.case(number)).state == CaseState.SUBMITTED and len(await events(console, number)) == before


async def test_unknown_case_and_action(console: Console, admin: Agent) -> None:
    assert (await admin.get("/console/cases/9999")).status == 404
    number = await console.submit("demo-firm-1", MOLD)
    assert (await admin.post(f"/console/cases/{number}/explode")).status == 404
    async with console.app[sessions_key]() as db:
        assert await db.scalar(select(Person).where(Person.name == "陈晓红")) is not None
