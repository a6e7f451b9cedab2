"""The per-member sliding windows that keep WeCom from silently dropping messages."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.channels.base import TransientSendError
from bot.channels.pacing import Pacer
from handlers.clock import ManualClock


def test_hour_limit_holds_even_when_every_minute_is_under_30() -> None:
    clock = ManualClock()
    pacer = Pacer(clock)
    for _ in range(1000):  # 20 per minute for 50 minutes
        pacer.reserve("u1")
        clock.advance(timedelta(seconds=3))
    with pytest.raises(TransientSendError) as err:
        pacer.reserve("u1")
    # The first send was 3000 s ago: its slot frees 600 s from now.
    assert err.value.retry_after == pytest.approx(600)
    clock.advance(timedelta(seconds=600))
    pacer.reserve("u1")


def test_multi_part_reservation_is_all_or_nothing() -> None:
    clock = ManualClock()
    pacer = Pacer(clock)
    pacer.reserve("u1", 28)
    with pytest.raises(TransientSendError):
        pacer.reserve("u1", 3)  # would be 31: nothing taken
    pacer.reserve("u1", 2)  # exactly 30 still fits
    with pytest.raises(TransientSendError):
        pacer.reserve("u1")


def test_window_slides() -> None:
    clock = ManualClock()
    pacer = Pacer(clock)
    pacer.reserve("u1", 15)
    clock.advance(timedelta(seconds=30))
    pacer.reserve("u1", 15)
    clock.advance(timedelta(seconds=30))  # the first 15 are now a minute old
    pacer.reserve("u1", 15)
    with pytest.raises(TransientSendError) as err:
        pacer.reserve("u1")
    assert err.value.retry_after == pytest.approx(30)


def test_more_parts_than_a_window_allows_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        Pacer(ManualClock()).reserve("u1", 31)
