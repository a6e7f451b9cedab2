"""Ratings and points (a service, no router): closing a resolved case with its rating and crediting the
craftsman's points to the append-only ledger. The chat side (「评价」, the bare-score reply) is the
router ``handlers/enterprise/rating.py``; the reminders call :func:`close_unrated` and
:func:`rating_buttons` from here."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import select

from handlers import timers
from handlers.cases import add_event, transition
from handlers.context import HandlerContext, UserError
from handlers.dialogs import open_dialog
from handlers.messages import Button
from storage.models import Case, CaseState, Feedback, Mode, PointsEntry

RATING = "rating"  # dialog flow: after 完成, the enterprise's bare score is the rating of this case


class RatingStep(StrEnum):
    """Steps of the :data:`RATING` dialog (the stored values)."""

    RATING = "rating"


TAP_CLOSED = "已结案"  # a rating card tapped after the case closed unrated


def rating_buttons(number: int) -> list[Button]:
    return [Button("★" * n, f"评价 {number} {n}") for n in range(5, 0, -1)]


def rated_label(rating: int | None) -> str:
    """What a tapped rating card shows instead of its stars (≤ 10 characters)."""
    return f"已评价 {'★' * rating}" if rating else TAP_CLOSED


async def await_rating(ctx: HandlerContext, case: Case) -> None:
    """Open the requester's :data:`RATING` dialog so a reply of just a digit rates ``case``.

    An open dialog of the requester (a registration, a new request) is left alone: it is theirs.
    """
    await open_dialog(ctx.session, ctx.clock, case.requester_id, RATING, RatingStep.RATING, {"case_id": case.id})


def credit_points(ctx: HandlerContext, case: Case, rating: int | None) -> float:
    """Write one ledger entry per rule that applies; return the total credited."""
    rules = ctx.settings.points
    assert case.craftsman_id is not None
    entries: list[tuple[float, str, str]] = [(rules.per_case, "per_case", "完成一次服务")]
    hours = min(case.help_hours or 0.0, rules.max_hours_counted)
    if hours > 0 and rules.per_help_hour:
        entries.append((round(hours * rules.per_help_hour, 2), "per_help_hour", f"服务 {hours:g} 小时"))
    if case.mode == Mode.ONSITE and rules.onsite_bonus:
        entries.append((rules.onsite_bonus, "onsite_bonus", "现场服务"))
    if rating == 5 and rules.rating_5_bonus:
        entries.append((rules.rating_5_bonus, "rating_5_bonus", "企业五星好评"))
    elif rating == 4 and rules.rating_4_bonus:
        entries.append((rules.rating_4_bonus, "rating_4_bonus", "企业四星评价"))
    for points, rule, note in entries:
        ctx.session.add(PointsEntry(craftsman_id=case.craftsman_id, case_id=case.id, points=points, rule=rule,
                                    note=note, at=ctx.now()))
    return sum(p for p, _, _ in entries)


async def record_rating(ctx: HandlerContext, case: Case, rating: int | None, comment: str = "") -> None:
    """Close a resolved case with its rating (None = closed unrated) and credit the points."""
    existing = await ctx.session.scalar(select(Feedback).where(Feedback.case_id == case.id))
    if case.state != CaseState.RESOLVED:
        # A tap on an old rating card: once the case is closed the card can say how it ended.
        closed = rated_label(existing.rating if existing else None) if case.state == CaseState.CLOSED else None
        raise UserError(f"案件 #{case.number} 目前不在待评价状态。", tap_outcome=closed)
    if existing is not None:
        raise UserError(f"案件 #{case.number} 已经评价过了，谢谢！", tap_outcome=rated_label(existing.rating))
    if not await transition(ctx, case, CaseState.CLOSED, actor=ctx.person if rating else None,
                            detail="企业评价" if rating else "超时未评价，自动结案",
                            values={"rating": rating, "closed_at": ctx.now()}):
        raise UserError(f"案件 #{case.number} 目前不在待评价状态。")
    ctx.session.add(Feedback(case_id=case.id, person_id=ctx.person.id if rating else None, rating=rating,
                             comment=comment[:500], at=ctx.now()))
    await add_event(ctx, ctx.session, case, "rating", at=ctx.now(), actor=ctx.person if rating else None,
                    detail=f"{rating} 分 {comment}".strip() if rating else "未评价", data={"rating": rating})
    total = credit_points(ctx, case, rating)
    if case.craftsman_id is not None:
        stars = f"{'★' * rating}（{rating} 分）" if rating else "企业未评价"
        remark = f"，评语：{comment}" if comment else ""
        await ctx.outbox.to_person(case.craftsman_id, f"#{case.number} 已结案：{stars}{remark}。积分 +{total:g}，感谢您的付出！",
                                   case_id=case.id)
    await timers.cancel(ctx.session, case_id=case.id)


async def close_unrated(ctx: HandlerContext, case: Case) -> None:
    """Auto-close after the feedback window: recorded as unrated, not as a score."""
    await record_rating(ctx, case, None)
