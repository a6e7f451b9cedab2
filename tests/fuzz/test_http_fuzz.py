"""Hostile input against every HTTP route: never a 500, never a stored row without authentication,
and the server keeps serving. Routes are discovered from the app, so new ones are fuzzed too.

Bodies mix random bytes with the classics: malformed and truncated XML/JSON, XXE and billion laughs,
invalid UTF-8, huge bodies (→ 413), wrong signatures and stale timestamps. A separate test sends
correctly encrypted and signed WeCom messages whose *texts* are odd (SQL, HTML, emoji, control
characters): those are stored, handled, and answered politely, and nothing fails.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from benchmarks.wecom_traffic import AES_KEY, CORP_ID, TOKEN, Platform
from bot.app import create_app
from bot.keys import clock_key, sessions_key
from handlers.clock import ManualClock
from storage.models import InboxMessage, InboxState
from tests.chat import Playground
from tests.conftest import make_settings

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
LIMIT = 16384
OPEN_ROUTES = {"/webchat/send", "/webchat/upload"}  # the playground's web chat stores by design (demo only)

XXE = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
       '<xml><ToUserName>&e;</ToUserName><Encrypt>&e;</Encrypt></xml>')
LAUGHS = ('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
          '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
          '<xml><Encrypt>&d;</Encrypt></xml>')
CLASSICS = [
    b"", b"<xml>", b"<xml><Encrypt><![CDATA[abc", b"<xml><Encrypt>" + b"A" * 200 + b"</Encrypt></xml>",
    XXE.encode(), LAUGHS.encode(), b'{"text": "hi"', b'{"msgtype": "text", "text": {"content": 1}}',
    b"\xff\xfe\x00<xml/>", b"\xc3\x28" * 50, b"[]", b"null", b'{"user": "", "text": "\x00"}',
    b"' OR 1=1; DROP TABLE inbox; --", b"<script>alert(1)</script>", b"A" * (LIMIT + 1),
]
bodies = st.one_of(st.sampled_from(CLASSICS), st.binary(max_size=2048),
                   st.text(max_size=512).map(lambda t: t.encode("utf-8", "surrogatepass")))
queries = st.dictionaries(
    st.sampled_from(["msg_signature", "signature", "timestamp", "nonce", "echostr", "encrypt_type", "openid",
                     "sign", "case", "token", "user", "after", "next", "id"]),
    st.one_of(st.sampled_from(["0", "1", str(int(time.time()) - 10_000), "-1", "9" * 30, "%00", "é", ""]),
              st.text(max_size=40)),
    max_size=5,
)
content_types = st.sampled_from(["text/xml", "application/json", "application/x-www-form-urlencoded",
                                 "multipart/form-data; boundary=x", "text/plain", "application/octet-stream"])


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    cfg = make_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'fuzz.db'}", tmp_path,
        server={"max_body_bytes": LIMIT},
        wecom={"corp_id": CORP_ID, "agent_id": 1000002, "secret": "s", "token": TOKEN, "encoding_aes_key": AES_KEY,
               "api_base": "http://127.0.0.1:9"},
        wechat={"app_id": "wxb11529c136998cb6", "app_secret": "s", "token": "pamtest",
                "encoding_aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "api_base": "http://127.0.0.1:9"},
        dingtalk={"app_key": "k", "app_secret": "s", "robot_code": "r", "api_base": "http://127.0.0.1:9"},
    )
    from storage.db import create_engine
    from storage.migrate import upgrade

    engine = create_engine(cfg.database.url)
    await upgrade(engine)
    await engine.dispose()
    app = create_app(cfg, clock=ManualClock(), run_scheduler=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


def routes(client: TestClient[Any, Any]) -> list[tuple[str, str]]:
    """Every (method, path) the app serves; ``{name}`` parts filled with a hostile value."""
    app = client.app
    assert app is not None
    found = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix")
        if not path or route.method in ("HEAD", "OPTIONS", "*"):
            continue
        found.add((route.method, re.sub(r"\{[^}]+\}", "..%2f..%2fetc%2fpasswd", path)))
    return sorted(found)


async def inbox_count(client: TestClient[Any, Any]) -> int:
    app = client.app
    assert app is not None
    async with app[sessions_key]() as s:
        return int(await s.scalar(select(func.count()).select_from(InboxMessage)) or 0)


async def test_route_discovery_covers_the_named_endpoints(client: TestClient[Any, Any]) -> None:
    paths = {p for _, p in routes(client)}
    for wanted in ("/wecom/callback", "/wechat/callback", "/dingtalk/callback", "/dingtalk/tap", "/webchat/send",
                   "/metrics", "/healthz"):
        assert wanted in paths, wanted
    assert any(p.startswith("/console") and m == "POST" for m, p in routes(client))


@FUZZ
@given(data=st.data(), body=bodies, query=queries, ctype=content_types)
async def test_no_route_answers_500_or_stores_without_auth(
    client: TestClient[Any, Any], data: st.DataObject, body: bytes, query: dict[str, str], ctype: str,
) -> None:
    method, path = data.draw(st.sampled_from(routes(client)), label="route")
    before = await inbox_count(client)
    resp = await client.request(method, path, params=query, data=body, headers={"Content-Type": ctype},
                                allow_redirects=False)
    await resp.read()
    assert resp.status < 500 or (resp.status == 503 and path == "/readyz"), (method, path, resp.status)
    if len(body) > LIMIT and method == "POST" and path in ("/wecom/callback", "/wechat/callback",
                                                           "/dingtalk/callback"):
        assert resp.status == 413
    if path not in OPEN_ROUTES:
        assert await inbox_count(client) == before, (method, path)  # nothing stored without auth
    assert (await client.get("/healthz")).status == 200  # and the server keeps serving


ODD_TEXTS = st.one_of(
    st.sampled_from(["' OR 1=1; DROP TABLE cases; --", "<script>alert('x')</script>", "<b>加粗</b>&amp;",
                     "😀🔧🏭" * 20, "\u202e反向文字", "\t\r\n", "]]><xml>", "%s%s%n", "帮助" * 300, "接单 99999999999"]),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), min_size=1,
            max_size=300),
)


@FUZZ
@given(text=ODD_TEXTS)
async def test_valid_but_odd_wecom_messages_get_a_polite_answer(client: TestClient[Any, Any], text: str) -> None:
    app = client.app
    assert app is not None
    now = app[clock_key].now()
    cb = Platform().text(f"odd{abs(hash(text)) % 1000}", text.replace("]]>", "]] >"), timestamp=int(now.timestamp()))
    resp = await client.post("/wecom/callback", params=cb.query, data=cb.body)
    assert resp.status in (200, 400), resp.status  # XML-illegal characters are refused, never a 500
    if resp.status != 200:
        return
    pg = Playground(client, ManualClock())
    await pg.settle()
    async with app[sessions_key]() as s:
        row = await s.scalar(select(InboxMessage).where(InboxMessage.platform_msg_id == cb.msg_id))
    assert row is not None and row.state == InboxState.DONE.value, (row and row.error)


NON_ASCII = st.one_of(
    st.sampled_from(["签名", "é", "abc.签名", "eyJzIjoiYSJ9.签名", "\u202e", "😀", "Ā" * 40, "0" * 39 + "签"]),
    st.text(alphabet=st.characters(min_codepoint=0x80, blacklist_categories=["Cs", "Cc", "Zl", "Zp"]), min_size=1,
            max_size=60),
    st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc", "Zl", "Zp"], blacklist_characters=";"),
            min_size=1, max_size=60).map(lambda t: t + "签"),
)  # no control characters: the client refuses to put those in a Cookie header
CREDENTIAL_TARGETS = [
    ("GET", "/console/"), ("POST", "/console/login"), ("POST", "/console/logout"), ("POST", "/console/login/x"),
    ("GET", "/reports/monthly/2026-11.xlsx"), ("POST", "/console/cases/1001/dispatch"),
]


@FUZZ
@given(target=st.sampled_from(CREDENTIAL_TARGETS), cookie=NON_ASCII, sig=NON_ASCII, field=NON_ASCII)
async def test_non_ascii_credentials_are_refused_not_500(
    client: TestClient[Any, Any], target: tuple[str, str], cookie: str, sig: str, field: str,
) -> None:
    """Signatures and tokens are compared as bytes: a non-ASCII cookie, query or form value is a 4xx."""
    method, path = target
    exp = str(int(time.time()) + 3600)
    headers = {"Cookie": f"cl_session={cookie}; cl_pre={field}"}
    resp = await client.request(method, path, params={"exp": exp, "sig": sig, "next": field},
                                data={"_csrf": field, "login": field, "password": field} if method == "POST" else None,
                                headers=headers, allow_redirects=False)
    await resp.read()
    assert resp.status < 500, (method, path, resp.status)
    # the form field alone (a valid-looking cookie is not needed to reach the CSRF comparison)
    if method == "POST":
        resp = await client.post(path, data={"_csrf": field}, allow_redirects=False)
        assert resp.status < 500, (path, resp.status)
