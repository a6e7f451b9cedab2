"""Long requests: recognised from a bounded head of the text, the same way as short ones.

Enterprises sometimes paste a whole report into the chat. Recognition analyses only the first
:data:`~handlers.matching.tokenize.MAX_QUERY_CHARS` characters (the whole text is still stored and
relayed), so the cost of one message is bounded; these tests pin the functional side of that.
The speed itself is measured, not asserted: ``benchmarks/bench_long_request.py``.
"""

from __future__ import annotations

from handlers.matching import MatchIndex, MatchRequest
from handlers.matching.tokenize import MAX_QUERY_CHARS

# A welding problem told at length, as a production manager types it: the problem first, then the
# history, what was tried, the deadline. The only trade it is about is welding.
WELDING = (
    "师傅你好，我们是宁波北仑一家做不锈钢管件的工厂，最近焊的不锈钢管子焊缝老是有气孔，咋回事。"
    "用的是氩弧焊，保护气也开了，流量调到十几升也一样，焊完发黑。"
    "工人说焊丝换了好几个批次还是这样，薄板一焊就烧穿，变形厉害。"
    "这批货是给客户的压力管道配套的，下个月就要交，探伤要是不合格就要返修。"
    "车间里温度不高，也没有风，工件表面我们用丙酮擦过。"
    "之前一直好好的，上个月换了一个供应商以后才开始出这个问题，老板很着急。"
)


def long_text(chars: int) -> str:
    out = WELDING
    while len(out) < chars:
        out += WELDING
    return out[:chars]


def test_a_5000_character_request_is_recognised(shipped_index: MatchIndex) -> None:
    text = long_text(5000)
    cls = shipped_index.classify(text)
    assert cls.guesses and cls.guesses[0].group == "焊接工艺", cls
    assert cls.confident
    best = shipped_index.match(MatchRequest(text, "宁波北仑", "onsite"), top_k=3)
    assert best and shipped_index.taxonomy.canonical_group(best[0].group) == "焊接工艺", best
    assert any(r.startswith("命中：") for r in best[0].reasons)


def test_only_the_head_of_a_long_request_is_analysed(shipped_index: MatchIndex) -> None:
    """What follows the first MAX_QUERY_CHARS characters changes nothing, whatever trade it names."""
    head = long_text(MAX_QUERY_CHARS)
    tail = "另外鱼塘的水发绿发臭，电脑弹窗要比特币赎金。" * 20
    analyzer = shipped_index.analyzer
    with_tail, alone = analyzer.analyze_query(head + tail), analyzer.analyze_query(head)
    assert (with_tail.terms, with_tail.vocab, with_tail.expanded) == (alone.terms, alone.vocab, alone.expanded)
    assert "水产养殖" not in {g.group for g in shipped_index.classify(head + tail).guesses}
    # ... and the bound is on characters of the text as typed, so a short request is never cut.
    assert "水产养殖" in {g.group for g in shipped_index.classify(long_text(300) + tail).guesses}
