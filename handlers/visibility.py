"""Who sees what: the one home of the rule behind the group-lead boundary.

The rule: admin and staff see, and act on, every trade group; a group lead (``StaffRole.GROUP_LEAD``)
sees and acts on the cases and craftsmen of their own trade groups only, and of staff news about a
case (an escalation, a review, a call for help) hears only what concerns one of their groups. A person
with the staff role but no ``staff`` row is plain staff. Chat (日报, 派单), the daily digest, the staff
notices (``Outbox.to_staff``, the reminders) and the console (board, directory, case page) all ask
this module; none of them compares a role itself.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from storage.models import Person, Role, StaffMember, StaffRole

Q = TypeVar("Q", bound=Select[*tuple[Any, ...]])


@dataclass(frozen=True)
class Scope:
    """The trade groups one staff member sees and may act on: ``groups is None`` means every group.

    ``groups`` keeps the order of the staff row (it is shown to the lead as typed).
    """

    groups: tuple[str, ...] | None = None

    @classmethod
    def of(cls, role: str | None, groups: Iterable[str] | None) -> Scope:
        """The scope of a ``staff`` row's role and groups."""
        return cls(tuple(groups or ())) if role == StaffRole.GROUP_LEAD else EVERY_GROUP

    @classmethod
    def limited_to(cls, groups: Collection[str] | None) -> Scope:
        """A view of ``groups`` only (None: every group), e.g. a digest built for a lead's groups."""
        return EVERY_GROUP if groups is None else cls(tuple(sorted(groups)))

    @property
    def every_group(self) -> bool:
        return self.groups is None

    def sees(self, group: str | None) -> bool:
        """May this staff member see, and act on, a case or craftsman of ``group``?"""
        return self.groups is None or group in self.groups

    def hears_of(self, groups: Iterable[str]) -> bool:
        """Is this staff member told of news concerning ``groups`` (a lead: one of them is theirs)?"""
        return self.groups is None or not set(self.groups).isdisjoint(groups)

    def visible(self, groups: Iterable[str]) -> list[str]:
        """``groups`` without those this staff member does not see, in their order."""
        return [g for g in groups if self.sees(g)]

    def group_set(self) -> set[str] | None:
        """The groups as a set, None for every group (the digest's ``groups`` argument)."""
        return None if self.groups is None else set(self.groups)

    def clauses(self, column: InstrumentedAttribute[str]) -> list[ColumnElement[bool]]:
        """SQL criteria keeping the rows whose ``column`` (a trade group) this staff member sees."""
        return [] if self.groups is None else [column.in_(self.groups)]

    def restrict(self, stmt: Q, column: InstrumentedAttribute[str]) -> Q:
        """``stmt`` limited to the rows whose ``column`` this staff member sees (unchanged for everyone)."""
        return stmt if self.groups is None else stmt.where(column.in_(self.groups))


EVERY_GROUP = Scope()


async def scope_of(session: AsyncSession, person_id: int) -> Scope:
    """The scope of one staff member."""
    staff = await session.get(StaffMember, person_id)
    return EVERY_GROUP if staff is None else Scope.of(staff.staff_role, staff.groups)


async def staff_scopes(session: AsyncSession) -> list[tuple[int, Scope]]:
    """Every staff member (by person id) with their scope."""
    rows = (await session.execute(
        select(Person.id, StaffMember.staff_role, StaffMember.groups)
        .join(StaffMember, StaffMember.person_id == Person.id, isouter=True)
        .where(Person.role == Role.STAFF.value).order_by(Person.id)
    )).all()
    return [(pid, Scope.of(role, groups)) for pid, role, groups in rows]


async def told_of(session: AsyncSession, groups: Sequence[str] = ()) -> list[int]:
    """The staff who receive news of ``groups``: everyone but the group leads of other groups
    (with no groups given, no group lead)."""
    return [pid for pid, scope in await staff_scopes(session) if scope.hears_of(groups)]
