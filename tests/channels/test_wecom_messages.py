"""Every WeCom message kind the adapter understands, through the real endpoint, as inbox rows."""

from __future__ import annotations

from pathlib import Path

from bot.channels.wecom_sender import render_card
from handlers.messages import Button, card
from tests.channels.wx_harness import WECOM_AES, WECOM_CORP, WECOM_TOKEN, Harness, running
from tests.fakes.wecom_api import WeComPlatform, message_xml

PATH = "/wecom/callback"
PLATFORM = WeComPlatform(WECOM_TOKEN, WECOM_AES, WECOM_CORP)
TS = 1409659813


async def deliver(
    h: Harness, msg_type: str, fields: str, msg_id: int | None = None, user: str = "zhangsan"
) -> int:
    query, body = PLATFORM.post(
        message_xml(WECOM_CORP, user, TS, msg_type, fields, msg_id), timestamp=str(TS)
    )
    resp = await h.client.post(PATH, params=query, data=body)
    return resp.status


async def test_image_voice_location_file(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        assert (
            await deliver(
                h,
                "image",
                "<PicUrl><![CDATA[http://p/1.jpg]]></PicUrl><MediaId><![CDATA[img1]]></MediaId>",
                1,
            )
            == 200
        )
        voice = "<MediaId><![CDATA[v1]]></MediaId><Format><![CDATA[amr]]></Format><Recognition><![CDATA[天车不动了]]></Recognition>"
        assert await deliver(h, "voice", voice, 2) == 200
        loc = "<Location_X>23.134</Location_X><Location_Y>113.358</Location_Y><Scale>15</Scale><Label><![CDATA[广州]]></Label>"
        assert await deliver(h, "location", loc, 3) == 200
        assert (
            await deliver(
                h, "file", "<MediaId><![CDATA[f1]]></MediaId><FileName><![CDATA[图纸.pdf]]></FileName>", 4
            )
            == 200
        )
        image, voice_row, location, file_row = await h.inbox()
        assert (image.kind, image.payload["media_ref"]) == ("image", "img1")
        assert (voice_row.kind, voice_row.text, voice_row.payload["media_ref"]) == (
            "voice",
            "天车不动了",
            "v1",
        )
        assert (location.kind, location.text, location.payload["location"]) == (
            "location",
            "广州",
            [23.134, 113.358],
        )
        assert (file_row.kind, file_row.payload["media_ref"]) == ("file", "f1")
        assert file_row.payload["extra"]["file_name"] == "图纸.pdf"


async def test_card_button_tap_becomes_the_command(tmp_path: Path) -> None:
    [rendered] = render_card(
        card("新需求 #1024", "焊接裂纹", [Button("接单", "接单 1024"), Button("婉拒", "婉拒 1024")])
    )
    assert isinstance(rendered, dict)
    key = rendered["template_card"]["button_list"][0]["key"]
    event = (
        f"<Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[{key}]]></EventKey>"
        "<TaskId><![CDATA[cl-task1]]></TaskId><CardType><![CDATA[button_interaction]]></CardType>"
        "<ResponseCode><![CDATA[rc1]]></ResponseCode><SelectedItems><SelectedItem><QuestionKey><![CDATA[q]]></QuestionKey>"
        "<OptionIds><OptionId><![CDATA[o1]]></OptionId></OptionIds></SelectedItem></SelectedItems>"
    )
    async with running(tmp_path) as h:
        for _ in range(3):  # the platform's retries of one tap
            assert await deliver(h, "event", event) == 200
        [row] = await h.inbox()
        assert (row.kind, row.text) == ("button", "接单 1024")
        assert row.payload["extra"]["task_id"] == "cl-task1"
        assert row.platform_msg_id.startswith(f"ev:zhangsan:{TS}:")


async def test_two_different_taps_in_the_same_second_are_two_rows(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        for command in ("接单 1", "接单 2"):
            [part] = render_card(card("t", "b", [Button("接单", command)]))
            assert isinstance(part, dict)
            key = part["template_card"]["button_list"][0]["key"]
            ev = f"<Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[{key}]]></EventKey><TaskId>t</TaskId>"
            assert await deliver(h, "event", ev) == 200
        assert [r.text for r in await h.inbox()] == ["接单 1", "接单 2"]


async def test_menu_click_with_a_plain_key_is_that_command(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        assert (
            await deliver(
                h, "event", "<Event><![CDATA[click]]></Event><EventKey><![CDATA[我的任务]]></EventKey>"
            )
            == 200
        )
        [row] = await h.inbox()
        assert (row.kind, row.text) == ("button", "我的任务")


async def test_enter_agent_is_acknowledged_but_not_stored_subscribe_is(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        assert await deliver(h, "event", "<Event><![CDATA[enter_agent]]></Event><EventKey></EventKey>") == 200
        assert await h.inbox_count() == 0
        assert await deliver(h, "event", "<Event><![CDATA[subscribe]]></Event>") == 200
        [row] = await h.inbox()
        assert (row.kind, row.payload["extra"]["event"]) == ("event", "subscribe")


async def test_undecodable_card_key_is_400(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        ev = "<Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[c1.%%%]]></EventKey><TaskId>t</TaskId>"
        assert await deliver(h, "event", ev) == 400
        assert await h.inbox_count() == 0
