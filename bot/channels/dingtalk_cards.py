"""Rendering one :class:`OutgoingMessage` for DingTalk, in both wire forms.

- the ``sessionWebhook`` form: ``{"msgtype": "text" | "markdown" | "actionCard", ...}``;
- the robot OpenAPI form: ``(msgKey, msgParam)`` for ``oToMessages/batchSend`` (``msgParam`` is sent
  as a JSON *string* by the sender, not here).

ActionCard buttons can only open URLs, so every button is a signed, single-use, expiring link back to
``GET {public_url}/dingtalk/tap`` (see ``bot/channels/dingtalk.py``); the card also says which words
can be typed instead, so an expired link or a desktop without a browser never blocks anyone.
Images, voice and files are served from our own signed ``/dingtalk/media`` URL, because the robot API
only takes a ``photoURL`` (images) or a ``mediaId`` from the legacy ``oapi`` upload (files).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bot.channels.base import PermanentSendError
from bot.channels.dingtalk_sign import LinkSigner
from handlers.clock import Clock
from handlers.messages import OutgoingKind, OutgoingMessage

TAP_TTL = timedelta(days=3)  # long enough for a weekend; the handler still refuses stale offers
MEDIA_TTL = timedelta(days=7)  # DingTalk clients load the picture when the chat is opened
MAX_CARD_BUTTONS = 6  # sampleActionCard6 is the largest template


@dataclass
class Links:
    """Mints the signed URLs that cards and media messages point at."""

    public_url: str
    taps: LinkSigner
    media: LinkSigner
    clock: Clock

    def _expiry(self, ttl: timedelta) -> int:
        return int((self.clock.now() + ttl).timestamp())

    def tap_url(self, staff_id: str, command: str) -> str:
        nonce = secrets.token_urlsafe(12)
        token = self.taps.make({"u": staff_id, "c": command, "n": nonce}, expires_at=self._expiry(TAP_TTL))
        return f"{self.public_url.rstrip('/')}/dingtalk/tap?t={quote(token)}"

    def media_url(self, path: str) -> str:
        token = self.media.make({"p": path}, expires_at=self._expiry(MEDIA_TTL))
        return f"{self.public_url.rstrip('/')}/dingtalk/media?t={quote(token)}"


def _md(text: str) -> str:
    # DingTalk markdown joins single newlines; a trailing double space keeps the line break.
    return text.replace("\r\n", "\n").replace("\n", "  \n")


def _body(message: OutgoingMessage) -> str:
    head = f"#### {message.title}\n\n" if message.title else ""
    return head + _md(message.text)


def _typed_hint(message: OutgoingMessage) -> str:
    return "也可直接回复：" + " / ".join(f"「{b.command}」" for b in message.buttons)


@dataclass(frozen=True)
class Rendered:
    webhook: dict[str, Any]  # the sessionWebhook body
    msg_key: str  # the OpenAPI template
    msg_param: dict[str, Any]


def _markdown(title: str, text: str) -> Rendered:
    title = title or text.split("\n", 1)[0][:20] or "消息"
    return Rendered(
        webhook={"msgtype": "markdown", "markdown": {"title": title, "text": text}},
        msg_key="sampleMarkdown",
        msg_param={"title": title, "text": text},
    )


def _card(message: OutgoingMessage, address: str, links: Links) -> Rendered:
    buttons = message.buttons[:MAX_CARD_BUTTONS]
    text = f"{_body(message)}\n\n{_typed_hint(message)}"
    title = message.title or "请选择"
    urls = [(b.label, links.tap_url(address, b.command)) for b in buttons]
    webhook = {
        "msgtype": "actionCard",
        "actionCard": {
            "title": title,
            "text": text,
            "btnOrientation": "0" if len(urls) <= 2 else "1",
            "btns": [{"title": label, "actionURL": url} for label, url in urls],
        },
    }
    param: dict[str, Any] = {"title": title, "text": text}
    if len(urls) == 1:
        param.update(singleTitle=urls[0][0], singleURL=urls[0][1])
        return Rendered(webhook, "sampleActionCard", param)
    for i, (label, url) in enumerate(urls, start=1):
        param[f"actionTitle{i}"] = label
        param[f"actionURL{i}"] = url
    return Rendered(webhook, f"sampleActionCard{len(urls)}", param)


def render(message: OutgoingMessage, address: str, links: Links) -> Rendered:
    """Both wire forms of ``message`` for the DingTalk user ``address`` (a staffId)."""
    kind = message.kind
    if kind is OutgoingKind.TEXT:
        content = message.plain_text
        return Rendered({"msgtype": "text", "text": {"content": content}}, "sampleText", {"content": content})
    if kind is OutgoingKind.MARKDOWN:
        return _markdown(message.title, _body(message))
    if kind is OutgoingKind.CARD:
        if not message.buttons:
            return _markdown(message.title, _body(message))
        return _card(message, address, links)
    if not message.media_path:
        raise PermanentSendError("no_media", f"{kind.value} message without media_path")
    url = links.media_url(message.media_path)
    if kind is OutgoingKind.IMAGE:
        md = f"![图片]({url})" + (f"\n\n{_body(message)}" if message.text or message.title else "")
        rendered = _markdown(message.title or "图片", md)
        if message.text or message.title:
            return rendered  # a caption does not fit sampleImageMsg: keep it, as markdown
        return Rendered(rendered.webhook, "sampleImageMsg", {"photoURL": url})
    name = message.file_name or Path(message.media_path).name
    label = "语音" if kind is OutgoingKind.VOICE else "文件"
    md = (
        f"{_body(message)}\n\n" if message.text or message.title else ""
    ) + f"[{label}：{name}（点击下载）]({url})"
    return _markdown(message.title or label, md)
