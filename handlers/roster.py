"""Roster files: the craftsmen list staff keep in Excel, as XLSX or CSV (UTF-8, UTF-8 with BOM, GBK).

Pure parsing, no database. The first non-empty row is the header; Chinese or English column names.
Required columns are 编号, 姓名, 小组. A file that cannot be read at all, or lacks a required column,
raises :class:`RosterFileError` (one line, Chinese and English); a bad row becomes a
:class:`RosterRowError` with its line number and a Chinese reason, and the good rows still come through.

The 渠道 column's spellings are not known here: callers pass ``channels``, spelling (without spaces,
lower-case) → channel name, which bot/ builds from its channel declarations
(``bot.channels.registry.roster_channels``).
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from handlers.matching.model import CraftsmanProfile

# Canonical field → accepted header spellings (compared without spaces, case-insensitively).
_HEADERS: dict[str, tuple[str, ...]] = {
    "code": ("编号", "工号", "id", "code", "no", "序号编号"),
    "name": ("姓名", "名字", "name"),
    "group": ("小组", "所属小组", "分组", "group", "trade_group", "trade group"),
    "skills": ("技能专长", "技能", "专长", "skills", "skill"),
    "region": ("地区", "区域", "所在地区", "region", "area"),
    "channel": ("渠道", "平台", "channel"),
    "channel_user_id": ("账号", "渠道账号", "用户id", "channel_user_id", "account", "user_id"),
    "bio": ("简介", "个人简介", "bio", "profile"),
    "phone": ("手机", "手机号", "电话", "联系电话", "phone", "mobile"),
}
REQUIRED = ("code", "name", "group")
_LABELS = {"code": "编号", "name": "姓名", "group": "小组"}
_SKILL_SPLIT = re.compile(r"[；;、，,\n]+")
_PHONE = re.compile(r"^\+?\d{7,15}$")


class RosterFileError(Exception):
    """The file as a whole cannot be used; ``str(err)`` is the one line to show."""


@dataclass(frozen=True)
class RosterRow:
    line: int  # 1-based line (CSV) or row (XLSX) number, the header being line 1 usually
    code: str
    name: str
    group: str
    skills: tuple[str, ...]
    region: str
    channel: str  # a channel name (a value of ``channels``), or "" when the roster does not say
    channel_user_id: str
    bio: str
    phone: str


@dataclass(frozen=True)
class RosterRowError:
    line: int
    reason: str  # Chinese, shown to staff


@dataclass
class RosterParseResult:
    rows: list[RosterRow] = field(default_factory=list)
    errors: list[RosterRowError] = field(default_factory=list)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel stores 编号 1001 as 1001.0
    return str(value).strip()


def _decode(data: bytes, filename: str) -> str:
    for enc in ("utf-8-sig", "gb18030"):  # gb18030 is a superset of GBK
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise RosterFileError(
        f"{filename}: 无法识别文件编码，请另存为 UTF-8 或 GBK 的 CSV / cannot decode file (expected UTF-8 or GBK)"
    )


def _csv_rows(data: bytes, filename: str) -> Iterator[tuple[int, list[str]]]:
    text = _decode(data, filename)
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:4096], delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        for row in reader:
            yield reader.line_num, [c.strip() for c in row]
    except csv.Error as exc:
        raise RosterFileError(f"{filename}: CSV 格式错误（第 {reader.line_num} 行）/ malformed CSV: {exc}") from exc


def _xlsx_rows(data: bytes, filename: str) -> Iterator[tuple[int, list[str]]]:
    import openpyxl  # imported here: only XLSX rosters pay for it

    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise RosterFileError(f"{filename}: 无法读取 Excel 文件 / cannot read XLSX ({exc.__class__.__name__})") from exc
    try:
        ws = wb.worksheets[0]
        for n, row in enumerate(ws.iter_rows(values_only=True), start=1):
            yield n, [_cell(v) for v in row]
    finally:
        wb.close()


def _header_map(header: list[str], filename: str) -> dict[str, int]:
    lookup = {alias.replace(" ", "").lower(): key for key, aliases in _HEADERS.items() for alias in aliases}
    cols: dict[str, int] = {}
    for i, h in enumerate(header):
        key = lookup.get(h.replace(" ", "").replace("\ufeff", "").lower())
        if key is not None and key not in cols:
            cols[key] = i
    missing = [_LABELS[k] for k in REQUIRED if k not in cols]
    if missing:
        raise RosterFileError(
            f"{filename}: 缺少必填列 {'、'.join(missing)} / missing required column(s): "
            + ", ".join(k for k in REQUIRED if k not in cols)
        )
    return cols


def split_skills(text: str) -> tuple[str, ...]:
    """Skills as staff type them: "氩弧焊；不锈钢、铝合金焊接" → three skills, duplicates dropped."""
    return tuple(dict.fromkeys(s.strip() for s in _SKILL_SPLIT.split(text) if s.strip()))


def _parse(rows: Iterable[tuple[int, list[str]]], filename: str, channels: Mapping[str, str]) -> RosterParseResult:
    result = RosterParseResult()
    it = iter(rows)
    cols: dict[str, int] | None = None
    for _, cells in it:
        if any(cells):
            cols = _header_map(cells, filename)
            break
    if cols is None:
        raise RosterFileError(f"{filename}: 文件是空的 / the file is empty")
    first_line: dict[str, int] = {}
    for line, cells in it:
        if not any(cells):
            continue

        def get(key: str, cells: list[str] = cells) -> str:
            i = cols.get(key)
            return cells[i].strip() if i is not None and i < len(cells) else ""

        reasons: list[str] = []
        code, name, group = get("code"), get("name"), get("group")
        for key, value in (("code", code), ("name", name), ("group", group)):
            if not value:
                reasons.append(f"缺少{_LABELS[key]}")
        raw_channel = get("channel")
        channel = channels.get(raw_channel.replace(" ", "").lower(), "") if raw_channel else ""
        if raw_channel and not channel:
            reasons.append(f"渠道“{raw_channel}”无效，应为 {'/'.join(dict.fromkeys(channels.values()))}")
        account = get("channel_user_id")
        if channel and not account:
            reasons.append("填写了渠道但缺少账号")
        phone = re.sub(r"[\s-]", "", get("phone"))
        if phone and not _PHONE.match(phone):
            reasons.append(f"手机号“{get('phone')}”格式不对")
        if code and code in first_line:
            reasons.append(f"编号重复（与第 {first_line[code]} 行相同）")
        if reasons:
            result.errors.append(RosterRowError(line, "；".join(reasons)))
            continue
        first_line[code] = line
        result.rows.append(
            RosterRow(
                line=line, code=code, name=name, group=group, skills=split_skills(get("skills")),
                region=get("region"), channel=channel, channel_user_id=account, bio=get("bio"), phone=phone,
            )
        )  # fmt: skip
    return result


def parse_roster_bytes(data: bytes, filename: str, *, channels: Mapping[str, str]) -> RosterParseResult:
    """Parse a roster given as bytes; the format is chosen by ``filename``'s suffix (then by content).
    ``channels``: the 渠道 column's spellings (module docstring)."""
    is_xlsx = filename.lower().endswith((".xlsx", ".xlsm")) or data[:2] == b"PK"
    if filename.lower().endswith(".xls"):
        raise RosterFileError(f"{filename}: 不支持旧版 .xls，请另存为 .xlsx 或 CSV / .xls is not supported")
    return _parse(_xlsx_rows(data, filename) if is_xlsx else _csv_rows(data, filename), filename, channels)


def parse_roster(path: Path, *, channels: Mapping[str, str]) -> RosterParseResult:
    """Parse a roster file (CSV or XLSX); ``channels`` as for :func:`parse_roster_bytes`."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RosterFileError(f"{path}: 无法打开文件 / cannot open file ({exc.strerror or exc})") from exc
    return parse_roster_bytes(data, path.name, channels=channels)


def to_profile(row: RosterRow) -> CraftsmanProfile:
    """The matcher's view of a roster row (keyed by 编号, as the CLI needs no database)."""
    return CraftsmanProfile(
        key=row.code, code=row.code, name=row.name, group=row.group, skills=row.skills,
        region=row.region, bio=row.bio,
    )  # fmt: skip
