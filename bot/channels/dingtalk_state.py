"""What the DingTalk adapter keeps on the app (``bot.keys.dingtalk_key``): a leaf, so the key can live in bot/keys.py."""

from __future__ import annotations

from dataclasses import dataclass

from bot.channels.dingtalk_cards import Links
from bot.channels.dingtalk_sender import DingTalkSender
from bot.config import DingTalkSettings


@dataclass
class DingTalkState:
    settings: DingTalkSettings
    links: Links
    sender: DingTalkSender | None = None  # set once the HTTP session exists (``dingtalk.setup``'s sender_ctx)
