"""Scripting dialogs turn by turn through the real web chat channel: ``await chat.say(...)``.

Every message goes over HTTP into the inbox, is handled by the real worker, and every reply comes
back through the outbox and the web channel, exactly as in the playground.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from aiohttp.web import Application

from bot.keys import sender_key, services_key, sessions_key, timers_key, worker_key
from bot.ops import counters
from handlers.clock import ManualClock
from scheduler.poller import poll_due_timers


class Chat:
    """One person in the web chat."""

    def __init__(self, pg: Playground, user: str) -> None:
        self.pg = pg
        self.user = user
        self.after = 0
        self.history: list[dict[str, Any]] = []

    async def say(self, text: str, *, button: bool = False, msg_id: str | None = None) -> list[dict[str, Any]]:
        """Send ``text``; return the messages this person received as a result."""
        resp = await self.pg.client.post(
            "/webchat/send",
            json={"user": self.user, "text": text, "button": button, "id": msg_id or uuid.uuid4().hex},
        )
        assert resp.status == 200, await resp.text()
        await self.pg.settle()
        return await self.read()

    async def tap(self, label: str) -> list[dict[str, Any]]:
        """Tap the button ``label`` of the newest message that has it."""
        await self.read()
        for msg in reversed(self.history):
            for b in msg.get("buttons", []):
                if b["label"] == label:
                    return await self.say(b["command"], button=True)
        raise AssertionError(f"no button {label!r} in {self.user}'s messages")

    async def read(self) -> list[dict[str, Any]]:
        """Messages delivered to this person since the last read."""
        resp = await self.pg.client.get("/webchat/messages", params={"user": self.user, "after": str(self.after)})
        assert resp.status == 200
        msgs: list[dict[str, Any]] = (await resp.json())["messages"]
        if msgs:
            self.after = msgs[-1]["id"]
        self.history.extend(msgs)
        return msgs

    @staticmethod
    def text_of(msgs: list[dict[str, Any]]) -> str:
        return "\n".join(f"{m.get('title', '')}\n{m.get('text', '')}" for m in msgs)


class Playground:
    def __init__(self, client: TestClient[Any, Any], clock: ManualClock) -> None:
        self.client = client
        self.clock = clock
        self._chats: dict[str, Chat] = {}

    @property
    def app(self) -> Application:
        app = self.client.app
        assert app is not None
        return app

    async def seed_demo(self) -> None:
        from bot.demo import seed

        async with self.app[sessions_key]() as session, session.begin():
            await seed(session, self.clock.now())

    def person(self, user: str) -> Chat:
        """The chat of ``user`` (one per user, so what was read stays read)."""
        return self._chats.setdefault(user, Chat(self, user))

    async def settle(self) -> None:
        """Handle every stored message and send every due reply, until nothing moves."""
        worker, sender = self.app[worker_key], self.app[sender_key]
        for _ in range(50):
            moved = await worker.settle() + await sender.settle()
            if not moved:
                return
        raise AssertionError("pipeline did not settle")

    async def fire_timers(self, advance: timedelta | None = None) -> int:
        """Move the clock and fire what fell due (the APScheduler job does this in production)."""
        if advance:
            self.clock.advance(advance)
        fired = await poll_due_timers(self.app[sessions_key], self.app[services_key], self.app[timers_key],
                                      on_fired=counters.observe_timer)
        await self.settle()
        return fired
