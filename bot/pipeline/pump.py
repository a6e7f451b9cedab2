"""What the inbox worker and the outbox sender share: one task per conversation with due work.

A pump runs a loop owned by the app's lifecycle: on every wake-up (or poll) it asks the subclass which
conversations have due work (:meth:`ConversationPump.due_heads`) and starts one task per idle
conversation, at most ``concurrency`` running at once, so one conversation is always worked in order
while different conversations go in parallel.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod

from bot.pipeline.ackfirst import AckFirst

log = logging.getLogger(__name__)
TURN_POLL_S = 0.02  # how often deferred work asks again whether it may start (see bot/pipeline/ackfirst.py)


class ConversationPump(ABC):
    name = "pump"
    poll_seconds = 1.0

    def __init__(self, *, concurrency: int) -> None:
        self._wake = asyncio.Event()
        self._busy: set[str] = set()  # conversations being worked by this process
        self._tasks: set[asyncio.Task[None]] = set()
        self._main: asyncio.Task[None] | None = None
        self._concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self.ack_first: AckFirst | None = None  # set when this process also takes the callbacks

    @abstractmethod
    async def due_heads(self) -> dict[str, int]:
        """Each conversation with pending work → the id of its oldest row, or -1 if that row is not due."""

    @abstractmethod
    async def work(self, conversation: str, first_id: int) -> None:
        """Work ``conversation`` from ``first_id`` on, in order, until nothing of it is due."""

    async def take_turn(self) -> None:
        """Wait, if the callbacks saturate this process, until the next row may start (bot/pipeline/ackfirst.py)."""
        # A poll, not an Event: saturation is a rate over time, nothing signals its end.
        while self.ack_first is not None and not self.ack_first.may_start():  # noqa: ASYNC110
            await asyncio.sleep(TURN_POLL_S)

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._main = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._main:
            self._main.cancel()
            try:
                await self._main
            except asyncio.CancelledError:
                pass
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def settle(self) -> int:
        """Work until nothing is due (tests and the CLI use this instead of waiting); return rounds run."""
        rounds = 0
        while True:
            started = await self.drain()
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
            if not started and not self._tasks:
                return rounds
            rounds += 1

    async def drain(self) -> int:
        """Start a task for every idle conversation whose oldest row is due; return how many started."""
        started = 0
        for conversation, row_id in (await self.due_heads()).items():
            if row_id < 0 or conversation in self._busy:
                continue
            self._busy.add(conversation)
            task = asyncio.create_task(self._conversation(conversation, row_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started += 1
        return started

    async def _conversation(self, conversation: str, first_id: int) -> None:
        try:
            async with self._slots:
                await self.work(conversation, first_id)
        finally:
            self._busy.discard(conversation)
            self._wake.set()  # the next rows of this conversation may be due now

    async def _run(self) -> None:
        while True:
            try:
                # With a slot's worth of tasks already queued, a scan would only find busy conversations: under
                # a backlog every finished conversation wakes us, and rescanning the whole backlog each time
                # cost more than the work. Rescan once the queue runs low.
                if len(self._tasks) < self._concurrency:
                    await self.drain()
            except Exception:
                log.exception("%s pass failed", self.name)  # a DB outage: retry on the next wake or poll
            try:
                # asyncio.timeout, not wait_for: wait_for wraps the wait in a task of its own, and on 3.11 a
                # cancel (app shutdown) racing with a wake-up can leave that task hanging the shutdown.
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
