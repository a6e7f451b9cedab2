"""The ceilings of this stack, for the harness's ratios.

    python -m benchmarks.bare_server PORT            # reads the body and answers ``success``
    python -m benchmarks.bare_server PORT --verify   # also does what any WeCom receiver must do

``--verify`` checks the timestamp and the signature, decrypts and parses the message with craftlink's
own channel code (bot/channels), and answers without storing anything: the most a receiver that
acknowledges *durably* could reach on this stack, measured rather than estimated (docs/benchmarks.md).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from aiohttp import web
from wechatpy.enterprise.crypto import WeChatCrypto

from benchmarks.wecom_traffic import AES_KEY, CORP_ID, TOKEN
from bot.channels.wx_callback import (
    Rejected,
    check_signature,
    check_timestamp,
    message_fields,
    query_params,
    rejected_response,
    xml_fields,
)
from bot.channels.wx_messages import to_incoming

CRYPTO = WeChatCrypto(TOKEN, AES_KEY, CORP_ID)


async def callback(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(text="success")


async def verified_callback(request: web.Request) -> web.Response:
    try:
        signature, timestamp, nonce = query_params(request, "msg_signature", "timestamp", "nonce")
        now = datetime.now(UTC)
        check_timestamp(timestamp, now, 300)
        encrypted = xml_fields(await request.read()).get("Encrypt", "")
        check_signature(signature, TOKEN, timestamp, nonce, encrypted)
    except Rejected as err:
        return rejected_response("wecom", err)
    plain = CRYPTO.decrypt_message({"Encrypt": encrypted}, signature, timestamp, nonce)
    msg = to_incoming("wecom", message_fields(plain.decode() if isinstance(plain, bytes) else plain), now)
    return web.Response(text="" if msg else "success")


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def make_app(*, verify: bool = False) -> web.Application:
    app = web.Application()
    app.router.add_post("/wecom/callback", verified_callback if verify else callback)
    app.router.add_get("/healthz", healthz)
    return app


if __name__ == "__main__":
    web.run_app(make_app(verify="--verify" in sys.argv[2:]), host="127.0.0.1", port=int(sys.argv[1]),
                print=None, access_log=None)
