"""``craftlink match``: rank a roster's craftsmen for requests, offline (no server, no database).

    craftlink match --roster ROSTER.csv --top 3 --jsonl < requests.jsonl > matches.jsonl
    craftlink match --roster ROSTER.xlsx "冲床的模子老是崩刃" [--region 宁波北仑 --mode onsite]

JSONL in: one object per line ``{"id", "text", "region"?, "mode"?}``; out: one line per request, same
order, ``{"id", "matches": [{"id": 编号, "name", "group", "score", "reasons"}]}``. A malformed line is
reported on stderr with its number and answered with ``{"id", "error"}`` when it has an id.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import IO, Any

from handlers.matching import MODES, MatchIndex, MatchRequest, MatchResult, Taxonomy, TaxonomyError
from handlers.matching import shipped_taxonomy as _shipped
from handlers.roster import RosterFileError, parse_roster, to_profile


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``match`` on the main CLI's subparsers."""
    p = subparsers.add_parser(
        "match",
        help="为需求匹配工匠（离线，读取花名册）/ rank roster craftsmen for requests",
        description="按花名册为需求匹配最合适的工匠。No server and no database are used.",
    )
    p.add_argument("--roster", required=True, type=Path, help="花名册 CSV 或 XLSX / roster file")
    p.add_argument("--top", type=int, default=5, help="每条需求返回几位工匠（默认 5）/ results per request")
    p.add_argument("--jsonl", action="store_true", help="从标准输入逐行读 JSON 需求 / read JSONL requests on stdin")
    p.add_argument("--region", default="", help="需求所在地区 / request region (single-request mode)")
    p.add_argument("--mode", default="online", choices=MODES, help="服务方式 / service mode")
    p.add_argument("--taxonomy", type=Path, default=None, help="工种词表目录（默认内置）/ taxonomy dir")
    p.add_argument("text", nargs="?", default=None, help="一段需求 / one request text")
    p.set_defaults(func=run)


def _result_json(r: MatchResult) -> dict[str, Any]:
    return {"id": r.code, "name": r.name, "group": r.group, "score": round(r.score, 4), "reasons": list(r.reasons)}


def _load(args: argparse.Namespace, err: IO[str]) -> MatchIndex | None:
    from bot.channels.registry import roster_channels  # the 渠道 spellings; every channel module, so late

    try:
        parsed = parse_roster(args.roster, channels=roster_channels())
        taxonomy = _shipped() if args.taxonomy is None else Taxonomy.load(args.taxonomy)
    except (RosterFileError, TaxonomyError) as exc:
        print(f"错误 / error: {exc}", file=err)
        return None
    for e in parsed.errors:
        print(f"花名册第 {e.line} 行已跳过 / roster line {e.line} skipped: {e.reason}", file=err)
    if not parsed.rows:
        print(f"错误 / error: {args.roster}: 花名册中没有有效的工匠 / no valid craftsmen in the roster", file=err)
        return None
    return MatchIndex(taxonomy, (to_profile(r) for r in parsed.rows))


def _run_jsonl(index: MatchIndex, top: int, inp: IO[str], out: IO[str], err: IO[str]) -> int:
    bad = 0
    for n, raw in enumerate(inp, start=1):
        if not raw.strip():
            continue
        rid: Any = None
        try:
            obj = json.loads(raw)
            if not isinstance(obj, dict):
                raise ValueError("expected a JSON object")
            rid = obj.get("id")
            text, region, mode = obj.get("text"), obj.get("region") or "", obj.get("mode") or "online"
            if not isinstance(text, str) or not text.strip():
                raise ValueError("missing 'text'")
            if not isinstance(region, str):
                raise ValueError("'region' must be a string")
            if mode not in MODES:
                raise ValueError(f"'mode' must be one of {'/'.join(MODES)}")
            results = index.match(MatchRequest(text, region, mode), top_k=top)
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            bad += 1
            reason = str(exc).splitlines()[0]
            print(f"第 {n} 行无效 / line {n}: {reason}", file=err)
            if rid is not None:
                out.write(json.dumps({"id": rid, "error": reason}, ensure_ascii=False) + "\n")
            continue
        line = {"id": rid, "matches": [_result_json(r) for r in results]}
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
    out.flush()
    return 1 if bad else 0


def _run_one(index: MatchIndex, args: argparse.Namespace, out: IO[str]) -> int:
    req = MatchRequest(args.text, args.region, args.mode)
    guess = index.classify(args.text)
    if guess.guesses:
        best = guess.guesses[0]
        sure = "" if guess.confident else "（不确定，建议人工审核）"
        print(f"判断工种：{best.group}{sure}  依据：{'、'.join(best.terms)}", file=out)
    else:
        print("判断工种：未识别（建议人工审核）", file=out)
    results = index.match(req, top_k=args.top)
    if not results:
        print("没有找到合适的工匠。", file=out)
        return 0
    for rank, r in enumerate(results, start=1):
        print(f"{rank}. {r.name}（编号 {r.code}）  {r.group}  得分 {r.score:.3f}", file=out)
        print(f"   {'；'.join(r.reasons)}", file=out)
    return 0


def run(args: argparse.Namespace) -> int:
    """The ``match`` subcommand. Exit 0 ok, 1 if some JSONL lines were malformed, 2 on a bad roster or usage."""
    err = sys.stderr
    if args.top < 1:
        print("错误 / error: --top 必须大于 0 / --top must be positive", file=err)
        return 2
    if not args.jsonl and not args.text:
        print("错误 / error: 请给出一段需求文字，或使用 --jsonl / give a request text or --jsonl", file=err)
        return 2
    index = _load(args, err)
    if index is None:
        return 2
    if args.jsonl:
        return _run_jsonl(index, args.top, sys.stdin, sys.stdout, err)
    return _run_one(index, args, sys.stdout)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m bot.cli.match``) until the main CLI wires ``match`` in."""
    parser = argparse.ArgumentParser(prog="craftlink")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
