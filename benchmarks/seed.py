"""Benchmark data: the demo roster, every craftsman and staff member reachable on WeCom, and
registered enterprises for the probe cases (so a probe is a request, not a registration dialog)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.demo import seed as demo_seed
from storage.models import Enterprise, Identity, Person, Role


async def seed(session: AsyncSession, probes: int) -> list[str]:
    """Seed and return the WeCom user ids of ``probes`` registered enterprise contacts."""
    now = datetime.now(UTC)
    await demo_seed(session, now)
    people = (await session.execute(select(Person.id, Person.role).where(
        Person.role.in_([Role.CRAFTSMAN.value, Role.STAFF.value])))).all()
    for pid, role in people:
        session.add(Identity(person_id=pid, channel="wecom", channel_user_id=f"{role}{pid}", extra={},
                             last_seen_at=now))  # seen on WeCom last: offers go there
    users = []
    for i in range(probes):
        firm = Enterprise(name=f"压测企业{i}有限公司", region="上海市", industry="制造", created_at=now)
        session.add(firm)
        await session.flush()
        person = Person(role=Role.ENTERPRISE.value, name=f"联系人{i}", enterprise_id=firm.id, created_at=now)
        session.add(person)
        await session.flush()
        users.append(f"probe{i:04d}")
        session.add(Identity(person_id=person.id, channel="wecom", channel_user_id=users[-1], extra={},
                             last_seen_at=now))
    await session.flush()
    return users
