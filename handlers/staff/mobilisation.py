"""应急动员: staff call every available craftsman of a group (optionally a region); 报名 until a deadline."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from handlers import timers
from handlers.context import HandlerContext, UserError
from handlers.matching import parse_region, region_affinity, shipped_taxonomy
from handlers.messages import Button, card
from handlers.router import Command, Router
from storage.models import Craftsman, Mobilisation, MobilisationReply, Person, Role, Timer

router = Router("staff.mobilisation")
DEADLINE = "mobilisation_deadline"


def _split(rest: str) -> tuple[str, str, str]:
    """「焊接工艺 宁波 文字」 → (group, region, text); the region is optional."""
    parts = rest.split(maxsplit=2)
    if not parts:
        return "", "", ""
    group = parts[0]
    if len(parts) >= 2 and parse_region(parts[1]).province:
        return group, parts[1], parts[2] if len(parts) > 2 else ""
    return group, "", " ".join(parts[1:])


@router.command("动员", roles={Role.STAFF}, summary="动员 小组 [地区] 内容 — 应急动员一个小组的师傅")
async def mobilise(ctx: HandlerContext, cmd: Command) -> None:
    """Broadcast an urgent call to a whole trade group; who answers 报名 is reported at the deadline."""
    group, region, text = _split(cmd.raw[len(cmd.name):].strip())
    if not group or not text:
        raise UserError("格式：动员 小组 [地区] 内容，例如「动员 焊接工艺 宁波 台风后管道抢修，需 5 人」。")
    known = set(shipped_taxonomy().group_names) | set(
        (await ctx.session.scalars(select(Craftsman.trade_group).distinct())).all())
    if group not in known:
        raise UserError(f"没有「{group}」这个小组，请检查名称。")
    rows = (await ctx.session.scalars(
        select(Craftsman).where(Craftsman.trade_group == group, Craftsman.available.is_(True)))).all()
    now = ctx.now()
    wanted = parse_region(region) if region else None
    # 「宁波」 means the city: a craftsman elsewhere in 浙江 is not called; 「浙江」 means the province.
    close_enough = {"district", "city"} if wanted and wanted.city else {"district", "city", "province"}
    targets = [c for c in rows if (c.leave_until is None or c.leave_until <= now)
               and (not region or region_affinity(region, c.region) in close_enough)]
    if not targets:
        raise UserError(f"{group}{'（' + region + '）' if region else ''} 目前没有可联系的师傅。")
    minutes = ctx.settings.timers.mobilisation_deadline_min
    deadline = now + timedelta(minutes=minutes)
    mob = Mobilisation(staff_id=ctx.person.id, trade_group=group, region=region, text=text[:1000],
                       deadline=deadline, created_at=now)
    ctx.session.add(mob)
    await ctx.session.flush()
    shown = deadline.astimezone(ctx.settings.tz).strftime("%H:%M")
    for c in targets:
        await ctx.outbox.to_person(c.person_id, card(
            f"【应急动员】{group}{' · ' + region if region else ''}",
            f"{text}\n能参加请在 {shown} 前点「报名」（或回复「报名 {mob.id}」）。",
            [Button("报名", f"报名 {mob.id}")], urgent=True,
        ))
    timers.schedule(ctx.session, DEADLINE, deadline, now=now, person_id=ctx.person.id, payload={"id": mob.id})
    await ctx.reply(f"已向 {len(targets)} 位{group}师傅发出动员（编号 {mob.id}），{shown} 截止后汇总报名名单给您。")


@router.command("报名", roles={Role.CRAFTSMAN}, summary="报名 编号 — 响应应急动员")
async def sign_up(ctx: HandlerContext, cmd: Command) -> None:
    """Answer an emergency call before its deadline (once)."""
    mob = await ctx.session.get(Mobilisation, cmd.number) if cmd.number else None
    if mob is None:
        raise UserError("没有找到这次动员，请检查编号。")
    if ctx.now() > mob.deadline or mob.reported_at is not None:
        raise UserError("这次动员已经截止，感谢您的热心！")
    try:
        async with ctx.session.begin_nested():
            ctx.session.add(MobilisationReply(mobilisation_id=mob.id, craftsman_id=ctx.person.id, at=ctx.now()))
    except IntegrityError:
        await ctx.reply("您已经报过名了，谢谢！")
        return
    await ctx.reply("报名成功！工作人员会尽快与您联系具体安排。")


async def report(ctx: HandlerContext, timer: Timer) -> None:
    """At the deadline, staff get the list of who answered."""
    mob = await ctx.session.get(Mobilisation, int(timer.payload["id"]))
    if mob is None or mob.reported_at is not None:
        return
    mob.reported_at = ctx.now()
    rows = (await ctx.session.execute(
        select(Person, Craftsman).join(MobilisationReply, MobilisationReply.craftsman_id == Person.id)
        .join(Craftsman, Craftsman.person_id == Person.id)
        .where(MobilisationReply.mobilisation_id == mob.id).order_by(MobilisationReply.at)
    )).all()
    head = f"应急动员 {mob.id}（{mob.trade_group}{' · ' + mob.region if mob.region else ''}）已截止："
    if not rows:
        body = head + "暂无师傅报名。可以扩大地区范围后再次动员。"
    else:
        names = "\n".join(f"· {p.name}（编号 {c.code}，{c.region}{'，' + p.phone if p.phone else ''}）" for p, c in rows)
        body = f"{head}{len(rows)} 位师傅报名：\n{names}"
    await ctx.outbox.to_person(mob.staff_id, body)
