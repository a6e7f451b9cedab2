"""The WeCom callback endpoint, driven over loopback with the official vectors and hostile bodies."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot import config
from tests.channels.wx_harness import WECOM_AES, WECOM_B, WECOM_CORP, WECOM_TOKEN, running
from tests.fakes.wecom_api import WeComPlatform, message_xml

PATH = "/wecom/callback"

# platforms.md §2 A: Tencent's classic sample (sbzhu/weworkapi_php callback/Sample.php).
A_VERIFY = {
    "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
    "timestamp": "1409659589",
    "nonce": "263014780",
    "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
}
A_POST_QUERY = {
    "msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6",
    "timestamp": "1409659813",
    "nonce": "1372623149",
}
A_POST_BODY = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA[RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/"
    "wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs"
    "8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6ti"
    "WSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptD"
    "AVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>"
)
# platforms.md §2 B: the newer Python sample (sbzhu/weworkapi_python callback/Sample.py).
B_VERIFY = {
    "msg_signature": "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb",
    "timestamp": "1476416373",
    "nonce": "47744683",
    "echostr": "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA==",
}
B_POST_QUERY = {
    "msg_signature": "0c3914025cb4b4d68103f6bfc8db550f79dcf48e",
    "timestamp": "1476422779",
    "nonce": "1597212914",
}
B_POST_BODY = (
    "<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName>\n<Encrypt><![CDATA[Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9p"
    "FeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U"
    "+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGx"
    "QDCWjayJOpcwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+]]></Encrypt>\n<AgentID><![CDATA[1000002]]></AgentID>\n</xml>"
)

PLATFORM = WeComPlatform(WECOM_TOKEN, WECOM_AES, WECOM_CORP)


async def test_url_check_official_vector_a(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        resp = await h.client.get(PATH, params=A_VERIFY)
        assert resp.status == 200
        assert await resp.text() == "1616140317555161061"
        assert resp.content_type == "text/plain"


async def test_url_check_official_vector_b(tmp_path: Path) -> None:
    async with running(tmp_path, wecom_creds=WECOM_B) as h:
        resp = await h.client.get(PATH, params=B_VERIFY)
        assert (resp.status, await resp.text()) == (200, "1288432023552776189")


async def test_message_official_vector_a_is_stored_before_the_empty_200(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        resp = await h.client.post(PATH, params=A_POST_QUERY, data=A_POST_BODY)
        assert (resp.status, await resp.text()) == (200, "")
        [row] = await h.inbox()
        assert (row.channel, row.sender, row.kind, row.text) == ("wecom", "mycreate", "text", "hello")
        assert row.platform_msg_id == "4561255354251345929"
        assert row.conversation == "wecom:mycreate"


async def test_message_official_vector_b_chinese_text(tmp_path: Path) -> None:
    async with running(tmp_path, wecom_creds=WECOM_B) as h:
        resp = await h.client.post(PATH, params=B_POST_QUERY, data=B_POST_BODY)
        assert resp.status == 200
        [row] = await h.inbox()
        assert (row.sender, row.text, row.platform_msg_id) == ("ChenJiaShun", "你好", "1456453720")


async def test_same_callback_three_times_gives_one_row(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        for _ in range(3):
            resp = await h.client.post(PATH, params=A_POST_QUERY, data=A_POST_BODY)
            assert resp.status == 200
        assert await h.inbox_count() == 1


def _forged_signature() -> dict[str, str]:
    sig = A_POST_QUERY["msg_signature"]
    return {**A_POST_QUERY, "msg_signature": sig[:-1] + ("0" if sig[-1] != "0" else "1")}


@pytest.mark.parametrize(
    ("query", "body", "status"),
    [
        (_forged_signature(), A_POST_BODY, 403),
        ({**A_POST_QUERY, "nonce": "1"}, A_POST_BODY, 403),  # signature covers the nonce
        ({k: v for k, v in A_POST_QUERY.items() if k != "msg_signature"}, A_POST_BODY, 400),
        (A_POST_QUERY, A_POST_BODY.replace("RypEvHKD", "RypEvHKE"), 403),  # tampered ciphertext
        (A_POST_QUERY, "not xml at all", 400),
        (A_POST_QUERY, "<xml><Encrypt>", 400),
        (A_POST_QUERY, "<xml><ToUserName>x</ToUserName></xml>", 400),  # no Encrypt
        (A_POST_QUERY, "<other><Encrypt>abc</Encrypt></other>", 400),
    ],
)
async def test_rejected_callbacks_store_nothing(
    tmp_path: Path, query: dict[str, str], body: str, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(tmp_path) as h:
        with caplog.at_level(logging.WARNING):
            resp = await h.client.post(PATH, params=query, data=body)
        assert resp.status == status
        assert await h.inbox_count() == 0
        assert any("wecom callback rejected" in r.getMessage() for r in caplog.records)


async def test_valid_signature_over_garbage_ciphertext_is_400_not_500(tmp_path: Path) -> None:
    # Signed correctly, so it passes the signature and reaches wechatpy's decrypt, which raises
    # ValueError / binascii.Error / UnicodeDecodeError depending on the garbage.
    async with running(tmp_path) as h:
        for garbage in (
            "AAAA",
            "!!!notbase64!!!",
            "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODkwMTIzNDU2Nzg5MA==",
        ):
            from wechatpy.crypto import _get_signature

            ts = "1409659813"
            query = {
                "msg_signature": _get_signature(WECOM_TOKEN, ts, "1", garbage),
                "timestamp": ts,
                "nonce": "1",
            }
            resp = await h.client.post(
                PATH, params=query, data=f"<xml><Encrypt><![CDATA[{garbage}]]></Encrypt></xml>"
            )
            assert resp.status == 400
        assert await h.inbox_count() == 0


async def test_message_for_another_corp_is_refused(tmp_path: Path) -> None:
    other = WeComPlatform(WECOM_TOKEN, WECOM_AES, "wwsomebodyelse")
    async with running(tmp_path) as h:
        query, body = other.post(
            message_xml("wwsomebodyelse", "u1", 1409659813, "text", "<Content>x</Content>", 1),
            timestamp="1409659813",
        )
        resp = await h.client.post(PATH, params=query, data=body)
        assert resp.status in (400, 403)
        assert await h.inbox_count() == 0


XXE = (
    '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    "<xml><Encrypt>&xxe;</Encrypt></xml>"
)
LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
    "<xml><Encrypt>&d;</Encrypt></xml>"
)


@pytest.mark.parametrize("body", [XXE, LAUGHS], ids=["xxe", "billion-laughs"])
async def test_hostile_xml_envelope_is_400(tmp_path: Path, body: str) -> None:
    async with running(tmp_path) as h:
        resp = await h.client.post(PATH, params=A_POST_QUERY, data=body)
        assert resp.status == 400
        assert await h.inbox_count() == 0


async def test_hostile_xml_inside_a_correctly_signed_envelope_is_400(tmp_path: Path) -> None:
    # Even an authentic sender cannot make us expand entities in the decrypted plaintext.
    async with running(tmp_path) as h:
        inner = LAUGHS.replace(
            "<xml><Encrypt>&d;</Encrypt></xml>",
            message_xml(WECOM_CORP, "u1", 1, "text", "<Content>&d;</Content>", 9),
        )
        query, body = PLATFORM.post(inner, timestamp="1409659813")
        resp = await h.client.post(PATH, params=query, data=body)
        assert resp.status == 400
        assert await h.inbox_count() == 0


async def test_oversized_body_is_413(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        big = "<xml><Encrypt>" + "A" * (h.settings.server.max_body_bytes + 1) + "</Encrypt></xml>"
        resp = await h.client.post(PATH, params=A_POST_QUERY, data=big)
        assert resp.status == 413
        assert await h.inbox_count() == 0


async def test_timestamp_window(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        section = config.wecom(h.settings)
        assert section is not None
        section.timestamp_window_s = 300
        now = int(h.clock.now().timestamp())
        xml = message_xml(WECOM_CORP, "u1", now, "text", "<Content>hi</Content>", 42)
        stale_q, stale_body = PLATFORM.post(xml, timestamp=str(now - 301))
        resp = await h.client.post(PATH, params=stale_q, data=stale_body)
        assert resp.status == 403
        assert await h.inbox_count() == 0
        fresh_q, fresh_body = PLATFORM.post(xml, timestamp=str(now - 299))
        resp = await h.client.post(PATH, params=fresh_q, data=fresh_body)
        assert resp.status == 200
        assert await h.inbox_count() == 1
        # The official 2014 vectors are refused once the window is on.
        resp = await h.client.get(PATH, params=A_VERIFY)
        assert resp.status == 403


async def test_database_down_answers_503_so_the_platform_retries(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        engine = h.sessions.kw["bind"]
        db = Path(engine.url.database)
        away = db.with_name("away.db")
        await engine.dispose()
        db.rename(away)  # what SQLite opens now is an empty file without the inbox table
        try:
            resp = await h.client.post(PATH, params=A_POST_QUERY, data=A_POST_BODY)
            assert resp.status == 503
        finally:
            await engine.dispose()
            away.replace(db)
        resp = await h.client.post(PATH, params=A_POST_QUERY, data=A_POST_BODY)
        assert resp.status == 200
        assert await h.inbox_count() == 1


async def test_a_userid_longer_than_the_inbox_column_is_400_and_stores_nothing(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        xml = message_xml(WECOM_CORP, "u" * 129, 1, "text", "<Content>hi</Content>", 43)
        query, body = PLATFORM.post(xml, timestamp="1")
        resp = await h.client.post(PATH, params=query, data=body)
        assert resp.status == 400
        assert await h.inbox_count() == 0
