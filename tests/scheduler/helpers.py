"""Shared steps for the scheduler tests: a request submitted and accepted through the real web chat."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.keys import sessions_key
from storage.models import Case, OutboxMessage
from tests.chat import Chat, Playground

FIRM = "demo-firm-1"
SUN = "demo-craftsman-1007"  # 孙卫东, 模具制造: first candidate for a mould problem
ZHOU = "demo-craftsman-1008"  # 周明华, 模具制造: second
STAFF1, STAFF2 = "demo-staff-1", "demo-staff-2"


async def submit(pg: Playground, *, urgent: bool = False, text: str = "冲床的模子老是崩刃，麻烦看看") -> Chat:
    """demo-firm-1 submits an online-guidance mould request; returns the firm's chat."""
    firm = pg.person(FIRM)
    await firm.say(text)
    await firm.tap("线上指导")
    await firm.tap("紧急" if urgent else "普通")
    assert "案件编号 #1001" in Chat.text_of(await firm.tap("提交"))
    return firm


async def accepted_case(pg: Playground) -> tuple[Chat, Chat]:
    """Submit, and 孙卫东 accepts: returns (firm, craftsman) with their inboxes read."""
    firm = await submit(pg)
    sun = pg.person(SUN)
    await sun.read()
    assert "接单成功" in Chat.text_of(await sun.tap("接单"))
    await firm.read()
    return firm, sun


async def case_row(pg: Playground, case_id: int = 1) -> Case:
    async with pg.app[sessions_key]() as s:
        case = await s.get(Case, case_id)
        assert case is not None
        return case


async def outbox_rows(pg: Playground) -> list[OutboxMessage]:
    async with pg.app[sessions_key]() as s:
        return list((await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all())


def titles(msgs: list[dict[str, Any]]) -> str:
    return Chat.text_of(msgs)
