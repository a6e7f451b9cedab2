"""The peer: WeRoBot with encryption on, the same credentials and traffic, served by gunicorn with one
sync worker (``gunicorn -w 1 -k sync benchmarks.werobot_app:app``). It verifies, decrypts and parses
each callback and answers with no reply; unlike craftlink it stores nothing."""

from __future__ import annotations

from typing import Any

import werobot

from benchmarks.wecom_traffic import AES_KEY, CORP_ID, TOKEN

robot = werobot.WeRoBot(token=TOKEN, encoding_aes_key=AES_KEY, app_id=CORP_ID)
robot.config["SESSION_STORAGE"] = False


@robot.text
def on_text(message: Any) -> None:
    return None  # no reply: the same empty answer craftlink gives


def _healthz(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def app(environ: dict[str, Any], start_response: Any) -> Any:
    """WeRoBot's WSGI app at /wecom/callback, plus a /healthz for the runner's readiness check."""
    if environ.get("PATH_INFO") == "/healthz":
        return _healthz(environ, start_response)
    return robot.wsgi(environ, start_response)
