"""Per-sender flood control: a flood is slowed down, never erased; one polite notice per flood.

The limiter counts stored messages (inbox rows), not handling attempts, so a message that fails and
is retried does not use up its sender's minute.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.keys import intake_key, sessions_key, settings_key
from handlers.messages import IncomingKind, IncomingMessage
from handlers.ratelimit import NOTICE
from storage.models import InboxMessage, InboxState
from tests.chat import Chat, Playground
from tests.ops.metrics_util import scrape, value


async def _flood(pg: Playground, user: str, texts: list[str], prefix: str) -> None:
    intake = pg.app[intake_key]
    for i, text in enumerate(texts):
        await intake.accept(IncomingMessage(channel="web", sender=user, platform_msg_id=f"{prefix}-{i}",
                                            kind=IncomingKind.TEXT, text=text, received_at=pg.clock.now()))


async def _rows(pg: Playground, prefix: str) -> list[InboxMessage]:
    async with pg.app[sessions_key]() as s:
        return list((await s.scalars(select(InboxMessage).where(
            InboxMessage.platform_msg_id.like(f"{prefix}-%")).order_by(InboxMessage.id))).all())


async def test_a_flood_is_slowed_down_handled_in_order_and_told_once(playground: Playground) -> None:
    limit = playground.app[settings_key].bot.rate_limit_per_min
    flooder, calm, staff = (playground.person(u) for u in ("demo-firm-1", "demo-firm-2", "demo-staff-1"))
    before = await scrape(playground.client)
    await _flood(playground, flooder.user, ["帮助"] * (3 * limit), "flood")  # 3× the limit, at one instant
    await _flood(playground, staff.user, ["帮助"] * (limit + 5), "staff")
    await playground.settle()
    assert Chat.text_of(await calm.say("帮助"))  # the calm sender is answered normally

    rows = await _rows(playground, "flood")
    assert [r.state for r in rows[:limit]] == [InboxState.DONE.value] * limit  # the first minute's worth
    assert all(r.state == InboxState.PENDING.value for r in rows[limit:])  # the rest kept, waiting
    assert Chat.text_of(await flooder.read()).count(NOTICE) == 1
    assert NOTICE not in Chat.text_of(await staff.read())  # staff are never limited
    assert all(r.state == InboxState.DONE.value for r in await _rows(playground, "staff"))

    for _ in range(3):  # each minute frees the window for the next `limit` messages
        playground.clock.advance(timedelta(minutes=1))
        await playground.settle()
    rows = await _rows(playground, "flood")
    assert [r.state for r in rows] == [InboxState.DONE.value] * (3 * limit)  # nothing erased
    handled = [r.handled_at for r in rows if r.handled_at is not None]
    assert handled == sorted(handled)  # in order
    t0 = handled[0]
    assert [h - t0 for h in handled] == ([timedelta(0)] * limit + [timedelta(minutes=1)] * limit
                                         + [timedelta(minutes=2)] * limit)  # at most `limit` a minute
    assert Chat.text_of(await flooder.read()).count(NOTICE) == 0  # one notice for the whole flood
    after = await scrape(playground.client)
    assert value(after, "craftlink_rate_limited_total", channel="web") - value(
        before, "craftlink_rate_limited_total", channel="web") == 2  # the queue paused twice

    # After a quiet minute the same sender is served at once, and a new flood earns a new notice.
    playground.clock.advance(timedelta(minutes=1, seconds=1))
    assert NOTICE not in Chat.text_of(await flooder.say("帮助"))
    await _flood(playground, flooder.user, ["帮助"] * (limit + 1), "again")
    await playground.settle()
    assert Chat.text_of(await flooder.read()).count(NOTICE) == 1


async def test_a_backlog_after_downtime_is_not_a_flood(playground: Playground) -> None:
    """Messages that arrived at a normal pace are handled at once, however late the worker gets to them."""
    limit = playground.app[settings_key].bot.rate_limit_per_min
    firm = playground.person("demo-firm-1")
    intake = playground.app[intake_key]
    start = playground.clock.now()
    for i in range(2 * limit):  # one every 10 s, all stored while the worker was down
        await intake.accept(IncomingMessage(channel="web", sender=firm.user, platform_msg_id=f"slow-{i}",
                                            kind=IncomingKind.TEXT, text="帮助",
                                            received_at=start + timedelta(seconds=10 * i)))
    playground.clock.advance(timedelta(hours=1))
    await playground.settle()
    assert all(r.state == InboxState.DONE.value for r in await _rows(playground, "slow"))
    assert NOTICE not in Chat.text_of(await firm.read())


async def test_failing_messages_do_not_use_up_the_senders_minute(failing: Playground) -> None:
    """Seen in production: 4 failing messages × 5 attempts used 20 slots, then valid commands were dropped."""
    pg = failing
    firm = pg.person("demo-firm-1")
    await _flood(pg, firm.user, ["坏1", "坏2", "坏3", "坏4", "帮助", "帮助"], "mixed")
    for _ in range(40):  # every retry's backoff passes; 4 × 5 attempts take ~2 minutes of clock
        await pg.settle()
        rows = await _rows(pg, "mixed")
        if all(r.state != InboxState.PENDING.value for r in rows):
            break
        pg.clock.advance(timedelta(seconds=5))
    assert [r.state for r in rows] == [InboxState.FAILED.value] * 4 + [InboxState.DONE.value] * 2
    assert [r.attempts for r in rows[:4]] == [pg.app[settings_key].bot.inbox_max_attempts] * 4
    assert [r.error for r in rows[4:]] == ["", ""]  # handled, not limited
    replies = Chat.text_of(await firm.read())
    assert NOTICE not in replies
    assert replies.count("帮助") >= 2  # both 帮助 were answered (help lists its commands)
