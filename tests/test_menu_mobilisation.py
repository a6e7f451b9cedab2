"""菜单式服务 and 应急动员 through the chat."""

from __future__ import annotations

from datetime import timedelta

from bot.keys import sessions_key
from storage.models import Case, CaseState
from tests.chat import Chat, Playground


async def test_menu_publish_browse_order(playground: Playground) -> None:
    sun = playground.person("demo-craftsman-1007")
    published = Chat.text_of(await sun.say("菜单 添加 冲压模具刃口修复 现场诊断崩刃原因并修磨刃口"))
    assert "已发布服务菜单 1：冲压模具刃口修复" in published
    firm = playground.person("demo-firm-1")
    listing = Chat.text_of(await firm.say("菜单 模具制造"))
    assert "【模具制造】" in listing and "1. 冲压模具刃口修复（孙卫东" in listing
    assert "还没有服务菜单" in Chat.text_of(await firm.say("菜单 美术工艺"))
    ordered = Chat.text_of(await firm.say("预约 1 下周二方便"))
    assert "已预约「冲压模具刃口修复」，案件编号 #1001" in ordered
    offer = await sun.read()
    assert offer[-1]["buttons"][0]["command"] == "接单 1001"
    assert "企业预约了该师傅的服务菜单" in offer[-1]["text"]
    assert "没有找到这项服务" in Chat.text_of(await firm.say("预约 99"))
    assert "已下架菜单 1" in Chat.text_of(await sun.say("菜单 删除 1"))
    assert "还没有服务菜单" in Chat.text_of(await firm.say("菜单"))
    async with playground.app[sessions_key]() as s:
        case = await s.get(Case, 1)
        assert case is not None and case.state == CaseState.OFFERED and case.menu_item_id == 1


async def test_mobilisation_collects_sign_ups_until_deadline(playground: Playground) -> None:
    staff = playground.person("demo-staff-1")
    sent = Chat.text_of(await staff.say("动员 焊接工艺 宁波 台风后管道抢修，需要焊工支援"))
    assert "已向 1 位焊接工艺师傅发出动员" in sent  # 张翼飞 is in 宁波; 李建国 (杭州) is not called
    zhang, li = playground.person("demo-craftsman-1001"), playground.person("demo-craftsman-1002")
    call = await zhang.read()
    assert "【应急动员】" in call[-1]["title"] and await li.read() == []
    assert "报名成功" in Chat.text_of(await zhang.tap("报名"))
    assert "已经报过名" in Chat.text_of(await zhang.say("报名 1"))
    await playground.fire_timers(timedelta(minutes=121))
    report = Chat.text_of(await staff.read())
    assert "应急动员 1（焊接工艺 · 宁波）已截止：1 位师傅报名" in report and "张翼飞" in report
    assert "已经截止" in Chat.text_of(await zhang.say("报名 1"))
    assert "没有「焊工组」这个小组" in Chat.text_of(await staff.say("动员 焊工组 宁波 测试"))
    everyone = Chat.text_of(await staff.say("动员 焊接工艺 紧急支援"))
    assert "已向 2 位焊接工艺师傅发出动员" in everyone
