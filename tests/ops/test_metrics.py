"""/metrics: every family the issue names moves when the thing it counts happens."""

from __future__ import annotations

from datetime import timedelta

from bot.channels.base import TransientSendError
from bot.keys import sender_key, senders_key
from tests.chat import Playground
from tests.ops.metrics_util import scrape, value
from tests.test_pipeline import FlakySender, _queue, submit_case


async def test_callbacks_handling_cases_and_timers_are_counted(playground: Playground) -> None:
    client = playground.client
    before = await scrape(client)
    number = await submit_case(playground)
    bad = await client.post("/webchat/send", data=b"{not json")
    assert bad.status == 400
    after = await scrape(client)

    ok = value(after, "craftlink_callbacks_total", channel="web", outcome="ok") - value(
        before, "craftlink_callbacks_total", channel="web", outcome="ok")
    assert ok >= 4  # the request text and three taps
    assert value(after, "craftlink_callbacks_total", channel="web", outcome="rejected") > value(
        before, "craftlink_callbacks_total", channel="web", outcome="rejected")
    assert value(after, "craftlink_callback_seconds_count", channel="web") - value(
        before, "craftlink_callback_seconds_count", channel="web") >= ok
    handled = value(after, "craftlink_handling_seconds_count", outcome="done") - value(
        before, "craftlink_handling_seconds_count", outcome="done")
    assert handled >= 4
    assert value(after, "craftlink_inbox_stored_total", channel="web", result="new") > value(
        before, "craftlink_inbox_stored_total", channel="web", result="new")
    # The new case is offered to a craftsman and shows in the cases-by-state gauge, read from the DB.
    assert value(after, "craftlink_cases", state="offered") >= 1
    assert value(after, "craftlink_outbox_messages", state="sent") >= 1
    assert value(after, "craftlink_inbox_pending") == 0
    assert value(after, "craftlink_database_up") == 1

    # The offer times out: its timer is due (gauge), then fired (counter) and its lateness observed.
    playground.clock.advance(timedelta(hours=2))
    due = await scrape(client)
    assert value(due, "craftlink_timers_due") >= 1
    fired_before = sum(v for (n, _), v in due.items() if n == "craftlink_timers_fired_total")
    assert await playground.fire_timers() >= 1
    fired = await scrape(client)
    assert sum(v for (n, _), v in fired.items() if n == "craftlink_timers_fired_total") > fired_before
    assert value(fired, "craftlink_timer_lateness_seconds_count") > value(due, "craftlink_timer_lateness_seconds_count")
    assert number > 1000


async def test_outbox_depth_age_and_send_failures_by_code(playground: Playground) -> None:
    client = playground.client
    flaky = FlakySender([TransientSendError("45009", retry_after=60)])
    playground.app[senders_key]["wecom"] = flaky
    await _queue(playground, ["一", "二"])
    playground.clock.advance(timedelta(seconds=90))
    queued = await scrape(client)
    assert value(queued, "craftlink_outbox_messages", state="pending") == 2
    assert value(queued, "craftlink_outbox_oldest_pending_seconds") == 90

    before = value(queued, "craftlink_send_failures_total", channel="wecom", kind="transient", code="45009")
    await playground.app[sender_key].settle()
    failed = await scrape(client)
    assert value(failed, "craftlink_send_failures_total", channel="wecom", kind="transient", code="45009") == before + 1
    playground.clock.advance(timedelta(minutes=2))
    sent_before = value(failed, "craftlink_sent_total", channel="wecom")
    await playground.app[sender_key].settle()
    done = await scrape(client)
    assert value(done, "craftlink_sent_total", channel="wecom") == sent_before + 2
    assert value(done, "craftlink_outbox_messages", state="pending") == 0
    assert value(done, "craftlink_outbox_oldest_pending_seconds") == 0
    assert flaky.delivered == ["一", "二"]
