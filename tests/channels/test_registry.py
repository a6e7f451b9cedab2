"""The channel registry and the typed seam: what the domain gets from an adapter, and nothing more."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from bot import config
from bot.app import create_app
from bot.channels import registry
from bot.config import parse_settings
from bot.keys import intake_key, services_key, sessions_key
from bot.ops import metrics
from handlers.clock import ManualClock
from handlers.messages import Channel, IncomingKind, IncomingMessage
from handlers.reports.links import monthly_link, signature
from storage.models import Identity
from tests.chat import Chat, Playground

ALL_CHANNELS = {
    "wecom": {"corp_id": "ww1", "agent_id": 1000002, "secret": "s", "token": "t", "encoding_aes_key": "k" * 43},
    "wechat": {"app_id": "wx1", "app_secret": "s", "token": "t"},
    "dingtalk": {"app_key": "ding1", "app_secret": "s", "robot_code": "ding1"},
}


def test_every_channel_is_declared_once_and_its_callbacks_are_routed_and_counted(tmp_path: Path) -> None:
    assert [a.name.value for a in registry.CHANNELS] == list(registry.BY_NAME)  # unique names
    assert set(registry.BY_NAME) == set(config.STAFF_CHANNELS) == {c.value for c in Channel}
    settings = parse_settings({"database": {"url": f"sqlite+aiosqlite:///{tmp_path}/x.db"},
                               "server": {"playground": True, "playground_with_real_channels": True},
                               **ALL_CHANNELS})
    assert config.real_channels(settings) == ["wecom", "wechat", "dingtalk"]
    routes = {r.canonical for r in create_app(settings, clock=ManualClock(), run_scheduler=False).router.resources()}
    declared = registry.callback_channels()
    assert set(declared) <= routes
    assert declared == {  # what /metrics labels by channel (bot/ops/metrics.py reads the registry)
        "/wecom/callback": "wecom", "/wechat/callback": "wechat", "/dingtalk/callback": "dingtalk",
        "/dingtalk/tap": "dingtalk", "/webchat/send": "web", "/webchat/upload": "web"}
    assert declared == metrics.CALLBACK_CHANNELS
    assert registry.answers_in_callback(settings)  # the service account may answer in its callback
    assert not registry.answers_in_callback(parse_settings({}))
    # Only channels that receive files from a platform download media before handling.
    assert {a.name.value for a in registry.CHANNELS if a.fetch_media} == {"wecom", "wechat", "dingtalk"}


async def test_an_unknown_directory_user_may_be_ignored_whatever_the_channel(playground: Playground) -> None:
    """The pipeline reads the adapter's ``directory_user`` flag, not a list of platform names."""
    playground.app[services_key].settings.bot.unknown_user_role = "ignore"
    intake = playground.app[intake_key]
    for sender, directory in (("dir-stranger", True), ("public-stranger", False)):
        await intake.accept(IncomingMessage(channel=Channel.WEB, sender=sender, platform_msg_id=f"m-{sender}",
                                            kind=IncomingKind.TEXT, text="你好", directory_user=directory))
    await playground.settle()
    async with playground.app[sessions_key]() as s:
        known = set((await s.scalars(select(Identity.channel_user_id).where(
            Identity.channel_user_id.in_(["dir-stranger", "public-stranger"])))).all())
    assert known == {"public-stranger"}


async def test_identity_extra_is_stored_on_the_identity_unread(playground: Playground) -> None:
    await playground.app[intake_key].accept(IncomingMessage(
        channel=Channel.WEB, sender="demo-firm-1", platform_msg_id="m-reach", kind=IncomingKind.TEXT, text="帮助",
        identity_extra={"reach_me": {"via": "somewhere", "until": 5}}))
    await playground.settle()
    async with playground.app[sessions_key]() as s:
        identity = await s.scalar(select(Identity).where(Identity.channel == "web",
                                                         Identity.channel_user_id == "demo-firm-1"))
    assert identity is not None and identity.extra["reach_me"] == {"via": "somewhere", "until": 5}


class OtherLinks:
    def console_login(self, token: str) -> str:
        return f"app://login?t={token}"

    def monthly_report(self, month: str, exp: int, sig: str) -> str:
        return f"app://report/{month}/{exp}/{sig}"


def test_links_to_the_service_come_from_services(tmp_path: Path) -> None:
    settings = parse_settings({"console": {"secret_key": "k" * 32}, "timers": {"report_link_hours": 1}})
    now = datetime(2026, 11, 2, tzinfo=UTC)
    exp = int(now.timestamp()) + 3600
    assert monthly_link(settings, OtherLinks(), "2026-10", now) == \
        f"app://report/2026-10/{exp}/{signature('k' * 32, '2026-10', exp)}"
    assert monthly_link(settings, None, "2026-10", now) is None  # no service to link to: no link


async def test_the_login_link_is_built_by_the_injected_links(playground: Playground) -> None:
    playground.app[services_key].links = OtherLinks()
    assert "app://login?t=" in Chat.text_of(await playground.person("demo-staff-1").say("登录"))
