"""Typed settings loaded from a TOML file, with secrets from ``CRAFTLINK_<SECTION>_<KEY>`` variables.

Every setting is a dataclass field with a default; ``config.example.toml`` documents each one. A wrong
or missing value raises :class:`ConfigError` whose message is one line naming the key and what was
expected; the CLI prints it and exits without a traceback.

These are the domain's settings. The service adds its own sections (the channels' credentials and API
URLs, ``bot/config.py``) through :func:`parse_settings`'s ``sections`` and ``check``: they are built
and reported by the same rules and kept in :attr:`Settings.sections`, which nothing in handlers/ reads.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from storage.models import StaffRole

ENV_PREFIX = "CRAFTLINK_"
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class ConfigError(Exception):
    """A setting is missing or wrong; ``str(err)`` is the one line to show."""


@dataclass
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = "http://127.0.0.1:8080"  # how links in chat (login, DingTalk card taps) reach us
    max_body_bytes: int = 65536
    read_timeout_s: float = 15.0  # a request body must have arrived this long after its headers, else 408
    instance_name: str = ""  # defaults to host:port; shown in job claims and logs
    playground: bool = False  # the web chat at /playground: anyone can act as anyone, so demo/test only
    # The playground next to real channels, [[staff]] entries or a database with real-channel people
    # is refused unless the operator says so here; even then no login link goes to a web identity.
    playground_with_real_channels: bool = False
    role: str = "all"  # all | intake (store callbacks only) | worker (handle, send, schedule; no intake wake-ups)


@dataclass
class DatabaseSettings:
    url: str = "sqlite+aiosqlite:///var/craftlink.db"
    pool_size: int = 10
    group_commit_ms: float = 2.0  # how long an inbox insert may wait to share a commit


@dataclass
class BotSettings:
    timezone: str = "Asia/Shanghai"
    review_required: bool = False
    offer_timeout_min: int = 30
    max_candidates: int = 3
    offer_policy: str = "sequential"  # sequential | parallel (parallel only for urgent cases)
    parallel_offers: int = 3
    share_phone: bool = False
    low_confidence_review: bool = True  # send unclear requests to staff even with review off
    unknown_user_role: str = "enterprise"  # what an unknown WeCom/DingTalk user is: enterprise | ignore
    media_dir: str = "var/media"
    media_max_bytes: int = 10 * 1024 * 1024
    rate_limit_per_min: int = 20  # messages per sender per minute before we slow them
    inbox_max_attempts: int = 5
    failure_alert_min: int = 15  # staff get at most one alert about failed messages per this many minutes
    outbox_retry_hours: float = 24.0  # a transiently failing reply is retried this long after it was written
    outbox_lease_s: int = 60  # a claimed reply is left alone by other instances this long (> a whole send)
    send_timeout_s: float = 10.0  # one platform API call (WeCom, WeChat, DingTalk) may take this long
    channel_down_alert_min: int = 5  # staff are told once when a channel has been failing this long


@dataclass
class PointsSettings:
    per_case: float = 10.0
    per_help_hour: float = 2.0
    max_hours_counted: float = 16.0
    onsite_bonus: float = 5.0
    rating_5_bonus: float = 5.0
    rating_4_bonus: float = 2.0


@dataclass
class TimerSettings:
    poll_interval_s: float = 5.0
    progress_nudge_h: float = 24.0
    progress_escalate_h: float = 48.0
    feedback_nudge_h: float = 24.0
    feedback_autoclose_h: float = 72.0
    enterprise_followup_h: float = 24.0
    appointment_eve_at: str = "18:00"
    appointment_before_min: int = 60
    quiet_hours: str = "22:00-07:30"
    daily_digest_at: str = "08:30"
    monthly_report_day: int = 1
    monthly_report_at: str = "09:00"
    mobilisation_deadline_min: int = 120
    workdays_only: bool = True  # progress / follow-up / feedback clocks count only working days
    quarterly_cases: int = 10  # how many top-rated solved cases the quarterly collection lists
    digest_catch_up_days: int = 31  # a digest after downtime covers at most this many missed days
    report_link_hours: int = 72  # how long a signed report download link in chat stays valid
    max_attempts: int = 5  # a timer whose handler keeps raising is tried this often (with backoff), then FAILED


@dataclass
class HolidaySettings:
    dates: list[str] = field(default_factory=list)  # "2026-10-01": public holidays
    workdays: list[str] = field(default_factory=list)  # 调休: weekend days that are workdays


@dataclass
class ConsoleSettings:
    secret_key: str = ""  # signs session cookies; required when serving (set CRAFTLINK_CONSOLE_SECRET_KEY)
    session_hours: int = 12
    lockout_attempts: int = 5  # wrong passwords per (login, client address) before each try must wait
    lockout_minutes: int = 15  # the longest such wait (it doubles from 1 s up to this)
    client_address_header: str = ""  # behind a proxy: the header holding the client address (X-Forwarded-For)
    login_link_minutes: int = 10
    upload_max_bytes: int = 2 * 1024 * 1024


@dataclass
class StaffEntry:
    name: str = ""
    role: str = "staff"
    channel: str = ""  # required: one of the service's channels (bot/config.py checks which)
    user_id: str = ""


@dataclass
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    bot: BotSettings = field(default_factory=BotSettings)
    points: PointsSettings = field(default_factory=PointsSettings)
    timers: TimerSettings = field(default_factory=TimerSettings)
    holidays: HolidaySettings = field(default_factory=HolidaySettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    staff: list[StaffEntry] = field(default_factory=list)
    # The service's own sections by name (bot/config.py: [wecom], [wechat], [dingtalk]); a section left
    # out of the file is absent. Opaque to the domain.
    sections: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # the file it came from, for messages

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.bot.timezone)


T = TypeVar("T")
_OWN = ("sections", "source")  # fields of Settings that are not a section of the file


def _coerce(key: str, value: Any, typ: Any) -> Any:
    origin = typing.get_origin(typ)
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
            return value.lower() in ("true", "1", "yes", "on")
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if typ is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
    if typ is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if typ is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    if origin is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item_type,) = typing.get_args(typ)
        if isinstance(item_type, type) and dataclasses.is_dataclass(item_type):
            return [build_section(f"{key}[{i}]", v, item_type, env=False) for i, v in enumerate(value)]
        return [_coerce(f"{key}[{i}]", v, item_type) for i, v in enumerate(value)]
    raise ConfigError(f"{key}: unsupported setting type")


def build_section(prefix: str, raw: Any, cls: type[T], *, env: bool = True) -> T:
    """One ``[prefix]`` table as ``cls``, each key overridable by ``CRAFTLINK_<PREFIX>_<KEY>``."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix}: expected a table of settings, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for unknown in sorted(set(raw) - names):
        raise ConfigError(f"{prefix}.{unknown}: unknown setting (see config.example.toml)")
    kwargs: dict[str, Any] = {}
    for name in names:
        key = f"{prefix}.{name}"
        env_name = f"{ENV_PREFIX}{prefix}_{name}".upper().replace(".", "_")
        if env and env_name in os.environ:
            kwargs[name] = _coerce(env_name, os.environ[env_name], hints[name])
        elif name in raw:
            kwargs[name] = _coerce(key, raw[name], hints[name])
    return cls(**kwargs)


def _check_time(key: str, value: str) -> None:
    if not _HHMM.match(value):
        raise ConfigError(f"{key}: expected a time like 08:30, got {value!r}")


Check = Callable[[Settings], None]


def parse_settings(raw: dict[str, Any], *, source: str = "", sections: Mapping[str, type] | None = None,
                   check: Check | None = None) -> Settings:
    """Build :class:`Settings` from a parsed TOML document plus the environment.

    ``sections``: the service's optional sections (name → dataclass), kept in ``Settings.sections``
    when present in ``raw``; ``check`` then validates them, raising :class:`ConfigError` like the rest.
    """
    extra = dict(sections or {})
    known = {f.name for f in dataclasses.fields(Settings)} - set(_OWN)
    for unknown in sorted(set(raw) - known - set(extra)):
        raise ConfigError(f"[{unknown}]: unknown section (see config.example.toml)")
    hints = typing.get_type_hints(Settings)
    kwargs: dict[str, Any] = {"source": source}
    for name in known:
        if name == "staff":
            kwargs[name] = _coerce("staff", raw.get("staff", []), hints[name])
            continue
        kwargs[name] = build_section(name, raw.get(name, {}), hints[name])
    # A service section left out stays absent (a channel left out is disabled).
    kwargs["sections"] = {name: build_section(name, raw[name], cls) for name, cls in extra.items() if name in raw}
    settings = Settings(**kwargs)
    _validate(settings)
    if check is not None:
        check(settings)
    return settings


def _validate(s: Settings) -> None:
    try:
        ZoneInfo(s.bot.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"bot.timezone: expected an IANA zone like Asia/Shanghai, got {s.bot.timezone!r}") from None
    if not s.database.url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise ConfigError(
            f"database.url: expected sqlite+aiosqlite:///PATH or postgresql+asyncpg://..., got {s.database.url!r}"
        )
    if s.server.role not in ("all", "intake", "worker"):
        raise ConfigError(f"server.role: expected all, intake or worker, got {s.server.role!r}")
    if not 0 < s.server.port < 65536:
        raise ConfigError(f"server.port: expected 1-65535, got {s.server.port}")
    if not 0 < s.server.read_timeout_s <= 600:
        raise ConfigError(
            f"server.read_timeout_s: expected more than 0 and at most 600 seconds, got {s.server.read_timeout_s}"
        )
    if s.bot.offer_policy not in ("sequential", "parallel"):
        raise ConfigError(f"bot.offer_policy: expected sequential or parallel, got {s.bot.offer_policy!r}")
    if s.bot.unknown_user_role not in ("enterprise", "ignore"):
        raise ConfigError(f"bot.unknown_user_role: expected enterprise or ignore, got {s.bot.unknown_user_role!r}")
    if s.bot.offer_timeout_min <= 0 or s.bot.max_candidates <= 0:
        raise ConfigError("bot.offer_timeout_min and bot.max_candidates: expected positive integers")
    _validate_delivery(s.bot)
    if s.bot.failure_alert_min < 1:
        raise ConfigError(f"bot.failure_alert_min: expected a positive number of minutes, got {s.bot.failure_alert_min}")
    if s.timers.max_attempts < 1:
        raise ConfigError(f"timers.max_attempts: expected a positive integer, got {s.timers.max_attempts}")
    for key in ("appointment_eve_at", "daily_digest_at", "monthly_report_at"):
        _check_time(f"timers.{key}", getattr(s.timers, key))
    start, _, end = s.timers.quiet_hours.partition("-")
    _check_time("timers.quiet_hours", start)
    _check_time("timers.quiet_hours", end)
    if s.console.lockout_attempts < 0 or s.console.lockout_minutes <= 0:
        raise ConfigError("console.lockout_attempts and console.lockout_minutes: expected >= 0 and > 0")
    for i, st in enumerate(s.staff):
        if st.role not in {r.value for r in StaffRole}:
            roles = ", ".join(r.value for r in StaffRole)
            raise ConfigError(f"staff[{i}].role: expected one of {roles}, got {st.role!r}")
        if not st.name or not st.user_id:
            raise ConfigError(f"staff[{i}]: expected name and user_id")


def _validate_delivery(bot: BotSettings) -> None:
    """The outbox's timings (bot/pipeline/sender.py): a send must end inside its lease, and a resend after the
    lease must fall inside WeCom's duplicate-check window (bot/channels/wecom_sender.py, 1800 s)."""
    if not 0 < bot.send_timeout_s <= 120:
        raise ConfigError(f"bot.send_timeout_s: expected a positive number of seconds up to 120, got {bot.send_timeout_s}")
    if bot.outbox_lease_s < 2 * bot.send_timeout_s:
        raise ConfigError(f"bot.outbox_lease_s: expected at least 2 × bot.send_timeout_s "
                          f"({2 * bot.send_timeout_s:g} s), got {bot.outbox_lease_s}")
    if bot.outbox_lease_s > 1800:
        raise ConfigError(f"bot.outbox_lease_s: expected at most 1800 (WeCom's duplicate-check window), "
                          f"got {bot.outbox_lease_s}")
    if not 0.1 <= bot.outbox_retry_hours <= 720:
        raise ConfigError(f"bot.outbox_retry_hours: expected 0.1 to 720 hours, got {bot.outbox_retry_hours}")
    if bot.channel_down_alert_min < 1:
        raise ConfigError(
            f"bot.channel_down_alert_min: expected a positive number of minutes, got {bot.channel_down_alert_min}")


def demo_mode(s: Settings) -> bool:
    """The playground on its own (``make demo``, the tests): the only case in which a web-chat identity
    may receive a console login link. The database check is ``craftlink serve``'s (bot/cli/main.py)."""
    return s.server.playground and not s.server.playground_with_real_channels


def load_settings(path: str | Path | None, *, sections: Mapping[str, type] | None = None,
                  check: Check | None = None) -> Settings:
    """Load a TOML file (or only defaults and environment when ``path`` is None); see :func:`parse_settings`.

    The service loads its configuration through ``bot/config.py::load_settings``, which adds its sections.
    """
    if path is None:
        return parse_settings({}, source="(defaults)", sections=sections, check=check)
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found (copy config.example.toml)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc})") from None
    return parse_settings(raw, source=str(p), sections=sections, check=check)
