"""Messages that keep failing: staff get grouped, rate-limited alerts; the sender one apology per burst."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.keys import intake_key, sessions_key, settings_key
from handlers.failures import SORRY
from handlers.messages import IncomingKind, IncomingMessage
from storage.models import InboxMessage, InboxState
from tests.chat import Chat, Playground

ALERT = "处理失败"


async def _send(pg: Playground, user: str, texts: list[str], prefix: str) -> None:
    for i, text in enumerate(texts):
        await pg.app[intake_key].accept(IncomingMessage(
            channel="web", sender=user, platform_msg_id=f"{prefix}-{i}", kind=IncomingKind.TEXT, text=text,
            received_at=pg.clock.now()))


async def _run_until_done(pg: Playground, prefix: str, *, step: timedelta = timedelta(seconds=5)) -> None:
    for _ in range(400):
        await pg.fire_timers()
        async with pg.app[sessions_key]() as s:
            pending = (await s.scalars(select(InboxMessage.id).where(
                InboxMessage.platform_msg_id.like(f"{prefix}-%"),
                InboxMessage.state == InboxState.PENDING.value))).all()
        if not pending:
            await pg.fire_timers()  # an alert due now goes out now
            return
        pg.clock.advance(step)
    raise AssertionError("messages still pending")


def _alerts(msgs: list[dict[str, object]]) -> list[str]:
    return [str(m.get("text", "")) for m in msgs if ALERT in str(m.get("text", ""))]


async def test_twenty_failing_messages_make_one_alert_per_window_and_one_apology(failing: Playground) -> None:
    pg = failing
    window = timedelta(minutes=pg.app[settings_key].bot.failure_alert_min)
    firm = pg.person("demo-firm-1")
    staff = [pg.person(u) for u in ("demo-staff-1", "demo-staff-2")]
    start = pg.clock.now()
    await _send(pg, firm.user, [f"坏{i}" for i in range(20)], "bad")
    await _run_until_done(pg, "bad")
    assert pg.clock.now() - start < window  # all 20 failed within one alert window

    first = [_alerts(await s.read()) for s in staff]
    assert [len(a) for a in first] == [1, 1], first  # one alert each, not twenty
    assert "parser exploded" in first[0][0]  # it says what went wrong
    assert Chat.text_of(await firm.read()).count(SORRY) == 1  # one apology for the burst

    # The failures after the first alert are counted and summarised once the window has passed.
    await pg.fire_timers(advance=window)
    later = [_alerts(await s.read()) for s in staff]
    assert [len(a) for a in later] == [1, 1], later
    assert "有 1 条" in first[0][0] and "有 19 条" in later[0][0]  # every failure counted, once
    assert "王经理" in later[0][0]  # from whom

    # Nothing more failed: no further alert; a new failure much later is reported again.
    await pg.fire_timers(advance=window)
    assert [_alerts(await s.read()) for s in staff] == [[], []]
    await _send(pg, firm.user, ["坏again"], "again")
    await _run_until_done(pg, "again")
    assert [len(_alerts(await s.read())) for s in staff] == [1, 1]
    assert Chat.text_of(await firm.read()).count(SORRY) == 1  # a new burst, a new apology
