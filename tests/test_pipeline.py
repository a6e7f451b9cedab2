"""The inbox/outbox pipeline: duplicates, ordering, concurrency, failure handling."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import func, select, update

from bot.channels.base import HeldSendError, PermanentSendError, TransientSendError
from bot.keys import intake_key, sender_key, senders_key, services_key, sessions_key
from handlers.messages import (
    Button,
    IncomingKind,
    IncomingMessage,
    OutgoingMessage,
    card,
    card_update,
)
from storage.models import Case, CaseState, InboxMessage, Offer, OfferState, OutboxMessage, OutboxState
from tests.chat import Chat, Playground


async def submit_case(pg: Playground, firm: str = "demo-firm-1", text: str = "冲床的模子老是崩刃，麻烦看看") -> int:
    ent = pg.person(firm)
    await ent.say(text)
    await ent.tap("线上指导")
    await ent.tap("紧急")
    done = Chat.text_of(await ent.tap("提交"))
    assert "案件编号 #" in done, done
    return int(done.split("#")[1][:4])


async def count(pg: Playground, model: Any, *where: Any) -> int:
    async with pg.app[sessions_key]() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_same_message_id_has_one_effect(playground: Playground) -> None:
    ent = playground.person("demo-firm-1")
    first = await ent.say("帮助", msg_id="dup-1")
    again = await ent.say("帮助", msg_id="dup-1")
    assert len(first) == 1 and again == []  # the retry is acknowledged but has no second effect
    assert await count(playground, InboxMessage, InboxMessage.platform_msg_id == "dup-1") == 1


async def test_concurrent_duplicates_store_one_row(playground: Playground) -> None:
    intake = playground.app[intake_key]
    msg = IncomingMessage(channel="web", sender="demo-firm-2", platform_msg_id="burst-1",
                          kind=IncomingKind.TEXT, text="帮助")
    results = await asyncio.gather(*(intake.accept(msg) for _ in range(20)))
    assert results.count(True) == 1 and results.count(False) == 19
    assert await count(playground, InboxMessage, InboxMessage.platform_msg_id == "burst-1") == 1


async def test_messages_of_one_conversation_are_handled_in_order(playground: Playground) -> None:
    intake = playground.app[intake_key]
    ent = playground.person("web-order-1")
    texts = ["你好", "上海浦东测试有限公司", "李工", "上海市浦东新区"]
    for i, t in enumerate(texts):  # stored before any handling: the worker must keep the order
        await intake.accept(IncomingMessage(channel="web", sender="web-order-1", platform_msg_id=f"o-{i}",
                                            kind=IncomingKind.TEXT, text=t))
    await playground.settle()
    replies = Chat.text_of(await ent.read())
    assert "登记完成：上海浦东测试有限公司（上海市浦东新区），联系人 李工" in replies


async def test_two_accepts_at_once_give_one_assignment(playground: Playground) -> None:
    number = await submit_case(playground)
    # Two open offers at once (what the parallel policy does): staff add one, then reopen both.
    await playground.person("demo-staff-1").say(f"派单 {number} 周明华")
    async with playground.app[sessions_key]() as s, s.begin():
        await s.execute(update(Offer).values(state=OfferState.PENDING.value))
    a, b = playground.person("demo-craftsman-1007"), playground.person("demo-craftsman-1008")
    await a.read()
    await b.read()
    resp = await asyncio.gather(
        playground.client.post("/webchat/send", json={"user": a.user, "text": f"接单 {number}", "id": "acc-a"}),
        playground.client.post("/webchat/send", json={"user": b.user, "text": f"接单 {number}", "id": "acc-b"}),
    )
    assert all(r.status == 200 for r in resp)
    await playground.settle()
    replies = [Chat.text_of(await a.read()), Chat.text_of(await b.read())]
    assert sum("接单成功" in r for r in replies) == 1
    assert sum("已由其他师傅接单" in r for r in replies) == 1
    async with playground.app[sessions_key]() as s:
        case = await s.get(Case, number - 1000)
        assert case is not None and case.state == CaseState.ASSIGNED
        states = sorted((await s.scalars(select(Offer.state).where(Offer.case_id == case.id))).all())
        assert states == [OfferState.ACCEPTED, OfferState.TAKEN]


class FlakySender:
    """A channel that fails in the ways platforms do, then recovers."""

    channel = "wecom"

    def __init__(self, script: list[Exception | None]) -> None:
        self.script = script
        self.delivered: list[str] = []

    async def send(self, address: str, message: OutgoingMessage, *, extra: dict[str, Any]) -> str | None:
        step = self.script.pop(0) if self.script else None
        if step is not None:
            raise step
        self.delivered.append(message.text)
        return uuid.uuid4().hex


async def _queue(pg: Playground, texts: list[str], channel: str = "wecom") -> None:
    from handlers.clock import ManualClock

    clock = pg.clock
    assert isinstance(clock, ManualClock)
    async with pg.app[sessions_key]() as s, s.begin():
        for t in texts:
            s.add(OutboxMessage(channel=channel, address="u1", conversation=f"{channel}:u1",
                                payload=OutgoingMessage.from_json({"kind": "text", "text": t}).to_json(),
                                next_attempt_at=clock.now(), created_at=clock.now()))


async def test_transient_failures_retry_in_order_none_twice(playground: Playground) -> None:
    from datetime import timedelta

    flaky = FlakySender([TransientSendError("45009", retry_after=30), None, TransientSendError("5xx"), None, None])
    playground.app[senders_key]["wecom"] = flaky
    await _queue(playground, ["一", "二", "三"])
    sender = playground.app[sender_key]
    for _ in range(10):
        await sender.settle()
        playground.clock.advance(timedelta(minutes=2))
    assert flaky.delivered == ["一", "二", "三"]
    assert await count(playground, OutboxMessage, OutboxMessage.state == OutboxState.SENT.value,
                       OutboxMessage.channel == "wecom") == 3


async def test_undeliverable_message_is_dead_and_staff_told(playground: Playground) -> None:
    playground.app[senders_key]["wecom"] = FlakySender([PermanentSendError("81013", "user not found")])
    await _queue(playground, ["永远送不到"])
    await playground.settle()
    assert await count(playground, OutboxMessage, OutboxMessage.state == OutboxState.DEAD.value) == 1
    alert = Chat.text_of(await playground.person("demo-staff-1").read())
    assert "发送失败" in alert and "81013" in alert and "永远送不到" in alert


async def test_held_message_is_visible_to_staff(playground: Playground) -> None:
    playground.app[senders_key]["wecom"] = FlakySender([HeldSendError("45015", "outside 48 h")])
    await _queue(playground, ["窗口外"])
    await playground.settle()
    assert await count(playground, OutboxMessage, OutboxMessage.state == OutboxState.HELD.value) == 1
    assert "暂存" in Chat.text_of(await playground.person("demo-staff-2").read())


async def test_handler_crash_is_retried_then_reported(playground: Playground, monkeypatch: Any) -> None:
    from datetime import timedelta

    from handlers.app import build_router

    async def boom(*_: Any) -> None:
        raise RuntimeError("simulated bug")

    route = next(r for r in build_router().commands if "帮助" in r.names)
    monkeypatch.setattr(route, "handler", boom)
    ent = playground.person("demo-firm-3")
    assert await ent.say("帮助", msg_id="crash-1") == []
    for _ in range(6):
        await playground.fire_timers(advance=timedelta(minutes=10))  # the staff alert is a timer (grouped)
    assert "暂时出了点问题" in Chat.text_of(await ent.read())
    assert "多次处理失败" in Chat.text_of(await playground.person("demo-staff-1").read())
    async with playground.app[sessions_key]() as s:
        row = await s.scalar(select(InboxMessage).where(InboxMessage.platform_msg_id == "crash-1"))
        assert row is not None and row.state == "failed" and row.attempts == 5


def test_outgoing_messages_round_trip_through_the_outbox_payload() -> None:
    update = card_update("已接单", "rc-123")
    assert update.to_json()["update_ref"] == "rc-123"
    assert OutgoingMessage.from_json(update.to_json()) == update
    assert update.cosmetic and not card("t", "b", [Button("接单", "接单 1001")]).cosmetic
    plain = card("新的服务需求 #1001", "正文", [Button("接单", "接单 1001")], urgent=True)
    assert "update_ref" not in plain.to_json()  # rows of other kinds are stored as before
    assert OutgoingMessage.from_json(plain.to_json()) == plain
    old_row: dict[str, Any] = {"kind": "text", "text": "旧行", "title": "", "buttons": [], "media_path": None, "file_name": None,
               "urgent": False}
    assert OutgoingMessage.from_json(old_row).update_ref is None


async def _queue_card_update(pg: Playground, channel: str = "wecom", address: str = "u1") -> None:
    async with pg.app[sessions_key]() as s, s.begin():
        s.add(OutboxMessage(channel=channel, address=address, conversation=f"{channel}:{address}",
                            payload=card_update("已接单", "rc-1").to_json(),
                            next_attempt_at=pg.clock.now(), created_at=pg.clock.now()))


async def test_a_failed_card_update_ends_dead_without_a_staff_alert(playground: Playground) -> None:
    flaky = FlakySender([PermanentSendError("40058", "invalid response_code")])
    playground.app[senders_key]["wecom"] = flaky
    await _queue_card_update(playground)
    await _queue(playground, ["之后的消息照常发送"])
    await playground.settle()
    assert await count(playground, OutboxMessage, OutboxMessage.state == OutboxState.DEAD.value) == 1
    assert flaky.delivered == ["之后的消息照常发送"]
    assert await playground.person("demo-staff-1").read() == []


async def test_a_card_update_that_keeps_failing_gives_up_without_a_staff_alert(playground: Playground) -> None:
    from datetime import timedelta

    hours = int(playground.app[services_key].settings.bot.outbox_retry_hours)
    playground.app[senders_key]["wecom"] = FlakySender([TransientSendError("45009")] * (hours + 4))
    await _queue_card_update(playground)
    for _ in range(hours + 2):  # one try an hour until the delivery horizon has passed
        await playground.settle()
        playground.clock.advance(timedelta(hours=1))
    assert await count(playground, OutboxMessage, OutboxMessage.state == OutboxState.DEAD.value) == 1
    # Staff hear that WeCom is failing (once, bot/pipeline/channel_health.py), never about the card update.
    alerts = Chat.text_of(await playground.person("demo-staff-1").read())
    assert "发送失败" not in alerts and "已接单" not in alerts


async def test_a_card_update_to_the_web_chat_is_not_shown(playground: Playground) -> None:
    ent = playground.person("demo-firm-1")
    await _queue_card_update(playground, "web", ent.user)
    await playground.settle()
    assert await count(playground, OutboxMessage, OutboxMessage.state == OutboxState.SENT.value,
                       OutboxMessage.channel == "web") == 1
    assert await ent.read() == []


async def test_a_tap_whose_handler_states_no_outcome_updates_no_card(playground: Playground) -> None:
    intake = playground.app[intake_key]
    await intake.accept(IncomingMessage(channel="web", sender="demo-firm-1", platform_msg_id="tap-help",
                                        kind=IncomingKind.BUTTON, text="帮助", reply_handle="rc-9"))
    await playground.settle()
    assert await count(playground, OutboxMessage, OutboxMessage.channel == "web",
                       OutboxMessage.address == "demo-firm-1") == 1  # the answer only
