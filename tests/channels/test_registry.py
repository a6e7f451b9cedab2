"""The channel registry and the typed seam: what the domain gets from an adapter, and nothing more."""

from __future__ import annotations

import ast
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
from handlers.messages import IncomingKind, IncomingMessage
from handlers.reports.links import monthly_link, signature
from storage.models import Identity
from tests.chat import Chat, Playground

ALL_CHANNELS = {
    "wecom": {"corp_id": "ww1", "agent_id": 1000002, "secret": "s", "token": "t", "encoding_aes_key": "k" * 43},
    "wechat": {"app_id": "wx1", "app_secret": "s", "token": "t"},
    "dingtalk": {"app_key": "ding1", "app_secret": "s", "robot_code": "ding1"},
}


PLATFORM_NAMES = ("wecom", "wechat", "dingtalk")
HANDLERS = Path(__file__).parents[2] / "handlers"


def platform_names_in(source: str) -> list[tuple[int, str]]:
    """(line, constant) of every string constant, docstrings aside, that spells a platform's channel name."""
    tree = ast.parse(source)
    docs = {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
            and any(name in node.value for name in PLATFORM_NAMES)]


def test_no_module_under_handlers_spells_a_channel_name() -> None:
    """The set of channel names belongs to bot/channels/: adding a channel touches no domain file."""
    assert platform_names_in('x = {"企业微信": "wecom"}\n') == [(1, "wecom")]  # the check can fail
    found = {str(path.relative_to(HANDLERS)): hits for path in sorted(HANDLERS.rglob("*.py"))
             if (hits := platform_names_in(path.read_text(encoding="utf-8")))}
    assert found == {}


def test_roster_spellings_and_unverified_senders_come_from_the_declarations() -> None:
    spellings = registry.roster_channels()
    assert {spellings[s] for s in ("企业微信", "公众号", "钉钉", "网页")} == {"wecom", "wechat", "dingtalk", "web"}
    assert set(spellings.values()) == set(registry.BY_NAME)
    assert "web" not in registry.verified_channels()
    assert registry.verified_channels() == {a.name for a in registry.CHANNELS} - {"web"}


def test_every_channel_is_declared_once_and_its_callbacks_are_routed_and_counted(tmp_path: Path) -> None:
    assert [a.name for a in registry.CHANNELS] == list(registry.BY_NAME)  # unique names
    assert set(registry.BY_NAME) == set(config.STAFF_CHANNELS) == {"wecom", "wechat", "dingtalk", "web"}
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
    assert {a.name for a in registry.CHANNELS if a.fetch_media} == {"wecom", "wechat", "dingtalk"}


async def test_an_unknown_directory_user_may_be_ignored_whatever_the_channel(playground: Playground) -> None:
    """The pipeline reads the adapter's ``directory_user`` flag, not a list of platform names."""
    playground.app[services_key].settings.bot.unknown_user_role = "ignore"
    intake = playground.app[intake_key]
    for sender, directory in (("dir-stranger", True), ("public-stranger", False)):
        await intake.accept(IncomingMessage(channel="web", sender=sender, platform_msg_id=f"m-{sender}",
                                            kind=IncomingKind.TEXT, text="你好", directory_user=directory))
    await playground.settle()
    async with playground.app[sessions_key]() as s:
        known = set((await s.scalars(select(Identity.channel_user_id).where(
            Identity.channel_user_id.in_(["dir-stranger", "public-stranger"])))).all())
    assert known == {"public-stranger"}


async def test_identity_extra_is_stored_on_the_identity_unread(playground: Playground) -> None:
    await playground.app[intake_key].accept(IncomingMessage(
        channel="web", sender="demo-firm-1", platform_msg_id="m-reach", kind=IncomingKind.TEXT, text="帮助",
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
