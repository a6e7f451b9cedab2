"""The ``craftlink`` command as a user runs it: config errors, migrations, roster import, demo seed."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from dataclasses import fields, is_dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot import config
from bot.config import CHANNEL_SECTIONS, ConfigError, Settings, load_settings, parse_settings
from storage.db import create_engine, session_factory
from storage.models import Craftsman, Identity

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, env: dict[str, str] | None = None, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, input=stdin, timeout=120)


def write_config(tmp_path: Path, db_url: str, extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{db_url}"\n[bot]\nmedia_dir = "{tmp_path}/media"\n{extra}', encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("[server]\nport = \"eighty\"\n", "server.port: expected an integer, got 'eighty'"),
        ("[bot]\noffer_policy = \"random\"\n", "bot.offer_policy: expected sequential or parallel"),
        ("[bot]\ntimezone = \"Mars/Base\"\n", "bot.timezone: expected an IANA zone"),
        ("[wecom]\ncorp_id = \"ww1\"\n", "wecom.agent_id: required when [wecom] is present"),
        ("[nonsense]\nx = 1\n", "[nonsense]: unknown section"),
        ("[bot]\ntypo_key = 1\n", "bot.typo_key: unknown setting"),
        ("[timers]\ndaily_digest_at = \"25:00\"\n", "timers.daily_digest_at: expected a time like 08:30"),
        ("not toml at all [", "not valid TOML"),
    ],
)
def test_bad_config_is_one_line_without_traceback(tmp_path: Path, body: str, expected: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body, encoding="utf-8")
    result = run("--config", str(path), "db", "upgrade")
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_missing_config_file(tmp_path: Path) -> None:
    result = run("--config", str(tmp_path / "nope.toml"), "serve")
    assert result.returncode == 2 and "config file not found" in result.stderr and "Traceback" not in result.stderr


def _serve_fails_fast(cfg: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    import time

    from benchmarks.serverproc import free_port

    started = time.monotonic()
    result = run("--config", str(cfg), "serve", "--port", str(free_port()))
    return result, time.monotonic() - started


@pytest.mark.parametrize("revision", [None, "0001"], ids=["never-migrated", "older-revision"])
async def test_serve_on_a_database_not_at_head_stops_with_one_line(tmp_path: Path, revision: str | None) -> None:
    db = tmp_path / "craftlink.db"
    db.touch()  # an empty SQLite file: what a forgotten ``db upgrade`` leaves
    if revision is not None:
        from storage.migrate import upgrade

        engine = create_engine(f"sqlite+aiosqlite:///{db}")
        await upgrade(engine, revision)
        await engine.dispose()
    cfg = write_config(tmp_path, f"sqlite+aiosqlite:///{db}")
    result, took = _serve_fails_fast(cfg)
    assert result.returncode == 1, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert f"craftlink --config {cfg} db upgrade" in result.stderr
    assert ("never been migrated" if revision is None else "revision 0001") in result.stderr
    assert took < 10  # ~80 KB of tracebacks in 8 s, before


def test_secrets_come_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRAFTLINK_WECOM_SECRET", "from-env")
    monkeypatch.setenv("CRAFTLINK_DATABASE_URL", "sqlite+aiosqlite:///env.db")
    settings = parse_settings({"wecom": {"corp_id": "ww1", "agent_id": 1000002, "secret": "in-file", "token": "t",
                                         "encoding_aes_key": "k" * 43}})
    wecom = config.wecom(settings)
    assert wecom is not None and wecom.secret == "from-env"
    assert settings.database.url == "sqlite+aiosqlite:///env.db"
    monkeypatch.setenv("CRAFTLINK_BOT_MAX_CANDIDATES", "lots")
    with pytest.raises(ConfigError, match="CRAFTLINK_BOT_MAX_CANDIDATES: expected an integer"):
        parse_settings({})


def _documented_keys(cls: type, raw: dict[str, object], prefix: str) -> list[str]:
    missing = []
    for f in fields(cls):
        if f.name == "source":
            continue
        if f.name not in raw:
            missing.append(f"{prefix}{f.name}")
    return missing


def test_every_setting_is_documented_in_the_example() -> None:
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    raw = tomllib.loads(text)
    load_settings(ROOT / "config.example.toml")  # the example itself is valid
    missing: list[str] = []
    for f in fields(Settings):
        if f.name in ("source", "staff", "sections"):  # sections: the channels', checked below
            continue
        value = getattr(Settings(), f.name)
        if value is not None and is_dataclass(value):
            missing += _documented_keys(type(value), raw.get(f.name, {}), f"{f.name}.")
        elif f"[{f.name}]" not in text:
            missing.append(f"[{f.name}]")
    for channel, cls in CHANNEL_SECTIONS.items():  # commented out in the example: check the text
        section = text.split(f"# [{channel}]", 1)[1].split("\n# [", 1)[0]
        missing += [f"{channel}.{f.name}" for f in fields(cls) if f"# {f.name} =" not in section]
    assert missing == []


async def test_roster_import_reports_bad_rows_and_never_duplicates(tmp_path: Path, db_url: str) -> None:
    roster = tmp_path / "花名册.csv"
    roster.write_text(
        "编号,姓名,小组,技能专长,地区,渠道,账号,简介,手机\n"
        "A001,张三,焊接工艺,氩弧焊；管道焊接,宁波市北仑区,wecom,zhangsan,焊工,13800000001\n"
        "A002,,维修电工,PLC,杭州,wecom,lisi,,\n"
        "A003,王五,数控加工,加工中心、编程,上海,qq,wangwu,,\n"
        "A004,赵六,模具制造,冲压模具,宁波,dingtalk,zhaoliu,,\n",
        encoding="utf-8",
    )
    config = write_config(tmp_path, db_url)
    first = run("--config", str(config), "roster", "import", str(roster))
    assert first.returncode == 0, first.stderr
    assert "新增 2 人" in first.stdout and "错误 2 行" in first.stdout
    assert "第 3 行" in first.stderr and "第 4 行" in first.stderr and "Traceback" not in first.stderr
    roster.write_text(roster.read_text(encoding="utf-8").replace("焊工,", "焊接首席技师,"), encoding="utf-8")
    second = run("--config", str(config), "roster", "import", str(roster))
    assert "新增 0 人，更新 1 人，不变 1 人" in second.stdout
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as s:
            assert await s.scalar(select(func.count()).select_from(Craftsman)) == 2
            bio = await s.scalar(select(Craftsman.bio).where(Craftsman.code == "A001"))
            assert bio == "焊接首席技师"
            assert await s.scalar(select(func.count()).select_from(Identity)) == 2
    finally:
        await engine.dispose()


def test_roster_file_problems_are_one_line(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path, db_url)
    bad = tmp_path / "bad.csv"
    bad.write_text("foo,bar\n1,2\n", encoding="utf-8")
    result = run("--config", str(config), "roster", "import", str(bad))
    assert result.returncode == 2 and "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
    missing = run("--config", str(config), "roster", "import", str(tmp_path / "missing.xlsx"))
    assert missing.returncode != 0 and "Traceback" not in missing.stderr


def test_demo_seed_is_idempotent(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path, db_url)
    assert "新增 40 人" in run("--config", str(config), "demo", "seed").stdout
    assert "新增 0 人" in run("--config", str(config), "demo", "seed").stdout


def test_readme_lists_every_chat_command() -> None:
    from handlers.app import build_router

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = sorted({  # the primary name of each command; aliases (拒绝, 查询, ...) need not be listed
        route.names[0] for route in build_router().commands if route.summary and f"`{route.names[0]}" not in readme
    })
    assert missing == []
