"""Fictional months of activity on top of the demo people, for sample reports and the report tests.

Deterministic (a fixed random seed): the same call always writes the same cases, so tests can assert
totals and ``scripts/make_samples.py`` regenerates identical samples. It writes rows directly (cases,
events, feedback, points) rather than replaying chats: it stands for history, not for a flow under test.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.demo import seed
from handlers.reports import add_months, month_bounds, parse_month
from handlers.settings import Settings
from storage.models import Case, CaseEvent, CaseState, Craftsman, Feedback, Mode, Person, PointsEntry, Role

PROBLEMS = {
    "焊接工艺": ["不锈钢薄板焊接变形严重", "焊缝气孔多，探伤不合格"],
    "维修电工": ["配电柜接触器频繁跳闸", "变频器报过流故障"],
    "工业自动化": ["PLC 程序偶发死机", "机器人焊接轨迹偏移"],
    "模具制造": ["冲压模具刃口崩刃", "注塑件飞边严重"],
    "数控加工": ["加工中心精度下降", "五轴编程过切"],
    "水产养殖": ["鱼塘缺氧浮头", "对虾白斑病防治"],
    "网络安全": ["办公网中勒索病毒", "等保测评整改"],
    "暖通制冷": ["冷库不制冷", "中央空调冷水机组高压报警"],
}
COMMENTS = {5: "师傅很专业，问题彻底解决", 4: "解决了，响应很快", 3: "基本解决", 2: "来得晚了一些", 1: "问题没解决"}


@dataclass
class HistoryReport:
    cases: int
    months: list[str]


async def seed_history(session: AsyncSession, settings: Settings, *, last_month: str, months: int = 3,
                       per_month: int = 14, now: datetime | None = None) -> HistoryReport:
    """Demo people plus ``per_month`` cases in each of the ``months`` months ending with ``last_month``.

    When ``now`` is given, a few open cases are added for a digest on that day: one waiting for review,
    one nobody took, one stalled for two days, one with an appointment that day.
    """
    rng = random.Random(20261101)
    tz = settings.tz
    y, m = parse_month(last_month)
    first_start, _ = month_bounds(f"{y}-{m}", tz)
    await seed(session, first_start - timedelta(days=90))
    craftsmen: dict[str, list[int]] = defaultdict(list)
    for c in (await session.scalars(select(Craftsman).order_by(Craftsman.person_id))).all():
        craftsmen[c.trade_group].append(c.person_id)
    requesters = list((await session.scalars(
        select(Person).where(Person.role == Role.ENTERPRISE.value).order_by(Person.id))).all())
    groups = sorted(PROBLEMS)
    made, names = 0, []
    for back in range(months - 1, -1, -1):
        month = "{:04d}-{:02d}".format(*add_months(y, m, -back))
        names.append(month)
        start, end = month_bounds(month, tz)
        for i in range(per_month + (months - 1 - back) * 2):  # a growing service: more requests each month
            group = groups[(i * 3 + back) % len(groups)]
            submitted = start + timedelta(hours=rng.randint(8, (end - start).days * 24 - 80))
            accepted = submitted + timedelta(minutes=rng.randint(10, 600))
            hours = rng.choice([1, 1.5, 2, 3, 4, 6])
            resolved = accepted + timedelta(hours=rng.randint(4, 60))
            solved = i % 7 != 6  # one case in seven was withdrawn by the enterprise unsolved
            rating = rng.choice([5, 5, 5, 4, 4, 3, 2, None]) if solved else None
            requester = requesters[i % len(requesters)]
            case = Case(requester_id=requester.id, enterprise_id=requester.enterprise_id,
                        craftsman_id=craftsmen[group][i % len(craftsmen[group])], trade_group=group,
                        text=PROBLEMS[group][i % 2], mode=(Mode.ONSITE if i % 3 == 0 else Mode.ONLINE).value,
                        state=(CaseState.CLOSED if solved else CaseState.CANCELLED).value,
                        created_at=submitted, submitted_at=submitted, accepted_at=accepted,
                        resolved_at=resolved if solved else None, closed_at=resolved + timedelta(hours=5), help_hours=hours if solved else None, rating=rating, last_activity_at=accepted)
            session.add(case)
            await session.flush()
            made += 1
            if not solved:
                continue
            session.add(CaseEvent(case_id=case.id, at=resolved, kind="resolved", actor_id=case.craftsman_id,
                                  detail=f"用时 {hours:g} 小时。现场排查后更换部件并调整参数，已恢复正常"))
            session.add(Feedback(case_id=case.id, person_id=requester.id if rating else None, rating=rating,
                                 comment=COMMENTS.get(rating or 0, ""), at=resolved + timedelta(hours=5)))
            pts = 10 + hours * 2 + (5 if case.mode == Mode.ONSITE else 0) + {5: 5, 4: 2}.get(rating or 0, 0)
            assert case.craftsman_id is not None
            session.add(PointsEntry(craftsman_id=case.craftsman_id, case_id=case.id, points=pts, rule="per_case",
                                    note="演示数据", at=resolved + timedelta(hours=5)))
    if now is not None:
        made += await _open_cases(session, craftsmen, requesters, now)
    await session.flush()
    return HistoryReport(made, names)


async def _open_cases(session: AsyncSession, craftsmen: dict[str, list[int]], requesters: list[Person],
                      now: datetime) -> int:
    day = timedelta(days=1)
    rows = [
        Case(requester_id=requesters[0].id, enterprise_id=requesters[0].enterprise_id, trade_group="焊接工艺",
             text="压力容器焊缝返修方案", state=CaseState.SUBMITTED.value, created_at=now - day / 2,
             submitted_at=now - day / 2),
        Case(requester_id=requesters[1].id, enterprise_id=requesters[1].enterprise_id, trade_group="水产养殖",
             text="鱼塘夜间缺氧，增氧机不够", state=CaseState.ESCALATED.value, created_at=now - day * 0.7,
             submitted_at=now - day * 0.7),
        Case(requester_id=requesters[2].id, enterprise_id=requesters[2].enterprise_id, trade_group="维修电工",
             craftsman_id=craftsmen["维修电工"][0], text="车间照明回路漏电", state=CaseState.ASSIGNED.value,
             created_at=now - day * 3, submitted_at=now - day * 3, accepted_at=now - day * 2.5,
             last_activity_at=now - day * 2),
        Case(requester_id=requesters[0].id, enterprise_id=requesters[0].enterprise_id, trade_group="模具制造",
             craftsman_id=craftsmen["模具制造"][0], text="冲床模具间隙调整", state=CaseState.IN_PROGRESS.value,
             mode=Mode.ONSITE.value, created_at=now - day * 0.8, submitted_at=now - day * 0.8,
             accepted_at=now - day * 0.6, last_activity_at=now - day * 0.5, appointment_at=now + timedelta(hours=5)),
    ]
    rated = [(5, "一次就解决了，谢谢师傅"), (2, "师傅来晚了，问题还没彻底解决")]
    for i, (rating, _) in enumerate(rated):
        rows.append(Case(requester_id=requesters[i].id, enterprise_id=requesters[i].enterprise_id,
                         trade_group="数控加工", craftsman_id=craftsmen["数控加工"][i], text="加工中心主轴异响",
                         state=CaseState.CLOSED.value, created_at=now - day * 3, submitted_at=now - day * 3,
                         accepted_at=now - day * 2.8, resolved_at=now - day * 0.9, closed_at=now - day * 0.6,
                         help_hours=2.0, rating=rating))
    session.add_all(rows)
    await session.flush()
    for (rating, comment), case in zip(rated, rows[-2:], strict=True):
        session.add(Feedback(case_id=case.id, person_id=case.requester_id, rating=rating, comment=comment,
                             at=now - day * 0.6))
    return len(rows)
