"""Structured logs: one JSON line per event; no secrets, no message contents at INFO.

Fields: ``ts``, ``level``, ``logger``, ``msg`` and, when the call passes them with ``extra=``,
``channel``, ``case`` (the case number people see), ``outcome``, ``event``. Code logs ids, channels,
error codes and exception types at INFO/WARNING, never what people wrote (that is in the database);
as a second line of defence the formatter masks anything that looks like a credential in a query
string or a JSON body (``access_token=...``, ``"secret": "..."``) before the line is written.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

from handlers.settings import Settings

FIELDS = ("channel", "case", "outcome", "event")
_SECRET = re.compile(
    r"""(?i)(access_token|corpsecret|app_?secret|secret|password|encoding_aes_key|token|sign(?:ature)?)"""
    r"""(["']?\s*[=:]\s*["']?)([^&"'\s,}]+)"""
)


def scrub(text: str) -> str:
    """Mask credential-looking values: ``access_token=abc`` → ``access_token=***``."""
    return _SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": scrub(record.getMessage()),
        }
        for key in FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(settings: Settings, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiohttp.access", "apscheduler", "jieba", "sqlalchemy.engine"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
