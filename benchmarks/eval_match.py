"""Hit rates of the matcher vs a plain BM25 baseline on tests/matching/data (the docs/matching.md table).

    .venv/bin/python benchmarks/eval_match.py [--misses]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from handlers.matching import MatchIndex, MatchRequest, shipped_taxonomy  # noqa: E402
from tests.matching.evalkit import (  # noqa: E402
    evaluate_baseline,
    evaluate_classifier,
    evaluate_matcher,
    load_cases,
    load_profiles,
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--misses", action="store_true", help="list the requests missed at top 3")
    args = ap.parse_args()
    cases = load_cases()
    profiles = load_profiles()
    taxonomy = shipped_taxonomy()
    index = MatchIndex(taxonomy, profiles)
    ours = evaluate_matcher(index, cases)
    base = evaluate_baseline(profiles, cases)
    cls = evaluate_classifier(index, cases)
    print(f"{len(cases)} requests, {len(profiles)} craftsmen, {len(taxonomy.group_names)} taxonomy groups")
    print("| ranker | top-1 | top-3 |")
    print("|---|---|---|")
    print(f"| plain BM25 (jieba, no taxonomy, no expansion) | {base.top1:.1%} | {base.top3:.1%} |")
    print(f"| craftlink matcher | {ours.top1:.1%} | {ours.top3:.1%} |")
    print(f"| classify() best group / any of top 3 guesses | {cls.top1:.1%} | {cls.top3:.1%} |")
    if args.misses:
        byid = {c.id: c for c in cases}
        for mid in ours.misses:
            c = byid[mid]
            got = [r.group for r in index.match(MatchRequest(c.text, c.region, c.mode), top_k=3)]
            print(f"MISS {mid}: {c.text} want={'/'.join(c.groups)} got={got} guess={index.classify(c.text).guesses[:2]}")


if __name__ == "__main__":
    main()
