"""Every registered chat command, for every role, fed generated arguments (issue 13, item 7).

The commands are enumerated from the built router (the same routes 帮助 is generated from), so a new
command is fuzzed too. Arguments mix the classics of bad input — huge, negative and 25-digit numbers,
full-width digits, dates and months out of range, impossible times, negative and absurd durations,
ratings like 5.5 and 10, emoji, nothing at all — with random Unicode. The property, from whatever state
the previous examples left behind: a command gets a non-empty Chinese answer, every message is handled on
its first attempt (no handler exception, so no retry and no apology), and nothing is given up as failed
(so no staff alert). One app per test, shared by the examples; the bulk runs on SQLite, a smaller run on
PostgreSQL.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.keys import sessions_key
from handlers.app import build_router
from handlers.failures import SORRY
from handlers.router import parse_command
from storage.models import InboxMessage, InboxState, OutboxMessage, Role
from tests.chat import Chat, Playground
from tests.test_pipeline import submit_case

MANY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FEW = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
USERS = {Role.ENTERPRISE: "demo-firm-1", Role.CRAFTSMAN: "demo-craftsman-1007", Role.STAFF: "demo-staff-1"}
WIDE = str.maketrans("0123456789-:#", "０１２３４５６７８９－：＃")

numbers = st.one_of(
    st.integers(min_value=-10**30, max_value=10**30).map(str),
    st.sampled_from(["1" * 25, "9" * 25, "-" + "1" * 25, "0", "-1", "2147483648", "9223372036854775808",
                     "1001", "1002", "#1001", "＃１００１", "#" + "1" * 25, "0" * 30 + "1001", "²", "٣"]),
    st.integers(min_value=0, max_value=10**25).map(lambda n: str(n).translate(WIDE)),
)
dates = st.one_of(
    st.sampled_from(["0001-01-01", "9999-12-31", "2026-02-30", "2026-13-01", "2026-12-01 09:00",
                     "9999-12-31 23:59", "0001-01-01 00:30", "2026-12-01 25:61", "2027-12-31 09:00",
                     "２０２６－１２－０１ ０９：００", "2026年12月1日 9点", "0001-01", "9999-12", "2026-13", "2026-11",
                     "23:59-23:58", "08:00-08:00", "22:00-07:00", "25:00-07:00", "２２：００－０７：００"]),
    st.dates().map(lambda d: d.isoformat()),
    st.tuples(st.dates(), st.integers(-5, 30), st.integers(-5, 99)).map(lambda t: f"{t[0]} {t[1]}:{t[2]:02d}"),
)
words = st.sampled_from([
    "用时-3小时", "用时500小时", "用时1e309小时", "用时3小时", "90分钟", "用时" + "9" * 25 + "小时", "用时0小时",
    "5.5", "10", "0", "5", "６", "10分", "通过", "驳回", "添加", "删除", "下架", "关", "默认", "确认", "张翼飞",
    "GJ1001", "焊接工艺", "宁波", "😀🔧🏭", "\u202e", "<b>x</b>", "' OR 1=1 --", "",
])
noise = st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=20)
tokens = st.one_of(numbers, dates, words, noise)


def chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


@pytest.fixture
async def seeded(playground: Playground) -> Playground:
    """The demo plus cases to aim at: #1001 assigned to 孙卫东, #1002 offered."""
    number = await submit_case(playground)
    await playground.person(USERS[Role.CRAFTSMAN]).say(f"接单 {number}")
    await submit_case(playground, "demo-firm-2", "鱼塘水发绿了，增氧机开着鱼还是浮头")
    return playground


async def check_one(pg: Playground, role: Role, data: st.DataObject) -> None:
    names = sorted(build_router().names_for(role))
    assert len(names) >= 8, names  # the enumeration found the role's commands
    name = data.draw(st.sampled_from([*names, ""]), label="command")  # "" = a bare answer to an open dialog
    sep = data.draw(st.sampled_from([" ", "", "\u3000"]), label="separator")
    lead = data.draw(st.one_of(numbers, numbers, st.just("")), label="number")  # most commands start with one
    args = data.draw(st.lists(tokens, max_size=3), label="args")
    text = f"{name}{sep}{' '.join([lead, *args] if lead else args)}"
    assume(text.strip())  # the web chat refuses a blank message before it is stored (a 400, by design)
    pg.clock.advance(timedelta(seconds=4))  # stay under the per-sender rate limit: every message is handled now
    msg_id = uuid.uuid4().hex
    reply = Chat.text_of(await pg.person(USERS[role]).say(text, msg_id=msg_id))
    async with pg.app[sessions_key]() as s:
        row = await s.scalar(select(InboxMessage).where(InboxMessage.platform_msg_id == msg_id))
        failed = await s.scalar(select(func.count()).select_from(InboxMessage).where(
            InboxMessage.state != InboxState.DONE.value))
        sent = [json.dumps(p, ensure_ascii=False) for p in (await s.scalars(select(OutboxMessage.payload))).all()]
    alerts = [p for p in sent if SORRY in p or "处理失败" in p]  # the apology, or a staff alert of a failure
    assert row is not None and row.state == InboxState.DONE.value and row.attempts == 1, (text, row and row.error)
    if parse_command(text, set(names)) is not None:  # a command is always answered (a relayed message need not be)
        assert reply.strip() and chinese(reply), (text, reply)
    assert SORRY not in reply, text
    assert failed == 0 and not alerts, (text, alerts)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("role", [Role.ENTERPRISE, Role.CRAFTSMAN, Role.STAFF])
@MANY
@given(data=st.data())
async def test_every_command_answers_any_argument_politely(seeded: Playground, role: Role, data: st.DataObject) -> None:
    await check_one(seeded, role, data)


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
@pytest.mark.parametrize("role", [Role.ENTERPRISE, Role.CRAFTSMAN, Role.STAFF])
@FEW
@given(data=st.data())
async def test_every_command_answers_any_argument_politely_on_postgres(
    seeded: Playground, role: Role, data: st.DataObject,
) -> None:
    await check_one(seeded, role, data)
