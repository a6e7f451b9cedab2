"""``craftlink staff add|passwd|unlock|list``: argon2 passwords from stdin, roles, groups, chat identity."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from bot.cli import main
from storage.db import create_engine, session_factory
from storage.models import Identity, Person, StaffMember


def run(config: Path, monkeypatch: pytest.MonkeyPatch, *argv: str, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["--config", str(config), *argv])


async def staff_rows(db_url: str) -> list[tuple[Person, StaffMember]]:
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as db:
            return list((await db.execute(select(Person, StaffMember)
                                          .join(StaffMember, StaffMember.person_id == Person.id))).all())
    finally:
        await engine.dispose()


async def test_staff_add_passwd_unlock_list(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "craftlink.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")

    def cli(*argv: str, stdin: str = "") -> int:
        return run(config, monkeypatch, *argv, stdin=stdin)

    # The CLI runs its own event loop: call it from a thread, as a shell would from outside.
    assert await asyncio.to_thread(cli, "staff", "add", "王芳", "--role", "group_lead", "--login", "wangfang",
                                   "--groups", "焊接工艺,维修电工", "--password-stdin", stdin="s3cret-pass\n") == 0
    assert "staff account ready: 王芳 login=wangfang role=group_lead" in capsys.readouterr().out
    [(person, staff)] = await staff_rows(db_url)
    assert person.role == "staff" and staff.groups == ["焊接工艺", "维修电工"]
    assert staff.password_hash and PasswordHasher().verify(staff.password_hash, "s3cret-pass")

    assert await asyncio.to_thread(cli, "staff", "add", "李四", "--role", "staff", "--login", "wangfang",
                                   "--password-stdin", stdin="another-pass\n") == 1
    assert "已被使用" in capsys.readouterr().err
    assert await asyncio.to_thread(cli, "staff", "add", "李四", "--role", "group_lead", "--no-password") == 1
    assert "组长需要指定" in capsys.readouterr().err
    assert await asyncio.to_thread(cli, "staff", "add", "赵六", "--role", "staff", "--password-stdin",
                                   stdin="short\n") == 1

    assert await asyncio.to_thread(cli, "staff", "passwd", "wangfang", "--password-stdin", stdin="new-pass-123\n") == 0
    [(_, staff)] = await staff_rows(db_url)
    assert staff.password_hash and PasswordHasher().verify(staff.password_hash, "new-pass-123")
    assert await asyncio.to_thread(cli, "staff", "unlock", "nobody") == 1
    assert await asyncio.to_thread(cli, "staff", "unlock", "wangfang") == 0
    capsys.readouterr()
    assert await asyncio.to_thread(cli, "staff", "list") == 0
    assert "王芳\tlogin=wangfang\trole=group_lead" in capsys.readouterr().out


async def test_staff_add_attaches_to_a_chat_identity(db_url: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "craftlink.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    engine = create_engine(db_url)
    from handlers.clock import ManualClock

    now = ManualClock().now()
    async with session_factory(engine).begin() as db:
        person = Person(role="staff", name="陈晓红", created_at=now)
        db.add(person)
        await db.flush()
        db.add(Identity(person_id=person.id, channel="wecom", channel_user_id="chenxh", extra={}))
    await engine.dispose()
    assert await asyncio.to_thread(run, config, monkeypatch, "staff", "add", "陈晓红", "--role", "admin",
                                   "--login", "chenxh", "--identity", "wecom:chenxh", "--no-password") == 0
    [(p, staff)] = await staff_rows(db_url)
    assert p.id == person.id and staff.staff_role == "admin" and staff.password_hash is None
