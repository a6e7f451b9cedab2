"""A password change ends every session of that account (console reset and ``craftlink staff passwd``)."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from bot.cli import main
from bot.keys import settings_key
from tests.console.conftest import Agent, Console


async def test_console_password_reset_ends_the_accounts_sessions(console: Console, admin: Agent, staff: Agent) -> None:
    second = await console.agent(staff.person_id, "刘志明")  # the same person signed in on a second device
    assert (await staff.get("/console/")).status == 200 and (await second.get("/console/")).status == 200
    done = await admin.flash(await admin.post(f"/console/accounts/{staff.person_id}",
                                              {"role": "staff", "groups": "", "password": "brand-new-pass"}))
    assert "账号已更新" in done
    assert (await staff.get("/console/")).status == 302  # both sessions are gone
    assert (await second.get("/console/")).status == 302
    assert (await admin.get("/console/")).status == 200  # the admin's own session is untouched


async def test_role_change_without_password_keeps_sessions(console: Console, admin: Agent, staff: Agent) -> None:
    await admin.flash(await admin.post(f"/console/accounts/{staff.person_id}", {"role": "staff", "groups": ""}))
    assert (await staff.get("/console/")).status == 200


async def test_admin_changing_their_own_password_ends_their_other_sessions(console: Console, admin: Agent) -> None:
    other = await console.agent(admin.person_id, "陈晓红")
    await admin.flash(await admin.post(f"/console/accounts/{admin.person_id}",
                                       {"role": "admin", "groups": "", "password": "brand-new-pass"}))
    assert (await admin.get("/console/")).status == 200  # the session that made the change goes on
    assert (await other.get("/console/")).status == 302  # every other one ends


async def test_cli_passwd_ends_the_accounts_sessions(console: Console, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pid = await console.add_staff("王芳", "staff", login="wangfang", password="old-pass-123")
    agent = await console.agent(pid, "王芳")
    assert (await agent.get("/console/")).status == 200
    config = tmp_path / "cli.toml"
    config.write_text(f'[database]\nurl = "{console.app[settings_key].database.url}"\n', encoding="utf-8")
    monkeypatch.setattr("sys.stdin", io.StringIO("new-pass-123\n"))
    assert await asyncio.to_thread(main, ["--config", str(config), "staff", "passwd", "wangfang",
                                          "--password-stdin"]) == 0
    assert (await agent.get("/console/")).status == 302
