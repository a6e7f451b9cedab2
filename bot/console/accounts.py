"""Staff accounts: shared by ``craftlink staff ...`` (bot/cli/staff.py) and the admin's accounts page."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.console import throttle
from bot.console.auth import guard, hash_password, revoke_sessions, viewer_of
from bot.console.render import redirect, render
from bot.console.viewer import ADMIN, LEAD, ROLE_LABELS, ROLES
from bot.keys import clock_key, sessions_key
from storage.models import Identity, Person, Role, StaffMember

LOGIN = re.compile(r"^[A-Za-z0-9_.@-]{2,60}$")
MIN_PASSWORD = 8


class AccountError(Exception):
    """A refused account change; the message is shown as is."""


@dataclass
class Account:
    person: Person
    staff: StaffMember


def parse_groups(text: str) -> list[str]:
    return [g for g in dict.fromkeys(s.strip() for s in re.split(r"[,，、;；\s]+", text)) if g]


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"密码至少 {MIN_PASSWORD} 位。")


async def save_account(
    db: AsyncSession, *, name: str, role: str, login: str | None, groups: list[str], password: str | None,
    now: datetime, identity: tuple[str, str] | None = None,
) -> Account:
    """Create a staff account, or give an existing staff person (same name, or the given chat identity)
    a login: staff listed in config already exist as people with a chat identity, and should keep it."""
    if role not in ROLES:
        raise AccountError(f"角色应为 {' / '.join(ROLES)}。")
    if role == LEAD and not groups:
        raise AccountError("组长需要指定负责的专业小组（--groups）。")
    if login is not None and not LOGIN.match(login):
        raise AccountError("登录名只能用 2–60 位字母、数字或 _ . @ -。")
    if password is not None:
        check_password(password)
    if login and await db.scalar(select(StaffMember).where(StaffMember.login == login)):
        raise AccountError(f"登录名 {login} 已被使用。")
    person: Person | None = None
    if identity is not None:
        ident = await db.scalar(select(Identity).where(Identity.channel == identity[0],
                                                       Identity.channel_user_id == identity[1]))
        if ident is None:
            raise AccountError(f"没有找到聊天账号 {identity[0]}:{identity[1]}。")
        person = await db.get(Person, ident.person_id)
    else:
        same = (await db.scalars(select(Person).where(Person.role == Role.STAFF.value, Person.name == name))).all()
        if len(same) > 1:
            raise AccountError(f"有多位工作人员叫 {name}，请用 --identity 指定。")
        person = same[0] if same else None
    if person is None:
        person = Person(role=Role.STAFF.value, name=name, created_at=now)
        db.add(person)
        await db.flush()
    person.role, person.name = Role.STAFF.value, name
    staff = await db.get(StaffMember, person.id)
    if staff is None:
        staff = StaffMember(person_id=person.id, staff_role=role, groups=groups)
        db.add(staff)
    if staff.login and login and staff.login != login:
        raise AccountError(f"{name} 已有登录名 {staff.login}。")
    staff.staff_role, staff.groups = role, groups
    staff.login = login or staff.login
    if password is not None:
        staff.password_hash = hash_password(password)
        staff.failed_logins, staff.locked_until = 0, None
        await db.flush()
        await revoke_sessions(db, person.id, now)
    await db.flush()
    return Account(person, staff)


async def list_accounts(db: AsyncSession) -> list[Account]:
    rows = (await db.execute(select(Person, StaffMember).join(StaffMember, StaffMember.person_id == Person.id)
                             .order_by(Person.id))).all()
    return [Account(p, s) for p, s in rows]


async def accounts_page(request: web.Request) -> web.Response:
    """账号 (admin): every staff member, their role, groups and lock state."""
    async with request.app[sessions_key]() as db:
        accounts = await list_accounts(db)
    return render(request, "accounts.html", accounts=accounts, roles=ROLE_LABELS)


async def account_edit(request: web.Request) -> web.StreamResponse:
    """Change a staff member's role and groups, unlock them, or set a new password."""
    form = await request.post()
    try:
        pid = int(request.match_info["pid"])
    except ValueError:
        raise web.HTTPNotFound() from None
    role, groups = str(form.get("role", "")), parse_groups(str(form.get("groups", "")))
    password = str(form.get("password", ""))
    async with request.app[sessions_key].begin() as db:
        staff = await db.get(StaffMember, pid)
        if staff is None:
            raise web.HTTPNotFound()
        if role not in ROLES or (role == LEAD and not groups):
            raise redirect("/console/accounts", "角色无效，或组长未指定专业小组。", error=True)
        if pid == viewer_of(request).person_id and role != ADMIN:
            raise redirect("/console/accounts", "不能取消自己的管理员权限。", error=True)
        if password:
            if len(password) < MIN_PASSWORD:
                raise redirect("/console/accounts", f"密码至少 {MIN_PASSWORD} 位。", error=True)
            staff.password_hash = hash_password(password)
            viewer = viewer_of(request)
            await revoke_sessions(db, pid, request.app[clock_key].now(),
                                  keep=viewer.session_id if pid == viewer.person_id else None)
        staff.staff_role, staff.groups = role, groups
        if form.get("unlock") == "1" or password:
            staff.failed_logins, staff.locked_until = 0, None
            if staff.login:
                await throttle.clear_login(db, staff.login)
    raise redirect("/console/accounts", "账号已更新。")


def routes() -> list[web.RouteDef]:
    admin = guard(ADMIN)
    return [
        web.get("/console/accounts", admin(accounts_page)),
        web.post("/console/accounts/{pid}", admin(account_edit)),
    ]
