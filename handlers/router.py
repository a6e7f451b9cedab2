"""Routers per role and flow, composed in ``handlers/app.py::build_router``; first match wins.

A message is, in order: a command of the sender's role (``接单 1024``), else the next step of the
sender's open dialog, else the role's fallback (relay to the current case, or a new request).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from handlers.context import HandlerContext
from handlers.parsing import bounded_number, leading_number, normalise
from storage.models import Role


@dataclass(frozen=True)
class Command:
    """A parsed command: ``完成 1024 用时3小时 说明`` → name 完成, number 1024, rest 用时3小时 说明.

    The leading number is kept as the digits typed (``number_text``); :attr:`number` is the only way
    to read it as an int and is bounded (``handlers.parsing.bounded_number``): a number too large for
    the database is refused politely there, so no handler can pass an unbounded int to a query.
    """

    name: str
    number_text: str | None
    rest: str
    raw: str

    @property
    def number(self) -> int | None:
        return None if self.number_text is None else bounded_number(self.number_text)

    @property
    def tail(self) -> str:
        """Everything after the command word, as typed (for arguments that start with digits: 22:00, 2026-11)."""
        return self.raw[len(self.name):].strip()

    @property
    def args(self) -> list[str]:
        return self.rest.split()


def parse_command(text: str, names: set[str]) -> Command | None:
    """Split off a known command word; tolerate 「接单1024」, 「接单 #1024」, 「接单 ＃１０２４」 and full-width spaces."""
    raw = text.replace("\u3000", " ").strip()
    for name in sorted(names, key=len, reverse=True):
        if raw == name or raw.startswith(name):
            tail = raw[len(name) :].strip()
            digits, rest = leading_number(tail)
            if digits is not None:
                return Command(name, digits, rest, raw)
            if tail and raw[len(name)] not in " #＃" and not normalise(tail[0]).isdigit() and name not in _FREE_TAIL:
                continue  # 「完成了吗」 is not the command 完成
            return Command(name, None, tail, raw)
    return None


_FREE_TAIL = {"婉拒", "驳回", "动员", "菜单", "免打扰", "预约", "派单", "进展", "新需求", "提需求"}

CommandHandler = Callable[[HandlerContext, Command], Awaitable[None]]
DialogHandler = Callable[[HandlerContext, str], Awaitable[None]]
Fallback = Callable[[HandlerContext, str], Awaitable[None]]


@dataclass
class _CommandRoute:
    names: tuple[str, ...]
    roles: frozenset[Role]
    handler: CommandHandler
    summary: str


@dataclass
class Router:
    name: str
    commands: list[_CommandRoute] = field(default_factory=list)
    dialogs: dict[str, DialogHandler] = field(default_factory=dict)
    dialog_ttl: dict[str, timedelta] = field(default_factory=dict)
    fallbacks: dict[Role, Fallback] = field(default_factory=dict)

    def command(self, *names: str, roles: set[Role], summary: str = "") -> Callable[[CommandHandler], CommandHandler]:
        def register(fn: CommandHandler) -> CommandHandler:
            self.commands.append(_CommandRoute(names, frozenset(roles), fn, summary))
            return fn

        return register

    def dialog(self, flow: str, *, ttl: timedelta | None = None) -> Callable[[DialogHandler], DialogHandler]:
        """Register a dialog's step handler; past ``ttl`` of silence the dialog is dropped, not continued."""

        def register(fn: DialogHandler) -> DialogHandler:
            self.dialogs[flow] = fn
            if ttl is not None:
                self.dialog_ttl[flow] = ttl
            return fn

        return register

    def fallback(self, role: Role) -> Callable[[Fallback], Fallback]:
        def register(fn: Fallback) -> Fallback:
            self.fallbacks[role] = fn
            return fn

        return register

    def include(self, *routers: Router) -> Router:
        for r in routers:
            self.commands.extend(r.commands)
            self.dialogs.update(r.dialogs)
            self.dialog_ttl.update(r.dialog_ttl)
            self.fallbacks.update(r.fallbacks)
        return self

    def names_for(self, role: Role) -> set[str]:
        return {n for c in self.commands if role in c.roles for n in c.names}

    def help_lines(self, role: Role) -> list[str]:
        return [c.summary for c in self.commands if role in c.roles and c.summary]

    async def run_command(self, ctx: HandlerContext, cmd: Command) -> bool:
        """Run ``cmd`` if it is a command of the sender's role here; False if it is not."""
        role = Role(ctx.person.role)
        for route in self.commands:
            if role in route.roles and cmd.name in route.names:
                ctx.routes = self
                await route.handler(ctx, cmd)
                return True
        return False

    async def dispatch(self, ctx: HandlerContext, text: str) -> None:
        role = Role(ctx.person.role)
        ctx.routes = self
        cmd = parse_command(text, self.names_for(role))
        if cmd is not None and await self.run_command(ctx, cmd):
            return
        flow = ctx.dialog.flow
        ttl = self.dialog_ttl.get(flow or "")
        if ttl is not None and ctx.dialog.updated_at is not None and ctx.now() - ctx.dialog.updated_at > ttl:
            await ctx.dialog.clear()
            flow = None
        if flow is not None and flow in self.dialogs:
            await self.dialogs[flow](ctx, text)
            return
        fallback = self.fallbacks.get(role)
        if fallback is not None:
            await fallback(ctx, text)
