"""Guidance relay: what one side of an assigned case says reaches the other, prefixed with the case."""

from __future__ import annotations

from handlers import reminders
from handlers.cases import current_case, open_cases_of
from handlers.context import HandlerContext
from handlers.messages import OutgoingKind, OutgoingMessage
from storage.models import ACTIVE_STATES, Case, CaseState, Enterprise, Person, RelayedMessage, Role


async def counterpart(ctx: HandlerContext, case: Case) -> int | None:
    if ctx.person.role == Role.CRAFTSMAN:
        return case.requester_id
    return case.craftsman_id


async def label_for(ctx: HandlerContext, case: Case) -> str:
    if ctx.person.role == Role.CRAFTSMAN:
        return f"【#{case.number} 师傅 {ctx.person.name}】"
    enterprise = await ctx.session.get(Enterprise, case.enterprise_id) if case.enterprise_id else None
    return f"【#{case.number} {enterprise.name if enterprise else ctx.person.name}】"


async def relay(ctx: HandlerContext, *, text: str = "", media_path: str | None = None, kind: str = "text") -> bool:
    """Relay to the other side of the sender's current case; False if the sender has no open case."""
    case = await current_case(ctx.session, ctx.person)
    if case is None:
        return False
    to_id = await counterpart(ctx, case)
    if to_id is None:
        return False
    label = await label_for(ctx, case)
    now = ctx.now()
    if media_path:
        out_kind = OutgoingKind.VOICE if kind == "voice" else OutgoingKind.FILE if kind == "file" else OutgoingKind.IMAGE
        await ctx.outbox.to_person(to_id, f"{label}发来{'语音' if kind == 'voice' else '文件' if kind == 'file' else '照片'}：{text}".rstrip("："), case_id=case.id)
        await ctx.outbox.to_person(to_id, OutgoingMessage(kind=out_kind, media_path=media_path), case_id=case.id)
    else:
        await ctx.outbox.to_person(to_id, f"{label}{text}", case_id=case.id)
    ctx.session.add(
        RelayedMessage(case_id=case.id, from_id=ctx.person.id, to_id=to_id, kind=kind, text=text,
                       media_path=media_path, at=now)
    )
    case.last_activity_at = now
    # A craftsman's question waits for the enterprise (follow-up reminder); any enterprise message answers it.
    if ctx.person.role == Role.CRAFTSMAN:
        case.awaiting_enterprise = text.rstrip().endswith(("?", "？"))
    else:
        case.awaiting_enterprise = False
    # A relayed message counts as activity, and it starts or answers the enterprise follow-up.
    if CaseState(case.state) in ACTIVE_STATES:
        await reminders.reset_progress_clock(ctx, case)
    await reminders.track_enterprise_answer(ctx, case)
    if len(await open_cases_of(ctx.session, ctx.person)) > 1:
        await ctx.reply(f"已转给 #{case.number}。（您有多个进行中的案件，回复「切换 编号」可更换当前案件）")
    return True


async def other_party_name(ctx: HandlerContext, case: Case) -> str:
    pid = await counterpart(ctx, case)
    person = await ctx.session.get(Person, pid) if pid else None
    return person.name if person else ""
