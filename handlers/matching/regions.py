"""A small gazetteer of Chinese regions, enough to compare free-text regions by district/city/province.

Regions arrive as people type them: "浙江省宁波市北仑区", "宁波北仑", "上海 闵行", "北仑". We find the
province, city and district named (full or short forms) and fill in what the gazetteer implies (北仑 →
宁波市 → 浙江省). It covers every province, the prefecture-level cities of 浙江/山东/江苏 plus the
provincial capitals and other large cities, and the districts of the cities used in the demo and tests.
Unknown places simply compare as unknown (no affinity), never as an error.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from handlers.matching.tokenize import normalize_text

_MUNICIPALITIES = ("北京市", "上海市", "天津市", "重庆市")
_PROVINCES = (  # noqa: SIM905 (a word list reads better as text)
    "北京市 天津市 上海市 重庆市 河北省 山西省 辽宁省 吉林省 黑龙江省 江苏省 浙江省 安徽省 福建省 江西省 山东省 "
    "河南省 湖北省 湖南省 广东省 海南省 四川省 贵州省 云南省 陕西省 甘肃省 青海省 台湾省 内蒙古自治区 "
    "广西壮族自治区 西藏自治区 宁夏回族自治区 新疆维吾尔自治区 香港特别行政区 澳门特别行政区"
).split()

# province → "city:district,district,..." entries (cities without listed districts end in ":").
_CITIES: dict[str, tuple[str, ...]] = {
    "上海市": (
        "上海市:黄浦区,徐汇区,长宁区,静安区,普陀区,虹口区,杨浦区,闵行区,宝山区,嘉定区,浦东新区,金山区,松江区,"
        "青浦区,奉贤区,崇明区",
    ),
    "北京市": ("北京市:东城区,西城区,朝阳区,海淀区,丰台区,石景山区,通州区,顺义区,昌平区,大兴区,房山区",),
    "天津市": ("天津市:和平区,河西区,南开区,滨海新区,西青区,津南区,东丽区,北辰区,武清区",),
    "重庆市": ("重庆市:渝中区,江北区,南岸区,九龙坡区,沙坪坝区,渝北区,巴南区,北碚区,涪陵区,万州区",),
    "浙江省": (
        "杭州市:上城区,拱墅区,西湖区,滨江区,萧山区,余杭区,临平区,钱塘区,富阳区,临安区,桐庐县,淳安县,建德市",
        "宁波市:海曙区,江北区,北仑区,镇海区,鄞州区,奉化区,余姚市,慈溪市,宁海县,象山县",
        "温州市:鹿城区,龙湾区,瓯海区,洞头区,瑞安市,乐清市,龙港市,永嘉县,平阳县,苍南县",
        "嘉兴市:南湖区,秀洲区,嘉善县,海盐县,海宁市,平湖市,桐乡市",
        "湖州市:吴兴区,南浔区,德清县,长兴县,安吉县",
        "绍兴市:越城区,柯桥区,上虞区,诸暨市,嵊州市,新昌县",
        "金华市:婺城区,金东区,义乌市,东阳市,永康市,兰溪市,武义县,浦江县",
        "衢州市:柯城区,衢江区,江山市,龙游县",
        "舟山市:定海区,普陀区,岱山县,嵊泗县",
        "台州市:椒江区,黄岩区,路桥区,温岭市,临海市,玉环市,天台县,仙居县,三门县",
        "丽水市:莲都区,龙泉市,青田县,缙云县,遂昌县",
    ),
    "山东省": (
        "济南市:历下区,市中区,槐荫区,天桥区,历城区,长清区,章丘区,济阳区,莱芜区,钢城区,平阴县,商河县",
        "青岛市:市南区,市北区,黄岛区,崂山区,李沧区,城阳区,即墨区,胶州市,平度市,莱西市",
        "淄博市:张店区,淄川区,博山区,临淄区,周村区,桓台县",
        "枣庄市:薛城区,滕州市",
        "东营市:东营区,河口区,垦利区,广饶县",
        "烟台市:芝罘区,福山区,牟平区,莱山区,蓬莱区,龙口市,莱阳市,莱州市,招远市,栖霞市,海阳市",
        "潍坊市:潍城区,寒亭区,坊子区,奎文区,青州市,诸城市,寿光市,安丘市,高密市,昌邑市",
        "济宁市:任城区,兖州区,曲阜市,邹城市",
        "泰安市:泰山区,岱岳区,新泰市,肥城市",
        "威海市:环翠区,文登区,荣成市,乳山市",
        "日照市:东港区,岚山区",
        "临沂市:兰山区,罗庄区,河东区,沂南县,郯城县",
        "德州市:德城区,陵城区,禹城市,乐陵市",
        "聊城市:东昌府区,临清市",
        "滨州市:滨城区,沾化区,邹平市,博兴县",
        "菏泽市:牡丹区,定陶区,曹县,单县",
    ),
    "江苏省": (
        "南京市:玄武区,秦淮区,建邺区,鼓楼区,浦口区,栖霞区,雨花台区,江宁区,六合区,溧水区,高淳区",
        "苏州市:姑苏区,虎丘区,吴中区,相城区,吴江区,常熟市,张家港市,昆山市,太仓市",
        "无锡市:梁溪区,锡山区,惠山区,滨湖区,新吴区,江阴市,宜兴市",
        "常州市:天宁区,钟楼区,新北区,武进区,金坛区,溧阳市",
        "南通市:崇川区,通州区,海门区,如皋市,启东市,海安市",
        "徐州市:", "扬州市:", "镇江市:", "泰州市:", "盐城市:", "淮安市:", "连云港市:", "宿迁市:",
    ),
    "广东省": ("广州市:", "深圳市:南山区,福田区,宝安区,龙岗区,龙华区,光明区", "东莞市:", "佛山市:", "珠海市:"),
    "福建省": ("福州市:", "厦门市:", "泉州市:"),
    "安徽省": ("合肥市:", "芜湖市:"),
    "江西省": ("南昌市:",),
    "河北省": ("石家庄市:", "唐山市:", "保定市:"),
    "山西省": ("太原市:",),
    "辽宁省": ("沈阳市:", "大连市:"),
    "吉林省": ("长春市:",),
    "黑龙江省": ("哈尔滨市:",),
    "河南省": ("郑州市:", "洛阳市:"),
    "湖北省": ("武汉市:",),
    "湖南省": ("长沙市:",),
    "海南省": ("海口市:",),
    "四川省": ("成都市:",),
    "贵州省": ("贵阳市:",),
    "云南省": ("昆明市:",),
    "陕西省": ("西安市:",),
    "甘肃省": ("兰州市:",),
    "青海省": ("西宁市:",),
    "内蒙古自治区": ("呼和浩特市:", "包头市:"),
    "广西壮族自治区": ("南宁市:",),
    "宁夏回族自治区": ("银川市:",),
    "新疆维吾尔自治区": ("乌鲁木齐市:",),
}
# Short forms that are too likely to appear inside other words ("上海市中心" ≠ 市中区).
_NO_SHORT = frozenset({"市中区", "市南区", "市北区", "河东区", "东区", "城区", "新区"})
_SUFFIXES = ("特别行政区", "维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "新区", "省", "市", "区", "县")


@dataclass(frozen=True)
class Region:
    province: str = ""
    city: str = ""
    district: str = ""


def _short(name: str) -> str:
    for suf in _SUFFIXES:
        if name.endswith(suf) and len(name) - len(suf) >= 2:
            return name[: -len(suf)]
    return name


@functools.lru_cache(maxsize=1)
def _gazetteer() -> list[tuple[str, list[Region]]]:
    """(surface form, regions it may name) pairs, longest forms first; earlier regions are preferred."""
    forms: list[tuple[str, Region]] = []
    for prov in _PROVINCES:
        reg = Region(prov, prov if prov in _MUNICIPALITIES else "")
        forms += [(prov, reg), (_short(prov), reg)]
    for prov, cities in _CITIES.items():
        for entry in cities:
            city, _, districts = entry.partition(":")
            if prov not in _MUNICIPALITIES:
                forms += [(city, Region(prov, city)), (_short(city), Region(prov, city))]
            for d in filter(None, districts.split(",")):
                reg = Region(prov, city, d)
                forms.append((d, reg))
                if d not in _NO_SHORT and _short(d) != d:
                    forms.append((_short(d), reg))
    grouped: dict[str, list[Region]] = {}
    for form, reg in forms:
        if reg not in grouped.setdefault(form, []):
            grouped[form].append(reg)
    return sorted(grouped.items(), key=lambda f: -len(f[0]))


@functools.lru_cache(maxsize=65536)
def parse_region(text: str) -> Region:
    """Province, city and district named in ``text`` (each "" when unknown)."""
    norm = normalize_text(text).replace(" ", "")
    if not norm:
        return Region()
    found: list[Region] = []
    consumed = norm
    for form, regs in _gazetteer():
        if form in consumed:
            found.extend(regs)
            consumed = consumed.replace(form, "\0")  # so "宁波市" is not found again as "宁波"
    if not found:
        return Region()
    province = next((r.province for r in found if not r.city), "")
    city = next((r.city for r in found if r.city and not r.district), "")
    # A district is ambiguous (普陀区: 上海 or 舟山); prefer the one in the city/province named.
    districts = [r for r in found if r.district]
    district_reg = next(
        (r for r in districts if (city and r.city == city) or (not city and province and r.province == province)),
        None,
    )
    if district_reg is None and districts and not city:
        district_reg = districts[0]
    if district_reg is not None:
        return district_reg
    if city:
        return Region(next(r.province for r in found if r.city == city), city)
    return Region(province)


def region_affinity(a: str, b: str) -> str | None:
    """How close two free-text regions are: "district" | "city" | "province" | None (unknown/far)."""
    ra, rb = parse_region(a), parse_region(b)
    return affinity(ra, rb) if (ra.province and rb.province) else _fallback(a, b)


def affinity(ra: Region, rb: Region) -> str | None:
    """:func:`region_affinity` on parsed regions (the index keeps profiles' regions parsed)."""
    if not ra.province or ra.province != rb.province:
        return None
    if ra.city and ra.city == rb.city:
        if ra.district and ra.district == rb.district:
            return "district"
        return "city"
    return "province"


def _fallback(a: str, b: str) -> str | None:
    # Places outside the gazetteer (a town, an industrial park): only identical text is "the same".
    na, nb = normalize_text(a).replace(" ", ""), normalize_text(b).replace(" ", "")
    return "district" if na and na == nb else None


def region_label(r: Region, level: str) -> str:
    """The name shown in a reason for an affinity level ("北仑区", "宁波市", "浙江省")."""
    return {"district": r.district, "city": r.city, "province": r.province}.get(level, "") or r.province
