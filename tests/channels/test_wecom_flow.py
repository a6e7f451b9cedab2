"""The whole loop through the real WeCom and service-account endpoints, on SQLite and PostgreSQL.

Every message goes in through ``POST /wecom/callback`` (encrypted and signed as WeCom does, with the
timestamp window on) or ``POST /wechat/callback`` (safe mode); every card button is pressed by
posting the ``template_card_event`` WeCom would send for it; every reply is read from what the fake
platforms received.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import create_app
from bot.keys import sessions_key
from handlers.clock import ManualClock
from storage.models import Case, CaseState, Feedback, InboxMessage, Offer, OfferState, OutboxMessage
from tests.channels.scenario import (
    WeChatUser,
    WeComMember,
    bind_identity,
    register,
    wecom_config,
    wecom_shown,
)
from tests.channels.wx_harness import (
    WECHAT_AES,
    WECHAT_APPID,
    WECHAT_TOKEN,
    WECOM_CORP,
)
from tests.chat import Playground
from tests.conftest import make_settings
from tests.fakes.wechat_api import FakeWeChat
from tests.fakes.wecom_api import FakeWeCom

SUN = "demo-craftsman-1007"  # 孙卫东, 模具制造: offered first for this request (tests/test_loop.py)
ZHOU = "demo-craftsman-1008"  # 周明华, 模具制造
REQUEST = "师傅好，我们冲床的模子老是崩刃，麻烦看看"


@dataclass
class World:
    pg: Playground
    wecom: FakeWeCom
    wechat: FakeWeChat
    clock: ManualClock

    @property
    def client(self) -> TestClient[Any, Any]:
        return self.pg.client


@pytest.fixture
async def world(db_url: str, tmp_path: Path) -> AsyncIterator[World]:
    clock = ManualClock()
    wecom, wechat = FakeWeCom(clock, corp_id=WECOM_CORP), FakeWeChat(clock, app_id=WECHAT_APPID)
    await wecom.start()
    await wechat.start()
    settings = make_settings(
        db_url,
        tmp_path,
        wecom=wecom_config(wecom),
        wechat={
            "app_id": WECHAT_APPID,
            "app_secret": wechat.secret,
            "token": WECHAT_TOKEN,
            "encoding_aes_key": WECHAT_AES,
            "api_base": wechat.base_url,
        },
    )
    app = create_app(settings, clock=clock, run_scheduler=False)
    try:
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            pg = Playground(client, clock)
            await pg.seed_demo()
            yield World(pg, wecom, wechat, clock)
    finally:
        await wecom.close()
        await wechat.close()


async def test_whole_loop_on_wecom(world: World) -> None:
    w = world
    await bind_identity(w.pg, SUN, "wecom", "sunweidong")
    await bind_identity(w.pg, ZHOU, "wecom", "zhouminghua")
    ent, sun, zhou = WeComMember(w.pg, w.wecom, "wangli"), WeComMember(w.pg, w.wecom, "sunweidong"), WeComMember(w.pg, w.wecom, "zhouminghua")

    await register(ent)
    assert "【模具制造】" in await ent.say(REQUEST)
    assert "急吗" in await ent.tap("现场服务")
    assert "地址" in await ent.tap("普通")
    assert "地址：宁波市北仑区明州路88号" in await ent.say("宁波市北仑区明州路88号")
    assert "案件编号 #1001" in await ent.tap("提交")

    offer = sun.read()
    assert len(offer) == 1 and offer[0]["msgtype"] == "template_card" and "#1001" in wecom_shown(offer[0])
    assert zhou.read() == []
    assert "原因" in await sun.tap("婉拒")
    assert "谢谢" in await sun.say("这周在外地出差")
    assert "#1001" in zhou.read_text()

    assert "接单成功：案件 #1001" in await zhou.tap("接单")
    assert "已由周明华师傅（模具制造）接单" in ent.read_text()
    # The card now shows 已接单; a second device that has not shown that yet can still tap it.
    await zhou.tap("接单", stale=True)  # the same tap in the same second is a platform retry: deduped
    w.clock.advance(timedelta(seconds=5))
    await zhou.tap("接单", stale=True)  # a real second tap on the same card: handled, nothing new assigned
    assert ent.read() == []

    await ent.say("模具材料是Cr12MoV")
    assert "【#1001 宁波北仑精工机械有限公司】模具材料是Cr12MoV" in zhou.read_text()
    await ent.send_image(b"\xff\xd8\xff photo of the chipped edge")
    relayed = zhou.read()
    images = [m for m in relayed if m["msgtype"] == "image"]
    assert images, relayed
    assert w.wecom.media[images[0]["image"]["media_id"]].data == b"\xff\xd8\xff photo of the chipped edge"
    await zhou.say("刃口间隙现在多少？")
    assert "【#1001 师傅 周明华】刃口间隙现在多少？" in ent.read_text()

    assert "已标记完成（3 小时）" in await zhou.say("完成 1001 用时3小时 重新修磨刃口并调整间隙")
    rating = ent.read()
    assert rating[-1]["msgtype"] == "template_card" and "★★★★★" in wecom_shown(rating[-1])
    await ent.tap("★★★★★")
    await ent.say("师傅很专业")

    async with w.pg.app[sessions_key]() as s:
        case = await s.get(Case, 1)
        assert case is not None and case.state == CaseState.CLOSED and case.rating == 5
        offers = (await s.scalars(select(Offer).order_by(Offer.id))).all()
        assert [o.state for o in offers] == [OfferState.DECLINED, OfferState.ACCEPTED]
        taps = (
            await s.scalars(
                select(InboxMessage).where(InboxMessage.kind == "button").order_by(InboxMessage.id)
            )
        ).all()
        assert [(t.sender, t.text) for t in taps] == [
            ("wangli", "现场服务"),
            ("wangli", "普通"),
            ("wangli", "提交"),
            ("sunweidong", "婉拒 1001"),
            ("zhouminghua", "接单 1001"),
            ("zhouminghua", "接单 1001"),
            ("wangli", "评价 1001 5"),
        ]
        fb = await s.scalar(select(Feedback))
        assert fb is not None and fb.rating == 5
        stuck = (await s.scalars(select(OutboxMessage).where(OutboxMessage.state != "sent"))).all()
        assert stuck == []
    assert w.wecom.dropped == []


async def test_enterprise_on_the_service_account_craftsman_on_wecom(world: World) -> None:
    w = world
    await bind_identity(w.pg, SUN, "wecom", "sunweidong")
    ent, sun = WeChatUser(w.pg, w.wechat, "o-firm-openid"), WeComMember(w.pg, w.wecom, "sunweidong")

    await register(ent)
    proposal = await ent.say(REQUEST)
    assert "【模具制造】" in proposal and "「现场服务」" in proposal  # the card, as typed commands
    await ent.say("现场服务")
    await ent.say("普通")
    await ent.say("宁波市北仑区明州路88号")
    assert "案件编号 #1001" in await ent.say("提交")

    assert "#1001" in sun.read_text()
    assert "接单成功：案件 #1001" in await sun.tap("接单")
    assert "已由孙卫东师傅（模具制造）接单" in ent.read_text()
    await ent.say("冲的是2毫米冷轧板")
    assert "【#1001 宁波北仑精工机械有限公司】冲的是2毫米冷轧板" in sun.read_text()
    await sun.say("热处理硬度测过吗？")
    assert "【#1001 师傅 孙卫东】热处理硬度测过吗？" in ent.read_text()
    await sun.say("完成 1001 用时2小时 修磨刃口")
    assert "「评价 1001 5」" in ent.read_text()
    assert "感谢评价" in await ent.say("5 师傅很专业")

    async with w.pg.app[sessions_key]() as s:
        case = await s.get(Case, 1)
        assert case is not None and case.state == CaseState.CLOSED and case.rating == 5
