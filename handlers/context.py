"""One typed context object per handled message (or timer, or console action)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.clock import Clock
from handlers.dialogs import DialogView
from handlers.messages import IncomingMessage, OutgoingKind, OutgoingMessage
from handlers.outbox import Outbox
from handlers.services import Services
from handlers.settings import Settings
from storage.models import Identity, Person, Role


class Routes(Protocol):
    """What a handler may ask of the composed router it runs in (``handlers/router.py::Router``)."""

    def help_lines(self, role: Role) -> list[str]: ...


@dataclass
class HandlerContext:
    session: AsyncSession
    services: Services
    person: Person
    dialog: DialogView
    outbox: Outbox
    identity: Identity | None = None  # where the message came from; None for timers and console actions
    msg: IncomingMessage | None = None
    replies: list[OutgoingMessage] = field(default_factory=list)
    # What a tapped card should show instead of its buttons (≤ 10 characters, e.g. "已接单"), set by
    # the handler that answers the tap; None leaves the card as it is. The pipeline turns it into a
    # CARD_UPDATE when the tap came from a channel whose cards can be updated (WeCom).
    tap_outcome: str | None = None
    # The composed router this message (or console action) is dispatched through, set by the router as
    # it dispatches: 帮助 lists its routes without importing the composition (``handlers/app.py``).
    routes: Routes | None = None

    @property
    def clock(self) -> Clock:
        return self.services.clock

    @property
    def settings(self) -> Settings:
        return self.services.settings

    def now(self) -> datetime:
        return self.services.clock.now()

    async def reply(self, message: OutgoingMessage | str) -> None:
        """Answer the sender on the channel they wrote from (or their best channel)."""
        out = OutgoingMessage(kind=OutgoingKind.TEXT, text=message) if isinstance(message, str) else message
        self.replies.append(out)
        if self.msg is None and self.identity is None:
            return  # acting outside chat (console, CLI): the caller shows the replies itself
        if self.identity is not None:
            await self.outbox.to_identity(self.identity, out)
        else:
            await self.outbox.to_person(self.person.id, out)


class UserError(Exception):
    """Bad input from a person: the message is the polite Chinese answer; nothing is changed.

    ``tap_outcome``: what the tapped card should show when the refusal settles it for good (the offer
    was taken by someone else, the case was already rated); None keeps the card's buttons. On a
    UserError only this counts: a ``ctx.tap_outcome`` set before the error was rolled back with the rest.
    """

    def __init__(self, message: str, *, tap_outcome: str | None = None) -> None:
        super().__init__(message)
        self.tap_outcome = tap_outcome
