"""The ``登录`` chat command: a one-time link to the staff console, so nobody types a password on a phone.

Only the SHA-256 of a token is stored (``login_tokens``). Hashes are domain-separated: a login link
hashes ``link:TOKEN``, a console session ``session:ID``, so a value of one kind can never be redeemed
as the other. The console (``bot/console/auth.py``) redeems links with :func:`link_hash`. A link is
sent only to an identity on a channel whose platform vouches for the sender
(``Services.verified_channels``, which bot/ fills: not the web chat), except in demo mode (:func:`handlers.settings.demo_mode`): there, anyone can type
as anyone.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from handlers.context import HandlerContext, UserError
from handlers.router import Command, Router
from handlers.settings import demo_mode
from storage.models import LoginToken, Role, StaffMember

router = Router("staff.login")


def link_hash(token: str) -> str:
    return hashlib.sha256(f"link:{token}".encode()).hexdigest()


def session_hash(session_id: str) -> str:
    return hashlib.sha256(f"session:{session_id}".encode()).hexdigest()


async def create_login_link(ctx: HandlerContext) -> tuple[str, int]:
    """Store a fresh link token for ``ctx.person``; returns (the URL, minutes it stays valid)."""
    links = ctx.services.links
    if links is None:  # not inside the service (nothing to log in to from here)
        raise UserError("控制台登录链接暂不可用，请使用密码登录。")
    token = secrets.token_urlsafe(32)
    minutes = ctx.settings.console.login_link_minutes
    ctx.session.add(LoginToken(token_hash=link_hash(token), person_id=ctx.person.id,
                           expires_at=ctx.now() + timedelta(minutes=minutes)))
    return links.console_login(token), minutes


@router.command("登录", "控制台", roles={Role.STAFF}, summary="登录 — 获取网页控制台的一次性登录链接")
async def login_link(ctx: HandlerContext, cmd: Command) -> None:
    """Reply with a one-time console login link (valid a few minutes, usable once)."""
    if await ctx.session.get(StaffMember, ctx.person.id) is None:
        raise UserError("您还没有控制台账号，请联系管理员开通。")
    verified = ctx.identity is not None and ctx.identity.channel in ctx.services.verified_channels
    if not verified and not demo_mode(ctx.settings):
        # Outside the demo, anyone who reaches the web chat can claim to be anyone: no link goes there.
        raise UserError("网页聊天中不能获取控制台登录链接，请在企业微信、公众号或钉钉中发送「登录」，或使用密码登录。")
    url, minutes = await create_login_link(ctx)
    await ctx.reply(f"控制台登录链接（{minutes} 分钟内有效，只能使用一次，请勿转发）：\n{url}")
