"""Roles on the server: each role × each page and action is either allowed or 403 (never data), and
every console route is guarded or deliberately public."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.keys import sessions_key
from storage.models import Craftsman, Enterprise
from tests.console.conftest import FISH, MOLD, Agent, Console

ALL, OFFICE, ADMIN = {"admin", "staff", "group_lead"}, {"admin", "staff"}, {"admin"}


@pytest.fixture
async def world(console: Console) -> dict[str, str]:
    """One case and one craftsman in the group lead's group (模具制造), one of each outside it."""
    mold, fish = await console.submit("demo-firm-1", MOLD), await console.submit("demo-firm-2", FISH)
    async with console.app[sessions_key]() as db:
        codes = {c.code: c.person_id for c in (await db.scalars(select(Craftsman))).all()}
        firm = await db.scalar(select(Enterprise).order_by(Enterprise.id))
        assert firm is not None
    return {"mold": str(mold), "fish": str(fish), "mold_c": str(codes["GJ1007"]), "fish_c": str(codes["GJ1025"]),
            "firm": str(firm.id), "month": "2026-11"}


# (method, path, form, who may) — every page and every action of the console.
MATRIX: list[tuple[str, str, dict[str, str], set[str]]] = [
    ("GET", "/console/", {}, ALL),
    ("GET", "/console/board/cards", {}, ALL),
    ("GET", "/console/cases/{mold}", {}, ALL),
    ("GET", "/console/cases/{fish}", {}, OFFICE),
    ("GET", "/console/craftsmen", {}, ALL),
    ("GET", "/console/craftsmen/{mold_c}", {}, ALL),
    ("GET", "/console/craftsmen/{fish_c}", {}, OFFICE),
    ("GET", "/console/enterprises", {}, OFFICE),
    ("GET", "/console/enterprises/{firm}", {}, OFFICE),
    ("GET", "/console/reports", {}, OFFICE),
    ("GET", "/console/reports/{month}.xlsx", {}, OFFICE),
    ("GET", "/console/roster", {}, ADMIN),
    ("GET", "/console/roster.xlsx", {}, OFFICE),
    ("GET", "/console/accounts", {}, ADMIN),
    ("POST", "/console/cases/{mold}/note", {"note": "看过了"}, ALL),
    ("POST", "/console/cases/{fish}/note", {"note": "看过了"}, OFFICE),
    ("POST", "/console/cases/{fish}/approve", {}, OFFICE),
    ("POST", "/console/craftsmen/{mold_c}/edit", {"skills": "冲压模具", "available": "1"}, ALL),
    ("POST", "/console/craftsmen/{fish_c}/edit", {"skills": "鱼塘水质", "available": "1"}, OFFICE),
    ("POST", "/console/roster/confirm", {"upload_id": "abc", "suffix": ".csv"}, ADMIN),
    ("POST", "/console/accounts/{self}", {"role": "admin"}, ADMIN),
    ("POST", "/console/logout", {}, ALL),
]


@pytest.mark.parametrize("role", ["admin", "staff", "group_lead"])
async def test_each_role_on_each_page(role: str, console: Console, world: dict[str, str], admin: Agent,
                                      staff: Agent, lead: Agent) -> None:
    agent = {"admin": admin, "staff": staff, "group_lead": lead}[role]
    values = {**world, "self": str(agent.person_id)}
    if role == "group_lead":  # the lead's board holds their group's case only
        board = await (await lead.get("/console/")).text()
        assert f"#{world['mold']}" in board and f"#{world['fish']}" not in board
        directory = await (await lead.get("/console/craftsmen")).text()
        assert "孙卫东" in directory and "孔繁荣" not in directory
    for method, template, form, allowed in MATRIX:
        path = template.format(**values)
        resp = await (agent.get(path) if method == "GET" else agent.post(path, form))
        body = await resp.read()
        if role in allowed:
            assert resp.status in (200, 302), (role, path, resp.status)
            signed_out = resp.status == 302 and resp.headers["Location"].startswith("/console/login")
            assert not signed_out or path == "/console/logout", (role, path)
        else:
            assert resp.status == 403, (role, path, resp.status)
            assert FISH.encode() not in body and b"GJ1025" not in body, (role, path)  # no data in a refusal


async def test_signed_out_visitors_get_the_login_page_not_data(console: Console, world: dict[str, str]) -> None:
    visitor = console.anonymous()
    for method, template, form, _ in MATRIX:
        path = template.format(**world, self="1")
        resp = await (visitor.get(path) if method == "GET" else visitor.post(path, form, token=False))
        if method == "GET":
            assert resp.status == 302 and resp.headers["Location"].startswith("/console/login?next="), path
        else:
            assert resp.status == 401, path
        assert FISH.encode() not in await resp.read()


async def test_every_console_route_is_guarded_or_public(console: Console) -> None:
    seen = 0
    for route in console.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = str(info.get("path") or info.get("formatter") or "")
        if not path.startswith("/console"):
            continue
        seen += 1
        roles = getattr(route.handler, "console_roles", None)
        assert roles, f"{route.method} {path} has neither guard() nor public"
        if "public" in roles:
            assert path.startswith(("/console/login", "/console/static")) or path == "/console", path
    assert seen >= 20


async def test_pages_send_security_headers(console: Console, admin: Agent) -> None:
    resp = await admin.get("/console/")
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff" and resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Referrer-Policy"] == "no-referrer"


async def test_a_role_removed_ends_the_session(console: Console, staff: Agent, admin: Agent) -> None:
    page = await admin.flash(await admin.post(f"/console/accounts/{staff.person_id}", {"role": "group_lead",
                                                                                      "groups": "焊接工艺"}))
    assert "账号已更新" in page
    assert (await staff.get("/console/reports")).status == 403  # checked on every request, not at login
