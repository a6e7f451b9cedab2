"""Long requests: what recognising one costs, and how long ``/healthz`` waits meanwhile (issue 13, item 16).

    .venv/bin/python -m benchmarks.bench_long_request
    .venv/bin/python -m benchmarks.bench_long_request --before /tmp/craftlink-before

``--before`` names a source tree of an older version (``git archive <commit> | tar -x -C DIR``) to
measure beside this one, each in its own processes (``PYTHONPATH``), the same way:

* **recognition**: ``MatchIndex.classify`` on the shipped taxonomy and the 120-craftsman evaluation
  roster, for requests of 250 … 4,000 characters made of the labelled requests one after another
  (colloquial, many trades); the median of ``--repeats`` texts (different offsets into the mix).
* **/healthz while handling**: ``craftlink serve`` (SQLite, playground on, demo data) as a real
  process pinned to CPU 0; this process, on CPU 1, registers enterprises through the web chat, sends
  one request of each length and probes ``/healthz`` over loopback back to back until the reply
  (``我理解这是…``) arrives. Reported: the slowest probe, and send → reply.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
# Appended, not prepended: with --recognition, PYTHONPATH (the tree being measured) must come first.
sys.path.append(str(ROOT))

LENGTHS = (250, 500, 1000, 2000, 4000)
WEB_MAX = 2000  # the web chat refuses longer texts (bot/channels/webchat.py::MAX_TEXT)


def mix(chars: int, offset: int = 0) -> str:
    """The labelled requests one after another, from the ``offset``-th, cut to ``chars`` characters."""
    texts = [json.loads(line)["text"] for line in
             (ROOT / "tests/matching/data/eval_requests.jsonl").read_text(encoding="utf-8").splitlines() if line]
    out, i = "", offset
    while len(out) < chars:
        out += texts[i % len(texts)] + "。"
        i += 1
    return out[:chars]


def recognition(repeats: int) -> dict[int, float]:
    """ms per ``classify`` by length (run inside the tree being measured)."""
    from handlers.matching import MatchIndex, shipped_taxonomy
    from handlers.roster import parse_roster, to_profile

    path = ROOT / "tests/matching/data/roster.csv"
    try:  # the 渠道 spellings moved to bot/ (a tree from before takes none)
        from bot.channels.registry import roster_channels
    except ImportError:
        roster = parse_roster(path)  # type: ignore[call-arg]
    else:
        roster = parse_roster(path, channels=roster_channels())
    index = MatchIndex(shipped_taxonomy(), [to_profile(r) for r in roster.rows])
    index.classify(mix(100))
    out: dict[int, float] = {}
    for n in LENGTHS:
        times = []
        for r in range(repeats):
            text = mix(n, offset=17 * r)
            t = time.perf_counter()
            index.classify(text)
            times.append((time.perf_counter() - t) * 1000)
        out[n] = statistics.median(times)
    return out


def _env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree)}


def run_recognition(tree: Path, repeats: int) -> dict[int, float]:
    # The script by path and cwd in the tree: ``-m`` would put this checkout's root first on sys.path.
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--recognition", str(repeats)],
                         cwd=tree, env=_env(tree), check=True, capture_output=True, text=True)
    return {int(k): v for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items()}


async def _say(http: aiohttp.ClientSession, base: str, user: str, text: str, after: int,
               want: str, timeout_s: float = 60.0) -> tuple[int, str]:
    """Send ``text`` as ``user`` and wait for a reply containing ``want``; (last message id, reply text)."""
    async with http.post(f"{base}/webchat/send", json={"user": user, "text": text}) as r:
        assert r.status == 200, await r.text()
    deadline = time.monotonic() + timeout_s
    seen: list[str] = []
    while time.monotonic() < deadline:
        async with http.get(f"{base}/webchat/messages", params={"user": user, "after": str(after)}) as r:
            msgs = (await r.json())["messages"]
        if msgs:
            after = msgs[-1]["id"]
            seen += [f"{m.get('title', '')}\n{m.get('text', '')}" for m in msgs]
            if any(want in s for s in seen):
                return after, "\n".join(seen)
        await asyncio.sleep(0.002)
    raise TimeoutError(f"no reply with {want!r} to {user}: {seen}")


async def _probe_while(http: aiohttp.ClientSession, base: str, busy: asyncio.Task[object]) -> list[float]:
    waits = []
    while not busy.done():
        t = time.perf_counter()
        async with http.get(f"{base}/healthz") as r:
            assert r.status == 200
            await r.read()
        waits.append((time.perf_counter() - t) * 1000)
    return waits


async def _drive(base: str, repeats: int) -> dict[str, Any]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        idle = []
        for _ in range(200):
            t = time.perf_counter()
            async with http.get(f"{base}/healthz") as r:
                await r.read()
            idle.append((time.perf_counter() - t) * 1000)
        rows: dict[int, dict[str, float]] = {}
        for n in (x for x in LENGTHS if x <= WEB_MAX):
            worst, handled = [], []
            for i in range(repeats):
                user = f"web-long-{n}-{i}"
                after, _ = await _say(http, base, user, "你好", 0, "全称")
                after, _ = await _say(http, base, user, f"长文本测试{n}有限公司", after, "称呼")
                after, _ = await _say(http, base, user, "王工", after, "地区")
                after, _ = await _say(http, base, user, "宁波市北仑区", after, "登记完成")
                started = time.perf_counter()
                task = asyncio.create_task(_say(http, base, user, mix(n, offset=17 * i), after, "我理解这是"))
                waits = await _probe_while(http, base, task)
                await task
                handled.append((time.perf_counter() - started) * 1000)
                worst.append(max(waits) if waits else 0.0)
            rows[n] = {"probe_max_ms": max(worst), "handled_ms": statistics.median(handled)}
        return {"idle_p50_ms": statistics.median(idle), "idle_max_ms": max(idle), "rows": rows}


def run_server(tree: Path, repeats: int) -> dict[str, Any]:
    from benchmarks.serverproc import BIN, Proc, free_port

    tmp = Path(tempfile.mkdtemp(prefix="craftlink-longreq-"))
    port = free_port()
    config = tmp / "config.toml"
    config.write_text(f"""
[server]
host = "127.0.0.1"
port = {port}
playground = true

[database]
url = "sqlite+aiosqlite:///{tmp / 'bench.db'}"

[bot]
media_dir = "{tmp / 'media'}"
rate_limit_per_min = 1000

[console]
secret_key = "bench-secret-key-0123456789abcdef"
""", encoding="utf-8")
    # The console script, not ``-m bot.cli``: its sys.path starts with PYTHONPATH, not this checkout.
    cli = [str(BIN / "craftlink"), "--config", str(config)]
    for args in (["db", "upgrade"], ["demo", "seed"]):
        subprocess.run([*cli, *args], cwd=ROOT, env=_env(tree), check=True, capture_output=True)
    proc = Proc([*cli, "serve"], port=port, log=tmp / "serve.log", cpu=0, env={"PYTHONPATH": str(tree)})
    proc.start()
    try:
        return asyncio.run(_drive(f"http://127.0.0.1:{port}", repeats))
    finally:
        proc.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", type=Path, help="an older source tree to measure beside this one")
    ap.add_argument("--repeats", type=int, default=5, help="texts per length for recognition")
    ap.add_argument("--server-repeats", type=int, default=3, help="requests per length against the server")
    ap.add_argument("--recognition", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.recognition:
        print(json.dumps(recognition(args.recognition)))
        return
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})  # the server gets CPU 0 (serverproc pins it)
    trees = {"before": args.before, "after": ROOT} if args.before else {"now": ROOT}
    rec = {name: run_recognition(tree, args.repeats) for name, tree in trees.items()}
    srv = {name: run_server(tree, args.server_repeats) for name, tree in trees.items()}
    names = list(trees)
    rows = {k: srv[k]["rows"] for k in names}
    print("| request (characters) | " + " | ".join(f"classify {k} (ms)" for k in names) + " | "
          + " | ".join(f"/healthz slowest probe {k} (ms)" for k in names) + " | "
          + " | ".join(f"send → reply {k} (ms)" for k in names) + " |")
    print("|---:|" + "---:|" * (3 * len(names)))
    for n in LENGTHS:
        cells = [f"{rec[k][n]:.1f}" for k in names]
        for key in ("probe_max_ms", "handled_ms"):
            for k in names:
                row = rows[k].get(n)
                cells.append(f"{row[key]:.0f}" if row else "–")
        print(f"| {n:,} | " + " | ".join(cells) + " |")
    for k in names:
        print(f"idle /healthz ({k}): p50 {srv[k]['idle_p50_ms']:.2f} ms, max {srv[k]['idle_max_ms']:.2f} ms")


if __name__ == "__main__":
    main()
