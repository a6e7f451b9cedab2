"""Steps shared by the per-platform end-to-end loops (WeCom, DingTalk, the service account)."""

from __future__ import annotations

import itertools
from typing import Any, Protocol

from sqlalchemy import select

from bot.keys import sessions_key
from storage.models import Identity
from tests.channels.wx_harness import (
    WECHAT_AES,
    WECHAT_APPID,
    WECHAT_TOKEN,
    WECOM_AES,
    WECOM_CORP,
    WECOM_TOKEN,
)
from tests.chat import Playground
from tests.fakes.wechat_api import FakeWeChat, WeChatPlatform, mp_xml
from tests.fakes.wecom_api import FakeWeCom, WeComPlatform, message_xml


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


class WeChatUser:
    """One person on the service account (safe mode), reading what the platform showed them: passive
    replies in the callback answers and customer-service messages from the fake, in the order shown."""

    _ids = itertools.count(1)  # MsgIds, unique within the test process

    def __init__(self, pg: Playground, wechat: FakeWeChat, openid: str) -> None:
        self.pg = pg
        self.wechat = wechat
        self.openid = openid
        self.platform = WeChatPlatform(WECHAT_TOKEN, WECHAT_AES, WECHAT_APPID)
        self.seen = 0
        self.answers: list[str] = []  # the raw callback answers, for tests of the answer itself

    async def post(self, text: str, *, msg_id: int | None = None) -> int:
        """Send ``text`` as the platform does (``msg_id`` again = the platform's retry); return the MsgId."""
        self.wechat.touch(self.openid)
        ts = int(self.pg.clock.now().timestamp())
        mid = msg_id if msg_id is not None else next(self._ids)
        xml = mp_xml(self.openid, ts, "text", f"<Content><![CDATA[{text}]]></Content>", mid)
        query, body = self.platform.aes_post(xml, timestamp=str(ts))
        resp = await self.pg.client.post("/wechat/callback", params=query, data=body.encode())
        answer = await resp.text()
        assert resp.status == 200, answer
        self.answers.append(answer)
        shown = self.platform.shown(resp.status, answer, openid=self.openid)
        if shown is not None:  # a passive reply: the platform shows it before anything sent later
            self.wechat.sent.append(shown)
        return mid

    async def say(self, text: str) -> str:
        await self.post(text)
        await self.pg.settle()
        return self.read_text()

    def read_text(self) -> str:
        mine = [s for s in self.wechat.sent if s.get("touser") == self.openid]
        new, self.seen = mine[self.seen :], len(mine)
        return "\n".join(s.get("text", {}).get("content", "") for s in new)


def wecom_config(fake: FakeWeCom) -> dict[str, Any]:
    """The ``[wecom]`` settings that point craftlink at ``fake`` with the test corp's keys."""
    return {"corp_id": WECOM_CORP, "agent_id": fake.agent_id, "secret": fake.secret, "token": WECOM_TOKEN,
            "encoding_aes_key": WECOM_AES, "api_base": fake.base_url}


def wecom_shown(body: dict[str, Any]) -> str:
    """What a WeCom message shows the person: texts, and cards as title, body and button labels."""
    kind = body["msgtype"]
    if kind in ("text", "markdown"):
        return str(body[kind]["content"])
    if kind == "template_card":
        card = body[kind]
        parts = [card["main_title"]["title"], card.get("sub_title_text", "")]
        return "\n".join([*parts, *(b["text"] for b in card["button_list"])])
    return f"[{kind}]"


class WeComMember:
    """One WeCom member: types, sends photos, taps card buttons (with a response_code the fake issued),
    and reads what WeCom showed them."""

    _ids = itertools.count(1)  # MsgIds, unique within the test process

    def __init__(self, pg: Playground, wecom: FakeWeCom, user_id: str) -> None:
        self.pg = pg
        self.wecom = wecom
        self.user = user_id
        self.platform = WeComPlatform(WECOM_TOKEN, WECOM_AES, WECOM_CORP)
        self.seen = 0

    async def post(self, msg_type: str, fields: str, msg_id: int | None) -> None:
        ts = int(self.pg.clock.now().timestamp())
        query, body = self.platform.post(
            message_xml(WECOM_CORP, self.user, ts, msg_type, fields, msg_id), timestamp=str(ts)
        )
        resp = await self.pg.client.post("/wecom/callback", params=query, data=body)
        assert (resp.status, await resp.text()) == (200, "")
        await self.pg.settle()

    async def say(self, text: str) -> str:
        await self.post("text", f"<Content><![CDATA[{text}]]></Content>", next(self._ids))
        return self.read_text()

    async def send_image(self, data: bytes) -> str:
        media_id = self.wecom.add_media(data, "image/jpeg", "photo.jpg")
        await self.post(
            "image",
            f"<PicUrl><![CDATA[http://p/x.jpg]]></PicUrl><MediaId><![CDATA[{media_id}]]></MediaId>",
            next(self._ids),
        )
        return self.read_text()

    def read(self) -> list[dict[str, Any]]:
        """The message bodies WeCom delivered to this member since the last read."""
        mine = [m for m in self.wecom.sent if m["touser"] == self.user]
        new, self.seen = mine[self.seen :], len(mine)
        return new

    def read_text(self) -> str:
        return "\n".join(wecom_shown(m) for m in self.read())

    def cards(self) -> list[dict[str, Any]]:
        return [m["template_card"] for m in self.wecom.sent if m["touser"] == self.user and "template_card" in m]

    async def tap_card(self, label: str, *, stale: bool = False) -> tuple[str, str]:
        """Tap ``label`` on the newest card that has it; return (the card's task_id, what came back)."""
        for card in reversed(self.cards()):
            for button in card["button_list"]:
                if button["text"] == label:
                    fields = self.wecom.card_event(self.user, card["task_id"], button["key"], stale=stale)
                    await self.post("event", fields, None)
                    return card["task_id"], self.read_text()
        raise AssertionError(f"no button {label!r} sent to {self.user}")

    async def tap(self, label: str, *, stale: bool = False) -> str:
        return (await self.tap_card(label, stale=stale))[1]

    def shows(self, task_id: str) -> str | None:
        """What replaced the buttons of that card (None: they are still there)."""
        return self.wecom.card_label(task_id, self.user)
