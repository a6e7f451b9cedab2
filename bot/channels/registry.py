"""Which channel adapters run: a config section left out disables that channel."""

from __future__ import annotations

from aiohttp import web

from handlers.settings import Settings


def setup_channels(app: web.Application, settings: Settings) -> None:
    """Add each configured channel's callback routes and its sender (registered in ``senders_key``)."""
    # Imported lazily: a deployment without a channel never imports its platform code.
    if settings.wecom is not None:
        from bot.channels.wecom import setup as setup_wecom

        setup_wecom(app, settings.wecom)
    if settings.wechat is not None:
        from bot.channels.wechat import setup as setup_wechat

        setup_wechat(app, settings.wechat)
    if settings.dingtalk is not None:
        from bot.channels.dingtalk import setup as setup_dingtalk

        setup_dingtalk(app, settings.dingtalk)
