"""The 48-hour window: a message outside it is held (staff told) and goes out when the person writes again."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.keys import sessions_key
from handlers.outbox import HELD_FLAG, Outbox
from storage.models import Identity, OutboxMessage, OutboxState
from tests.channels.scenario import WeChatUser
from tests.channels.test_wechat_passive import OPENID, world  # noqa: F401  (the fixture)
from tests.chat import Playground
from tests.fakes.wechat_api import FakeWeChat


async def test_held_message_goes_out_first_when_the_person_writes_again(
    world: tuple[Playground, FakeWeChat],  # noqa: F811
) -> None:
    pg, fake = world
    ent = WeChatUser(pg, fake, OPENID)
    await ent.say("你好")
    pg.clock.advance(timedelta(hours=49))  # the customer-service window has closed
    async with pg.app[sessions_key]() as s, s.begin():
        identity = await s.scalar(select(Identity).where(Identity.channel_user_id == OPENID))
        assert identity is not None
        await Outbox(s, pg.clock).to_identity(identity, "孙师傅已回复您的问题，请查看")
    await pg.settle()
    assert ent.read_text() == ""  # not sent: the platform would refuse it
    async with pg.app[sessions_key]() as s:
        held = (await s.scalars(select(OutboxMessage).where(OutboxMessage.state == OutboxState.HELD))).all()
        assert [r.address for r in held] == [OPENID]
        identity = await s.scalar(select(Identity).where(Identity.channel_user_id == OPENID))
        assert identity is not None and identity.extra.get(HELD_FLAG)
        alerts = (await s.scalars(select(OutboxMessage).where(OutboxMessage.address != OPENID))).all()
        assert any("暂存" in (r.payload.get("text") or "") for r in alerts)  # staff were told

    reply = await ent.say("宁波北仑精工机械有限公司")  # the person writes: the window is open again
    lines = reply.splitlines()
    assert lines[0] == "孙师傅已回复您的问题，请查看"  # the held message first, then the reply
    assert "怎么称呼" in "\n".join(lines[1:])
    async with pg.app[sessions_key]() as s:
        assert (await s.scalars(select(OutboxMessage).where(OutboxMessage.state == OutboxState.HELD))).all() == []
        identity = await s.scalar(select(Identity).where(Identity.channel_user_id == OPENID))
        assert identity is not None and HELD_FLAG not in identity.extra
