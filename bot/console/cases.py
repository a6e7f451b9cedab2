"""The case page (timeline, offers, match reasons) and the staff actions on a case.

Actions run the chat commands' own handlers (``handlers/staff/*``) in one transaction as the signed-in
staff member, so the parties are told in chat and the case events carry the staff member's name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.console.auth import forbidden, guard, viewer_of
from bot.console.render import redirect, render
from bot.console.viewer import ROLES, Viewer
from bot.keys import hub_key, services_key, sessions_key
from handlers.actions import context_for, run_command
from handlers.cases import ALLOWED, get_case, mode_label, state_label
from handlers.context import HandlerContext, UserError
from handlers.staff.dispatching import DISPATCHABLE, cancel_case, dispatch_to, find_craftsman, redispatch_case
from handlers.staff.review import add_note
from storage.models import (
    ACTIVE_STATES,
    Case,
    CaseEvent,
    CaseState,
    Craftsman,
    Enterprise,
    Offer,
    OfferState,
    Person,
    RelayedMessage,
    Role,
)

EVENT_LABELS = {
    "state": "状态", "offer": "邀请", "offer_declined": "婉拒", "offer_expired": "超时", "offer_held": "暂缓",
    "note": "备注", "request": "需求", "appointment": "预约", "progress": "进展", "resolved": "完成",
    "rating": "评价", "nudge": "提醒", "stalled": "停滞", "followup": "回访", "help_requested": "求助",
    "message": "留言",
}  # fmt: skip
OFFER_LABELS = {OfferState.PENDING: "待答复", OfferState.ACCEPTED: "已接单", OfferState.DECLINED: "婉拒",
                OfferState.EXPIRED: "超时", OfferState.TAKEN: "他人已接", OfferState.WITHDRAWN: "已撤回"}
REDISPATCHABLE = (*ACTIVE_STATES, CaseState.OFFERED, CaseState.ESCALATED, CaseState.APPROVED)
MAX_TEXT = 500


@dataclass
class Line:
    at: datetime
    kind: str
    actor: str
    detail: str
    change: str = ""


def _number(request: web.Request) -> int:
    try:
        return int(request.match_info["number"])
    except ValueError:
        raise web.HTTPNotFound() from None


async def _case_for(request: web.Request, db: AsyncSession, viewer: Viewer) -> Case:
    """The case, or 404; a group lead asking for another group's case gets 403 and no data."""
    try:
        case = await get_case(db, _number(request))
    except UserError:
        raise web.HTTPNotFound(text="没有这个案件。") from None
    if not viewer.scope.sees(case.trade_group):
        raise forbidden(request, "该案件不属于您负责的专业小组。")
    return case


async def _timeline(db: AsyncSession, case: Case) -> list[Line]:
    events = (await db.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id)
                               .order_by(CaseEvent.at, CaseEvent.id))).all()
    lines = [Line(e.at, EVENT_LABELS.get(e.kind, e.kind), e.actor_label, e.detail,
                  f"{state_label(e.from_state)} → {state_label(e.to_state)}" if e.from_state and e.to_state else "")
             for e in events]
    names = dict((await db.execute(select(Person.id, Person.name))).all())
    for m in (await db.scalars(select(RelayedMessage).where(RelayedMessage.case_id == case.id))).all():
        body = m.text or ("[图片]" if m.kind == "image" else f"[{m.kind}]")
        lines.append(Line(m.at, "留言", names.get(m.from_id, ""), f"→ {names.get(m.to_id, '')}：{body}"))
    lines.sort(key=lambda ln: ln.at)
    return lines


async def case_page(request: web.Request) -> web.Response:
    """案件: summary, timeline, offers, match reasons and the actions its state allows."""
    viewer = viewer_of(request)
    async with request.app[sessions_key]() as db:
        case = await _case_for(request, db, viewer)
        enterprise = await db.get(Enterprise, case.enterprise_id) if case.enterprise_id else None
        requester = await db.get(Person, case.requester_id)
        craftsman = await db.get(Person, case.craftsman_id) if case.craftsman_id else None
        offers = (await db.execute(select(Offer, Person.name).join(Person, Person.id == Offer.craftsman_id)
                                   .where(Offer.case_id == case.id).order_by(Offer.id))).all()
        # Dispatch choices: the matcher's candidates first, then the case's trade group.
        group = (await db.execute(
            select(Person.id, Person.name, Craftsman.code, Craftsman.available).join(Craftsman, Craftsman.person_id == Person.id)
            .where(Craftsman.trade_group == case.trade_group).order_by(Craftsman.code))).all()
        timeline = await _timeline(db, case)
    state = CaseState(case.state)
    choices = [(int(m["person_id"]), f"{m['name']}（推荐）") for m in case.match_reasons if "person_id" in m]
    seen = {pid for pid, _ in choices}
    choices += [(pid, f"{name}（{code}{'' if available else '，休息中'}）") for pid, name, code, available in group
                if pid not in seen]
    if not viewer.scope.every_group:  # a lead dispatches within their groups only (handlers/staff/dispatching.py)
        own = {pid for pid, *_ in group}
        choices = [(pid, label) for pid, label in choices if pid in own]
    return render(
        request, "case.html", case=case, enterprise=enterprise, requester=requester, craftsman=craftsman,
        offers=[(o, name, OFFER_LABELS.get(OfferState(o.state), o.state)) for o, name in offers],
        timeline=timeline, mode=mode_label(case.mode), choices=choices,
        can={"review": state == CaseState.SUBMITTED, "dispatch": state in DISPATCHABLE,
             "redispatch": state in REDISPATCHABLE, "cancel": state in ALLOWED[CaseState.CANCELLED]},
    )


Action = Callable[[HandlerContext, Case, dict[str, str]], Awaitable[str]]


async def _approve(ctx: HandlerContext, case: Case, form: dict[str, str]) -> str:
    return await run_command(ctx.session, ctx.services, ctx.person, f"审核 {case.number} 通过")


async def _reject(ctx: HandlerContext, case: Case, form: dict[str, str]) -> str:
    reason = " ".join(form.get("reason", "").split())  # one line: the reason ends the command
    if not reason:
        raise UserError("驳回需要写明原因。")
    return await run_command(ctx.session, ctx.services, ctx.person, f"审核 {case.number} 驳回 {reason}")


async def _dispatch(ctx: HandlerContext, case: Case, form: dict[str, str]) -> str:
    code = form.get("code", "").strip()
    if code:
        craftsman = await find_craftsman(ctx, code)
    else:
        try:
            craftsman_id = int(form.get("craftsman", ""))
        except ValueError:
            raise UserError("请选择一位师傅，或填写师傅编号。") from None
        person = await ctx.session.get(Person, craftsman_id)
        if person is None or person.role != Role.CRAFTSMAN:
            raise UserError("没有找到这位师傅。")
        craftsman = person
    await dispatch_to(ctx, case, craftsman)
    return f"已将 #{case.number} 派给 {craftsman.name}，等待师傅接单。"


async def _redispatch(ctx: HandlerContext, case: Case, form: dict[str, str]) -> str:
    await redispatch_case(ctx, case, form.get("reason", "").strip())
    return f"#{case.number} 已改派，正在联系下一位候选师傅。"


async def _cancel(ctx: HandlerContext, case: Case, form: dict[str, str]) -> str:
    await cancel_case(ctx, case, form.get("reason", "").strip())
    return f"#{case.number} 已取消，已告知相关各方。"


async def _note(ctx: HandlerContext, case: Case, form: dict[str, str]) -> str:
    note = form.get("note", "").strip()
    if not note:
        raise UserError("备注不能为空。")
    await add_note(ctx, case, note)
    return "备注已添加。"


ACTIONS: dict[str, Action] = {"approve": _approve, "reject": _reject, "dispatch": _dispatch,
                              "redispatch": _redispatch, "cancel": _cancel, "note": _note}


async def case_action(request: web.Request) -> web.StreamResponse:
    """Run one action in one transaction; a refusal (UserError) rolls it back and is shown as is."""
    action = ACTIONS.get(request.match_info["action"])
    if action is None:
        raise web.HTTPNotFound()
    viewer = viewer_of(request)
    form = {k: str(v)[:MAX_TEXT] for k, v in (await request.post()).items() if isinstance(v, str)}
    services = request.app[services_key]
    location = f"/console/cases/{_number(request)}"
    try:
        async with request.app[sessions_key]() as db, db.begin():
            case = await _case_for(request, db, viewer)
            person = await db.get(Person, viewer.person_id)
            assert person is not None
            message = await action(await context_for(db, services, person), case, form)
    except UserError as err:
        raise redirect(location, str(err), error=True) from None
    services.on_outbox()  # after the commit: the sender now sees the rows the action wrote
    request.app[hub_key].changed()
    raise redirect(location, message or "已完成。")


def routes() -> list[web.RouteDef]:
    everyone = guard(*ROLES)
    return [
        web.get("/console/cases/{number}", everyone(case_page)),
        web.post("/console/cases/{number}/{action}", everyone(case_action)),
    ]
