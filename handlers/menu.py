"""菜单式服务: craftsmen publish service items; enterprises browse them and order one with 预约."""

from __future__ import annotations

from sqlalchemy import select

from handlers.cases import add_event, transition
from handlers.context import HandlerContext, UserError
from handlers.dispatch import make_offer
from handlers.parsing import record_id
from handlers.router import Command, Router
from storage.models import Case, CaseState, Craftsman, Enterprise, MenuItem, Mode, Person, Role

router = Router("menu")
MAX_ITEMS_SHOWN = 30


@router.command("菜单", roles={Role.CRAFTSMAN}, summary="菜单 添加 标题 说明 / 菜单 删除 编号 / 菜单 — 管理服务菜单")
async def craftsman_menu(ctx: HandlerContext, cmd: Command) -> None:
    """A craftsman adds, removes or lists their published service items."""
    action, _, rest = cmd.rest.partition(" ")
    if action in ("添加", "新增"):
        title, _, description = rest.strip().partition(" ")
        if not title or len(title) > 100:
            raise UserError("格式：菜单 添加 标题 说明，例如「菜单 添加 冲压模具刃口修复 现场诊断并修磨刃口」。")
        item = MenuItem(craftsman_id=ctx.person.id, title=title, description=description.strip()[:1000],
                        created_at=ctx.now())
        ctx.session.add(item)
        await ctx.session.flush()
        await ctx.reply(f"已发布服务菜单 {item.id}：{title}。企业回复「预约 {item.id}」即可直接向您下单。")
        return
    if action in ("删除", "下架"):
        item_id = record_id(rest)
        found = await ctx.session.get(MenuItem, item_id) if item_id is not None else None
        if found is None or found.craftsman_id != ctx.person.id or not found.active:
            raise UserError("没有找到您的这条菜单，请检查编号（回复「菜单」查看）。")
        found.active = False
        await ctx.reply(f"已下架菜单 {found.id}：{found.title}。")
        return
    items = (await ctx.session.scalars(select(MenuItem).where(
        MenuItem.craftsman_id == ctx.person.id, MenuItem.active.is_(True)).order_by(MenuItem.id))).all()
    if not items:
        await ctx.reply("您还没有发布服务菜单。回复「菜单 添加 标题 说明」发布一项。")
        return
    await ctx.reply("您的服务菜单：\n" + "\n".join(f"· {i.id} {i.title}" for i in items) + "\n下架：菜单 删除 编号")


@router.command("菜单", roles={Role.ENTERPRISE}, summary="菜单 [小组] — 浏览工匠服务菜单")
async def browse(ctx: HandlerContext, cmd: Command) -> None:
    """Browse published service items, by trade group."""
    group = cmd.rest.strip()
    stmt = (select(MenuItem, Person, Craftsman).join(Person, Person.id == MenuItem.craftsman_id)
            .join(Craftsman, Craftsman.person_id == MenuItem.craftsman_id).where(MenuItem.active.is_(True)))
    if group:
        stmt = stmt.where(Craftsman.trade_group == group)
    rows = (await ctx.session.execute(stmt.order_by(Craftsman.trade_group, MenuItem.id).limit(MAX_ITEMS_SHOWN))).all()
    if not rows:
        raise UserError(f"{'「' + group + '」' if group else '目前'}还没有服务菜单。也可以直接描述您的问题。")
    lines, last_group = ["工匠服务菜单（回复「预约 编号」下单）："], ""
    for item, person, craftsman in rows:
        if craftsman.trade_group != last_group:
            lines.append(f"【{craftsman.trade_group}】")
            last_group = craftsman.trade_group
        desc = f"：{item.description[:30]}" if item.description else ""
        lines.append(f"{item.id}. {item.title}（{person.name}，{craftsman.region}）{desc}")
    await ctx.reply("\n".join(lines))


@router.command("预约", roles={Role.ENTERPRISE}, summary="预约 菜单编号 [补充说明] — 按菜单向师傅下单")
async def order(ctx: HandlerContext, cmd: Command) -> None:
    """Order a menu item: a case offered straight to the craftsman who published it."""
    if ctx.person.enterprise_id is None:
        raise UserError("请先发一条消息完成企业登记，再预约服务。")
    item = await ctx.session.get(MenuItem, cmd.number) if cmd.number else None
    if item is None or not item.active:
        raise UserError("没有找到这项服务，请回复「菜单」查看可预约的服务。")
    craftsman = await ctx.session.get(Craftsman, item.craftsman_id)
    enterprise = await ctx.session.get(Enterprise, ctx.person.enterprise_id)
    now = ctx.now()
    note = cmd.rest.strip()
    case = Case(enterprise_id=ctx.person.enterprise_id, requester_id=ctx.person.id, state=CaseState.DRAFT.value,
                text=f"预约服务：{item.title}" + (f"。{note}" if note else ""),
                trade_group=craftsman.trade_group if craftsman else "", group_confidence=1.0, mode=Mode.ONLINE.value,
                region=enterprise.region if enterprise else "", menu_item_id=item.id, created_at=now, submitted_at=now)
    ctx.session.add(case)
    await ctx.session.flush()
    await transition(ctx, case, CaseState.SUBMITTED, actor=ctx.person, detail=f"预约菜单 {item.id}")
    await add_event(ctx, ctx.session, case, "request", at=now, actor=ctx.person, detail=case.text,
                    data={"menu_item": item.id})
    await transition(ctx, case, CaseState.APPROVED, actor=None, detail="菜单预约直接派给发布的师傅")
    await transition(ctx, case, CaseState.MATCHING, actor=None, detail="菜单预约")
    await make_offer(ctx, case, item.craftsman_id, reasons=[f"企业预约了该师傅的服务菜单「{item.title}」"])
    await ctx.reply(f"已预约「{item.title}」，案件编号 #{case.number}，正在请师傅确认，接单后会在这里和您联系。")
