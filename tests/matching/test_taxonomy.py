from __future__ import annotations

from pathlib import Path

import pytest

from handlers.matching import Taxonomy, TaxonomyError, shipped_taxonomy
from handlers.matching.taxonomy import SHIPPED_DIR

CANONICAL = set(
    ["焊接工艺", "维修电工", "工业自动化", "机械制造", "数控加工", "模具制造", "工程施工", "航空航天", "船舶制造", "港口起重机械", "电线电缆", "电子制造", "通信工程", "网络安全", "数字技术", "新型材料", "质量检测", "生物医药", "化工环保", "水产养殖", "智慧农业", "汽车制造", "光伏新能源", "暖通制冷", "锅炉压力容器", "纺织印染", "服装工艺", "食品加工", "安全生产", "医疗健康", "法律服务", "跨境电商", "视觉传媒", "美术工艺", "教育培训", "电力供配电", "仪器仪表", "钳工装配", "轨道交通", "给排水"]
)


def test_small_dir_loads_and_skips_underscore_files(small_taxonomy: Taxonomy) -> None:
    assert set(small_taxonomy.group_names) == {"焊接工艺", "港口起重机械", "维修电工", "模具制造"}
    assert small_taxonomy.colloquial["天车"] == {"起重机"}
    assert small_taxonomy.canonical_group("电焊") == "焊接工艺"
    assert small_taxonomy.canonical_group("无此小组") is None
    assert small_taxonomy.display["plc"] == "PLC"


def _write(tmp_path: Path, name: str, body: str) -> None:
    (tmp_path / name).write_text(body, encoding="utf-8")


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ('name = "甲"\nterms = []\n', "'terms' must not be empty"),
        ('name = "甲"\n', "missing key 'terms'"),
        ('terms = ["a"]\n', "'name'"),
        ('name = "甲"\nterms = ["a"]\n[colloquial]\n"x" = 3\n', "colloquial.'x'"),
        ('name = "甲"\nterms = ["a"\n', "invalid TOML"),
        ('name = "甲"\nterms = ["a"]\nterm = ["b"]\n', "unknown key 'term'"),
    ],
)
def test_bad_file_gives_one_line_naming_file_and_key(tmp_path: Path, body: str, needle: str) -> None:
    _write(tmp_path, "bad_group.toml", body)
    with pytest.raises(TaxonomyError) as exc:
        Taxonomy.load(tmp_path)
    msg = str(exc.value)
    assert msg.startswith("bad_group.toml: ") and needle in msg and "\n" not in msg


def test_duplicate_group_name_is_rejected(tmp_path: Path) -> None:
    _write(tmp_path, "a.toml", 'name = "焊接工艺"\nterms = ["焊缝"]\n')
    _write(tmp_path, "b.toml", 'name = "焊接工艺"\nterms = ["气孔"]\n')
    with pytest.raises(TaxonomyError, match=r"b\.toml: name '焊接工艺' already used by a\.toml"):
        Taxonomy.load(tmp_path)


def test_shipped_taxonomy_is_valid_and_canonical() -> None:
    tx = shipped_taxonomy()
    assert tx.group_names, "no shipped taxonomy files"
    assert set(tx.group_names) <= CANONICAL, set(tx.group_names) - CANONICAL
    files = [p for p in SHIPPED_DIR.glob("*.toml") if not p.name.startswith("_")]
    assert len(files) == len(tx.group_names)
