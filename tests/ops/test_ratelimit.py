"""Per-sender flood control: one polite notice per flood, other senders and staff unaffected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.keys import intake_key, sessions_key, settings_key
from handlers.messages import Channel, IncomingKind, IncomingMessage
from handlers.ratelimit import NOTICE, RateLimiter, Verdict
from storage.models import InboxMessage
from tests.chat import Chat, Playground
from tests.ops.metrics_util import scrape, value

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def test_limiter_window_and_one_notice_per_flood() -> None:
    lim = RateLimiter(3)
    verdicts = [lim.check("web", "a", T0 + timedelta(seconds=i)) for i in range(6)]
    assert verdicts == [Verdict.ALLOW] * 3 + [Verdict.NOTIFY, Verdict.DROP, Verdict.DROP]
    assert lim.check("web", "b", T0 + timedelta(seconds=5)) is Verdict.ALLOW  # others unaffected
    assert lim.check("wecom", "a", T0 + timedelta(seconds=5)) is Verdict.ALLOW  # per channel
    # A minute after the first message the window has room again, and a new flood gets a new notice.
    assert lim.check("web", "a", T0 + timedelta(seconds=60)) is Verdict.ALLOW
    assert lim.check("web", "a", T0 + timedelta(seconds=61)) is Verdict.ALLOW
    assert lim.check("web", "a", T0 + timedelta(seconds=62)) is Verdict.ALLOW
    assert lim.check("web", "a", T0 + timedelta(seconds=63)) is Verdict.NOTIFY
    assert RateLimiter(0).check("web", "a", T0) is Verdict.ALLOW  # 0 switches it off


async def _flood(pg: Playground, user: str, n: int, prefix: str) -> None:
    intake = pg.app[intake_key]
    for i in range(n):
        await intake.accept(IncomingMessage(channel=Channel.WEB, sender=user, platform_msg_id=f"{prefix}-{i}",
                                            kind=IncomingKind.TEXT, text="帮助", received_at=pg.clock.now()))


async def test_flooding_sender_is_told_once_and_others_are_served(playground: Playground) -> None:
    limit = playground.app[settings_key].bot.rate_limit_per_min
    flooder, calm, staff = (playground.person(u) for u in ("demo-firm-1", "demo-firm-2", "demo-staff-1"))
    before = await scrape(playground.client)
    await _flood(playground, flooder.user, limit + 15, "flood")
    await _flood(playground, staff.user, limit + 5, "staff")
    await playground.settle()
    assert Chat.text_of(await calm.say("帮助"))  # the calm sender is answered normally

    replies = Chat.text_of(await flooder.read())
    assert replies.count(NOTICE) == 1
    assert replies.count("帮助") >= 1  # the first `limit` messages were handled (help lists commands)
    async with playground.app[sessions_key]() as s:
        errors = list((await s.scalars(select(InboxMessage.error).where(
            InboxMessage.platform_msg_id.like("flood-%")).order_by(InboxMessage.id))).all())
    assert errors == [""] * limit + ["rate_limited"] * 15  # recorded, not lost, not handled
    staff_replies = await staff.read()
    assert NOTICE not in Chat.text_of(staff_replies)  # staff are never limited
    after = await scrape(playground.client)
    assert value(after, "craftlink_rate_limited_total", channel="web") - value(
        before, "craftlink_rate_limited_total", channel="web") == 15

    # A minute later the same sender is served again.
    playground.clock.advance(timedelta(minutes=1, seconds=1))
    assert NOTICE not in Chat.text_of(await flooder.say("帮助"))

