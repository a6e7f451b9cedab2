"""Real encrypted WeCom callbacks, built exactly as the platform builds them (wechatpy's crypto).

Bodies are encrypted before a run starts, so the generator's own AES work is not timed. The same
bytes go to craftlink, the bare aiohttp ceiling and WeRoBot; WeRoBot speaks the WeChat service
account's safe mode, which additionally wants the plain ``signature`` of (token, timestamp, nonce)
and ``encrypt_type=aes`` in the query — those two query fields are added for every target alike.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from dataclasses import dataclass

from wechatpy.crypto import _get_signature
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto

# The official WeCom sample account (platforms.md §2 A), used by the tests too.
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CORP_ID = "wx5823bf96d3bd56c7"
AGENT_ID = 1000002


@dataclass(frozen=True)
class Callback:
    msg_id: str
    user: str
    text: str
    query: dict[str, str]
    body: bytes


class Platform:
    """Plays WeCom's side of the callback: encrypts, signs, numbers messages uniquely."""

    def __init__(self, token: str = TOKEN, aes_key: str = AES_KEY, corp_id: str = CORP_ID, *,
                 id_base: int | None = None) -> None:
        self.token = token
        self.corp_id = corp_id
        self.crypto = WeChatCrypto(token, aes_key, corp_id)
        self._prp = PrpCrypto(self.crypto.key)
        self._ids = itertools.count(id_base if id_base is not None else time.time_ns() // 1000)

    def text(self, user: str, text: str, *, timestamp: int | None = None) -> Callback:
        ts = timestamp or int(time.time())
        msg_id = str(next(self._ids))
        plain = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
            f"<CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{text}]]></Content>"
            f"<MsgId>{msg_id}</MsgId><AgentID>{AGENT_ID}</AgentID></xml>"
        )
        enc = self._prp.encrypt(plain, self.corp_id).decode()
        nonce = msg_id[-10:]
        body = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<Encrypt><![CDATA[{enc}]]></Encrypt><AgentID><![CDATA[{AGENT_ID}]]></AgentID></xml>"
        ).encode()
        plain_sig = hashlib.sha1("".join(sorted([self.token, str(ts), nonce])).encode()).hexdigest()
        query = {
            "msg_signature": _get_signature(self.token, str(ts), nonce, enc),
            "timestamp": str(ts),
            "nonce": nonce,
            "signature": plain_sig,
            "encrypt_type": "aes",
        }
        return Callback(msg_id, user, text, query, body)
