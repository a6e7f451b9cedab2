"""The benchmark's own parts: the verifying ceiling server and the report's backlog column."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from benchmarks.bare_server import make_app
from benchmarks.report import tables
from benchmarks.wecom_traffic import Platform


async def test_verify_ceiling_accepts_a_real_callback_and_refuses_a_forged_one() -> None:
    platform = Platform()
    async with TestClient(TestServer(make_app(verify=True), host="127.0.0.1")) as client:
        good = platform.text("u1", "你好")
        r = await client.post("/wecom/callback", params=good.query, data=good.body)
        assert r.status == 200
        forged = platform.text("u1", "你好")
        r = await client.post("/wecom/callback", params={**forged.query, "msg_signature": "0" * 40},
                              data=forged.body)
        assert r.status == 403


def _run(**extra: Any) -> dict[str, Any]:
    point = {"acks_per_s": 1000.0, "p50_ms": 1, "p95_ms": 2, "p99_ms": 3, "acked": 10}
    return {"max": point, "at_rate": point, **extra}


def test_report_names_the_backlog_a_run_left() -> None:
    results = {"cores": 2, "rate": 2000, "seconds": 5, "max_seconds": 5, "concurrency": 64, "runs": {
        "bare": _run(), "werobot": _run(),
        "craftlink-sqlite-1": _run(handled_per_s=55.5, backlog_left=1234),
        "craftlink-postgres-1": _run(handled_per_s=80.0, backlog_left=0),
    }}
    rows = {line.split("|")[1].strip(): line for line in tables(results).splitlines() if line.startswith("| craft")}
    assert "| 55.5 (1234 left) |" in rows["craftlink-sqlite-1"]
    assert "| 80.0 |" in rows["craftlink-postgres-1"]
