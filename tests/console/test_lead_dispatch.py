"""A group lead dispatches only to craftsmen of their own groups, in the console and in chat alike."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.keys import sessions_key
from storage.models import CaseState, Offer
from tests.chat import Chat
from tests.console.conftest import LEAD_GROUPS, MOLD, Agent, Console
from tests.console.test_actions import person_id

OTHER_GROUP = "GJ1025"  # 孔繁荣, 水产养殖
OWN_GROUP = "GJ1007"  # 孙卫东, 模具制造
REFUSAL = "只能派给本组（模具制造）的师傅"


async def offers_of(console: Console, number: int) -> int:
    async with console.app[sessions_key]() as db:
        return int(await db.scalar(select(func.count()).select_from(Offer).where(Offer.case_id == number - 1000)) or 0)


async def test_lead_cannot_dispatch_to_another_groups_craftsman_in_the_console(console: Console, lead: Agent) -> None:
    number = await console.submit("demo-firm-1", MOLD)
    page = await lead.flash(await lead.post(f"/console/cases/{number}/dispatch", {"code": OTHER_GROUP}))
    assert REFUSAL in page
    kong = await person_id(console, OTHER_GROUP)
    page = await lead.flash(await lead.post(f"/console/cases/{number}/dispatch", {"craftsman": str(kong)}))
    assert REFUSAL in page
    assert (await console.case(number)).state == CaseState.SUBMITTED and await offers_of(console, number) == 0
    case_page = await (await lead.get(f"/console/cases/{number}")).text()
    assert "孔繁荣" not in case_page  # not offered as a choice either
    page = await lead.flash(await lead.post(f"/console/cases/{number}/dispatch", {"code": OWN_GROUP}))
    assert "派给 孙卫东" in page


async def test_staff_may_dispatch_across_groups(console: Console, staff: Agent) -> None:
    number = await console.submit("demo-firm-1", MOLD)
    page = await staff.flash(await staff.post(f"/console/cases/{number}/dispatch", {"code": OTHER_GROUP}))
    assert "派给 孔繁荣" in page


async def test_lead_cannot_dispatch_to_another_groups_craftsman_in_chat(console: Console) -> None:
    number = await console.submit("demo-firm-1", MOLD)
    chat = console.pg.person("web-lead-1")
    await chat.say("你好")  # the lead's chat identity exists once they have written
    await console.add_staff("赵组长", "group_lead", groups=LEAD_GROUPS, identity=("web", "web-lead-1"))
    reply = Chat.text_of(await chat.say(f"派单 {number} {OTHER_GROUP}"))
    assert REFUSAL in reply, reply
    assert await offers_of(console, number) == 0
    reply = Chat.text_of(await chat.say(f"派单 {number} {OWN_GROUP}"))
    assert "派给 孙卫东" in reply, reply
