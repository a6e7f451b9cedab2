"""Rating after 完成, and the points it credits to the craftsman (append-only ledger)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from handlers.cases import add_event, get_case, transition
from handlers.context import HandlerContext, UserError
from handlers.messages import Button
from handlers.parsing import rating_question, read_rating
from handlers.router import Command, Router
from storage.models import Case, CaseState, Feedback, Mode, PointsEntry, Role

router = Router("enterprise.feedback")
RATING = "rating"


def rating_buttons(number: int) -> list[Button]:
    return [Button("★" * n, f"评价 {number} {n}") for n in range(5, 0, -1)]


TAP_CLOSED = "已结案"  # a rating card tapped after the case closed unrated


def rated_label(rating: int | None) -> str:
    """What a tapped rating card shows instead of its stars (≤ 10 characters)."""
    return f"已评价 {'★' * rating}" if rating else TAP_CLOSED


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
    from handlers import timers

    await timers.cancel(ctx.session, case_id=case.id)


@router.command("评价", roles={Role.ENTERPRISE}, summary="评价 编号 1-5 评语 — 为完成的服务打分")
async def rate(ctx: HandlerContext, cmd: Command) -> None:
    """Rate a resolved case of one's own enterprise."""
    case = await get_case(ctx.session, cmd.number)
    if case.requester_id != ctx.person.id and case.enterprise_id != ctx.person.enterprise_id:
        raise UserError(f"案件 #{case.number} 不是贵单位的案件。")
    answer = read_rating(cmd.rest)
    example = f"评价 {case.number} 5 师傅很专业"
    if answer is None:
        raise UserError(f"请打 1–5 分，例如「{example}」。")
    if answer.value is None:
        raise UserError(rating_question(answer.typed, example))
    rating = answer.value
    await record_rating(ctx, case, rating, answer.comment)
    ctx.tap_outcome = rated_label(rating)
    if ctx.dialog.flow == RATING:
        await ctx.dialog.clear()
    await ctx.reply(f"感谢评价！案件 #{case.number} 已结案。有新的问题随时发给我。")


@router.dialog(RATING, ttl=timedelta(days=3))
async def rating_reply(ctx: HandlerContext, text: str) -> None:
    """After 完成, a reply of just a score 1–5 (optionally with a comment) is the rating.

    A bare number that is not a score (「10」, 「5.5」, 「0」) is asked about and nothing is recorded;
    a number running into other text (「10点前能来吗」, 「3号线」) is a message, not a rating.
    """
    answer = read_rating(text)
    case = await ctx.session.get(Case, int(ctx.dialog.data["case_id"]))
    if case is None or case.state != CaseState.RESOLVED:
        await ctx.dialog.clear()
        from handlers.enterprise.chat import enterprise_text  # not a rating after all: treat as a message

        await enterprise_text(ctx, text)
        return
    if answer is not None and answer.value is None and not answer.attached and not answer.comment:
        raise UserError(rating_question(answer.typed, "5"))  # the dialog stays: the next reply may be the score
    if answer is None or answer.value is None or answer.attached:
        # Not a score: the conversation goes on (a question to the craftsman, a new request).
        await ctx.dialog.clear()
        from handlers.enterprise.chat import enterprise_text

        await enterprise_text(ctx, text)
        return
    await ctx.dialog.clear()
    await record_rating(ctx, case, answer.value, answer.comment)
    await ctx.reply(f"感谢评价！案件 #{case.number} 已结案。有新的问题随时发给我。")


async def close_unrated(ctx: HandlerContext, case: Case) -> None:
    """Auto-close after the feedback window: recorded as unrated, not as a score."""
    await record_rating(ctx, case, None)


