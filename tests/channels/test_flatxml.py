"""The callbacks' XML parser: what the platform sends parses as wechatpy would; what an attacker sends
is refused before any expansion."""

from __future__ import annotations

import pytest
import xmltodict

from bot.channels.flatxml import UnsafeXml, parse_flat
from bot.channels.wechat import scene_subscribe
from bot.channels.wx_callback import Rejected, message_fields, xml_fields

TEXT = (
    "<xml><ToUserName><![CDATA[ww1]]></ToUserName><FromUserName><![CDATA[ zhang ]]></FromUserName>"
    "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>"
    "<Content><![CDATA[第一行\n第二行 <b>&amp;]]></Content><MsgId>123</MsgId><Empty></Empty></xml>"
)


def test_a_flat_message_gives_the_fields_xmltodict_gives() -> None:
    expected = {k: (v or "") for k, v in xmltodict.parse(TEXT)["xml"].items()}
    assert message_fields(TEXT) == expected
    assert message_fields(TEXT.encode("utf-8"))["Content"] == "第一行\n第二行 <b>&amp;"


def test_nested_repeated_or_attributed_fields_take_the_full_parser() -> None:
    nested = "<xml><MsgType>event</MsgType><SelectedItems><SelectedItem><QuestionKey>q</QuestionKey>" \
             "</SelectedItem></SelectedItems></xml>"
    assert not parse_flat(nested).flat
    assert message_fields(nested)["SelectedItems"] == {"SelectedItem": {"QuestionKey": "q"}}
    assert message_fields("<xml><A>1</A><A>2</A></xml>")["A"] == ["1", "2"]
    assert message_fields('<xml><A id="x">1</A></xml>')["A"] == {"@id": "x", "#text": "1"}


@pytest.mark.parametrize("doc", [
    '<!DOCTYPE xml [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><xml><A>&b;</A></xml>',  # billion laughs
    '<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><A>&x;</A></xml>',  # XXE
    '<!DOCTYPE xml SYSTEM "http://127.0.0.1:1/evil.dtd"><xml><A>1</A></xml>',  # external DTD
])
def test_dtds_and_entities_are_refused_before_expansion(doc: str) -> None:
    with pytest.raises(UnsafeXml):
        parse_flat(doc)
    with pytest.raises(Rejected) as err:
        xml_fields(doc)
    assert err.value.status == 400


@pytest.mark.parametrize("doc", ["<xml><A>&undefined;</A></xml>", "<xml><A>", "", "<root><A>1</A></root>",
                                 b"\xff\xfe\x00<", "<xml><A>\x01</A></xml>"])
def test_malformed_or_foreign_documents_are_400(doc: str | bytes) -> None:
    with pytest.raises(Rejected) as err:
        message_fields(doc)
    assert err.value.status == 400


def test_a_follow_through_a_scene_qr_code_is_named_as_wechatpy_names_it() -> None:
    base = {"MsgType": "event", "Event": "subscribe"}
    assert scene_subscribe({**base, "EventKey": "qrscene_123"})["Event"] == "subscribe_scan"
    assert scene_subscribe({**base, "EventKey": "qrscene_123"})["EventKey"] == "123"
    assert scene_subscribe({**base, "EventKey": "scanbarcode|x"})["Event"] == "subscribe_scan_product"
    assert scene_subscribe({**base, "EventKey": ""}) == {**base, "EventKey": ""}
    assert scene_subscribe({"MsgType": "text", "EventKey": "qrscene_1"})["EventKey"] == "qrscene_1"
