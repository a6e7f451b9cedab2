"""Roster import into the database: upsert by 编号, never duplicate; bad rows reported, good rows kept.

The same function serves ``craftlink roster import`` and the console's upload (which calls it with
``apply=False`` first to show the preview, then with ``apply=True``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.roster import RosterParseResult, RosterRow, RosterRowError
from storage.models import Craftsman, Identity, Person, Role


@dataclass
class RowChange:
    line: int
    code: str
    name: str
    action: str  # "新增" | "更新" | "不变"
    fields: list[str] = field(default_factory=list)  # what an update changes


@dataclass
class ImportReport:
    changes: list[RowChange] = field(default_factory=list)
    errors: list[RosterRowError] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)

    def summary(self) -> str:
        return (
            f"新增 {self.count('新增')} 人，更新 {self.count('更新')} 人，不变 {self.count('不变')} 人，"
            f"错误 {len(self.errors)} 行"
        )


def _diff(row: RosterRow, person: Person, c: Craftsman) -> list[str]:
    fields = []
    if person.name != row.name:
        fields.append("姓名")
    if c.trade_group != row.group:
        fields.append("小组")
    if tuple(c.skills) != row.skills:
        fields.append("技能")
    if c.region != row.region:
        fields.append("地区")
    if c.bio != row.bio:
        fields.append("简介")
    if (person.phone or "") != row.phone:
        fields.append("手机")
    return fields


async def import_roster(
    session: AsyncSession, parsed: RosterParseResult, *, now: datetime, apply: bool
) -> ImportReport:
    """Compare (and with ``apply``, write) the roster rows; a row whose 账号 belongs to someone else is refused."""
    report = ImportReport(errors=list(parsed.errors))
    existing = {c.code: c for c in (await session.scalars(select(Craftsman))).all()}
    for row in parsed.rows:
        craftsman = existing.get(row.code)
        identity_owner: int | None = None
        if row.channel and row.channel_user_id:
            ident = await session.scalar(select(Identity).where(
                Identity.channel == row.channel, Identity.channel_user_id == row.channel_user_id))
            identity_owner = ident.person_id if ident else None
            if identity_owner is not None and (craftsman is None or identity_owner != craftsman.person_id):
                owner = await session.get(Person, identity_owner)
                if owner is not None and owner.role == Role.CRAFTSMAN:
                    report.errors.append(RosterRowError(row.line, f"账号 {row.channel}:{row.channel_user_id} 已属于其他师傅"))
                    continue
        if craftsman is None:
            report.changes.append(RowChange(row.line, row.code, row.name, "新增"))
            if apply:
                await _create(session, row, now, identity_owner)
            continue
        person = await session.get(Person, craftsman.person_id)
        assert person is not None
        fields = _diff(row, person, craftsman)
        has_identity = identity_owner == craftsman.person_id or not (row.channel and row.channel_user_id)
        if not has_identity:
            fields.append("账号")
        report.changes.append(RowChange(row.line, row.code, row.name, "更新" if fields else "不变", fields))
        if apply and fields:
            person.name, person.phone = row.name, row.phone or None
            craftsman.trade_group, craftsman.skills, craftsman.region, craftsman.bio = (
                row.group, list(row.skills), row.region, row.bio)
            craftsman.updated_at = now
            if not has_identity:
                await _bind(session, craftsman.person_id, row, identity_owner)
    report.errors.sort(key=lambda e: e.line)
    return report


async def _bind(session: AsyncSession, person_id: int, row: RosterRow, owner: int | None) -> None:
    """Give the craftsman the roster's channel account; an enterprise-contact stub on it is taken over."""
    if owner is not None:
        ident = await session.scalar(select(Identity).where(
            Identity.channel == row.channel, Identity.channel_user_id == row.channel_user_id))
        if ident is not None:
            ident.person_id = person_id  # someone wrote before being in the roster: the account is theirs
            return
    session.add(Identity(person_id=person_id, channel=row.channel, channel_user_id=row.channel_user_id, extra={}))


async def _create(session: AsyncSession, row: RosterRow, now: datetime, owner: int | None) -> None:
    person = Person(role=Role.CRAFTSMAN.value, name=row.name, phone=row.phone or None, created_at=now)
    session.add(person)
    await session.flush()
    session.add(Craftsman(person_id=person.id, code=row.code, trade_group=row.group, skills=list(row.skills),
                          region=row.region, bio=row.bio, available=True, updated_at=now))
    if row.channel and row.channel_user_id:
        await _bind(session, person.id, row, owner)
    await session.flush()
