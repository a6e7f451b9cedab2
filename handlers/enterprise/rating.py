"""The enterprise's rating after 完成: the 「评价」 command and the bare-score reply (the :data:`RATING`
dialog). Closing the case and crediting points is the service ``handlers/ratings.py``."""

from __future__ import annotations

from datetime import timedelta

from handlers.cases import get_case
from handlers.context import HandlerContext, UserError
from handlers.enterprise.chat import enterprise_text
from handlers.parsing import rating_question, read_rating
from handlers.ratings import RATING, rated_label, record_rating
from handlers.router import Command, Router
from storage.models import Case, CaseState, Role

router = Router("enterprise.rating")


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
        await enterprise_text(ctx, text)  # not a rating after all: treat as a message
        return
    if answer is not None and answer.value is None and not answer.attached and not answer.comment:
        raise UserError(rating_question(answer.typed, "5"))  # the dialog stays: the next reply may be the score
    if answer is None or answer.value is None or answer.attached:
        # Not a score: the conversation goes on (a question to the craftsman, a new request).
        await ctx.dialog.clear()
        await enterprise_text(ctx, text)
        return
    await ctx.dialog.clear()
    await record_rating(ctx, case, answer.value, answer.comment)
    await ctx.reply(f"感谢评价！案件 #{case.number} 已结案。有新的问题随时发给我。")
