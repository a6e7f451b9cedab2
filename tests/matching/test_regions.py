from __future__ import annotations

import pytest

from handlers.matching import parse_region, region_affinity


@pytest.mark.parametrize(
    ("a", "b", "level"),
    [
        ("浙江省宁波市北仑区", "宁波北仑", "district"),
        ("上海 闵行", "上海市闵行区", "district"),
        ("宁波北仑", "宁波市鄞州区", "city"),
        ("宁波", "北仑", "city"),
        ("宁波北仑", "杭州滨江", "province"),
        ("北仑", "浙江", "province"),
        ("青岛黄岛", "济南历下", "province"),
        ("宁波北仑", "上海闵行", None),
        ("上海普陀", "舟山普陀", None),  # same district name, different city
        ("", "宁波北仑", None),
        ("火星基地", "宁波", None),
    ],
)
def test_region_affinity(a: str, b: str, level: str | None) -> None:
    assert region_affinity(a, b) == level
    assert region_affinity(b, a) == level


def test_parse_fills_in_city_and_province() -> None:
    r = parse_region("北仑")
    assert (r.province, r.city, r.district) == ("浙江省", "宁波市", "北仑区")
    r = parse_region("浙江舟山普陀区")
    assert (r.city, r.district) == ("舟山市", "普陀区")
    assert parse_region("上海市中心").district == ""  # "市中" is not 济南市中区
