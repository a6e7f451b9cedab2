"""Profile craftlink's hot path under load with py-spy: ``python -m benchmarks.profile``.

Starts one craftlink (CPU 0) on a fresh SQLite database, drives it as fast as possible with encrypted
callbacks from this process (CPU 1) for ``--seconds``, samples it with ``py-spy record`` meanwhile, and
prints the functions with the most samples, inclusive and self. ``--role intake`` measures the callbacks
and the inbox commit alone (nothing handled); ``--no-spy`` measures without the sampler's overhead.
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


async def main(seconds: float, concurrency: int, n: int, out: Path, *, role: str = "all", spy: bool = True) -> None:
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
        proc = serverproc.craftlink(cfg, port=port, log=tmp / "server.log", cpu=0, role=role).start()
        try:
            platform = Platform()
            await closed_loop([port], traffic(300, platform), concurrency=8, seconds=5)
            # Encrypted before the sampler starts: the first version sampled a server idle while this made it.
            load = traffic(int(seconds * 6000), platform)
            sampler = None
            if spy:
                cmd = [str(serverproc.BIN / "py-spy"), "record", "-p", str(proc.pid), "-d", str(int(seconds)),
                       "-r", "200", "-f", "raw", "-o", str(out), "--nonblocking"]
                sampler = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: ASYNC220 (starts only; runs beside the load)
            cpu0 = cpu_seconds(proc.pid)
            res = await closed_loop([port], load, concurrency=concurrency, seconds=seconds)
            busy = (cpu_seconds(proc.pid) - cpu0) / res.elapsed
            if sampler:
                sampler.wait(60)
            print(f"role {role}: {res.ack_rate:.0f} acks/s, p50 {res.pct(50) * 1000:.1f} ms, "
                  f"p99 {res.pct(99) * 1000:.1f} ms, server CPU {busy:.0%} of a core"
                  f"{' (sampled by py-spy)' if spy else ''}")
        finally:
            proc.stop()
            await fake.close()
    if spy:
        print(top(out, n))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=8)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--out", type=Path, default=Path("var/profile.txt"))
    p.add_argument("--role", choices=("all", "intake"), default="all")
    p.add_argument("--no-spy", dest="spy", action="store_false", help="measure without py-spy attached")
    ns = p.parse_args()
    ns.out.parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(ns.seconds, ns.concurrency, ns.top, ns.out, role=ns.role, spy=ns.spy))
