"""The service-account callback endpoint: URL check, plaintext and safe mode, the official vector."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from wechatpy.crypto import PrpCrypto, _get_signature

from bot import config
from bot.channels.wechat import WeChatCallback
from bot.config import WeChatSettings
from tests.channels.wx_harness import WECHAT_AES, WECHAT_APPID, WECHAT_TOKEN, running
from tests.fakes.wechat_api import WeChatPlatform, mp_xml

PATH = "/wechat/callback"
PLATFORM = WeChatPlatform(WECHAT_TOKEN, WECHAT_AES, WECHAT_APPID)
TS = "1409304348"  # the official vector's timestamp
NONCE = "xxxxxx"
# platforms.md §2 D: Tencent's WXBizMsgCryptTest, random string "aaaabbbbccccdddd".
OFFICIAL_PLAIN = "我是中文abcd123"
OFFICIAL_CIPHER = "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="


class FixedRandomCrypto(PrpCrypto):
    def get_random_string(self) -> str:
        return "aaaabbbbccccdddd"


def test_official_encryption_vector() -> None:
    callback = WeChatCallback(
        WeChatSettings(app_id=WECHAT_APPID, app_secret="s", token=WECHAT_TOKEN, encoding_aes_key=WECHAT_AES)
    )
    assert callback.crypto is not None
    assert (
        FixedRandomCrypto(callback.crypto.key).encrypt(OFFICIAL_PLAIN, WECHAT_APPID).decode()
        == OFFICIAL_CIPHER
    )
    sig = _get_signature(WECHAT_TOKEN, TS, NONCE, OFFICIAL_CIPHER)
    assert callback.crypto.decrypt_message({"Encrypt": OFFICIAL_CIPHER}, sig, TS, NONCE) == OFFICIAL_PLAIN


async def test_url_check_echoes_echostr_unchanged(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        resp = await h.client.get(
            PATH, params={**PLATFORM.signed(TS, NONCE), "echostr": "5837397520665436492"}
        )
        assert (resp.status, await resp.text()) == (200, "5837397520665436492")
        bad = {**PLATFORM.signed(TS, NONCE), "echostr": "1", "nonce": "other"}
        assert (await h.client.get(PATH, params=bad)).status == 403


async def test_safe_mode_message_with_the_vector_key_is_stored(tmp_path: Path) -> None:
    xml = mp_xml(
        "oUser1", int(TS), "text", "<Content><![CDATA[我是中文abcd123]]></Content>", 6054768590064713728
    )
    enc = FixedRandomCrypto(PLATFORM.crypto.key).encrypt(xml, WECHAT_APPID).decode()
    query = {
        **PLATFORM.signed(TS, NONCE),
        "encrypt_type": "aes",
        "msg_signature": _get_signature(WECHAT_TOKEN, TS, NONCE, enc),
    }
    async with running(tmp_path) as h:
        for _ in range(3):  # the platform retries: one row
            resp = await h.client.post(
                PATH, params=query, data=f"<xml><Encrypt><![CDATA[{enc}]]></Encrypt></xml>"
            )
            assert (resp.status, await resp.text()) == (200, "success")
        [row] = await h.inbox()
        assert (row.channel, row.sender, row.text, row.platform_msg_id) == (
            "wechat",
            "oUser1",
            OFFICIAL_PLAIN,
            "6054768590064713728",
        )


async def test_plaintext_mode(tmp_path: Path) -> None:
    async with running(tmp_path, wechat_aes="") as h:
        query, body = PLATFORM.plain_post(
            mp_xml("oUser2", 1, "text", "<Content>你好</Content>", 77), timestamp=TS
        )
        resp = await h.client.post(PATH, params=query, data=body)
        assert (resp.status, await resp.text()) == (200, "success")
        forged = {**query, "signature": "0" * 40}
        assert (await h.client.post(PATH, params=forged, data=body)).status == 403
        [row] = await h.inbox()
        assert row.text == "你好"


async def test_plaintext_refused_when_safe_mode_is_configured(tmp_path: Path) -> None:
    # Plaintext signatures do not cover the body: with a key configured, only safe mode is accepted.
    async with running(tmp_path) as h:
        query, body = PLATFORM.plain_post(
            mp_xml("oUser2", 1, "text", "<Content>伪造</Content>", 78), timestamp=TS
        )
        assert (await h.client.post(PATH, params=query, data=body)).status == 403
        assert await h.inbox_count() == 0


XXE = '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><Encrypt>&x;</Encrypt></xml>'


@pytest.mark.parametrize(
    ("mutate", "status"),
    [
        (lambda q, b: ({**q, "msg_signature": "f" * 40}, b), 403),
        (lambda q, b: ({**q, "signature": "f" * 40}, b), 403),
        (lambda q, b: ({k: v for k, v in q.items() if k != "msg_signature"}, b), 400),
        (lambda q, b: (q, XXE), 400),
        (lambda q, b: (q, "<xml><Encrypt>"), 400),
        (lambda q, b: (q, "<xml>" + "A" * 20000 + "</xml>"), 413),
    ],
    ids=["msg_signature", "signature", "missing", "xxe", "broken", "oversized"],
)
async def test_rejections_store_nothing(
    tmp_path: Path, mutate: object, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    query, body = PLATFORM.aes_post(mp_xml("oUser3", 1, "text", "<Content>x</Content>", 79), timestamp=TS)
    q2, b2 = mutate(query, body)  # type: ignore[operator]
    async with running(tmp_path) as h:
        with caplog.at_level(logging.WARNING):
            resp = await h.client.post(PATH, params=q2, data=b2)
        assert resp.status == status
        assert await h.inbox_count() == 0
        assert any("wechat callback rejected" in r.getMessage() for r in caplog.records)


async def test_stale_timestamp_is_refused(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        section = config.wechat(h.settings)
        assert section is not None
        section.timestamp_window_s = 300
        now = int(h.clock.now().timestamp())
        query, body = PLATFORM.aes_post(
            mp_xml("oUser4", now, "text", "<Content>x</Content>", 80), timestamp=str(now - 1000)
        )
        assert (await h.client.post(PATH, params=query, data=body)).status == 403
        query, body = PLATFORM.aes_post(
            mp_xml("oUser4", now, "text", "<Content>x</Content>", 80), timestamp=str(now)
        )
        assert (await h.client.post(PATH, params=query, data=body)).status == 200
        assert await h.inbox_count() == 1


async def test_events_menu_click_and_subscribe(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        for fields in (
            "<Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[我的需求]]></EventKey>",
            "<Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[qrscene_123]]></EventKey>",
            "<Event><![CDATA[VIEW]]></Event><EventKey><![CDATA[https://x]]></EventKey>",
        ):
            query, body = PLATFORM.aes_post(mp_xml("oUser5", 1700000000, "event", fields), timestamp=TS)
            assert (await h.client.post(PATH, params=query, data=body)).status == 200
        click, subscribe = await h.inbox()
        assert (click.kind, click.text) == ("button", "我的需求")
        assert (subscribe.kind, subscribe.payload["extra"]["event"]) == ("event", "subscribe_scan")


async def test_an_openid_longer_than_the_inbox_column_is_400_and_stores_nothing(tmp_path: Path) -> None:
    # No real openid is this long; the inbox's rule (bot.pipeline.intake.checked) refuses it rather than cut it.
    async with running(tmp_path, wechat_aes="") as h:
        query, body = PLATFORM.plain_post(mp_xml("o" * 129, 1, "text", "<Content>你好</Content>", 79), timestamp=TS)
        assert (await h.client.post(PATH, params=query, data=body)).status == 400
        assert await h.inbox_count() == 0
