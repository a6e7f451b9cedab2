"""Matcher speed on synthetic rosters: index build time, per-request latency, peak memory.

    .venv/bin/python benchmarks/bench_match.py                 # 1,000 / 10,000 / 100,000 craftsmen
    .venv/bin/python benchmarks/bench_match.py --sizes 100000 --rounds 3

Each size runs in a fresh subprocess so its peak RSS (``ru_maxrss``) is its own. Requests are the
174 labelled evaluation requests (colloquial, with regions and modes), with a status map covering
every 20th craftsman, on one core.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def one(size: int, rounds: int) -> dict[str, float]:
    from handlers.matching import (
        CraftsmanProfile,
        CraftsmanStatus,
        MatchIndex,
        MatchRequest,
        shipped_taxonomy,
    )
    from handlers.matching.tokenize import split_maximal  # noqa: F401  (import cost outside timings)
    from tests.matching.data.make_roster import generate
    from tests.matching.evalkit import load_cases

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    taxonomy = shipped_taxonomy()
    _ = taxonomy.analyzer
    t_tax = time.perf_counter() - t0
    profiles = [
        CraftsmanProfile(r[0], r[0], r[1], r[2], tuple(r[3].split("、")), r[4], r[7]) for r in generate(size, seed=11)
    ]
    t0 = time.perf_counter()
    index = MatchIndex(taxonomy, profiles)
    t_build = time.perf_counter() - t0
    status = {p.key: CraftsmanStatus(open_load=i % 3, recent_offers=i % 4) for i, p in enumerate(profiles) if i % 20 == 0}
    reqs = [MatchRequest(c.text, c.region, c.mode) for c in load_cases()]
    for r in reqs[:20]:  # warm caches
        index.match(r, top_k=5, status=status)
    lat: list[float] = []
    for _ in range(rounds):
        for r in reqs:
            t = time.perf_counter()
            index.match(r, top_k=5, status=status)
            lat.append((time.perf_counter() - t) * 1000)
    t0 = time.perf_counter()
    for p in profiles[:200]:
        index.upsert(CraftsmanProfile(p.key, p.code, p.name, p.group, (*p.skills, "焊缝返修"), p.region, p.bio))
    t_upsert = (time.perf_counter() - t0) / 200 * 1000
    lat.sort()
    return {
        "size": size,
        "taxonomy_load_s": round(t_tax, 2),
        "build_s": round(t_build, 2),
        "p50_ms": round(statistics.median(lat), 2),
        "p95_ms": round(lat[int(0.95 * (len(lat) - 1))], 2),
        "max_ms": round(lat[-1], 2),
        "upsert_ms": round(t_upsert, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_growth_mb": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.rounds)))
        return
    print("| craftsmen | build (s) | p50 (ms) | p95 (ms) | max (ms) | upsert (ms) | peak RSS (MB) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for size in (int(s) for s in args.sizes.split(",")):
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(size), "--rounds", str(args.rounds)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"| {r['size']:,} | {r['build_s']} | {r['p50_ms']} | {r['p95_ms']} | {r['max_ms']} | "
            f"{r['upsert_ms']} | {r['peak_rss_mb']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
