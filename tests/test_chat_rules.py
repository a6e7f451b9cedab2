"""Bad input gets a short Chinese answer and changes nothing; help per role; case switching; photos."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.keys import sessions_key
from storage.models import Case, CaseEvent, CaseState
from tests.chat import Chat, Playground
from tests.test_pipeline import submit_case


async def events(pg: Playground) -> int:
    async with pg.app[sessions_key]() as s:
        return int(await s.scalar(select(func.count()).select_from(CaseEvent)) or 0)


async def accept_as(pg: Playground, user: str, number: int) -> None:
    assert "接单成功" in Chat.text_of(await pg.person(user).say(f"接单 {number}"))


async def test_help_lists_commands_of_the_role(playground: Playground) -> None:
    craftsman = Chat.text_of(await playground.person("demo-craftsman-1001").say("帮助"))
    assert "接单 编号" in craftsman and "完成 编号" in craftsman and "审核" not in craftsman
    staff = Chat.text_of(await playground.person("demo-staff-1").say("帮助"))
    assert "派单 编号" in staff and "统计" in staff and "接单 编号" not in staff
    firm = Chat.text_of(await playground.person("demo-firm-1").say("帮助"))
    assert "直接描述" in firm and "评价 编号" in firm and "派单" not in firm


async def test_unknown_command_changes_nothing(playground: Playground) -> None:
    before = await events(playground)
    reply = Chat.text_of(await playground.person("demo-craftsman-1001").say("发射火箭 1001"))
    assert "没看懂" in reply and "帮助" in reply
    reply = Chat.text_of(await playground.person("demo-staff-1").say("删库 1001"))
    assert "没看懂" in reply
    assert await events(playground) == before


async def test_illegal_transitions_are_refused(playground: Playground) -> None:
    number = await submit_case(playground)
    other = playground.person("demo-craftsman-1001")  # 张翼飞, not offered this case
    before = await events(playground)
    assert "不是您负责的案件" in Chat.text_of(await other.say(f"完成 {number} 用时2小时"))
    assert "没有派给您" in Chat.text_of(await other.say(f"接单 {number}"))
    assert "没有待您答复的邀请" in Chat.text_of(await other.say(f"婉拒 {number}"))
    assert "没有找到案件 #4242" in Chat.text_of(await other.say("接单 4242"))
    owner = playground.person("demo-craftsman-1007")
    assert f"请先回复「接单 {number}」" in Chat.text_of(await owner.say(f"完成 {number} 用时2小时"))
    firm = playground.person("demo-firm-2")
    assert "不是贵单位的案件" in Chat.text_of(await firm.say(f"评价 {number} 5"))
    assert await events(playground) == before
    async with playground.app[sessions_key]() as s:
        case = await s.get(Case, number - 1000)
        assert case is not None and case.state == CaseState.OFFERED


async def test_bad_arguments_get_examples(playground: Playground) -> None:
    number = await submit_case(playground)
    await accept_as(playground, "demo-craftsman-1007", number)
    sun = playground.person("demo-craftsman-1007")
    assert "请写上服务用时" in Chat.text_of(await sun.say(f"完成 {number} 搞定了"))
    assert "时间格式不对" in Chat.text_of(await sun.say(f"预约 {number} 明天上午"))
    assert "已经过去" in Chat.text_of(await sun.say(f"预约 {number} 2020-01-01 09:00"))
    assert "请写上进展内容" in Chat.text_of(await sun.say(f"进展 {number}"))
    assert "请带上案件编号" in Chat.text_of(await sun.say("接单"))


async def test_cancel_aborts_registration_at_any_step(playground: Playground) -> None:
    new = playground.person("web-cancel-1")
    await new.say("你好")
    await new.say("测试公司")
    assert "已取消" in Chat.text_of(await new.say("取消"))
    again = Chat.text_of(await new.say("天车不动了"))
    assert "企业）的全称" in again  # still unregistered: registration starts over


async def test_switch_between_open_cases(playground: Playground) -> None:
    n1 = await submit_case(playground, "demo-firm-1", "冲床的模子老是崩刃")
    await accept_as(playground, "demo-craftsman-1007", n1)
    n2 = await submit_case(playground, "demo-firm-1", "新需求 模具型腔拉伤了")
    await playground.person("demo-staff-1").say(f"派单 {n2} 孙卫东")  # the matcher spreads load: staff insist
    await accept_as(playground, "demo-craftsman-1007", n2)  # the same craftsman, two cases
    firm, sun = playground.person("demo-firm-1"), playground.person("demo-craftsman-1007")
    await firm.read()
    listing = Chat.text_of(await firm.say("切换"))
    assert f"#{n1}" in listing and f"#{n2}" in listing
    assert f"已切换为 #{n1}" in Chat.text_of(await firm.say(f"切换 {n1}"))
    note = Chat.text_of(await firm.say("刚才的问题又出现了"))
    assert f"已转给 #{n1}" in note
    assert f"【#{n1} " in Chat.text_of(await sun.read())
    assert "不是您进行中的案件" in Chat.text_of(await playground.person("demo-firm-2").say(f"切换 {n1}"))


async def test_photos_relay_as_photos(playground: Playground) -> None:
    number = await submit_case(playground)
    await accept_as(playground, "demo-craftsman-1007", number)
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 64
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("user", "demo-firm-1")
    form.add_field("file", png, filename="模具.png", content_type="image/png")
    resp = await playground.client.post("/webchat/upload", data=form)
    assert resp.status == 200
    await playground.settle()
    got = await playground.person("demo-craftsman-1007").read()
    images = [m for m in got if m["kind"] == "image"]
    assert len(images) == 1
    media = await playground.client.get(images[0]["media"])
    assert media.status == 200 and await media.read() == png
    bad = aiohttp.FormData()
    bad.add_field("user", "demo-firm-1")
    bad.add_field("file", b"MZ...", filename="x.exe", content_type="application/octet-stream")
    assert (await playground.client.post("/webchat/upload", data=bad)).status == 415


async def test_web_chat_rejects_malformed_requests(playground: Playground) -> None:
    c = playground.client
    assert (await c.post("/webchat/send", data=b"{not json")).status == 400
    assert (await c.post("/webchat/send", json={"user": "a b", "text": "x"})).status == 400
    assert (await c.post("/webchat/send", json={"user": "ok", "text": ""})).status == 400
    assert (await c.post("/webchat/send", json={"user": "ok", "text": "x" * 5000})).status == 400
    assert (await c.get("/webchat/messages", params={"user": "ok", "after": "x"})).status == 400
    assert (await c.get("/webchat/media/..%2Fsecret")).status == 404


async def test_text_while_waiting_supplements_the_request(playground: Playground) -> None:
    number = await submit_case(playground)
    firm = playground.person("demo-firm-1")
    reply = Chat.text_of(await firm.say("补充一下，是200吨的冲床"))
    assert f"已补充到需求 #{number}" in reply
    await playground.person("demo-craftsman-1007").read()
    accepted = Chat.text_of(await playground.person("demo-craftsman-1007").say(f"接单 {number}"))
    assert "接单成功" in accepted and "补充：补充一下，是200吨的冲床" in accepted
    async with playground.app[sessions_key]() as s:
        case = await s.get(Case, number - 1000)
        assert case is not None and "补充：补充一下，是200吨的冲床" in case.text


async def test_request_form_never_loops_on_an_unclear_answer(playground: Playground) -> None:
    firm = playground.person("demo-firm-2")
    await firm.say("增氧机的马达转不动了")
    again = await firm.say("昨天晚上开始的，今天鱼都浮头了")
    assert "已补充到问题描述" in Chat.text_of(again)
    assert [b["label"] for b in again[-1]["buttons"]] == ["线上指导", "现场服务", "培训讲座"]
    await firm.tap("线上指导")
    confirm = Chat.text_of(await firm.say("你看着办吧"))  # not 普通/紧急: assumed, said, and the form goes on
    assert "按普通处理" in confirm and "请确认需求" in confirm
    assert "今天鱼都浮头了" in confirm
