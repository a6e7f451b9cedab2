"""Handling one inbox message: identify the person, load their dialog, route, all in one transaction."""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.app import build_router
from handlers.context import HandlerContext, UserError
from handlers.dialogs import DialogView
from handlers.enterprise.chat import enterprise_media
from handlers.enterprise.intake import start_registration
from handlers.messages import IncomingKind, IncomingMessage, card_update
from handlers.outbox import Outbox, release_held
from handlers.relay import relay
from handlers.services import Services
from storage.db import dialect_of
from storage.models import IDENTITY_OF, Identity, Person, Role

log = logging.getLogger(__name__)


# One person may write on several channels: several conversations, which the inbox claim lets run at
# once. Their handling transactions take a transaction-scoped advisory lock on the person before reading
# or writing anything of theirs (dialog, cases), so they run one after the other and each sees what the
# other committed. An advisory lock rather than ``SELECT … FOR UPDATE`` on the person's row: handlers
# update *other* people's rows too (accepting an offer writes the requester's), and a row lock taken at
# the start would turn every such pair into a deadlock; the advisory key is taken by nothing else.
# SQLite has one writer and every transaction there begins IMMEDIATE: serialised already.
_PERSON_LOCK_SPACE = 0x4350  # first key of pg_advisory_xact_lock(int, int): "CP", craftlink person
_LOCK_PERSON = text("SELECT pg_advisory_xact_lock(:space, :person_id)")


async def lock_person(session: AsyncSession, person_id: int) -> None:
    """Serialise ``person_id``'s handling until the transaction ends (PostgreSQL; a no-op on SQLite)."""
    if dialect_of(session) == "postgresql":
        await session.execute(_LOCK_PERSON, {"space": _PERSON_LOCK_SPACE, "person_id": person_id})


async def identify(session: AsyncSession, services: Services, msg: IncomingMessage) -> Identity | None:
    """The identity behind a message; an unknown sender becomes a new enterprise contact (or is ignored).

    A known sender's person row is locked first (:func:`lock_person`): call this before loading
    anything of the person's in the transaction.
    """
    identity = await session.scalar(IDENTITY_OF, {"channel": msg.channel, "user_id": msg.sender})
    if identity is not None:
        await lock_person(session, identity.person_id)
    now = services.clock.now()
    if identity is None:
        if services.settings.bot.unknown_user_role == "ignore" and msg.directory_user:
            return None
        person = Person(role=Role.ENTERPRISE.value, name="", created_at=now)
        session.add(person)
        await session.flush()
        identity = Identity(person_id=person.id, channel=msg.channel, channel_user_id=msg.sender, extra={})
        session.add(identity)
    identity.last_seen_at = now
    if await release_held(session, identity, now):  # the sender is woken by this message's commit
        log.info("released held messages", extra={"channel": msg.channel, "event": "outbox.released"})
    if msg.identity_extra:  # opaque to us: how the channel reaches this sender (its sender reads it back)
        identity.extra = {**identity.extra, **msg.identity_extra}
    await session.flush()
    return identity


async def handle_incoming(session: AsyncSession, services: Services, msg: IncomingMessage) -> HandlerContext | None:
    """Handle ``msg`` inside the caller's transaction. Bad input is answered politely and changes nothing."""
    identity = await identify(session, services, msg)
    if identity is None:
        log.info("ignored message from unknown %s user", msg.channel)
        return None
    person = await session.get(Person, identity.person_id)
    assert person is not None
    ctx = HandlerContext(
        session=session,
        services=services,
        person=person,
        dialog=await DialogView.load(session, services.clock, person.id),
        outbox=Outbox(session, services.clock),
        identity=identity,
        msg=msg,
    )
    savepoint = await session.begin_nested()
    try:
        await route(ctx, msg)
        await savepoint.commit()
    except UserError as err:
        await savepoint.rollback()
        # The rollback expired what the savepoint touched; reload the context's rows before answering.
        await session.refresh(person)
        await session.refresh(identity)
        ctx.dialog = await DialogView.load(session, services.clock, person.id)
        await ctx.reply(str(err))
        ctx.tap_outcome = err.tap_outcome  # what the handler set before the error was rolled back too
    await update_tapped_card(ctx, msg)
    return ctx


async def update_tapped_card(ctx: HandlerContext, msg: IncomingMessage) -> None:
    """Queue the tapped card's new look after the tap's replies, so a failing update never holds them up.

    Only a card tap that carries the adapter's handle for updating that card
    (:attr:`IncomingMessage.reply_handle`) and whose handler stated an outcome gets one.
    """
    ref = msg.reply_handle if msg.kind == IncomingKind.BUTTON else None
    if not ref or not ctx.tap_outcome or ctx.identity is None:
        return
    await ctx.outbox.to_identity(ctx.identity, card_update(ctx.tap_outcome, ref))


async def route(ctx: HandlerContext, msg: IncomingMessage) -> None:
    router = build_router()
    if msg.kind in (IncomingKind.IMAGE, IncomingKind.VOICE, IncomingKind.FILE):
        caption = msg.text.strip()
        if ctx.person.role == Role.ENTERPRISE:
            await enterprise_media(ctx, msg.kind.value, msg.media_path, caption)
            return
        if not await relay(ctx, text=caption, media_path=msg.media_path, kind=msg.kind.value):
            await ctx.reply("已收到。您目前没有进行中的案件，文件未转发。")
        return
    if msg.kind == IncomingKind.EVENT:
        if (msg.text in ("subscribe", "enter_agent") and ctx.person.role == Role.ENTERPRISE
                and not ctx.person.enterprise_id and ctx.dialog.flow is None):
            await start_registration(ctx, "")
        return
    text = msg.text
    if msg.kind == IncomingKind.LOCATION:
        text = f"位置：{msg.text}" if msg.text else "位置"
    if not text.strip():
        await ctx.reply("请用文字描述，或回复「帮助」查看可用指令。")
        return
    await router.dispatch(ctx, text[:2000])
