"""``craftlink channels check``: can this server get an access token from each configured platform?

One line per configured channel: OK, or the platform's error code and what to fix. The exit status
is 0 only if every configured channel is OK. Tokens and secrets are never printed.

The service account is checked through ``POST /cgi-bin/stable_token`` (``force_refresh: false``), not
``GET /cgi-bin/token``: every ``cgi-bin/token`` call invalidates the token the running service holds
(platforms.md §4), while the stable token is a separate credential that a check leaves untouched.
WeCom ``gettoken`` and DingTalk ``oauth2/accessToken`` return the current token unchanged while it is
valid, so checking them is harmless.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import IO, Any

import aiohttp

from bot import config
from bot.config import DingTalkSettings, Settings, WeChatSettings, WeComSettings, load_settings

TIMEOUT_S = 10

WECOM_HINTS: dict[int, str] = {
    40001: "secret 不正确：检查 [wecom].secret（用应用自己的 Secret）/ wrong app secret",
    40091: "secret 不正确：检查 [wecom].secret / wrong app secret",
    40013: "corpid 不正确：检查 [wecom].corp_id（我的企业 → 企业ID）/ wrong corp id",
    41002: "缺少 corpid：设置 [wecom].corp_id / corp id missing",
    41004: "缺少 secret：设置 [wecom].secret / secret missing",
    60020: "本机 IP 不在企业可信 IP 中：管理后台 → 应用 → 企业可信IP 加入本机出口 IP / server IP not trusted",
    45009: "调用太频繁，稍后再试 / rate limited, try again later",
    -1: "平台繁忙，稍后再试 / platform busy, try again later",
}
WECHAT_HINTS: dict[int, str] = {
    40001: "AppSecret 不正确：检查 [wechat].app_secret / wrong AppSecret",
    40125: "AppSecret 无效：检查 [wechat].app_secret / invalid AppSecret",
    40013: "AppID 不正确：检查 [wechat].app_id / wrong AppID",
    40164: "本机 IP 不在白名单：公众平台 → 设置与开发 → 基本配置 → IP白名单 / server IP not whitelisted",
    89503: "此 IP 调用需管理员确认：请管理员在公众平台确认 / an admin must approve this IP",
    40243: "AppSecret 已被冻结：在公众平台解冻或重置 / AppSecret frozen",
    45009: "今日调用次数已达上限 / daily API quota reached",
    -1: "平台繁忙，稍后再试 / platform busy, try again later",
}


@dataclass(frozen=True)
class CheckResult:
    channel: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'✔' if self.ok else '✘'} {self.channel}: {self.detail}"


async def _call(
    http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    async with http.request(method, url, **kwargs) as resp:
        data = await resp.json(content_type=None)
        return resp.status, data if isinstance(data, dict) else {}


def _wx_result(name: str, status: int, data: dict[str, Any], hints: dict[int, str]) -> CheckResult:
    if status == 200 and data.get("access_token"):
        return CheckResult(name, True, f"OK（token 有效期 {data.get('expires_in', '?')} 秒）")
    errcode = data.get("errcode")
    if isinstance(errcode, int) and errcode != 0:
        hint = hints.get(errcode, str(data.get("errmsg", ""))[:120])
        return CheckResult(name, False, f"errcode {errcode}：{hint}")
    return CheckResult(
        name, False, f"HTTP {status}：意外的应答，检查 api_base / unexpected answer, check api_base"
    )


async def check_wecom(http: aiohttp.ClientSession, s: WeComSettings) -> CheckResult:
    url = s.api_base.rstrip("/") + "/cgi-bin/gettoken"
    status, data = await _call(http, "GET", url, params={"corpid": s.corp_id, "corpsecret": s.secret})
    return _wx_result("企业微信 WeCom", status, data, WECOM_HINTS)


async def check_wechat(http: aiohttp.ClientSession, s: WeChatSettings) -> CheckResult:
    url = s.api_base.rstrip("/") + "/cgi-bin/stable_token"
    body = {
        "grant_type": "client_credential",
        "appid": s.app_id,
        "secret": s.app_secret,
        "force_refresh": False,
    }
    status, data = await _call(http, "POST", url, json=body)
    return _wx_result("微信服务号 WeChat", status, data, WECHAT_HINTS)


async def check_dingtalk(http: aiohttp.ClientSession, s: DingTalkSettings) -> CheckResult:
    name = "钉钉 DingTalk"
    url = s.api_base.rstrip("/") + "/v1.0/oauth2/accessToken"
    status, data = await _call(http, "POST", url, json={"appKey": s.app_key, "appSecret": s.app_secret})
    if status == 200 and data.get("accessToken"):
        note = (
            "" if s.robot_code == s.app_key else "；注意 robot_code 与 app_key 不同（企业内部应用通常相同）"
        )
        return CheckResult(name, True, f"OK（token 有效期 {data.get('expireIn', '?')} 秒）{note}")
    code, message = str(data.get("code", "")), str(data.get("message", ""))[:120]
    if status >= 500 or not code:
        return CheckResult(name, False, f"HTTP {status}：平台繁忙或 api_base 不对，稍后再试 / platform error")
    if "ip" in code.lower() and "white" in code.lower():
        hint = (
            "本机 IP 不在应用的 IP 白名单：开发者后台 → 安全设置 加入本机出口 IP / server IP not whitelisted"
        )
    else:
        hint = "检查 [dingtalk].app_key / app_secret（应用凭证的 Client ID / Client Secret）/ check app key and secret"
    return CheckResult(name, False, f"{code}（{message}）：{hint}")


async def _guarded(name: str, base: str, check: Awaitable[CheckResult]) -> CheckResult:
    try:
        return await check
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return CheckResult(
            name, False, f"无法连接 {base}（{type(exc).__name__}）：检查网络、代理和 DNS / unreachable"
        )


async def check_all(settings: Settings, *, http: aiohttp.ClientSession | None = None) -> list[CheckResult]:
    """Check every configured channel, concurrently; results in a fixed order (WeCom, WeChat, DingTalk)."""
    own = http is None
    session = http or aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S))
    checks: list[Awaitable[CheckResult]] = []
    try:
        plan: list[tuple[str, Any, Callable[[aiohttp.ClientSession, Any], Awaitable[CheckResult]]]] = [
            ("企业微信 WeCom", config.wecom(settings), check_wecom),
            ("微信服务号 WeChat", config.wechat(settings), check_wechat),
            ("钉钉 DingTalk", config.dingtalk(settings), check_dingtalk),
        ]
        for name, section, check in plan:
            if section is not None:
                checks.append(_guarded(name, section.api_base, check(session, section)))
        return list(await asyncio.gather(*checks))
    finally:
        if own:
            await session.close()


def run(args: argparse.Namespace, *, out: IO[str] | None = None) -> int:
    """Entry point of ``craftlink channels check``; ``args.config`` is the config path (or None)."""
    out = out or sys.stdout
    settings = load_settings(args.config)
    results = asyncio.run(check_all(settings))
    if not results:
        out.write("没有配置任何渠道（[wecom] / [wechat] / [dingtalk]）/ no channel configured\n")
        return 1
    for result in results:
        out.write(result.line() + "\n")
    return 0 if all(r.ok for r in results) else 1


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``channels check`` on the main CLI's subparsers."""
    p = subparsers.add_parser("channels", help="渠道（企业微信/服务号/钉钉）/ chat platform channels")
    sub = p.add_subparsers(dest="channels_command", required=True)
    check = sub.add_parser(
        "check",
        help="用配置的凭证向各平台取一次 token，报告结果 / fetch a token from each configured platform",
    )
    check.set_defaults(func=run)
