"""What an enterprise's free text means: a message for its craftsman, or a new request."""

from __future__ import annotations

import re

from sqlalchemy import select

from handlers.cases import add_event
from handlers.context import HandlerContext
from handlers.enterprise.intake import REQUEST, RequestStep, start_registration, start_request
from handlers.relay import relay
from handlers.router import Router
from storage.models import Case, CaseState, Role

WAITING = (CaseState.SUBMITTED, CaseState.APPROVED, CaseState.MATCHING, CaseState.OFFERED, CaseState.ESCALATED)

router = Router("enterprise.chat")
_THANKS = re.compile(r"^[\s，。！!~～]*(谢谢|多谢|感谢|辛苦了|好的|好|收到|嗯|ok|OK|👍)[\s，。！!~～a-zA-Z师傅老师您了啊]*$")


@router.fallback(Role.ENTERPRISE)
async def enterprise_text(ctx: HandlerContext, text: str) -> None:
    """Relay to the craftsman of the current case; otherwise it is a new request."""
    if ctx.person.enterprise_id is None:
        await start_registration(ctx, text)
        return
    if await relay(ctx, text=text):
        return
    if await supplement_waiting_case(ctx, text):
        return
    if _THANKS.match(text):
        await ctx.reply("不客气！有新的技术问题随时发给我。")
        return
    await start_request(ctx, text)


async def enterprise_media(ctx: HandlerContext, kind: str, media_path: str | None, caption: str) -> None:
    """A photo/voice/file: part of a draft request, relayed to the craftsman, or the start of a request."""
    if ctx.person.enterprise_id is None:
        await start_registration(ctx, caption)
        return
    if ctx.dialog.flow == REQUEST and media_path:
        photos = [*ctx.dialog.data.get("photos", []), media_path]
        ctx.dialog.go(RequestStep(ctx.dialog.step or RequestStep.DESCRIBE), photos=photos)
        await ctx.reply(f"已收到照片（共 {len(photos)} 张）。" + ("请再用文字描述一下问题。" if ctx.dialog.step == RequestStep.DESCRIBE else ""))
        return
    if await relay(ctx, text=caption, media_path=media_path, kind=kind):
        return
    if caption:
        await start_request(ctx, caption, photos=[media_path] if media_path else [])
        return
    ctx.dialog.start(REQUEST, RequestStep.DESCRIBE, {"photos": [media_path] if media_path else []})
    await ctx.reply("已收到照片。请用文字描述一下遇到的问题（设备、现象、已经试过的办法）。")


async def supplement_waiting_case(ctx: HandlerContext, text: str) -> bool:
    """While a request waits for its craftsman, more text is a detail of it, not a new request."""
    if _THANKS.match(text):
        return False
    case = await ctx.session.scalar(
        select(Case).where(Case.requester_id == ctx.person.id, Case.state.in_([s.value for s in WAITING]))
        .order_by(Case.id.desc()).limit(1)
    )
    if case is None:
        return False
    case.text = f"{case.text}\n补充：{text}"[:4000]
    await add_event(ctx, ctx.session, case, "supplement", at=ctx.now(), actor=ctx.person, detail=f"补充：{text}")
    await ctx.reply(f"已补充到需求 #{case.number}，师傅接单后会看到。如果是另一个新问题，请发「新需求 描述」。")
    return True
