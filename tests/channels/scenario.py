"""Steps shared by the per-platform end-to-end loops (WeCom, DingTalk, the service account)."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import select

from bot.keys import sessions_key
from storage.models import Identity
from tests.chat import Playground


class Talker(Protocol):
    async def say(self, text: str) -> str: ...


async def bind_identity(pg: Playground, web_user: str, channel: str, user_id: str) -> None:
    """Give a demo person an identity on ``channel``, seen more recently than their web one."""
    async with pg.app[sessions_key]() as s, s.begin():
        web = await s.scalar(select(Identity).where(Identity.channel == "web", Identity.channel_user_id == web_user))
        assert web is not None
        s.add(Identity(person_id=web.person_id, channel=channel, channel_user_id=user_id, extra={},
                       last_seen_at=pg.clock.now()))


async def register(ent: Talker) -> None:
    """First contact: the enterprise registers in three answers."""
    assert "企业）的全称" in await ent.say("你好")
    assert "怎么称呼" in await ent.say("宁波北仑精工机械有限公司")
    assert "哪个地区" in await ent.say("王工")
    assert "登记完成：宁波北仑精工机械有限公司" in await ent.say("宁波市北仑区")
