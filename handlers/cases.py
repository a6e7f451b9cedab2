"""The case state machine: loading cases by number, conditional transitions, and the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import HandlerContext, UserError
from handlers.parsing import case_number
from storage.models import (
    ACTIVE_STATES,
    CASE_NUMBER_OFFSET,
    Case,
    CaseEvent,
    CaseState,
    Mode,
    Person,
    Role,
)

STATE_LABELS = {
    CaseState.DRAFT: "草稿",
    CaseState.SUBMITTED: "待审核",
    CaseState.APPROVED: "已通过",
    CaseState.REJECTED: "已驳回",
    CaseState.MATCHING: "匹配中",
    CaseState.OFFERED: "待接单",
    CaseState.ASSIGNED: "服务中",
    CaseState.IN_PROGRESS: "服务中",
    CaseState.RESOLVED: "待评价",
    CaseState.CLOSED: "已结案",
    CaseState.CANCELLED: "已取消",
    CaseState.ESCALATED: "待人工派单",
}
MODE_LABELS = {Mode.ONLINE: "线上指导", Mode.ONSITE: "现场服务", Mode.TRAINING: "培训讲座"}

# Which states a transition may start from: anything else is refused, whoever asks.
ALLOWED: dict[CaseState, tuple[CaseState, ...]] = {
    CaseState.SUBMITTED: (CaseState.DRAFT,),
    CaseState.APPROVED: (CaseState.SUBMITTED,),
    CaseState.REJECTED: (CaseState.SUBMITTED,),
    CaseState.MATCHING: (
        CaseState.APPROVED,
        CaseState.SUBMITTED,
        CaseState.OFFERED,
        CaseState.ESCALATED,
        CaseState.ASSIGNED,
        CaseState.IN_PROGRESS,
    ),
    CaseState.OFFERED: (CaseState.MATCHING, CaseState.OFFERED),
    CaseState.ASSIGNED: (CaseState.OFFERED, CaseState.ESCALATED, CaseState.MATCHING),
    CaseState.IN_PROGRESS: (CaseState.ASSIGNED, CaseState.IN_PROGRESS),
    CaseState.RESOLVED: ACTIVE_STATES,
    CaseState.CLOSED: (CaseState.RESOLVED,),
    CaseState.ESCALATED: (CaseState.MATCHING, CaseState.OFFERED, CaseState.SUBMITTED, CaseState.APPROVED),
    CaseState.CANCELLED: (
        CaseState.SUBMITTED,
        CaseState.APPROVED,
        CaseState.MATCHING,
        CaseState.OFFERED,
        CaseState.ASSIGNED,
        CaseState.IN_PROGRESS,
        CaseState.ESCALATED,
    ),
}


def number_to_id(number: int) -> int:
    return number - CASE_NUMBER_OFFSET


def state_label(state: str) -> str:
    return STATE_LABELS.get(CaseState(state), state)


def mode_label(mode: str) -> str:
    return MODE_LABELS.get(Mode(mode), mode)


async def get_case(session: AsyncSession, number: int | None) -> Case:
    """The case with this number; a missing, out-of-range or unknown number is a polite UserError."""
    number = case_number(number)
    case = await session.get(Case, number_to_id(number))
    if case is None or case.state == CaseState.DRAFT:
        raise UserError(f"没有找到案件 #{number}，请检查编号。")
    return case


def can_see(person: Person, case: Case, *, offered_to: bool = False) -> bool:
    """DESIGN invariant 6: craftsmen see cases offered or assigned to them, enterprises their own."""
    if person.role == Role.STAFF:
        return True
    if person.role == Role.CRAFTSMAN:
        return case.craftsman_id == person.id or offered_to
    return case.requester_id == person.id or (
        person.enterprise_id is not None and case.enterprise_id == person.enterprise_id
    )


async def add_event(
    ctx: HandlerContext | None,
    session: AsyncSession,
    case: Case,
    kind: str,
    *,
    at: datetime,
    detail: str = "",
    actor: Person | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    session.add(
        CaseEvent(
            case_id=case.id,
            at=at,
            kind=kind,
            actor_id=actor.id if actor else None,
            actor_label=(actor.name or "用户") if actor else "系统",
            from_state=from_state,
            to_state=to_state,
            detail=detail,
            data=data or {},
        )
    )


async def transition(
    ctx: HandlerContext,
    case: Case,
    to: CaseState,
    *,
    actor: Person | None,
    detail: str = "",
    values: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
) -> bool:
    """Move ``case`` to ``to`` with a conditional UPDATE; False if another transaction moved it first.

    The WHERE on the current state is what makes two simultaneous 接单 give exactly one assignment.
    """
    frm = CaseState(case.state)
    if frm not in ALLOWED[to]:
        return False
    now = ctx.now()
    changes: dict[str, Any] = {"state": to.value, "last_activity_at": now, **(values or {})}
    result = await ctx.session.execute(
        update(Case)
        .where(Case.id == case.id, Case.state == frm.value)
        .values(**changes)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        await ctx.session.refresh(case)
        return False
    for key, value in changes.items():
        setattr(case, key, value)
    await add_event(
        ctx, ctx.session, case, "state", at=now, detail=detail, actor=actor, from_state=frm.value, to_state=to.value,
        data=data,
    )
    ctx.services.on_case_change()
    return True


async def open_cases_of(session: AsyncSession, person: Person) -> list[Case]:
    """A person's cases in which they are talking to the other side (assigned / in progress)."""
    if person.role == Role.CRAFTSMAN:
        where = Case.craftsman_id == person.id
    elif person.enterprise_id is not None:
        where = (Case.requester_id == person.id) | (Case.enterprise_id == person.enterprise_id)
    else:
        where = Case.requester_id == person.id
    stmt = select(Case).where(where, Case.state.in_([s.value for s in ACTIVE_STATES])).order_by(Case.id)
    return list((await session.scalars(stmt)).all())


async def current_case(session: AsyncSession, person: Person) -> Case | None:
    """The case a free-text message belongs to: the chosen one if still open, else the only open one."""
    cases = await open_cases_of(session, person)
    if not cases:
        return None
    for c in cases:
        if c.id == person.current_case_id:
            return c
    return cases[-1]


def summary(case: Case, enterprise_name: str = "") -> str:
    lines = [f"案件 #{case.number}（{state_label(case.state)}）"]
    if enterprise_name:
        lines.append(f"企业：{enterprise_name}")
    if case.trade_group:
        lines.append(f"专业：{case.trade_group}")
    lines.append(f"方式：{mode_label(case.mode)}{' · 紧急' if case.urgent else ''}")
    if case.address:
        lines.append(f"地址：{case.address}")
    elif case.region:
        lines.append(f"地区：{case.region}")
    lines.append(f"需求：{case.text}")
    return "\n".join(lines)
