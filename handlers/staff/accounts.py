"""Staff listed in config (``[[staff]]``) exist as people with their chat identity, created on start."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.settings import Settings
from storage.models import Identity, Person, Role, StaffMember


async def sync_config_staff(session: AsyncSession, settings: Settings, now: datetime) -> int:
    """Create (or promote) each configured staff member; returns how many were created or changed."""
    changed = 0
    for entry in settings.staff:
        identity = await session.scalar(select(Identity).where(
            Identity.channel == entry.channel, Identity.channel_user_id == entry.user_id))
        if identity is None:
            person = Person(role=Role.STAFF.value, name=entry.name, created_at=now)
            session.add(person)
            await session.flush()
            session.add(Identity(person_id=person.id, channel=entry.channel, channel_user_id=entry.user_id, extra={}))
        else:
            found = await session.get(Person, identity.person_id)
            assert found is not None
            person = found
            if person.role == Role.STAFF and person.name == entry.name:
                staff = await session.get(StaffMember, person.id)
                if staff is not None and staff.staff_role == entry.role:
                    continue
            person.role, person.name = Role.STAFF.value, entry.name
        staff = await session.get(StaffMember, person.id)
        if staff is None:
            session.add(StaffMember(person_id=person.id, staff_role=entry.role, groups=[]))
        else:
            staff.staff_role = entry.role
        changed += 1
    await session.flush()
    return changed
