"""One command for the whole benchmark: ``python -m benchmarks.run`` (``make bench``).

In one run, on the same machine and the same encrypted traffic: the bare aiohttp ceiling, WeRoBot
(gunicorn, one sync worker) and craftlink on SQLite and PostgreSQL with one and two instances
(the generator alternates ports). Servers (and PostgreSQL) are pinned to CPU 0, this generator and the
WeCom API fake to CPU 1. Everything listens on 127.0.0.1 and every phase is bounded in count and time.
Results go to a JSON file and, with ``--write-docs``, into the tables of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import serverproc
from benchmarks.loadgen import Result, closed_loop, open_loop
from benchmarks.platform_side import TimedList, timed_fake
from benchmarks.probes import e2e_latencies, run_probes
from benchmarks.wecom_traffic import Platform

SERVER_CPU, GEN_CPU = 0, 1
EXTRA = '\n[timers]\nquiet_hours = "03:00-03:01"\n'  # no quiet hours: offers go out at once at any hour


@dataclass
class Args:
    rate: float
    seconds: float
    max_seconds: float
    concurrency: int
    probes: int
    out: Path
    drain_seconds: float = 240.0


def pct(xs: list[float], p: float) -> float:
    return sorted(xs)[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")


def summary(res: Result) -> dict[str, Any]:
    return {"acks_per_s": round(res.ack_rate, 1), "p50_ms": round(res.pct(50) * 1000, 2),
            "p95_ms": round(res.pct(95) * 1000, 2), "p99_ms": round(res.pct(99) * 1000, 2),
            "acked": len(res.acked), "statuses": res.statuses, "not_sent": res.dropped}


def traffic(n: int, platform: Platform, users: int = 5000) -> list[Any]:
    return [platform.text(f"bench{i % users:05d}", "你好，设备有点问题想咨询一下") for i in range(n)]


async def peer(name: str, cmd: list[str], port: int, a: Args, tmp: Path) -> dict[str, Any]:
    proc = serverproc.Proc(cmd, port=port, log=tmp / f"{name}.log", cpu=SERVER_CPU).start()
    try:
        platform = Platform()
        await closed_loop([port], traffic(500, platform), concurrency=8, seconds=5)  # warm-up
        top = await closed_loop([port], traffic(200_000, platform), concurrency=a.concurrency, seconds=a.max_seconds)
        at_rate = await open_loop([port], traffic(int(a.rate * a.seconds), platform), a.rate)
    finally:
        proc.stop()
    return {"max": summary(top), "at_rate": summary(at_rate)}


WORKER_NICE = 10  # in the split runs: acknowledging comes first, handling takes the CPU that is left


async def craftlink_run(db: str, instances: int, a: Args, tmp: Path, *, split: bool = False) -> dict[str, Any]:
    """``instances`` craftlink processes behind the generator's round-robin; with ``split``, one intake-role
    process takes the callbacks and one worker-role process (at WORKER_NICE) handles them, same core."""
    from sqlalchemy import func, select

    from benchmarks.seed import seed
    from storage.db import create_engine, session_factory
    from storage.models import InboxMessage, InboxState, OutboxMessage, OutboxState

    pg = None
    if db == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp}/bench-{'split' if split else instances}.db"
    else:
        from benchmarks.pgserver import OwnPostgres

        pg = OwnPostgres(cpu=SERVER_CPU)
        url = pg.start()
    fake = timed_fake()
    await fake.start()
    procs: list[serverproc.Proc] = []
    try:
        n_procs = 2 if split else instances
        roles = ["intake", "worker"] if split else ["all"] * n_procs
        all_ports = [serverproc.free_port() for _ in range(n_procs)]
        ports = [p for p, r in zip(all_ports, roles, strict=True) if r != "worker"]  # the traffic's targets
        cfgs = [serverproc.write_config(tmp / f"{db}{instances}{split}-{i}.toml", db_url=url, port=p,
                                        wecom_api=fake.base_url, media_dir=tmp / "media", instance=f"i{i}",
                                        extra=EXTRA)
                for i, p in enumerate(all_ports)]
        serverproc.upgrade(cfgs[0])
        engine = create_engine(url)
        async with session_factory(engine)() as s, s.begin():
            users = await seed(s, a.probes)
        procs = [serverproc.craftlink(c, port=p, log=tmp / f"{db}{instances}-{p}.log", cpu=SERVER_CPU, role=r,
                                      nice=WORKER_NICE if r == "worker" else 0).start()
                 for c, p, r in zip(cfgs, all_ports, roles, strict=True)]
        platform = Platform()
        await closed_loop(ports, traffic(300, platform), concurrency=8, seconds=5)  # warm-up
        # The warm-up's messages are handled before the measured phase starts, or the probes would
        # queue behind them and the e2e figures would measure the warm-up.
        await _drain(engine, InboxMessage, InboxState, select, func, timeout_s=a.drain_seconds)
        await _drain(engine, OutboxMessage, OutboxState, select, func, timeout_s=a.drain_seconds)
        t0 = time.monotonic()
        load = asyncio.create_task(open_loop(ports, traffic(int(a.rate * a.seconds), platform), a.rate))
        submitted = await run_probes(ports, users, every_s=max(1.0, a.seconds / a.probes), seconds=a.seconds,
                                     platform=platform)
        at_rate = await load
        left, done_at_drain = await _drain(engine, InboxMessage, InboxState, select, func, timeout_s=a.drain_seconds)
        handled_s = time.monotonic() - t0
        # The probes' offers queue in the outbox behind the replies to the whole load: wait for it too
        # (within what is left of the bound), or e2e would cover only the offers that happened to go first.
        unsent, _ = await _drain(engine, OutboxMessage, OutboxState, select, func,
                                 timeout_s=max(0.0, a.drain_seconds - handled_s))
        sent = fake.sent
        assert isinstance(sent, TimedList)
        e2e, offers_doubled = e2e_latencies(sent, submitted)
        top = await closed_loop(ports, traffic(200_000, platform), concurrency=a.concurrency, seconds=a.max_seconds)
        acked = at_rate.acked | top.acked
        handled = sum(_handled(p.port) for p in procs)  # before counting rows: both only grow
        async with engine.connect() as conn:
            stored = set((await conn.scalars(select(InboxMessage.platform_msg_id))).all())
            done_rows = await _count(conn, InboxMessage, InboxState.DONE, select, func)
        await engine.dispose()
    finally:
        for p in procs:
            p.stop()
        await fake.close()
        if pg:
            pg.stop()
    return {
        "db": db, "instances": instances, "at_rate": summary(at_rate), "max": summary(top),
        "e2e_p50_ms": round(pct(e2e, 50) * 1000, 1), "e2e_p95_ms": round(pct(e2e, 95) * 1000, 1),
        "probes": len(submitted), "offers_seen": len(e2e), "offers_doubled": offers_doubled,
        # Handled per second from the load's start to the drain's end; a backlog left after the drain
        # bound is reported, not hidden (the e2e figures then cover only the probes that got through).
        "inbox_drained": left == 0, "backlog_left": left, "outbox_left": unsent, "handled_per_s": round(done_at_drain / handled_s, 1),
        "lost": len(acked - stored), "handled_twice": max(0, handled - done_rows),
    }


async def _count(conn: Any, model: Any, state: Any, select: Any, func: Any) -> int:
    return int(await conn.scalar(select(func.count()).select_from(model).where(model.state == state.value)) or 0)


async def _drain(engine: Any, model: Any, states: Any, select: Any, func: Any, *, timeout_s: float) -> tuple[int, int]:
    """Wait until no row of ``model`` is pending or ``timeout_s`` passes: (rows still pending, rows done;
    the outbox has no ``done`` state, so 0 there)."""
    deadline = time.monotonic() + timeout_s
    while True:
        async with engine.connect() as conn:
            pending = await _count(conn, model, states.PENDING, select, func)
            done = await _count(conn, model, states.DONE, select, func) if hasattr(states, "DONE") else 0
        if not pending or time.monotonic() >= deadline:
            return pending, done
        await asyncio.sleep(0.5)


def _handled(port: int) -> int:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    return int(sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
                   if s.name == "craftlink_handling_seconds_count" and s.labels.get("outcome") == "done"))


async def main(a: Args, only: list[str]) -> dict[str, Any]:
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {GEN_CPU})
    results: dict[str, Any] = {"cores": os.cpu_count(), "rate": a.rate, "seconds": a.seconds,
                               "max_seconds": a.max_seconds, "concurrency": a.concurrency, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="craftlink-bench-") as d:
        tmp = Path(d)
        if "bare" in only:
            port = serverproc.free_port()
            results["runs"]["bare"] = await peer(
                "bare", [sys.executable, "-m", "benchmarks.bare_server", str(port)], port, a, tmp)
        if "bare-verify" in only or "bare" in only:
            port = serverproc.free_port()
            results["runs"]["bare-verify"] = await peer(
                "bare-verify", [sys.executable, "-m", "benchmarks.bare_server", str(port), "--verify"], port, a, tmp)
        if "werobot" in only:
            port = serverproc.free_port()
            results["runs"]["werobot"] = await peer("werobot", [
                str(serverproc.BIN / "gunicorn"), "-w", "1", "-k", "sync", "-b", f"127.0.0.1:{port}",
                "--log-level", "warning", "benchmarks.werobot_app:app"], port, a, tmp)
        for db in ("sqlite", "postgres"):
            for n in ("1", "2", "split"):
                key = f"craftlink-{db}-{n}"
                if key in only or "craftlink" in only:
                    print(f"== {key}", flush=True)
                    split = n == "split"
                    results["runs"][key] = await craftlink_run(db, 1 if split else int(n), a, tmp, split=split)
                    print(json.dumps(results["runs"][key], ensure_ascii=False), flush=True)
    a.out.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    return results


def cli() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=2000, help="callbacks per second for the latency runs")
    p.add_argument("--seconds", type=float, default=10, help="length of the fixed-rate runs")
    p.add_argument("--max-seconds", type=float, default=10, help="length of the as-fast-as-possible runs")
    p.add_argument("--concurrency", type=int, default=64, help="clients in the as-fast-as-possible runs")
    p.add_argument("--probes", type=int, default=10, help="end-to-end probe cases per run")
    p.add_argument("--only", default="bare,werobot,craftlink", help="comma list: bare (with bare-verify), "
                   "bare-verify, werobot, craftlink, "
                   "or craftlink-sqlite-1 / craftlink-postgres-2 / craftlink-sqlite-split ...")
    p.add_argument("--drain-seconds", type=float, default=240,
                   help="how long to wait for the inbox to drain after a fixed-rate run; what is left is reported")
    p.add_argument("--out", type=Path, default=Path("var/bench.json"))
    p.add_argument("--write-docs", action="store_true", help="rewrite the tables in docs/benchmarks.md")
    ns = p.parse_args()
    ns.out.parent.mkdir(parents=True, exist_ok=True)
    a = Args(ns.rate, ns.seconds, ns.max_seconds, ns.concurrency, ns.probes, ns.out, ns.drain_seconds)
    results = asyncio.run(main(a, ns.only.split(",")))
    from benchmarks.report import tables

    text = tables(results)
    print(text)
    if ns.write_docs:
        from benchmarks.report import write_docs

        write_docs(Path("docs/benchmarks.md"), text)


if __name__ == "__main__":
    cli()
