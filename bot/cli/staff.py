"""``craftlink staff add|passwd|list|unlock``: console accounts (argon2 passwords, roles, groups).

Passwords are asked twice with getpass, or read from the first line of stdin with ``--password-stdin``
(for scripts); they are never taken from the command line, where ``ps`` and shell history would see them.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import load_settings
from storage.models import StaffRole

T = TypeVar("T")


def _say(text: str, *, error: bool = False) -> None:
    print(text, file=sys.stderr if error else sys.stdout)


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("密码 / password: ")
    if getpass.getpass("再输一次 / again: ") != first:
        raise SystemExit("error: 两次输入的密码不一致 / passwords differ")
    return first


def _run(args: argparse.Namespace, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    from storage.db import create_engine, session_factory

    settings = load_settings(args.config)

    async def go() -> T:
        engine = create_engine(settings.database.url)
        try:
            async with session_factory(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def cmd_add(args: argparse.Namespace) -> int:
    from bot.console.accounts import AccountError, check_password, parse_groups, save_account
    from handlers.clock import SystemClock

    identity = None
    if args.identity:
        channel, _, user = args.identity.partition(":")
        if not user:
            _say("error: --identity expects CHANNEL:USER_ID, e.g. wecom:zhangsan", error=True)
            return 2
        identity = (channel, user)
    password = None if args.no_password else _password(args)
    try:
        if password is not None:
            check_password(password)
        account = _run(args, lambda db: save_account(
            db, name=args.name, role=args.role, login=args.login or None, groups=parse_groups(args.groups or ""),
            password=password, now=SystemClock().now(), identity=identity))
    except AccountError as exc:
        _say(f"error: {exc}", error=True)
        return 1
    _say(f"staff account ready: {account.person.name} login={account.staff.login or '-'} "
          f"role={account.staff.staff_role} groups={','.join(account.staff.groups) or '-'}")
    return 0


def cmd_passwd(args: argparse.Namespace) -> int:
    from bot.console import throttle
    from bot.console.accounts import AccountError, check_password
    from bot.console.auth import hash_password, revoke_sessions
    from handlers.clock import SystemClock
    from storage.models import StaffMember

    password = _password(args)
    try:
        check_password(password)
    except AccountError as exc:
        _say(f"error: {exc}", error=True)
        return 1

    async def work(db: AsyncSession) -> bool:
        staff = await db.scalar(select(StaffMember).where(StaffMember.login == args.login))
        if staff is None:
            return False
        staff.password_hash, staff.failed_logins, staff.locked_until = hash_password(password), 0, None
        await revoke_sessions(db, staff.person_id, SystemClock().now())  # whoever knew the old one is out
        await throttle.clear_login(db, args.login)
        return True

    if not _run(args, work):
        _say(f"error: no staff account with login {args.login}", error=True)
        return 1
    _say(f"password set for {args.login} (account unlocked, its sessions ended)")
    return 0


def cmd_unlock(args: argparse.Namespace) -> int:
    from bot.console import throttle
    from storage.models import StaffMember

    async def work(db: AsyncSession) -> bool:
        staff = await db.scalar(select(StaffMember).where(StaffMember.login == args.login))
        if staff is None:
            return False
        staff.failed_logins, staff.locked_until = 0, None
        await throttle.clear_login(db, args.login)  # every address's waits for this login
        return True

    if not _run(args, work):
        _say(f"error: no staff account with login {args.login}", error=True)
        return 1
    _say(f"{args.login} unlocked")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from bot.console.accounts import Account, list_accounts

    accounts: list[Account] = _run(args, list_accounts)
    for a in accounts:
        lock = " (locked)" if a.staff.locked_until else ""
        _say(f"{a.person.name}\tlogin={a.staff.login or '-'}\trole={a.staff.staff_role}\t"
              f"groups={','.join(a.staff.groups) or '-'}\tpassword={'yes' if a.staff.password_hash else 'no'}{lock}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    staff = sub.add_parser("staff", help="staff console accounts")
    staff_sub = staff.add_subparsers(dest="staff_command", required=True)
    add = staff_sub.add_parser("add", help="create a staff account (or give an existing staff member a login)")
    add.add_argument("name", help="the person's name, as shown in case events")
    add.add_argument("--role", required=True, choices=[r.value for r in StaffRole])
    add.add_argument("--login", default=None, help="login name for the password form")
    add.add_argument("--groups", default="", help="trade groups of a group lead, e.g. 焊接工艺,维修电工")
    add.add_argument("--identity", default=None, help="attach to the person behind CHANNEL:USER_ID (e.g. wecom:zhangsan)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.add_argument("--no-password", action="store_true", help="no password: chat login links only")
    add.set_defaults(func=cmd_add)
    passwd = staff_sub.add_parser("passwd", help="set a new password (also unlocks)")
    passwd.add_argument("login")
    passwd.add_argument("--password-stdin", action="store_true")
    passwd.set_defaults(func=cmd_passwd)
    unlock = staff_sub.add_parser("unlock", help="clear the login throttle after failed logins")
    unlock.add_argument("login")
    unlock.set_defaults(func=cmd_unlock)
    staff_sub.add_parser("list", help="list staff accounts").set_defaults(func=cmd_list)
