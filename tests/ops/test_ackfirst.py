"""Acknowledging comes first: while callbacks saturate the process, handling and sending step aside
without starving, and take the backlog at full speed once the callbacks ease off."""

from __future__ import annotations

import asyncio

import pytest

from bot.keys import callback_load_key, sender_key, worker_key
from bot.pipeline import pump as pump_module
from bot.pipeline.ackfirst import HOLD_S, SATURATED_IN_FLIGHT, AckFirst, CallbackLoad
from bot.pipeline.pump import ConversationPump
from tests.chat import Playground


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_callbacks_in_flight_saturate_and_the_saturation_outlasts_the_wave_briefly() -> None:
    t = FakeTime()
    load = CallbackLoad(monotonic=t)
    for _ in range(SATURATED_IN_FLIGHT - 1):
        load.enter()
    assert not load.saturated()  # a busy but coping process
    load.enter()
    assert load.saturated()
    for _ in range(SATURATED_IN_FLIGHT):
        load.leave()
    assert load.in_flight == 0 and load.saturated()  # waves come back: hold on a moment
    t.now += HOLD_S
    assert not load.saturated()


def test_when_saturated_work_starts_once_per_interval_and_otherwise_at_once() -> None:
    t = FakeTime()
    saturated = False
    turns = AckFirst(lambda: saturated, every_s=0.25, monotonic=t)
    assert all(turns.may_start() for _ in range(5))  # light load: no waiting at all
    saturated = True
    t.now += 0.25
    assert turns.may_start()
    assert not turns.may_start()  # the next one waits its turn...
    t.now += 0.2
    assert not turns.may_start()
    t.now += 0.05
    assert turns.may_start()  # ...but never starves
    saturated = False
    assert turns.may_start() and turns.may_start()


class RecordingPump(ConversationPump):
    def __init__(self, conversations: list[str]) -> None:
        super().__init__(concurrency=8)
        self.pending = {c: i for i, c in enumerate(conversations)}
        self.worked: list[str] = []
        self.progress = asyncio.Event()

    async def due_heads(self) -> dict[str, int]:
        return dict(self.pending)

    async def work(self, conversation: str, first_id: int) -> None:
        await self.take_turn()
        self.worked.append(conversation)
        del self.pending[conversation]
        self.progress.set()


async def _spin(rounds: int = 50) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


async def test_a_saturated_pump_defers_its_work_and_catches_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pump_module, "TURN_POLL_S", 0)  # the fake clock, not the poll, decides
    t = FakeTime()
    saturated = True
    pump = RecordingPump(["a", "b", "c", "d"])
    pump.ack_first = AckFirst(lambda: saturated, every_s=0.25, monotonic=t)
    assert await pump.drain() == 4
    await asyncio.wait_for(pump.progress.wait(), 5)
    await _spin()
    assert pump.worked == ["a"]  # one turn; the other three wait while the callbacks pile up
    pump.progress.clear()
    t.now += 0.25
    await asyncio.wait_for(pump.progress.wait(), 5)
    await _spin()
    assert len(pump.worked) == 2
    saturated = False  # the wave is over: the rest goes at once
    await asyncio.wait_for(pump.settle(), 5)
    assert sorted(pump.worked) == ["a", "b", "c", "d"]


async def test_the_all_role_wires_both_pumps_and_callbacks_leave_nothing_in_flight(playground: Playground) -> None:
    app = playground.app
    assert app[worker_key].ack_first is not None and app[sender_key].ack_first is not None
    resp = await playground.client.post("/webchat/send", json={"user": "ack-firm", "text": "你好", "id": "ack-1"})
    assert resp.status == 200
    assert app[callback_load_key].in_flight == 0
