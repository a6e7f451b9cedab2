"""Offers: timeout → next candidate, escalation with context, parallel urgent offers, review gate, staff dispatch."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from bot.keys import sessions_key
from storage.models import Case, CaseState, Offer, OfferState
from tests.chat import Chat, Playground
from tests.conftest import make_settings
from tests.test_pipeline import submit_case


async def case_of(pg: Playground, number: int) -> Case:
    async with pg.app[sessions_key]() as s:
        case = await s.get(Case, number - 1000)
        assert case is not None
        return case


async def test_offer_timeout_moves_on_then_escalates_with_context(playground: Playground) -> None:
    number = await submit_case(playground)
    sun, zhou = playground.person("demo-craftsman-1007"), playground.person("demo-craftsman-1008")
    assert len(await sun.read()) == 1
    assert await playground.fire_timers(timedelta(minutes=29)) == 0  # not yet
    assert await playground.fire_timers(timedelta(minutes=2)) == 1
    assert "已超时" in Chat.text_of(await sun.read())
    assert len(await zhou.read()) == 1
    await zhou.tap("婉拒")
    await zhou.say("设备不熟悉")
    case = await case_of(playground, number)  # the demo has two mould makers: nobody is left
    assert case.state == CaseState.ESCALATED
    alert = Chat.text_of(await playground.person("demo-staff-1").read())
    assert f"案件 #{number} 需要人工派单：没有符合条件的空闲师傅" in alert
    assert "孙卫东：超时未答复" in alert and "周明华：婉拒" in alert
    assert "补充 #1001：周明华 婉拒原因：设备不熟悉" in alert  # the reason came after the escalation
    assert f"派单 {number}" in alert


async def test_staff_dispatch_and_redispatch(playground: Playground) -> None:
    number = await submit_case(playground)
    staff = playground.person("demo-staff-1")
    chen = playground.person("demo-craftsman-1004")  # 陈志强, 维修电工
    reply = Chat.text_of(await staff.say(f"派单 {number} 陈志强"))
    assert f"已将 #{number} 派给 陈志强" in reply
    assert "已由工作人员另行安排" in Chat.text_of(await playground.person("demo-craftsman-1007").read())
    assert await chen.read()
    await chen.tap("接单")
    assert (await case_of(playground, number)).craftsman_id is not None
    await staff.say(f"改派 {number} 专业不对口")
    assert "改派他人" in Chat.text_of(await chen.read())
    case = await case_of(playground, number)
    assert case.state == CaseState.OFFERED and case.craftsman_id is None
    timeline = Chat.text_of(await staff.say(f"查 {number}"))
    assert "陈志强 接单" in timeline and "改派：专业不对口" in timeline and "匹配推荐" in timeline


async def test_ambiguous_or_unknown_craftsman_is_refused(playground: Playground) -> None:
    number = await submit_case(playground)
    staff = playground.person("demo-staff-2")
    assert "没有找到师傅「不存在」" in Chat.text_of(await staff.say(f"派单 {number} 不存在"))
    assert "没有找到案件 #9999" in Chat.text_of(await staff.say("派单 9999 陈志强"))


async def test_review_gate_and_rejection_reason(tmp_path: Path, db_url: str, clock: object) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from bot.app import create_app
    from handlers.clock import ManualClock

    assert isinstance(clock, ManualClock)
    settings = make_settings(db_url, tmp_path, bot={"review_required": True})
    async with TestClient(TestServer(create_app(settings, clock=clock, run_scheduler=False), host="127.0.0.1")) as c:
        pg = Playground(c, clock)
        await pg.seed_demo()
        number = await submit_case(pg)
        assert (await case_of(pg, number)).state == CaseState.SUBMITTED
        staff = pg.person("demo-staff-1")
        review = await staff.read()
        assert review and review[-1]["buttons"][0]["command"] == f"审核 {number} 通过"
        assert review[-1]["buttons"][1]["command"] == f"派单 {number} GJ1007"  # the top candidate, one tap
        assert "推荐师傅" in review[-1]["text"] and "孙卫东（编号 GJ1007）" in review[-1]["text"]
        assert f"#{number}" in Chat.text_of(await staff.say("待审"))
        assert "需要写明原因" in Chat.text_of(await staff.say(f"审核 {number} 驳回"))
        assert (await case_of(pg, number)).state == CaseState.SUBMITTED  # refused: nothing changed
        await staff.say(f"审核 {number} 驳回 不属于技术服务范围")
        told = Chat.text_of(await pg.person("demo-firm-1").read())
        assert "暂时无法受理：不属于技术服务范围" in told
        number2 = await submit_case(pg, "demo-firm-2", "鱼塘的水发绿发臭了")
        await staff.tap("通过")  # the newest review card is for number2
        assert (await case_of(pg, number2)).state == CaseState.OFFERED


async def test_parallel_policy_offers_urgent_case_to_several(tmp_path: Path, db_url: str, clock: object) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from bot.app import create_app
    from handlers.clock import ManualClock

    assert isinstance(clock, ManualClock)
    settings = make_settings(db_url, tmp_path, bot={"offer_policy": "parallel", "parallel_offers": 2})
    async with TestClient(TestServer(create_app(settings, clock=clock, run_scheduler=False), host="127.0.0.1")) as c:
        pg = Playground(c, clock)
        await pg.seed_demo()
        number = await submit_case(pg)  # submit_case marks it 紧急
        sun, zhou = pg.person("demo-craftsman-1007"), pg.person("demo-craftsman-1008")
        assert "【紧急】" in (await sun.read())[0]["title"]
        assert "【紧急】" in (await zhou.read())[0]["title"]
        await zhou.tap("接单")
        assert "已由其他师傅接单" in Chat.text_of(await sun.read())
        async with pg.app[sessions_key]() as s:
            states = {o.craftsman_id: o.state for o in (await s.scalars(select(Offer))).all()}
        assert sorted(states.values()) == [OfferState.ACCEPTED, OfferState.TAKEN]
        assert (await case_of(pg, number)).state == CaseState.ASSIGNED


async def test_unavailable_craftsman_gets_no_offer(playground: Playground) -> None:
    sun = playground.person("demo-craftsman-1007")
    assert "已设为休息" in Chat.text_of(await sun.say("休息"))
    await submit_case(playground)
    assert await sun.read() == []
    assert len(await playground.person("demo-craftsman-1008").read()) == 1
    assert "已上线" in Chat.text_of(await sun.say("上线"))


async def test_escalates_after_max_candidates(tmp_path: Path, db_url: str, clock: object) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from bot.app import create_app
    from handlers.clock import ManualClock

    assert isinstance(clock, ManualClock)
    settings = make_settings(db_url, tmp_path, bot={"max_candidates": 1, "offer_timeout_min": 10})
    async with TestClient(TestServer(create_app(settings, clock=clock, run_scheduler=False), host="127.0.0.1")) as c:
        pg = Playground(c, clock)
        await pg.seed_demo()
        number = await submit_case(pg)
        await pg.fire_timers(timedelta(minutes=11))
        assert (await case_of(pg, number)).state == CaseState.ESCALATED
        assert "已有 1 位师傅未接单" in Chat.text_of(await pg.person("demo-staff-2").read())
        assert await pg.person("demo-craftsman-1008").read() == []


async def test_unclear_request_goes_to_staff_even_with_review_off(playground: Playground) -> None:
    firm = playground.person("demo-firm-3")
    first = Chat.text_of(await firm.say("我们厂里那个东西又坏了，老板很着急"))
    assert "暂时没能判断属于哪个专业" in first
    await firm.tap("线上指导")
    await firm.tap("紧急")
    done = Chat.text_of(await firm.tap("提交"))
    assert "工作人员审核后" in done
    number = int(done.split("#")[1][:4])
    assert (await case_of(playground, number)).state == CaseState.SUBMITTED
    card = (await playground.person("demo-staff-2").read())[-1]
    assert f"待审核：案件 #{number}" in card["title"] and "系统未能判断专业" in card["text"]
