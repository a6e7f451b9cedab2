"""A reminder the platform refuses (WeChat's 48-hour window) is held, shown to staff, and in the digest."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.channels.base import HeldSendError
from bot.keys import senders_key, services_key, sessions_key
from handlers.messages import OutgoingMessage
from scheduler.jobs import run_daily_digest
from storage.models import Identity, OutboxMessage, OutboxState, Person
from tests.chat import Chat, Playground
from tests.scheduler.helpers import STAFF1, accepted_case


class OutsideWindow:
    """A WeChat sender whose user last wrote more than 48 hours ago and no template is configured."""

    channel = "wechat"

    async def send(self, address: str, message: OutgoingMessage, *, extra: dict[str, Any]) -> str | None:
        raise HeldSendError("45015", "response out of time limit")


async def test_nudge_outside_the_send_window_is_held_and_reported(playground: Playground) -> None:
    playground.app[senders_key]["wechat"] = OutsideWindow()
    _, sun = await accepted_case(playground)
    async with playground.app[sessions_key]() as s, s.begin():
        person = await s.scalar(select(Person).where(Person.name == "孙卫东"))
        assert person is not None  # last seen on WeChat: the nudge goes there
        s.add(Identity(person_id=person.id, channel="wechat", channel_user_id="o-sun",
                       last_seen_at=playground.clock.now() + timedelta(seconds=1), extra={}))
    staff = playground.person(STAFF1)
    await staff.read()
    await playground.fire_timers(advance=timedelta(hours=24, minutes=1))
    async with playground.app[sessions_key]() as s:
        held = (await s.scalars(select(OutboxMessage).where(OutboxMessage.state == OutboxState.HELD.value))).all()
    assert len(held) == 1 and held[0].payload["title"] == "#1001 进展如何？" and "45015" in held[0].last_error
    await playground.settle()  # the staff alert is queued while the held send finishes: one more pass sends it
    alert = Chat.text_of(await staff.read())
    assert "暂存（平台暂不允许发送）" in alert and "#1001 进展如何" in alert
    playground.clock.advance(timedelta(days=1))
    await run_daily_digest(playground.app[sessions_key], playground.app[services_key])
    await playground.settle()
    assert "**未送达消息**：平台暂不允许发送（已暂存） 1 条" in Chat.text_of(await staff.read())
