"""``handlers/visibility.py``: the one rule of which staff see which trade groups, and its one home."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.visibility import EVERY_GROUP, Scope, scope_of, staff_scopes, told_of
from storage.models import Case, Person, Role, StaffMember, StaffRole

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
# Pending: handlers/settings.py validates ``[[staff]] role`` against its own tuple of the three values
# (owned by the settings move of issue 14); it should read them from StaffRole.
NOT_YET: set[str] = set()


def test_a_lead_sees_and_hears_of_their_groups_only() -> None:
    lead = Scope.of(StaffRole.GROUP_LEAD, ["焊接工艺", "模具制造"])
    assert lead.groups == ("焊接工艺", "模具制造") and not lead.every_group
    assert lead.sees("焊接工艺") and not lead.sees("水产养殖") and not lead.sees("") and not lead.sees(None)
    assert lead.hears_of(["水产养殖", "模具制造"]) and not lead.hears_of(["水产养殖"]) and not lead.hears_of([])
    assert lead.visible(["水产养殖", "模具制造", "焊接工艺"]) == ["模具制造", "焊接工艺"]
    for role in (StaffRole.ADMIN, StaffRole.STAFF, "", None):
        everyone = Scope.of(role, ["焊接工艺"])
        assert everyone is EVERY_GROUP and everyone.sees("水产养殖") and everyone.sees(None)
        assert everyone.hears_of([]) and everyone.visible(["a", "b"]) == ["a", "b"]
    assert Scope.limited_to(None) is EVERY_GROUP and Scope.limited_to({"b", "a"}).groups == ("a", "b")
    assert Scope.of(StaffRole.GROUP_LEAD, None).groups == ()  # a lead without groups sees nothing


def test_restrict_filters_in_sql_only_for_a_lead() -> None:
    stmt = select(Case)
    assert EVERY_GROUP.restrict(stmt, Case.trade_group) is stmt and EVERY_GROUP.clauses(Case.trade_group) == []
    sql = str(Scope(("焊接工艺",)).restrict(stmt, Case.trade_group))
    assert "cases.trade_group IN" in sql


async def test_who_is_told_of_a_group(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as s, s.begin():
        ids = []
        for name, role, groups in (("管理员", StaffRole.ADMIN, []), ("组长甲", StaffRole.GROUP_LEAD, ["焊接工艺"]),
                                   ("无行", None, []), ("组长乙", StaffRole.GROUP_LEAD, ["水产养殖", "模具制造"])):
            person = Person(name=name, role=Role.STAFF.value, created_at=NOW)
            s.add(person)
            await s.flush()
            if role is not None:
                s.add(StaffMember(person_id=person.id, staff_role=role.value, groups=groups))
            ids.append(person.id)
        s.add(Person(name="企业", role=Role.ENTERPRISE.value, created_at=NOW))
    admin, lead_a, plain, lead_b = ids
    async with sessions() as s:
        assert await told_of(s, ("模具制造",)) == [admin, plain, lead_b]
        assert await told_of(s, ("焊接工艺", "模具制造")) == [admin, lead_a, plain, lead_b]
        assert await told_of(s) == [admin, plain]  # news of no group: no group lead
        scopes = dict(await staff_scopes(s))
        assert list(scopes) == ids and scopes[plain] is EVERY_GROUP
        assert scopes[lead_b].groups == ("水产养殖", "模具制造")
        assert await scope_of(s, lead_a) == Scope(("焊接工艺",)) and await scope_of(s, plain) is EVERY_GROUP


def test_the_role_is_spelled_only_in_the_enum() -> None:
    """No module compares a staff member's role by its bare string: they ask StaffRole / visibility."""
    found = set()
    for package in ("bot", "handlers", "scheduler", "storage"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and node.value == "group_lead":
                    found.add(path.relative_to(ROOT).as_posix())
    assert found - NOT_YET == {"storage/models.py"}
