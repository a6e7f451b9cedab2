"""Turning a run's JSON into the Markdown tables of docs/benchmarks.md (between the BENCH markers)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

BEGIN, END = "<!-- BENCH:BEGIN -->", "<!-- BENCH:END -->"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.0%}" if b else "n/a"


def _handled(run: dict[str, Any]) -> str:
    rate = run.get("handled_per_s")
    if rate is None:
        return "–"
    left = run.get("backlog_left", 0)
    return f"{rate} ({left} left)" if left else str(rate)


def tables(r: dict[str, Any]) -> str:
    runs = r["runs"]
    bare = runs.get("bare", {}).get("max", {}).get("acks_per_s", 0.0)
    wero = runs.get("werobot", {}).get("max", {}).get("acks_per_s", 0.0)
    verify = runs.get("bare-verify", {}).get("max", {}).get("acks_per_s", 0.0)
    lines = [
        f"Machine: {r['cores']} cores. Fixed-rate runs: {r['rate']:.0f} callbacks/s for {r['seconds']:.0f} s; "
        f"as-fast-as-possible runs: {r['concurrency']} clients for {r['max_seconds']:.0f} s.",
        "",
        "| target | max acks/s | vs bare | vs bare-verify | vs WeRoBot | ack p50 / p95 / p99 at rate (ms) | acked at rate "
        "| e2e request→offer p50 / p95 (ms) | handled/s | lost | handled twice | offers doubled |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, run in runs.items():
        top, at = run["max"], run["at_rate"]
        e2e = f"{run['e2e_p50_ms']} / {run['e2e_p95_ms']} ({run['offers_seen']}/{run['probes']})" if "e2e_p50_ms" in run else "–"
        lines.append(
            f"| {name} | {top['acks_per_s']:.0f} | {_ratio(top['acks_per_s'], bare)} | "
            f"{_ratio(top['acks_per_s'], verify)} | "
            f"{_ratio(top['acks_per_s'], wero) if name != 'werobot' else '100%'} | "
            f"{at['p50_ms']} / {at['p95_ms']} / {at['p99_ms']} | {at['acked']} ({at['acks_per_s']:.0f}/s) | {e2e} | "
            f"{_handled(run)} | {run.get('lost', '–')} | {run.get('handled_twice', '–')} | "
            f"{run.get('offers_doubled', '–')} |")
    return "\n".join(lines)


def write_docs(path: Path, text: str) -> None:
    doc = path.read_text(encoding="utf-8")
    new = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), f"{BEGIN}\n{text}\n{END}", doc, flags=re.S)
    path.write_text(new, encoding="utf-8")
