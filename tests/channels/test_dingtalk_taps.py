"""GET /dingtalk/tap: a card button acts exactly once, as the person it was sent to, until it expires."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from bot.channels.dingtalk_cards import TAP_TTL
from bot.channels.dingtalk_sign import LinkSigner
from bot.keys import dingtalk_key, intake_key
from handlers.messages import Button, IncomingMessage, card
from tests.channels.dingtalk_harness import Harness, running


async def tap_links(h: Harness, staff_id: str = "staff1") -> tuple[str, str]:
    """Send an offer card to ``staff_id`` and return its two button links, as local paths."""
    offer = card("新需求 #1024", "焊接开裂", [Button("接单", "接单 1024"), Button("婉拒", "婉拒 1024")])
    await h.sender.send(staff_id, offer, extra={})
    param = h.fake.sent[-1].param
    paths = []
    for key in ("actionURL1", "actionURL2"):
        parts = urlsplit(param[key])
        paths.append(f"{parts.path}?{parts.query}")
    return paths[0], paths[1]


async def test_a_tap_acts_once_as_a_button_press(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        accept, _ = await tap_links(h)
        resp = await h.client.get(accept)
        assert resp.status == 200
        page = await resp.text()
        assert "已收到：接单 1024" in page and "请回到钉钉查看" in page
        assert resp.headers["Cache-Control"] == "no-store"
        (row,) = await h.inbox()
        assert (row.channel, row.sender, row.kind, row.text) == ("dingtalk", "staff1", "button", "接单 1024")
        assert row.platform_msg_id.startswith("tap:")


async def test_a_replayed_tap_is_refused_politely_with_no_effect(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        accept, _ = await tap_links(h)
        assert (await h.client.get(accept)).status == 200
        replay = await h.client.get(accept)
        assert replay.status == 409
        assert "已经点过了" in await replay.text()
        assert await h.inbox_count() == 1


async def test_each_button_is_its_own_link(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        accept, decline = await tap_links(h)
        assert (await h.client.get(decline)).status == 200
        assert (await h.client.get(accept)).status == 200  # the handler decides what a second choice means
        assert [r.text for r in await h.inbox()] == ["婉拒 1024", "接单 1024"]


def _token(path: str) -> str:
    return parse_qs(urlsplit(path).query)["t"][0]


@pytest.mark.parametrize("how", ["flipped-mac", "other-secret", "no-token", "garbage", "media-link"])
async def test_a_forged_tap_is_refused_with_no_effect(tmp_path: Path, how: str) -> None:
    async with running(tmp_path) as h:
        accept, _ = await tap_links(h)
        token = _token(accept)
        expires = int((h.clock.now() + timedelta(hours=1)).timestamp())
        payload = {"u": "boss", "c": "接单 1024", "n": "n1"}
        forged = {
            "flipped-mac": token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
            "other-secret": LinkSigner("not-the-secret", "tap").make(payload, expires_at=expires),
            "no-token": "",
            "garbage": "abc.def",
            # a valid media link must not work as a tap (a different derived key)
            "media-link": h.app[dingtalk_key].links.media.make(payload, expires_at=expires),
        }[how]
        resp = await h.client.get(f"/dingtalk/tap?t={quote(forged)}")
        assert resp.status == 403
        assert "链接无效" in await resp.text()
        assert await h.inbox_count() == 0


async def test_an_expired_tap_is_refused_with_no_effect(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        accept, _ = await tap_links(h)
        h.clock.advance(TAP_TTL + timedelta(seconds=1))
        resp = await h.client.get(accept)
        assert resp.status == 410
        assert "已过期" in await resp.text()
        assert await h.inbox_count() == 0


async def test_a_tap_just_before_expiry_still_works(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        accept, _ = await tap_links(h)
        h.clock.advance(TAP_TTL - timedelta(seconds=1))
        assert (await h.client.get(accept)).status == 200


async def test_head_does_not_press_the_button(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        accept, _ = await tap_links(h)
        assert (await h.client.head(accept)).status == 405
        assert await h.inbox_count() == 0
        assert (await h.client.get(accept)).status == 200


async def test_a_tap_while_the_inbox_is_down_can_be_tapped_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(tmp_path) as h:
        accept, _ = await tap_links(h)
        intake = h.app[intake_key]
        real_accept = intake.accept

        async def down(msg: IncomingMessage) -> bool:
            raise ConnectionError("database is down")

        monkeypatch.setattr(intake, "accept", down)
        resp = await h.client.get(accept)
        assert resp.status == 503 and "请稍后再点一次" in await resp.text()
        monkeypatch.setattr(intake, "accept", real_accept)
        assert (await h.client.get(accept)).status == 200
        assert await h.inbox_count() == 1


async def test_the_page_escapes_the_command(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        await h.sender.send("staff1", card("t", "b", [Button("x", "<script>alert(1)</script>")]), extra={})
        parts = urlsplit(h.fake.sent[-1].param["singleURL"])
        page = await (await h.client.get(f"{parts.path}?{parts.query}")).text()
        assert "<script>" not in page and "&lt;script&gt;" in page
