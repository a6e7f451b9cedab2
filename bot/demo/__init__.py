"""Fictional demo data: 40 craftsmen in 20 trade groups and 4 regions, 3 enterprises, 2 staff.

Everyone gets a ``web`` identity so the playground can act as them. Seeding is idempotent: it goes
through the roster importer (upsert by 编号) and skips people that already exist.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.roster import RosterParseResult, RosterRow
from handlers.roster_import import ImportReport, import_roster
from storage.models import Enterprise, Identity, Person, Role, StaffMember

# (name, group, skills, region, bio)
CRAFTSMEN: list[tuple[str, str, str, str, str]] = [
    ("张翼飞", "焊接工艺", "氩弧焊、二氧化碳保护焊、不锈钢焊接、焊缝探伤", "宁波市北仑区", "船厂焊接首席技师，擅长薄板变形控制"),
    ("李建国", "焊接工艺", "电焊、管道焊接、焊接工艺评定", "杭州市萧山区", "压力管道焊接三十年"),
    ("王海东", "维修电工", "低压配电、接触器、变频器、电机维修", "宁波市北仑区", "港区设备维修电工，擅长控制柜故障"),
    ("陈志强", "维修电工", "PLC控制、电气控制柜、电机、继电保护", "上海市闵行区", "高级技师，电气故障诊断"),
    ("刘晓军", "工业自动化", "PLC编程、西门子、伺服电机、触摸屏、机器人调试", "宁波市鄞州区", "自动化产线改造"),
    ("赵文斌", "工业自动化", "三菱PLC、视觉检测、工业机器人", "上海市松江区", "工业机器人集成"),
    ("孙卫东", "模具制造", "冲压模具、注塑模具、模具修复、崩刃", "宁波市余姚市", "模具城三十年，冲模刃口修磨"),
    ("周明华", "模具制造", "压铸模具、模具热处理、抛光", "台州市黄岩区", "模具热处理与寿命提升"),
    ("吴建平", "数控加工", "数控车床、加工中心、编程、刀具、精度", "宁波市鄞州区", "五轴加工中心编程"),
    ("郑国庆", "数控加工", "数控铣、CAM编程、夹具设计", "杭州市余杭区", "精密零件加工"),
    ("冯立新", "机械制造", "减速机、轴承、齿轮、液压系统、装配", "宁波市北仑区", "设备维修与改造"),
    ("褚红梅", "机械制造", "机械设计、振动分析、设备润滑", "上海市宝山区", "设备状态监测"),
    ("蒋大海", "港口起重机械", "起重机、门机、桥吊、行车、钢丝绳、制动器", "宁波市北仑区", "港口起重机维修专家"),
    ("沈国平", "港口起重机械", "龙门吊、起升机构、变频调速", "舟山市定海区", "码头起重设备保障"),
    ("韩志刚", "电线电缆", "电缆敷设、电缆头制作、绝缘测试、电缆故障定位", "杭州市临平区", "电缆故障测寻"),
    ("杨晓燕", "电线电缆", "线缆生产工艺、挤出、护套", "湖州市德清县", "线缆企业工艺工程师"),
    ("朱永康", "通信工程", "光纤熔接、基站、5G、信号覆盖、网络优化", "上海市徐汇区", "通信网络优化专家"),
    ("秦卫国", "通信工程", "综合布线、光缆、宽带", "宁波市海曙区", "通信线路施工"),
    ("尤建华", "网络安全", "勒索病毒、防火墙、入侵检测、数据恢复、等保", "杭州市西湖区", "网络安全应急响应"),
    ("许文杰", "网络安全", "渗透测试、漏洞修复、安全加固", "上海市浦东新区", "信息安全工程师"),
    ("何丽萍", "质量检测", "无损检测、金相分析、尺寸测量、三坐标", "宁波市江北区", "计量检测高级工程师"),
    ("吕建新", "质量检测", "理化检测、失效分析、ISO9001", "上海市嘉定区", "质量体系审核"),
    ("施志明", "化工环保", "污水处理、废气治理、环评、危废", "绍兴市柯桥区", "印染园区污水处理"),
    ("张桂芳", "化工环保", "化工工艺、安全阀、反应釜", "宁波市镇海区", "石化装置工艺"),
    ("孔繁荣", "水产养殖", "鱼塘水质、增氧、藻类、鱼病防治", "湖州市德清县", "水产技术推广站高级农艺师"),
    ("曹永红", "水产养殖", "对虾养殖、水质调控、饲料", "宁波市象山县", "海水养殖"),
    ("严国强", "汽车制造", "发动机、变速箱、汽车电路、钣金", "宁波市杭州湾新区", "整车厂调试技师"),
    ("华建军", "汽车制造", "汽车涂装、焊装、总装", "上海市嘉定区", "汽车装配工艺"),
    ("金德华", "锅炉压力容器", "锅炉、压力容器、安全阀、爆管、水处理", "上海市闵行区", "锅炉厂首席技师"),
    ("魏伟", "锅炉压力容器", "换热器、管道、无损检测", "杭州市上城区", "特种设备检验"),
    ("陶丽华", "纺织印染", "印染、色差、染色工艺、定型机", "绍兴市柯桥区", "印染工艺改进"),
    ("姜伟民", "纺织印染", "纺纱、织造、起球、断头", "湖州市长兴县", "纺织设备保全"),
    ("戚美玲", "服装工艺", "制版、缝纫、走线、面料、样衣", "宁波市鄞州区", "服装版师"),
    ("谢春燕", "服装工艺", "服装工艺单、裁剪、熨烫", "杭州市临平区", "服装生产管理"),
    ("邹志远", "暖通制冷", "空调、冷库、制冷剂、压缩机、不制冷", "宁波市海曙区", "制冷设备维修"),
    ("喻建刚", "暖通制冷", "中央空调、冷水机组、风机盘管", "上海市长宁区", "楼宇暖通运维"),
    ("柏文华", "光伏新能源", "光伏电站、逆变器、组件、储能", "嘉兴市海宁市", "光伏运维"),
    ("水立新", "电子制造", "SMT、贴片、回流焊、锡点、PCB", "杭州市滨江区", "电子装联工艺"),
    ("窦志勇", "食品加工", "食品工艺、杀菌、HACCP、包装", "宁波市余姚市", "食品安全与工艺"),
    ("章立群", "安全生产", "安全评价、隐患排查、应急预案、消防", "宁波市北仑区", "注册安全工程师"),
]
ENTERPRISES = [
    ("宁波明州精密机械有限公司", "宁波市北仑区", "机械制造", "王经理", "demo-firm-1"),
    ("德清绿水水产养殖合作社", "湖州市德清县", "农业", "孔社长", "demo-firm-2"),
    ("上海浦江电子科技有限公司", "上海市闵行区", "电子信息", "林工", "demo-firm-3"),
]
STAFF = [("陈晓红", "admin", "demo-staff-1", "admin"), ("刘志明", "staff", "demo-staff-2", "staff")]
DEMO_PASSWORD = "craftlink-demo"  # console password of the demo staff; demo data only


def demo_roster() -> RosterParseResult:
    rows = [
        RosterRow(line=i + 2, code=f"GJ{1001 + i}", name=name, group=group,
                  skills=tuple(s for s in skills.split("、") if s), region=region, channel="web",
                  channel_user_id=f"demo-craftsman-{1001 + i}", bio=bio, phone="")
        for i, (name, group, skills, region, bio) in enumerate(CRAFTSMEN)
    ]
    return RosterParseResult(rows=rows, errors=[])


async def seed(session: AsyncSession, now: datetime) -> ImportReport:
    """Create the demo people (idempotent)."""
    report = await import_roster(session, demo_roster(), now=now, apply=True)
    for name, region, industry, contact, user in ENTERPRISES:
        if await session.scalar(select(Identity).where(Identity.channel == "web", Identity.channel_user_id == user)):
            continue
        firm = Enterprise(name=name, region=region, industry=industry, created_at=now)
        session.add(firm)
        await session.flush()
        person = Person(role=Role.ENTERPRISE.value, name=contact, enterprise_id=firm.id, created_at=now)
        session.add(person)
        await session.flush()
        session.add(Identity(person_id=person.id, channel="web", channel_user_id=user, extra={}))
    from bot.console.auth import hash_password

    for name, role, user, login in STAFF:
        if await session.scalar(select(Identity).where(Identity.channel == "web", Identity.channel_user_id == user)):
            continue
        person = Person(role=Role.STAFF.value, name=name, created_at=now)
        session.add(person)
        await session.flush()
        session.add(StaffMember(person_id=person.id, staff_role=role, groups=[], login=login,
                                password_hash=hash_password(DEMO_PASSWORD)))
        session.add(Identity(person_id=person.id, channel="web", channel_user_id=user, extra={}))
    await session.flush()
    return report
