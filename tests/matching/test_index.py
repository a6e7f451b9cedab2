"""The matcher on a small test taxonomy and hand-made craftsmen: semantics that must hold."""

from __future__ import annotations

import pytest

from handlers.matching import CraftsmanStatus, MatchIndex, MatchRequest, Taxonomy
from tests.matching.conftest import profile


@pytest.fixture()
def index(small_taxonomy: Taxonomy) -> MatchIndex:
    return MatchIndex(
        small_taxonomy,
        [
            profile("w1", "焊接工艺", ("氩弧焊", "不锈钢焊接"), "浙江省宁波市北仑区", "二十年焊工"),
            profile("w2", "焊接工艺", ("二保焊",), "宁波鄞州"),
            profile("w3", "焊接", ("焊接变形矫正",), "杭州滨江"),  # an alias as the group
            profile("w4", "焊接工艺", ("埋弧焊",), "上海闵行"),
            profile("c1", "港口起重机械", ("桥式起重机维修", "钢丝绳检查"), "青岛黄岛"),
            profile("e1", "维修电工", ("变频器维修", "电机维修"), "宁波北仑"),
            profile("m1", "模具制造", ("冲压模具",), "台州黄岩"),
            profile("x1", "陶艺", ("陶瓷釉面", "拉坯"), "景德镇"),  # a group outside the taxonomy
        ],
    )


def keys(results: list) -> list[str]:
    return [r.key for r in results]


def test_colloquial_words_are_expanded(index: MatchIndex) -> None:
    assert index.classify("天车溜钩了").guesses[0].group == "港口起重机械"
    assert index.match(MatchRequest("天车溜钩了"))[0].key == "c1"
    assert index.classify("马达发烫").guesses[0].group == "维修电工"
    assert index.match(MatchRequest("冲床的模子老是崩口"))[0].key == "m1"


def test_group_vocabulary_reaches_craftsmen_with_short_skill_lists(index: MatchIndex) -> None:
    # "气孔" is in no craftsman's profile, only in the welding vocabulary.
    got = index.match(MatchRequest("焊出来的东西全是气孔"), top_k=10)
    assert {r.key for r in got} >= {"w1", "w2", "w3", "w4"}
    assert all(r.group in ("焊接工艺", "焊接") for r in got)


def test_group_outside_taxonomy_still_matches_on_skills(index: MatchIndex) -> None:
    assert keys(index.match(MatchRequest("陶瓷釉面有针孔")))[:1] == ["x1"]


def test_onsite_prefers_district_then_city_then_province(index: MatchIndex) -> None:
    got = keys(index.match(MatchRequest("焊缝有气孔", "宁波北仑", "onsite"), top_k=4))
    assert got == ["w1", "w2", "w3", "w4"]  # 北仑 (district), 鄞州 (city), 杭州 (province), 上海
    reasons = {r.key: r.reasons for r in index.match(MatchRequest("焊缝有气孔", "宁波北仑", "onsite"), top_k=4)}
    assert "同区：北仑区" in reasons["w1"] and "同城：宁波市" in reasons["w2"] and "同省：浙江省" in reasons["w3"]
    assert not any(r.startswith("同") for r in reasons["w4"])


def test_online_mostly_ignores_region(index: MatchIndex) -> None:
    onsite = index.match(MatchRequest("焊缝有气孔", "上海闵行", "onsite"), top_k=4)
    online = index.match(MatchRequest("焊缝有气孔", "上海闵行", "online"), top_k=4)
    assert onsite[0].key == "w4"
    gap = {r.key: r.score for r in online}
    assert abs(gap["w4"] - gap["w2"]) < 0.05  # a tie-breaker, not a preference


def test_hard_filters(index: MatchIndex) -> None:
    status = {"w1": CraftsmanStatus(available=False), "w2": CraftsmanStatus(on_leave=True)}
    got = keys(index.match(MatchRequest("焊缝有气孔", "宁波北仑", "onsite"), top_k=10, status=status, exclude={"w3"}))
    assert "w1" not in got and "w2" not in got and "w3" not in got
    assert got[0] == "w4"


def test_fairness_and_load_lower_the_score(index: MatchIndex) -> None:
    req = MatchRequest("焊缝有气孔", "宁波北仑", "onsite")
    base = {r.key: r.score for r in index.match(req, top_k=4)}
    busy = index.match(req, top_k=4, status={"w1": CraftsmanStatus(recent_offers=3)})
    score = {r.key: r for r in busy}
    assert score["w1"].score < base["w1"]
    assert "近7天已派单 3 次" in score["w1"].reasons
    loaded = {r.key: r for r in index.match(req, top_k=4, status={"w1": CraftsmanStatus(open_load=2)})}
    assert loaded["w1"].score < base["w1"] and "在办 2 件" in loaded["w1"].reasons
    # Enough recent offers hand the first place to the next craftsman in line.
    assert index.match(req, status={"w1": CraftsmanStatus(recent_offers=5, open_load=3)})[0].key == "w2"


def test_response_history_and_rating(index: MatchIndex) -> None:
    req = MatchRequest("二保焊 焊缝", "上海闵行")
    good = CraftsmanStatus(offers_total=10, offers_answered=10, avg_rating=5.0)
    bad = CraftsmanStatus(offers_total=10, offers_answered=2, avg_rating=2.0)
    s_good = {r.key: r for r in index.match(req, status={"w2": good})}["w2"]
    s_bad = {r.key: r for r in index.match(req, status={"w2": bad})}["w2"]
    assert s_good.score > s_bad.score
    assert "响应率 100%" in s_good.reasons and "评分 5.0" in s_good.reasons


def test_reasons_name_hits_and_group(index: MatchIndex) -> None:
    r = index.match(MatchRequest("天车钢丝绳断股"))[0]
    assert r.key == "c1"
    assert any(x.startswith("命中：") and "起重机（天车）" in x and "钢丝绳" in x for x in r.reasons)
    assert "小组：港口起重机械" in r.reasons


def test_upsert_and_remove_without_rebuild(index: MatchIndex) -> None:
    req = MatchRequest("陶瓷釉面有针孔")
    postings_before = index._postings  # the same dict object: no rebuild for a small change
    index.upsert(profile("x2", "陶艺", ("陶瓷釉面", "釉面针孔", "窑炉烧成"), "景德镇"))
    assert keys(index.match(req))[0] == "x2"
    index.upsert(profile("x2", "陶艺", ("木工",), "景德镇"))  # re-index: old skills are gone
    assert "x2" not in keys(index.match(req))
    index.remove("x1")
    index.remove("nobody")
    assert "x1" not in keys(index.match(req))
    assert index._postings is postings_before
    assert len(index) == 8


def test_classify_confidence(index: MatchIndex) -> None:
    sure = index.classify("氩弧焊的焊缝有气孔")
    assert sure.confident and sure.guesses[0].group == "焊接工艺"
    assert set(sure.guesses[0].terms) >= {"氩弧焊", "焊缝", "气孔"}
    unsure = index.classify("天车的接触器")  # cranes vs electricians: a tie
    assert not unsure.confident and {g.group for g in unsure.guesses[:2]} == {"港口起重机械", "维修电工"}
    nothing = index.classify("你好，请问一下")
    assert nothing.guesses == () and not nothing.confident
    assert index.match(MatchRequest("你好，请问一下")) == []


def test_same_input_same_order_and_bad_mode(index: MatchIndex) -> None:
    req = MatchRequest("焊接", mode="training")
    assert index.match(req, top_k=8) == index.match(req, top_k=8)
    with pytest.raises(ValueError, match="mode"):
        index.match(MatchRequest("焊接", mode="remote"))


def test_empty_index(small_taxonomy: Taxonomy) -> None:
    idx = MatchIndex(small_taxonomy)
    assert idx.match(MatchRequest("焊缝有气孔")) == []
    idx.upsert(profile("a", "焊接工艺", ("氩弧焊",)))
    assert keys(idx.match(MatchRequest("焊缝有气孔"))) == ["a"]
