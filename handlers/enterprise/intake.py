"""Enterprise flows: first-contact registration, then a request becomes a case in a few short turns."""

from __future__ import annotations

import re
from enum import StrEnum

from handlers import candidates
from handlers.cases import add_event, mode_label, transition
from handlers.context import HandlerContext
from handlers.dispatch import start_matching
from handlers.messages import Button, card
from handlers.router import Command, Router
from handlers.staff.review import notify_review
from storage.models import Case, CaseState, Enterprise, Mode, Role

router = Router("enterprise.intake")
REGISTER = "register"  # dialog flow: first contact, company → contact → region
REQUEST = "request"  # dialog flow: a draft request, describe → mode → urgency → address → confirm


class RegisterStep(StrEnum):
    """Steps of the :data:`REGISTER` dialog (the stored values)."""

    COMPANY = "company"
    CONTACT = "contact"
    REGION = "region"


class RequestStep(StrEnum):
    """Steps of the :data:`REQUEST` dialog (the stored values)."""

    DESCRIBE = "describe"
    MODE = "mode"
    URGENCY = "urgency"
    ADDRESS = "address"
    CONFIRM = "confirm"

MODE_CHOICES = {"线上指导": Mode.ONLINE, "现场服务": Mode.ONSITE, "培训讲座": Mode.TRAINING}
MODE_WORDS = {
    Mode.ONLINE: ("线上", "远程", "视频", "电话", "1"),
    Mode.ONSITE: ("现场", "上门", "到厂", "来厂", "2"),
    Mode.TRAINING: ("培训", "讲座", "授课", "3"),
}
URGENT_WORDS = ("紧急", "急", "加急", "马上", "尽快", "停产", "停机")
QUESTION = re.compile(r"[?？]\s*$|^(请问|怎么|如何|为什么|为啥|咋)|怎么办|如何|为什么|什么原因|是不是|能不能")
CANCEL_WORDS = {"取消", "算了", "不用了", "退出"}


def _pick_mode(text: str) -> Mode | None:
    for mode, words in MODE_WORDS.items():
        if any(w in text for w in words):
            return mode
    return None


async def start_registration(ctx: HandlerContext, first_text: str) -> None:
    """First contact: ask for the company, the contact's name and the region, one at a time."""
    ctx.dialog.start(REGISTER, RegisterStep.COMPANY, {"pending_request": first_text.strip()})
    await ctx.reply(
        "您好！这里是劳模工匠服务队。第一次使用需要简单登记（随时回复「取消」可退出）。\n"
        "请问贵单位（企业）的全称是？"
    )


@router.dialog(REGISTER)
async def registration_step(ctx: HandlerContext, text: str) -> None:
    """Collect company → contact name → region, then continue with any request sent first."""
    value = text.strip()
    if not value:
        await ctx.reply("请用文字回复。")
        return
    step = ctx.dialog.step
    if step == RegisterStep.COMPANY:
        if len(value) < 2 or len(value) > 100:
            await ctx.reply("企业名称请填写 2–100 个字。")
            return
        ctx.dialog.go(RegisterStep.CONTACT, company=value)
        await ctx.reply("好的。请问您怎么称呼？（姓名或“王工”之类即可）")
    elif step == RegisterStep.CONTACT:
        if len(value) > 40:
            await ctx.reply("称呼请简短一些（40 个字以内）。")
            return
        ctx.dialog.go(RegisterStep.REGION, contact=value)
        await ctx.reply("贵单位在哪个地区？（如：宁波市北仑区）")
    else:  # RegisterStep.REGION
        data = ctx.dialog.data
        enterprise = Enterprise(name=data["company"], region=value, created_at=ctx.now())
        ctx.session.add(enterprise)
        await ctx.session.flush()
        ctx.person.enterprise_id = enterprise.id
        ctx.person.name = data["contact"]
        pending = str(data.get("pending_request", ""))
        await ctx.dialog.clear()
        await ctx.reply(
            f"登记完成：{enterprise.name}（{value}），联系人 {data['contact']}。\n"
            "有技术难题请直接描述，可以附照片；工匠师傅会尽快响应。"
        )
        if pending and not _is_greeting(pending):
            await start_request(ctx, pending)


def _is_greeting(text: str) -> bool:
    t = re.sub(r"[\s，。！!,.~～]", "", text)
    return len(t) <= 6 and any(w in t for w in ("你好", "您好", "在吗", "hello", "hi", "哈喽", "嗨"))


async def start_request(ctx: HandlerContext, text: str, *, photos: list[str] | None = None) -> None:
    """A free-text request becomes a draft: propose the trade group, then ask what is missing."""
    if ctx.person.enterprise_id is None:
        await start_registration(ctx, text)
        return
    text = text.strip()
    if _is_greeting(text) or len(text) < 4:
        ctx.dialog.start(REQUEST, RequestStep.DESCRIBE, {"photos": photos or []})
        await ctx.reply("您好！请直接描述遇到的技术问题（设备、现象、已经试过的办法），可以附照片。")
        return
    await _understood(ctx, text, photos or [])


async def _understood(ctx: HandlerContext, text: str, photos: list[str]) -> None:
    cls = await candidates.classify(ctx.session, text)
    best = cls.guesses[0] if cls.guesses else None
    group = best.group if best else ""
    terms = list(best.terms[:5]) if best else []
    data: dict[str, object] = {
        "text": text,
        "photos": photos,
        "group": group,
        "confidence": round(best.score, 3) if best else 0.0,
        "confident": cls.confident,
        "terms": terms,
        "urgent": any(w in text for w in URGENT_WORDS),
    }
    understood = (
        f"我理解这是【{group}】方面的问题（关键词：{'、'.join(terms[:3]) or group}）。"
        if group
        else "暂时没能判断属于哪个专业，提交后工作人员会帮您分派。"
    )
    if QUESTION.search(text) and not _pick_mode(text):
        ctx.dialog.start(REQUEST, RequestStep.CONFIRM, {**data, "mode": Mode.ONLINE.value})  # a plain question: 远程指导
        await _ask_confirm(ctx, understood)
        return
    ctx.dialog.start(REQUEST, RequestStep.MODE, data)
    await ctx.reply(
        card(
            "需要哪种服务方式？",
            understood + "\n请选择服务方式：",
            [Button(label, label) for label in MODE_CHOICES],
        )
    )


def _supplement(ctx: HandlerContext, value: str) -> str:
    """A longer answer that is not a choice is more about the problem: add it to the description."""
    if len(value) < 6:
        return ""
    ctx.dialog.go(RequestStep(ctx.dialog.step or RequestStep.MODE), text=f"{ctx.dialog.data['text']}；{value}"[:2000])
    return "已补充到问题描述。"


async def _ask_confirm(ctx: HandlerContext, prefix: str = "") -> None:
    d = ctx.dialog.data
    lines = [prefix] if prefix else []
    lines += [
        "请确认需求：",
        f"问题：{d['text']}",
        f"专业：{d.get('group') or '待工作人员判断'}",
        f"方式：{mode_label(d['mode'])}{' · 紧急' if d.get('urgent') else ''}",
    ]
    if d.get("address"):
        lines.append(f"地址：{d['address']}")
    if d.get("photos"):
        lines.append(f"照片：{len(d['photos'])} 张")
    lines.append("专业不对可回复「小组 专业名」修改。")
    await ctx.reply(card("确认提交", "\n".join(lines), [Button("提交", "提交"), Button("取消", "取消")]))


@router.dialog(REQUEST)
async def request_step(ctx: HandlerContext, text: str) -> None:
    """Walk the draft through mode → urgency → address (on-site only) → confirmation."""
    value = text.strip()
    step = ctx.dialog.step
    if step == RequestStep.DESCRIBE:
        await _understood(ctx, value, list(ctx.dialog.data.get("photos", [])))
        return
    if step == RequestStep.MODE:
        mode = MODE_CHOICES.get(value) or _pick_mode(value)
        if mode is None:
            # Not a choice: people often keep describing the problem. Keep that, and ask again with buttons.
            note = _supplement(ctx, value)
            await ctx.reply(card("需要哪种服务方式？", f"{note}请选择服务方式（也可回复 1、2、3；「取消」放弃）：",
                                 [Button(label, label) for label in MODE_CHOICES]))
            return
        ctx.dialog.go(RequestStep.URGENCY, mode=mode.value)
        await ctx.reply(card("紧急程度", "这个问题急吗？", [Button("普通", "普通"), Button("紧急", "紧急")]))
        return
    if step == RequestStep.URGENCY:
        if any(w in value for w in ("不急", "普通", "一般", "不着急", "不用急")):
            urgent, note = False, ""
        elif "急" in value or value in URGENT_WORDS:
            urgent, note = True, ""
        else:  # no loop on an unclear answer: keep what they wrote, assume normal, and say so
            urgent = bool(ctx.dialog.data.get("urgent"))
            note = _supplement(ctx, value) + ("按紧急处理。" if urgent else "按普通处理，如很急可在备注里说明。")
        if ctx.dialog.data["mode"] == Mode.ONSITE.value:
            ctx.dialog.go(RequestStep.ADDRESS, urgent=urgent)
            await ctx.reply(f"{note}现场服务需要地址：请发送详细地址（区县、街道、门牌或厂区）。")
            return
        ctx.dialog.go(RequestStep.CONFIRM, urgent=urgent)
        await _ask_confirm(ctx, note)
        return
    if step == RequestStep.ADDRESS:
        if len(value) < 4:
            await ctx.reply("地址太短了，请写到区县和街道，例如「宁波市北仑区新碶街道明州路 88 号」。")
            return
        ctx.dialog.go(RequestStep.CONFIRM, address=value[:300])
        await _ask_confirm(ctx)
        return
    # RequestStep.CONFIRM
    if value.startswith("小组"):
        group = value[2:].strip()
        if not group:
            await ctx.reply("请写上专业名，例如「小组 焊接工艺」。")
            return
        ctx.dialog.go(RequestStep.CONFIRM, group=group, confident=True)
        await _ask_confirm(ctx, f"已改为【{group}】。")
        return
    if value in ("提交", "确认", "是", "好", "好的", "对", "可以", "没问题"):
        await submit(ctx)
        return
    await ctx.reply("请回复「提交」确认，或「取消」放弃。")


async def submit(ctx: HandlerContext) -> None:
    """The confirmed draft becomes a case with a number; review or matching starts at once."""
    d = ctx.dialog.data
    enterprise = await ctx.session.get(Enterprise, ctx.person.enterprise_id)
    now = ctx.now()
    case = Case(
        enterprise_id=ctx.person.enterprise_id,
        requester_id=ctx.person.id,
        state=CaseState.DRAFT.value,
        text=d["text"],
        trade_group=d.get("group", ""),
        group_confidence=float(d.get("confidence", 0.0)),
        mode=d["mode"],
        urgent=bool(d.get("urgent")),
        address=d.get("address", ""),
        region=(enterprise.region if enterprise else ""),
        photos=list(d.get("photos", [])),
        created_at=now,
        submitted_at=now,
    )
    ctx.session.add(case)
    await ctx.session.flush()
    await ctx.dialog.clear()
    await transition(ctx, case, CaseState.SUBMITTED, actor=ctx.person, detail="企业提交需求")
    await add_event(ctx, ctx.session, case, "request", at=now, actor=ctx.person, detail=case.text,
                    data={"photos": case.photos, "terms": d.get("terms", [])})
    settings = ctx.settings.bot
    needs_review = settings.review_required or (settings.low_confidence_review and not d.get("confident", False))
    if needs_review:
        await ctx.reply(
            f"已提交，案件编号 #{case.number}。\n工作人员审核后会为您匹配工匠师傅，请留意消息。"
        )
        await notify_review(ctx, case)
        return
    await transition(ctx, case, CaseState.APPROVED, actor=None, detail="自动通过（未开启审核）")
    await ctx.reply(
        f"已提交，案件编号 #{case.number}。\n正在为您匹配合适的工匠师傅，师傅接单后会在这里和您联系。"
    )
    await start_matching(ctx, case)


@router.command("提交", roles={Role.ENTERPRISE})
async def stray_submit(ctx: HandlerContext, cmd: Command) -> None:
    """「提交」 outside a draft: explain."""
    if ctx.dialog.flow == REQUEST:
        await request_step(ctx, cmd.raw)
        return
    await ctx.reply("目前没有待提交的需求。请直接描述遇到的问题。")


@router.command("新需求", "提需求", roles={Role.ENTERPRISE}, summary="新需求 描述 — 在服务进行中另提一个新需求")
async def new_request(ctx: HandlerContext, cmd: Command) -> None:
    """Start a new request even while a case is open (free text would go to its craftsman)."""
    if ctx.dialog.flow is not None:
        await ctx.dialog.clear()
    text = cmd.tail  # as typed: a description may start with a number (「3台冲床…」)
    if not text:
        ctx.dialog.start(REQUEST, RequestStep.DESCRIBE, {"photos": []})
        await ctx.reply("请描述新的技术问题（设备、现象、已经试过的办法），可以附照片。")
        return
    await start_request(ctx, text)
