from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from bot.channels.registry import roster_channels
from handlers.roster import RosterFileError, parse_roster, parse_roster_bytes, split_skills, to_profile

CHANNELS = roster_channels()  # the 渠道 spellings bot/ declares

GOOD_CSV = (
    "编号,姓名,小组,技能专长,地区,渠道,账号,简介,手机\n"
    "GJ01,张伟,焊接工艺,氩弧焊；不锈钢焊接、铝焊,宁波北仑,企业微信,zhangwei,焊工二十年,138 0000 1111\n"
    ",李强,维修电工,电机维修,宁波鄞州,wecom,liqiang,,\n"
    "GJ03,王芳,工业自动化,PLC,上海闵行,qq,wangfang,,\n"
    "GJ01,赵六,焊接工艺,二保焊,上海,web,zhao,,\n"
    "\n"
    "GJ05,孙七,,电焊,上海,,,,\n"
    "GJ06,周八,数控加工,数控车床,青岛黄岛,钉钉,,,\n"
    "GJ07,吴九,数控加工,\"加工中心, 五轴\",青岛,,,,12ab\n"
    "GJ08,郑十,模具制造,冲压模具,台州,公众号,oid-1,,\n"
)


def _check(result_rows: list, errors: list) -> None:
    assert [r.code for r in result_rows] == ["GJ01", "GJ08"]
    first = result_rows[0]
    assert first.line == 2 and first.channel == "wecom" and first.phone == "13800001111"
    assert first.skills == ("氩弧焊", "不锈钢焊接", "铝焊")
    assert result_rows[1].channel == "wechat"
    reasons = {e.line: e.reason for e in errors}
    assert reasons[3] == "缺少编号"
    assert reasons[4] == "渠道“qq”无效，应为 wecom/wechat/dingtalk/web"
    assert reasons[5] == "编号重复（与第 2 行相同）"
    assert reasons[7] == "缺少小组"
    assert reasons[8] == "填写了渠道但缺少账号"
    assert "手机号" in reasons[9]
    assert 6 not in reasons  # blank lines are skipped silently


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_csv_encodings_and_broken_rows(encoding: str) -> None:
    res = parse_roster_bytes(GOOD_CSV.encode(encoding), "roster.csv", channels=CHANNELS)
    _check(res.rows, res.errors)


def test_xlsx_with_broken_rows(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    import csv
    import io

    for row in csv.reader(io.StringIO(GOOD_CSV)):
        ws.append(row or [""])
    ws.cell(row=2, column=1, value="GJ01")
    path = tmp_path / "花名册.xlsx"
    wb.save(path)
    res = parse_roster(path, channels=CHANNELS)
    _check(res.rows, res.errors)


def test_xlsx_numeric_codes(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["id", "name", "group", "skills", "region", "channel", "channel_user_id"])
    ws.append([1001, "张伟", "焊接工艺", "氩弧焊", "宁波", "dingtalk", "u1"])
    path = tmp_path / "r.xlsx"
    wb.save(path)
    (row,) = parse_roster(path, channels=CHANNELS).rows
    assert row.code == "1001" and row.channel == "dingtalk"


def test_english_headers_and_profile() -> None:
    data = b"id,name,group,skills,region,bio\nA1,Zhang,\xe7\x84\x8a\xe6\x8e\xa5\xe5\xb7\xa5\xe8\x89\xba,TIG;MIG,Ningbo,hi\n"
    res = parse_roster_bytes(data, "r.csv", channels=CHANNELS)
    assert not res.errors
    p = to_profile(res.rows[0])
    assert (p.key, p.code, p.group, p.skills, p.bio) == ("A1", "A1", "焊接工艺", ("TIG", "MIG"), "hi")


@pytest.mark.parametrize(
    ("data", "name", "needle"),
    [
        ("姓名,小组\n张伟,焊接工艺\n".encode(), "r.csv", "缺少必填列 编号"),
        (b"", "r.csv", "empty"),
        (b"PK\x03\x04 not really a zip", "r.xlsx", "cannot read XLSX"),
        (b"\xff\xfe\x00\x00\x81", "r.csv", "编码"),  # undecodable garbage
        (b"x", "r.xls", ".xls"),
    ],
)
def test_unusable_files_raise_one_line(data: bytes, name: str, needle: str) -> None:
    with pytest.raises(RosterFileError) as exc:
        parse_roster_bytes(data, name, channels=CHANNELS)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RosterFileError, match="无法打开文件"):
        parse_roster(tmp_path / "nope.csv", channels=CHANNELS)


def test_split_skills() -> None:
    assert split_skills("氩弧焊；二保焊;埋弧焊、 气焊，钎焊,氩弧焊") == ("氩弧焊", "二保焊", "埋弧焊", "气焊", "钎焊")
    assert split_skills("") == ()


def test_shipped_synthetic_roster_is_clean() -> None:
    res = parse_roster(Path(__file__).parent / "data" / "roster.csv", channels=CHANNELS)
    assert len(res.rows) == 120 and not res.errors
