"""The whole loop through the real endpoints, with people on DingTalk (and one enterprise on WeChat).

Every message goes in through ``POST /dingtalk/callback`` (signed as DingTalk signs) or
``POST /wechat/callback`` (AES safe mode), every card button is pressed by opening its signed
``/dingtalk/tap`` link, and every reply is read from what the fake platforms received. Runs on SQLite
and PostgreSQL (the lead's ``db_url`` fixture).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import create_app
from bot.keys import sessions_key
from handlers.clock import ManualClock
from storage.models import Case, CaseState, Feedback, InboxMessage, Offer, OfferState
from tests.channels.scenario import WeChatUser, bind_identity, register
from tests.channels.wx_harness import WECHAT_AES, WECHAT_APPID, WECHAT_TOKEN
from tests.chat import Playground
from tests.conftest import make_settings
from tests.fakes.dingtalk_api import FakeDingTalk, Sent
from tests.fakes.wechat_api import FakeWeChat, WeChatPlatform

SUN = "demo-craftsman-1007"  # 孙卫东, 模具制造: offered first for this request (tests/test_loop.py)
ZHOU = "demo-craftsman-1008"  # 周明华, 模具制造
REQUEST = "师傅好，我们冲床的模子老是崩刃，麻烦看看"


@dataclass
class World:
    pg: Playground
    ding: FakeDingTalk
    wechat: FakeWeChat
    mp: WeChatPlatform
    clock: ManualClock

    @property
    def client(self) -> TestClient[Any, Any]:
        return self.pg.client


def buttons(sent: Sent) -> list[tuple[str, str]]:
    """(label, link) of a card as either wire form carries it."""
    p = sent.param
    if "btns" in p:
        return [(b["title"], b["actionURL"]) for b in p["btns"]]
    if "singleURL" in p:
        return [(p["singleTitle"], p["singleURL"])]
    return [(p[f"actionTitle{i}"], p[f"actionURL{i}"]) for i in range(1, 7) if f"actionURL{i}" in p]


class DingUser:
    """One person in DingTalk: writes through the signed callback, taps card links, reads the fake."""

    _ids = itertools.count(1)

    def __init__(self, world: World, staff_id: str) -> None:
        self.w = world
        self.staff_id = staff_id
        self.seen = 0

    async def say(self, text: str) -> str:
        body = self.w.ding.message(self.staff_id, text, msg_id=f"{self.staff_id}-{next(self._ids)}")
        resp = await self.w.client.post(
            "/dingtalk/callback", data=json.dumps(body, ensure_ascii=False), headers=self.w.ding.headers()
        )
        assert resp.status == 200, await resp.text()
        await self.w.pg.settle()
        return self.read_text()

    def read(self) -> list[Sent]:
        mine = [s for s in self.w.ding.sent if s.user_id == self.staff_id]
        new, self.seen = mine[self.seen :], len(mine)
        return new

    def read_text(self) -> str:
        return "\n".join(s.text for s in self.read())

    def link(self, label: str) -> str:
        """The local path of the newest button ``label`` sent to this person."""
        for sent in reversed([s for s in self.w.ding.sent if s.user_id == self.staff_id]):
            for text, url in buttons(sent):
                if text == label:
                    parts = urlsplit(url)
                    return f"{parts.path}?{parts.query}"
        raise AssertionError(f"no button {label!r} sent to {self.staff_id}")

    async def tap(self, label: str) -> str:
        resp = await self.w.client.get(self.link(label))
        assert resp.status == 200, await resp.text()
        assert "请回到钉钉查看" in await resp.text()
        await self.w.pg.settle()
        return self.read_text()


@pytest.fixture
async def world(db_url: str, tmp_path: Path) -> AsyncIterator[World]:
    clock = ManualClock()
    ding, wechat = FakeDingTalk(clock), FakeWeChat(clock, app_id=WECHAT_APPID)
    await ding.start()
    await wechat.start()
    settings = make_settings(
        db_url,
        tmp_path,
        dingtalk={
            "app_key": ding.app_key,
            "app_secret": ding.app_secret,
            "robot_code": ding.robot_code,
            "api_base": ding.base_url,
        },
        wechat={
            "app_id": WECHAT_APPID,
            "app_secret": wechat.secret,
            "token": WECHAT_TOKEN,
            "encoding_aes_key": WECHAT_AES,
            "api_base": wechat.base_url,
        },
        server={"public_url": "https://craftlink.example.cn"},
    )
    app = create_app(settings, clock=clock, run_scheduler=False)
    try:
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            pg = Playground(client, clock)
            await pg.seed_demo()
            yield World(pg, ding, wechat, WeChatPlatform(WECHAT_TOKEN, WECHAT_AES, WECHAT_APPID), clock)
    finally:
        await ding.close()
        await wechat.close()


async def test_whole_loop_on_dingtalk(world: World) -> None:
    w = world
    await bind_identity(w.pg, SUN, "dingtalk", "dt-sun")
    await bind_identity(w.pg, ZHOU, "dingtalk", "dt-zhou")
    ent, sun, zhou = DingUser(w, "dt-ent"), DingUser(w, "dt-sun"), DingUser(w, "dt-zhou")

    await register(ent)
    assert "【模具制造】" in await ent.say(REQUEST)
    assert "急吗" in await ent.tap("现场服务")
    assert "地址" in await ent.tap("普通")
    assert "地址：宁波市北仑区明州路88号" in await ent.say("宁波市北仑区明州路88号")
    assert "案件编号 #1001" in await ent.tap("提交")
    assert {s.via for s in w.ding.sent if s.user_id == "dt-ent"} == {"webhook"}  # they wrote: session is live

    offer = sun.read()
    assert len(offer) == 1 and "#1001" in offer[0].text
    assert offer[0].via == "batchSend" and offer[0].msg_key == "sampleActionCard2"  # never wrote: no webhook
    assert zhou.read() == []

    assert "原因" in await sun.tap("婉拒")
    assert "谢谢" in await sun.say("这周在外地出差")
    assert "#1001" in zhou.read_text()

    accept_link = zhou.link("接单")
    assert "接单成功：案件 #1001" in await zhou.tap("接单")
    assert "已由周明华师傅（模具制造）接单" in ent.read_text()
    replay = await w.client.get(accept_link)  # the same link again: refused, nothing happens
    assert replay.status == 409
    await w.pg.settle()
    assert zhou.read() == [] and ent.read() == []

    await ent.say("模具材料是Cr12MoV")
    assert "【#1001 宁波北仑精工机械有限公司】模具材料是Cr12MoV" in zhou.read_text()
    await zhou.say("刃口间隙现在多少？")
    assert "【#1001 师傅 周明华】刃口间隙现在多少？" in ent.read_text()

    assert "已标记完成（3 小时）" in await zhou.say("完成 1001 用时3小时 重新修磨刃口并调整间隙")
    rating = ent.read()
    assert [label for label, _ in buttons(rating[-1])][0] == "★★★★★"
    assert "感谢评价！案件 #1001 已结案" in await ent.tap("★★★★★")

    async with w.pg.app[sessions_key]() as s:
        case = await s.get(Case, 1)
        assert case is not None and case.state == CaseState.CLOSED and case.rating == 5
        offers = (await s.scalars(select(Offer).order_by(Offer.id))).all()
        assert [o.state for o in offers] == [OfferState.DECLINED, OfferState.ACCEPTED]
        taps = (await s.scalars(select(InboxMessage).where(InboxMessage.platform_msg_id.like("tap:%")))).all()
        assert [(t.sender, t.text) for t in taps] == [
            ("dt-ent", "现场服务"),
            ("dt-ent", "普通"),
            ("dt-ent", "提交"),
            ("dt-sun", "婉拒 1001"),
            ("dt-zhou", "接单 1001"),
            ("dt-ent", "评价 1001 5"),
        ]
        fb = await s.scalar(select(Feedback))
        assert fb is not None and fb.rating == 5


async def test_enterprise_on_wechat_craftsman_on_dingtalk(world: World) -> None:
    w = world
    await bind_identity(w.pg, SUN, "dingtalk", "dt-sun")
    ent, sun = WeChatUser(w.pg, w.wechat, "o-wechat-firm"), DingUser(w, "dt-sun")

    await register(ent)
    proposal = await ent.say(REQUEST)
    assert "【模具制造】" in proposal and "「现场服务」" in proposal  # a card, as typed commands
    assert "急吗" in await ent.say("现场服务")
    assert "地址" in await ent.say("普通")
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
    assert "「评价 1001 5」" in ent.read_text()  # the rating card arrives as text with typed commands
    assert "感谢评价" in await ent.say("5 师傅很专业")

    async with w.pg.app[sessions_key]() as s:
        case = await s.get(Case, 1)
        assert case is not None and case.state == CaseState.CLOSED and case.rating == 5
        fb = await s.scalar(select(Feedback))
        assert fb is not None and fb.comment == "师傅很专业"
