"""An inbox row acknowledged by the previous version and handled after an upgrade keeps what its adapter
stored: the card to update (WeCom ``response_code``) and DingTalk's reply webhook, which that version kept
in ``extra`` for the domain to read, and the directory flag it derived from the channel."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.pipeline.intake import inbox_values
from bot.pipeline.worker import to_incoming
from handlers.clock import ManualClock
from handlers.messages import IncomingKind, IncomingMessage
from storage.models import InboxMessage

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _row(channel: str, kind: str, payload: dict[str, object]) -> InboxMessage:
    return InboxMessage(channel=channel, platform_msg_id="m1", conversation=f"{channel}:u1", sender="u1",
                        kind=kind, text="接单", payload=payload, received_at=AT)


def test_a_wecom_tap_stored_before_the_typed_fields_keeps_its_card_handle() -> None:
    msg = to_incoming(_row("wecom", "button", {"extra": {"response_code": "RC-1", "task_id": "t"}}))
    assert msg.reply_handle == "RC-1"
    assert msg.directory_user is True
    assert msg.identity_extra == {}


def test_a_dingtalk_message_stored_before_the_typed_fields_keeps_its_webhook() -> None:
    extra = {"session_webhook": "https://oapi.dingtalk.com/robot/sendBySession?session=x",
             "session_webhook_expires_ms": 1_900_000_000_000, "conversation_type": "1"}
    msg = to_incoming(_row("dingtalk", "text", {"extra": extra}))
    assert msg.identity_extra == {"session_webhook": extra["session_webhook"],
                                  "session_webhook_expires_ms": 1_900_000_000_000}
    assert msg.directory_user is True and msg.reply_handle is None


def test_a_web_chat_row_stored_now_is_read_by_its_typed_fields() -> None:
    msg = IncomingMessage(channel="web", sender="u1", platform_msg_id="m2", kind=IncomingKind.TEXT,
                          text="你好", received_at=AT, extra={"response_code": "not-a-handle"})
    values = inbox_values(msg, ManualClock())
    assert values["payload"]["directory_user"] is False
    back = to_incoming(_row("web", "text", values["payload"]))
    assert back.reply_handle is None and back.directory_user is False and back.identity_extra == {}
