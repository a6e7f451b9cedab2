"""The outbox's delivery settings: the horizon, the lease and the send timeout, checked at start-up."""

from __future__ import annotations

import pytest

from handlers.settings import ConfigError, parse_settings


def test_defaults_keep_a_day_and_a_lease_longer_than_a_send() -> None:
    bot = parse_settings({}).bot
    assert bot.outbox_retry_hours == 24
    assert bot.outbox_lease_s >= 2 * bot.send_timeout_s
    assert bot.channel_down_alert_min == 5


@pytest.mark.parametrize(
    ("bot", "expected"),
    [
        ({"outbox_lease_s": 15, "send_timeout_s": 10}, "bot.outbox_lease_s: expected at least 2 × bot.send_timeout_s"),
        ({"outbox_lease_s": 3600}, "bot.outbox_lease_s: expected at most 1800"),
        ({"send_timeout_s": 0}, "bot.send_timeout_s: expected a positive number"),
        ({"outbox_retry_hours": 0}, "bot.outbox_retry_hours: expected 0.1 to 720 hours"),
        ({"channel_down_alert_min": 0}, "bot.channel_down_alert_min: expected a positive number of minutes"),
    ],
)
def test_a_wrong_delivery_setting_names_its_key(bot: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_settings({"bot": bot})
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_the_old_attempt_limit_is_gone() -> None:
    with pytest.raises(ConfigError, match="bot.outbox_max_attempts: unknown setting"):
        parse_settings({"bot": {"outbox_max_attempts": 8}})
