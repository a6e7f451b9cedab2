"""Every channel bot/ can run, in one explicit list; a config section left out disables that channel.

Each entry is the :class:`~bot.channels.base.ChannelAdapter` its module declares. ``bot/app.py`` sets
the configured ones up and hands their callback paths to ``/metrics``; the inbox worker asks it which
channel's media must be downloaded. Adding a channel means adding its entry here (docs/ARCHITECTURE.md,
"How to add a channel").
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot import config
from bot.channels import dingtalk, webchat, wechat, wecom
from bot.channels.base import ChannelAdapter
from handlers.settings import Settings

CHANNELS: tuple[ChannelAdapter[Any], ...] = (wecom.ADAPTER, wechat.ADAPTER, dingtalk.ADAPTER, webchat.ADAPTER)
BY_NAME: dict[str, ChannelAdapter[Any]] = {adapter.name: adapter for adapter in CHANNELS}
assert len(BY_NAME) == len(CHANNELS), "two channel adapters share a name"
assert set(BY_NAME) == set(config.STAFF_CHANNELS), "bot/config.py's STAFF_CHANNELS must name every channel"


def roster_channels() -> dict[str, str]:
    """A roster's 渠道 spelling (without spaces, lower-case) → channel name, for ``handlers/roster.py``."""
    return {spelling.replace(" ", "").lower(): adapter.name
            for adapter in CHANNELS for spelling in (adapter.name, *adapter.roster_names)}


def verified_channels() -> frozenset[str]:
    """The channels whose platform vouches for the sender (``Services.verified_channels``)."""
    return frozenset(adapter.name for adapter in CHANNELS if adapter.verified_senders)


def setup_channels(app: web.Application, settings: Settings) -> list[ChannelAdapter[Any]]:
    """Add each configured channel's callback routes and its sender (registered in ``senders_key``);
    returns the channels set up."""
    return [adapter for adapter in CHANNELS if adapter.enable(app, settings)]


def callback_channels() -> dict[str, str]:
    """Callback path → channel name, for labelling callbacks on ``/metrics``."""
    return {path: adapter.name for adapter in CHANNELS for path in adapter.callback_paths}


def answers_in_callback(settings: Settings) -> bool:
    """Whether a configured channel may carry a reply in its callback's answer (bot/pipeline/passive.py)."""
    return any(a.passive_fits is not None and a.section(settings) is not None for a in CHANNELS)
