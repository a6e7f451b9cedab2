"""Profile craftlink's hot path under load with py-spy: ``python -m benchmarks.profile [--db sqlite]``.

Starts one craftlink (CPU 0) on a fresh SQLite database, drives it as fast as possible with encrypted
callbacks from this process (CPU 1) for ``--seconds``, samples it with ``py-spy record`` meanwhile, and
prints the functions with the most samples, inclusive and self.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

from benchmarks import serverproc
from benchmarks.loadgen import closed_loop
from benchmarks.platform_side import timed_fake
from benchmarks.run import traffic
from benchmarks.wecom_traffic import Platform


def top(collapsed: Path, n: int) -> str:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        c = int(count)
        total += c
        for f in set(frames):
            inclusive[f] += c
        own[frames[-1]] += c
    out = [f"samples: {total}", "", "inclusive:"]
    out += [f"{c / total:6.1%}  {f}" for f, c in inclusive.most_common(n)]
    out += ["", "self:"]
    out += [f"{c / total:6.1%}  {f}" for f, c in own.most_common(n)]
    return "\n".join(out)


async def main(seconds: float, concurrency: int, n: int, out: Path) -> None:
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory(prefix="craftlink-prof-") as d:
        tmp = Path(d)
        fake = timed_fake()
        await fake.start()
        port = serverproc.free_port()
        cfg = serverproc.write_config(tmp / "c.toml", db_url=f"sqlite+aiosqlite:///{tmp}/p.db", port=port,
                                      wecom_api=fake.base_url, media_dir=tmp / "media")
        serverproc.upgrade(cfg)
        proc = serverproc.craftlink(cfg, port=port, log=tmp / "server.log", cpu=0).start()
        try:
            platform = Platform()
            await closed_loop([port], traffic(300, platform), concurrency=8, seconds=5)
            spy = subprocess.Popen([str(serverproc.BIN / "py-spy"), "record", "-p", str(proc.pid), "-d",  # noqa: ASYNC220 (starts only; runs beside the load)
                                    str(int(seconds)), "-r", "200", "-f", "raw", "-o", str(out), "--nonblocking"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            res = await closed_loop([port], traffic(500_000, platform), concurrency=concurrency, seconds=seconds)
            spy.wait(60)
            print(f"acks/s during profile: {res.ack_rate:.0f}")
        finally:
            proc.stop()
            await fake.close()
    print(top(out, n))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=8)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--out", type=Path, default=Path("var/profile.txt"))
    ns = p.parse_args()
    ns.out.parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(ns.seconds, ns.concurrency, ns.top, ns.out))
