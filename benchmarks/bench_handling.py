"""What handling one inbox message costs: statements per message and messages per second.

Runs the real app (worker, outbox, demo data) on a fresh SQLite or PostgreSQL database, stores N
first-contact messages from distinct senders (the harness's traffic), then times the inbox worker
draining them. Usage::

    python -m benchmarks.bench_handling --messages 300 [--pg postgresql+asyncpg://...]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import event

from bot.app import create_app
from bot.keys import engine_key, intake_key, worker_key
from handlers.clock import ManualClock
from handlers.messages import IncomingKind, IncomingMessage
from storage.db import create_engine
from storage.migrate import upgrade
from tests.chat import Playground
from tests.conftest import make_settings


async def run(messages: int, url: str | None) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="craftlink-handling-"))
    url = url or f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    engine = create_engine(url)
    await upgrade(engine)
    await engine.dispose()
    clock = ManualClock()
    app = create_app(make_settings(url, tmp), clock=clock, run_scheduler=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        await Playground(client, clock).seed_demo()
        statements: collections.Counter[str] = collections.Counter()

        @event.listens_for(app[engine_key].sync_engine, "before_cursor_execute")
        def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            statements[statement.split(None, 1)[0]] += 1

        await asyncio.gather(*(
            app[intake_key].accept(IncomingMessage(channel="web", sender=f"bench-{i}", platform_msg_id=f"b-{i}",
                                                   kind=IncomingKind.TEXT, text="你好，天车的控制柜接触器老烧"))
            for i in range(messages)
        ))
        statements.clear()
        started = time.perf_counter()
        await app[worker_key].settle()
        elapsed = time.perf_counter() - started
    total = sum(statements.values())
    print(f"backend: {url.split(':', 1)[0]}  messages: {messages}  handled/s: {messages / elapsed:.1f}  "
          f"ms/message: {elapsed / messages * 1000:.1f}  statements/message: {total / messages:.1f}")
    print("  by kind: " + ", ".join(f"{k} {v / messages:.1f}" for k, v in statements.most_common()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--pg", default=None, help="an empty PostgreSQL database URL (default: a temp SQLite file)")
    args = parser.parse_args()
    asyncio.run(run(args.messages, args.pg))


if __name__ == "__main__":
    main()
