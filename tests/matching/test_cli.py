"""The ``craftlink match`` contract, driven through ``run()`` as the main CLI will."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from bot.cli.match import add_parser

ROSTER = Path(__file__).parent / "data" / "roster.csv"


def _args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="craftlink")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["match", *argv])


def _run(argv: list[str], stdin: str, monkeypatch: pytest.MonkeyPatch) -> int:
    args = _args(argv)
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return int(args.func(args))


def test_jsonl_contract(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [
        json.dumps({"id": "r1", "text": "师傅你好，急！冲床的模子老是崩刃咋办"}, ensure_ascii=False),
        "{not json",
        json.dumps({"id": "r3", "text": "电脑弹窗要比特币赎金", "mode": "onsite", "region": "宁波北仑"}, ensure_ascii=False),
        json.dumps({"id": "r4", "mode": "online"}),
        json.dumps({"id": "r5", "text": "x", "mode": "teleport"}),
        "",
        json.dumps({"id": 6, "text": "鱼塘的水发绿发臭"}, ensure_ascii=False),
    ]
    code = _run(["--roster", str(ROSTER), "--top", "2", "--jsonl"], "\n".join(lines) + "\n", monkeypatch)
    out, err = capsys.readouterr()
    rows = [json.loads(x) for x in out.splitlines()]
    assert [r["id"] for r in rows] == ["r1", "r3", "r4", "r5", 6]
    assert "模具" in out and "\\u" not in out  # ensure_ascii=False
    first = rows[0]["matches"]
    assert len(first) == 2 and first[0]["group"] == "模具制造"
    assert set(first[0]) == {"id", "name", "group", "score", "reasons"} and first[0]["id"].startswith("GJ")
    assert first[0]["score"] >= first[1]["score"] and first[0]["reasons"]
    assert rows[1]["matches"][0]["group"] == "网络安全"
    assert "error" in rows[2] and "error" in rows[3]
    assert "line 2" in err and "line 4" in err and "line 5" in err and "Traceback" not in err
    assert code == 1


def test_single_request_prints_chinese_top_list(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code = _run(["--roster", str(ROSTER), "--top", "3", "天车的钢丝绳断了几股"], "", monkeypatch)
    out = capsys.readouterr().out
    assert code == 0
    assert "判断工种：港口起重机械" in out
    assert out.count("编号 GJ") == 3 and "1. " in out and "得分" in out


@pytest.mark.parametrize(
    ("content", "needle"), [(None, "无法打开文件"), ("姓名,小组\n张,焊接工艺\n", "缺少必填列")]
)
def test_bad_roster_exit_2_one_line(
    tmp_path: Path, content: str | None, needle: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "r.csv"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    code = _run(["--roster", str(path), "--jsonl"], "", monkeypatch)
    err = capsys.readouterr().err
    assert code == 2 and needle in err and err.count("\n") == 1
