"""``craftlink channels check`` against fake token endpoints of all three platforms."""

from __future__ import annotations

import argparse
import asyncio
import io
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.cli.channels import add_parser, run


class FakeTokens:
    """Token endpoints that answer ``errors[platform]`` when set, a token otherwise."""

    def __init__(self) -> None:
        self.errors: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.app = web.Application()
        self.app.router.add_get("/cgi-bin/gettoken", self.wecom)
        self.app.router.add_post("/cgi-bin/stable_token", self.wechat)
        self.app.router.add_get("/cgi-bin/token", self.wechat_plain)
        self.app.router.add_post("/v1.0/oauth2/accessToken", self.dingtalk)

    async def wecom(self, request: web.Request) -> web.Response:
        self.calls.append(("wecom", dict(request.query)))
        return web.json_response(
            self.errors.get("wecom") or {"errcode": 0, "access_token": "SECRET-TOKEN-1", "expires_in": 7200}
        )

    async def wechat(self, request: web.Request) -> web.Response:
        self.calls.append(("wechat", await request.json()))
        return web.json_response(
            self.errors.get("wechat") or {"access_token": "SECRET-TOKEN-2", "expires_in": 7200}
        )

    async def wechat_plain(self, request: web.Request) -> web.Response:
        self.calls.append(("wechat-token", dict(request.query)))  # would invalidate the service's token
        return web.json_response({"access_token": "x", "expires_in": 7200})

    async def dingtalk(self, request: web.Request) -> web.Response:
        self.calls.append(("dingtalk", await request.json()))
        if "dingtalk" in self.errors:
            return web.json_response(self.errors["dingtalk"], status=400)
        return web.json_response({"accessToken": "SECRET-TOKEN-3", "expireIn": 7200})


def write_config(
    tmp_path: Path, base: str, *, sections: tuple[str, ...] = ("wecom", "wechat", "dingtalk")
) -> str:
    parts = {
        "wecom": f'[wecom]\ncorp_id = "wwcorp"\nagent_id = 1000002\nsecret = "wecom-secret-value"\ntoken = "t"\n'
        f'encoding_aes_key = "{"a" * 43}"\napi_base = "{base}"\n',
        "wechat": f'[wechat]\napp_id = "wxapp"\napp_secret = "wechat-secret-value"\ntoken = "t"\napi_base = "{base}"\n',
        "dingtalk": f'[dingtalk]\napp_key = "dingkey"\napp_secret = "ding-secret-value"\nrobot_code = "dingkey"\n'
        f'api_base = "{base}"\n',
    }
    path = tmp_path / "craftlink.toml"
    path.write_text("\n".join(parts[s] for s in sections), encoding="utf-8")
    return str(path)


async def check(config: str) -> tuple[int, str]:
    out = io.StringIO()
    code = await asyncio.to_thread(run, argparse.Namespace(config=config), out=out)  # run() owns its loop
    return code, out.getvalue()


async def serve(fake: FakeTokens) -> TestServer:
    server = TestServer(fake.app, host="127.0.0.1")
    await server.start_server()
    return server


async def test_all_channels_ok(tmp_path: Path) -> None:
    fake = FakeTokens()
    server = await serve(fake)
    try:
        code, out = await check(write_config(tmp_path, str(server.make_url("")).rstrip("/")))
    finally:
        await server.close()
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 3 and all(line.startswith("✔") for line in lines)
    assert "企业微信" in lines[0] and "微信服务号" in lines[1] and "钉钉" in lines[2]
    assert ("wecom", {"corpid": "wwcorp", "corpsecret": "wecom-secret-value"}) in fake.calls
    assert not [c for c in fake.calls if c[0] == "wechat-token"]  # never the invalidating endpoint
    assert "SECRET-TOKEN" not in out and "secret-value" not in out


async def test_each_error_says_what_to_fix(tmp_path: Path) -> None:
    fake = FakeTokens()
    fake.errors = {
        "wecom": {"errcode": 60020, "errmsg": "not allow to access from your ip"},
        "wechat": {"errcode": 40013, "errmsg": "invalid appid"},
        "dingtalk": {"code": "invalidClientIdOrSecret", "message": "无效的clientId或clientSecret"},
    }
    server = await serve(fake)
    try:
        code, out = await check(write_config(tmp_path, str(server.make_url("")).rstrip("/")))
    finally:
        await server.close()
    assert code == 1
    wecom, wechat, dingtalk = out.splitlines()
    assert wecom.startswith("✘") and "60020" in wecom and "可信 IP" in wecom
    assert "40013" in wechat and "[wechat].app_id" in wechat
    assert "invalidClientIdOrSecret" in dingtalk and "[dingtalk].app_key" in dingtalk


async def test_wrong_secret_on_wecom(tmp_path: Path) -> None:
    fake = FakeTokens()
    fake.errors = {"wecom": {"errcode": 40001, "errmsg": "invalid credential"}}
    server = await serve(fake)
    try:
        code, out = await check(
            write_config(tmp_path, str(server.make_url("")).rstrip("/"), sections=("wecom",))
        )
    finally:
        await server.close()
    assert code == 1
    assert out.count("\n") == 1 and "40001" in out and "[wecom].secret" in out


async def test_unreachable_platform_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    code, out = await check(write_config(tmp_path, "http://127.0.0.1:9", sections=("dingtalk",)))
    assert code == 1
    assert out.startswith("✘ 钉钉 DingTalk: 无法连接 http://127.0.0.1:9")


async def test_no_channel_configured(tmp_path: Path) -> None:
    path = tmp_path / "empty.toml"
    path.write_text("", encoding="utf-8")
    code, out = await check(str(path))
    assert code == 1 and "没有配置任何渠道" in out


def test_the_subcommand_parses() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["--config", "x.toml", "channels", "check"])
    assert args.func is run and args.config == "x.toml"
