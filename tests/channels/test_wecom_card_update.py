"""A tapped WeCom card shows the outcome instead of its buttons (``update_template_card``), end to end.

Every tap is the ``template_card_event`` the fake WeCom builds for it, with a response_code the fake
issued (single use, 72 hours); what a card shows afterwards is read from the fake. The app is the
real one (``create_app``) on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, update

from bot.app import create_app
from bot.keys import sessions_key
from handlers.clock import ManualClock
from storage.models import OutboxMessage, OutboxState
from tests.channels.scenario import WeComMember, bind_identity, register, wecom_config
from tests.channels.wx_harness import WECOM_CORP
from tests.chat import Chat, Playground
from tests.conftest import make_settings
from tests.fakes.wecom_api import RESPONSE_CODE_REFUSED, FakeWeCom

SUN = "demo-craftsman-1007"  # 孙卫东, 模具制造: offered first for this request (tests/test_loop.py)
ZHOU = "demo-craftsman-1008"  # 周明华, 模具制造
REQUEST = "师傅好，我们冲床的模子老是崩刃，麻烦看看"


@dataclass
class World:
    pg: Playground
    wecom: FakeWeCom
    clock: ManualClock


@asynccontextmanager
async def running(db_url: str, tmp_path: Path, **bot: object) -> AsyncIterator[World]:
    clock = ManualClock()
    wecom = FakeWeCom(clock, corp_id=WECOM_CORP)
    await wecom.start()
    settings = make_settings(
        db_url,
        tmp_path,
        wecom=wecom_config(wecom),
        bot=dict(bot),
    )
    app = create_app(settings, clock=clock, run_scheduler=False)
    try:
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            pg = Playground(client, clock)
            await pg.seed_demo()
            yield World(pg, wecom, clock)
    finally:
        await wecom.close()


@pytest.fixture
async def world(db_url: str, tmp_path: Path) -> AsyncIterator[World]:
    async with running(db_url, tmp_path) as w:
        yield w


@pytest.fixture
async def parallel_world(db_url: str, tmp_path: Path) -> AsyncIterator[World]:
    """Urgent cases are offered to several craftsmen at once."""
    async with running(db_url, tmp_path, offer_policy="parallel", parallel_offers=3) as w:
        yield w


async def submit(w: World, *, urgency: str = "普通") -> WeComMember:
    """An enterprise on WeCom registers and submits case #1001; returns it."""
    ent = WeComMember(w.pg, w.wecom, "wangli")
    await register(ent)
    assert "【模具制造】" in await ent.say(REQUEST)
    await ent.tap("现场服务")
    await ent.tap(urgency)
    await ent.say("宁波市北仑区明州路88号")
    _, done = await ent.tap_card("提交")
    assert "案件编号 #1001" in done
    return ent


async def outbox(w: World) -> list[OutboxMessage]:
    async with w.pg.app[sessions_key]() as s:
        return list((await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all())


async def test_offer_cards_show_the_answer(world: World) -> None:
    w = world
    await bind_identity(w.pg, SUN, "wecom", "sunweidong")
    await bind_identity(w.pg, ZHOU, "wecom", "zhouminghua")
    sun, zhou = WeComMember(w.pg, w.wecom, "sunweidong"), WeComMember(w.pg, w.wecom, "zhouminghua")
    ent = await submit(w)
    assert all(ent.shows(c["task_id"]) is None for c in ent.cards())  # intake taps state no outcome

    declined, answer = await sun.tap_card("婉拒")
    assert "原因" in answer
    assert sun.shows(declined) == "已婉拒"
    await sun.say("这周在外地出差")

    accepted, answer = await zhou.tap_card("接单")
    assert "接单成功：案件 #1001" in answer  # the confirmation still arrives
    assert zhou.shows(accepted) == "已接单"
    assert sun.shows(declined) == "已婉拒"  # each member's own card
    assert [u["userids"] for u in w.wecom.card_updates] == [["sunweidong"], ["zhouminghua"]]
    assert {r.state for r in await outbox(w)} == {OutboxState.SENT.value}


async def test_a_parallel_offer_taken_by_another_shows_it_on_the_late_tap(parallel_world: World) -> None:
    w = parallel_world
    await bind_identity(w.pg, SUN, "wecom", "sunweidong")
    await bind_identity(w.pg, ZHOU, "wecom", "zhouminghua")
    sun, zhou = WeComMember(w.pg, w.wecom, "sunweidong"), WeComMember(w.pg, w.wecom, "zhouminghua")
    await submit(w, urgency="紧急")
    assert "#1001" in sun.read_text() and "#1001" in zhou.read_text()  # both offered at once

    accepted, answer = await zhou.tap_card("接单")
    assert "接单成功：案件 #1001" in answer and zhou.shows(accepted) == "已接单"
    assert "已由其他师傅接单" in sun.read_text()
    (sun_card,) = sun.cards()
    assert sun.shows(sun_card["task_id"]) is None  # nobody tapped it yet: WeCom gave us no code for it

    late, answer = await sun.tap_card("接单")
    assert late == sun_card["task_id"]
    assert "已由其他师傅接单" in answer
    assert sun.shows(late) == "已被他人接单"
    assert zhou.shows(accepted) == "已接单"


async def test_declining_an_offer_already_taken_shows_it_too(parallel_world: World) -> None:
    w = parallel_world
    await bind_identity(w.pg, SUN, "wecom", "sunweidong")
    await bind_identity(w.pg, ZHOU, "wecom", "zhouminghua")
    sun, zhou = WeComMember(w.pg, w.wecom, "sunweidong"), WeComMember(w.pg, w.wecom, "zhouminghua")
    await submit(w, urgency="紧急")
    await zhou.tap("接单")
    late, answer = await sun.tap_card("婉拒")
    assert "没有待您答复的邀请" in answer
    assert sun.shows(late) == "已被他人接单"


async def test_the_rating_card_shows_the_rating_given(world: World) -> None:
    w = world
    await bind_identity(w.pg, SUN, "wecom", "sunweidong")
    sun = WeComMember(w.pg, w.wecom, "sunweidong")
    ent = await submit(w)
    await sun.tap("接单")
    assert "已标记完成" in await sun.say("完成 1001 用时2小时 修磨刃口")
    assert "★★★★★" in ent.read_text()

    rating_card, answer = await ent.tap_card("★★★★")
    assert "感谢评价" in answer
    assert ent.shows(rating_card) == "已评价 ★★★★"
    assert "#1001 已结案：★★★★（4 分）" in sun.read_text()

    # Another device still showing the stars: that tap is refused, and the card tells the rating given.
    again, answer = await ent.tap_card("★", stale=True)
    assert again == rating_card and "不在待评价状态" in answer
    assert ent.shows(rating_card) == "已评价 ★★★★"
    assert [u["button"]["replace_name"] for u in w.wecom.card_updates[-2:]] == ["已评价 ★★★★", "已评价 ★★★★"]


async def test_a_reused_response_code_ends_dead_without_alarming_staff(world: World) -> None:
    w = world
    await bind_identity(w.pg, SUN, "wecom", "sunweidong")
    sun = WeComMember(w.pg, w.wecom, "sunweidong")
    ent = await submit(w)
    accepted, _ = await sun.tap_card("接单")
    assert sun.shows(accepted) == "已接单"
    staff = w.pg.person("demo-staff-1")
    await staff.read()

    # A crash after WeCom took the update but before we recorded it: the row is sent again (the
    # outbox delivers at least once) with a response_code that is now used up.
    (row,) = [r for r in await outbox(w) if r.payload["kind"] == "card_update"]
    async with w.pg.app[sessions_key]() as s, s.begin():
        await s.execute(update(OutboxMessage).where(OutboxMessage.id == row.id)
                        .values(state=OutboxState.PENDING.value, next_attempt_at=w.clock.now()))
    await w.pg.settle()

    rows = {r.id: r for r in await outbox(w)}
    assert rows[row.id].state == OutboxState.DEAD.value and str(RESPONSE_CODE_REFUSED) in rows[row.id].last_error
    assert Chat.text_of(await staff.read()) == ""  # no alert
    assert not any(r.payload.get("staff_alert") for r in rows.values())
    assert sun.shows(accepted) == "已接单"

    # Nothing else broke: the conversation goes on both ways.
    await ent.say("模具材料是Cr12MoV")
    assert "【#1001 宁波北仑精工机械有限公司】模具材料是Cr12MoV" in sun.read_text()
    await sun.say("刃口间隙现在多少？")
    assert "【#1001 师傅 孙卫东】刃口间隙现在多少？" in ent.read_text()
    assert [r.id for r in await outbox(w) if r.state != OutboxState.SENT.value] == [row.id]
