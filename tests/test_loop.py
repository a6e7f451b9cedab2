"""The whole loop, scripted turn by turn through the web chat, on SQLite and PostgreSQL.

Enterprise registers → request → offer → decline → next craftsman accepts → messages relayed both
ways → appointment → done → rating → points.
"""

from __future__ import annotations

from sqlalchemy import func, select

from bot.keys import sessions_key
from storage.models import (
    Case,
    CaseEvent,
    CaseState,
    Feedback,
    Offer,
    OfferState,
    PointsEntry,
    RelayedMessage,
)
from tests.chat import Chat, Playground

SUN = "demo-craftsman-1007"  # 孙卫东, 模具制造, 宁波市余姚市
ZHOU = "demo-craftsman-1008"  # 周明华, 模具制造, 台州市黄岩区


async def register(ent: Chat) -> None:
    first = Chat.text_of(await ent.say("你好"))
    assert "企业）的全称" in first
    assert "怎么称呼" in Chat.text_of(await ent.say("宁波北仑精工机械有限公司"))
    assert "哪个地区" in Chat.text_of(await ent.say("王工"))
    done = Chat.text_of(await ent.say("宁波市北仑区"))
    assert "登记完成：宁波北仑精工机械有限公司" in done


async def test_whole_loop(playground: Playground) -> None:
    ent = playground.person("web-newfirm-1")
    sun, zhou = playground.person(SUN), playground.person(ZHOU)
    await register(ent)

    proposal = await ent.say("师傅好，我们冲床的模子老是崩刃，麻烦看看")
    assert "【模具制造】" in Chat.text_of(proposal)
    assert [b["label"] for b in proposal[-1]["buttons"]] == ["线上指导", "现场服务", "培训讲座"]
    assert "急吗" in Chat.text_of(await ent.tap("现场服务"))
    assert "地址" in Chat.text_of(await ent.tap("普通"))
    confirm = await ent.say("宁波市北仑区明州路88号")
    assert "方式：现场服务" in Chat.text_of(confirm) and "地址：宁波市北仑区明州路88号" in Chat.text_of(confirm)
    submitted = Chat.text_of(await ent.tap("提交"))
    assert "案件编号 #1001" in submitted

    offer = await sun.read()
    assert len(offer) == 1 and "#1001" in offer[0]["title"]
    assert [b["command"] for b in offer[0]["buttons"]] == ["接单 1001", "婉拒 1001"]
    assert await zhou.read() == []  # sequential: one candidate at a time

    assert "原因" in Chat.text_of(await sun.tap("婉拒"))
    assert "谢谢" in Chat.text_of(await sun.say("这周在外地出差"))
    offer2 = await zhou.read()
    assert len(offer2) == 1 and "#1001" in offer2[0]["title"]

    accepted = Chat.text_of(await zhou.tap("接单"))
    assert "接单成功：案件 #1001" in accepted and "王工" in accepted
    assert "已由周明华师傅（模具制造）接单" in Chat.text_of(await ent.read())

    await ent.say("模具材料是Cr12MoV")
    await ent.say("冲的是2毫米冷轧板")
    got = Chat.text_of(await zhou.read())
    assert "【#1001 宁波北仑精工机械有限公司】模具材料是Cr12MoV" in got and "冲的是2毫米冷轧板" in got
    await zhou.say("刃口间隙现在多少？")
    await zhou.say("热处理硬度测过吗？")
    got = Chat.text_of(await ent.read())
    assert "【#1001 师傅 周明华】刃口间隙现在多少？" in got and "热处理硬度测过吗？" in got

    appointed = Chat.text_of(await zhou.say("预约 1001 2026-11-05 09:00"))
    assert "已预约 #1001：2026-11-05 09:00" in appointed
    assert "2026-11-05 09:00 上门" in Chat.text_of(await ent.read())

    finished = Chat.text_of(await zhou.say("完成 1001 用时3小时 重新修磨刃口并调整间隙"))
    assert "已标记完成（3 小时）" in finished
    rating_card = await ent.read()
    assert [b["label"] for b in rating_card[-1]["buttons"]][0] == "★★★★★"

    thanks = Chat.text_of(await ent.say("5 师傅很专业"))
    assert "感谢评价" in thanks
    credited = Chat.text_of(await zhou.read())
    assert "积分 +26" in credited  # 10 per case + 3 h × 2 + 5 on-site + 5 for five stars

    async with playground.app[sessions_key]() as s:
        case = await s.get(Case, 1)
        assert case is not None
        assert case.state == CaseState.CLOSED and case.rating == 5 and case.help_hours == 3
        offers = (await s.scalars(select(Offer).order_by(Offer.id))).all()
        assert [(o.state, o.reason) for o in offers] == [
            (OfferState.DECLINED, "这周在外地出差"), (OfferState.ACCEPTED, "")]
        assert await s.scalar(select(func.sum(PointsEntry.points))) == 26
        rules = set((await s.scalars(select(PointsEntry.rule))).all())
        assert rules == {"per_case", "per_help_hour", "onsite_bonus", "rating_5_bonus"}
        fb = await s.scalar(select(Feedback))
        assert fb is not None and fb.rating == 5 and fb.comment == "师傅很专业"
        assert await s.scalar(select(func.count()).select_from(RelayedMessage)) == 4
        kinds = (await s.scalars(select(CaseEvent.kind).order_by(CaseEvent.id))).all()
        for expected in ("request", "offer", "offer_declined", "appointment", "resolved", "rating"):
            assert expected in kinds
