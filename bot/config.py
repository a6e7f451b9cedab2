"""The service's configuration: the domain's settings (``handlers/settings.py``) plus the channels'.

Each platform's section (credentials, API URL, callback checks) is a dataclass here, registered in
:data:`CHANNEL_SECTIONS`; :func:`load_settings` / :func:`parse_settings` read one file into one
:class:`~handlers.settings.Settings` whose ``sections`` hold the configured channels, with the same
one-line :class:`ConfigError` for a wrong key anywhere. ``config.example.toml`` documents both halves.
Read a channel's section with :func:`wecom`, :func:`wechat`, :func:`dingtalk` (None: not configured).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from handlers.settings import ENV_PREFIX, ConfigError, Settings
from handlers.settings import load_settings as load_domain_settings
from handlers.settings import parse_settings as parse_domain_settings

__all__ = ["ConfigError", "Settings", "load_settings", "parse_settings"]


@dataclass
class WeComSettings:
    corp_id: str = ""
    agent_id: int = 0
    secret: str = ""
    token: str = ""
    encoding_aes_key: str = ""
    api_base: str = "https://qyapi.weixin.qq.com"
    timestamp_window_s: int = 300


@dataclass
class WeChatSettings:
    app_id: str = ""
    app_secret: str = ""
    token: str = ""
    encoding_aes_key: str = ""  # empty = plaintext mode
    api_base: str = "https://api.weixin.qq.com"
    timestamp_window_s: int = 300
    template_id_notice: str = ""  # template message used outside the 48-hour window
    template_field: str = "thing1"  # the notice template's field that gets a ≤20-character summary
    passive_reply_ms: int = 1500  # wait this long for a reply to answer in the callback itself; 0 = never


@dataclass
class DingTalkSettings:
    app_key: str = ""
    app_secret: str = ""
    robot_code: str = ""
    api_base: str = "https://api.dingtalk.com"
    timestamp_window_s: int = 3600


# The platform sections a file may have; a section left out disables that channel.
CHANNEL_SECTIONS: dict[str, type] = {"wecom": WeComSettings, "wechat": WeChatSettings, "dingtalk": DingTalkSettings}
# Where a [[staff]] entry may be reached: the platforms and the web chat (bot/channels/registry.py
# checks at import that these are exactly its channels).
STAFF_CHANNELS = ("wecom", "wechat", "dingtalk", "web")
_REQUIRED_WHEN_ENABLED: dict[str, tuple[str, ...]] = {
    "wecom": ("corp_id", "agent_id", "secret", "token", "encoding_aes_key"),
    "wechat": ("app_id", "app_secret", "token"),
    "dingtalk": ("app_key", "app_secret", "robot_code"),
}

S = TypeVar("S")


def _section(s: Settings, name: str, cls: type[S]) -> S | None:
    value: Any = s.sections.get(name)
    return value if isinstance(value, cls) else None


def wecom(s: Settings) -> WeComSettings | None:
    return _section(s, "wecom", WeComSettings)


def wechat(s: Settings) -> WeChatSettings | None:
    return _section(s, "wechat", WeChatSettings)


def dingtalk(s: Settings) -> DingTalkSettings | None:
    return _section(s, "dingtalk", DingTalkSettings)


def real_channels(s: Settings) -> list[str]:
    """The configured platform channels (each one reaches real people)."""
    return [name for name in CHANNEL_SECTIONS if name in s.sections]


def check(s: Settings) -> None:
    """What the domain cannot check: staff channels, the channel sections, the playground beside them."""
    for i, st in enumerate(s.staff):
        if st.channel not in STAFF_CHANNELS:
            raise ConfigError(f"staff[{i}].channel: expected one of {', '.join(STAFF_CHANNELS)}, got {st.channel!r}")
    chat = wechat(s)
    if chat is not None and not 0 <= chat.passive_reply_ms <= 4000:
        raise ConfigError(  # the platform gives up on a callback after 5 s and retries it
            f"wechat.passive_reply_ms: expected 0-4000 (the platform waits 5 s), got {chat.passive_reply_ms}"
        )
    _check_playground(s)
    for section, required in _REQUIRED_WHEN_ENABLED.items():
        value = s.sections.get(section)
        if value is None:
            continue
        for key in required:
            if not getattr(value, key):
                env_name = f"{ENV_PREFIX}{section}_{key}".upper()
                raise ConfigError(f"{section}.{key}: required when [{section}] is present (or set {env_name})")


def _check_playground(s: Settings) -> None:
    """The playground lets anyone act as any web-chat user, so it runs alone unless the operator opts in."""
    if not s.server.playground or s.server.playground_with_real_channels:
        return
    if channels := real_channels(s):
        raise ConfigError(
            f"server.playground: refused next to real channels ([{'], ['.join(channels)}]): anyone could act as "
            "anyone; turn it off, or set server.playground_with_real_channels = true")
    if s.staff:  # real staff: on "web" anyone could act as them, elsewhere they make this a real database
        raise ConfigError(
            f"server.playground: refused with [[staff]] entries ({s.staff[0].name} on {s.staff[0].channel}, …): "
            "anyone could act as staff; turn it off, or set server.playground_with_real_channels = true")


def parse_settings(raw: dict[str, Any], *, source: str = "") -> Settings:
    """The service's settings from a parsed TOML document plus the environment."""
    return parse_domain_settings(raw, source=source, sections=CHANNEL_SECTIONS, check=check)


def load_settings(path: str | Path | None) -> Settings:
    """Load the service's TOML file (or only defaults and environment when ``path`` is None)."""
    return load_domain_settings(path, sections=CHANNEL_SECTIONS, check=check)
