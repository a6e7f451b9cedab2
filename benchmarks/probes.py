"""End-to-end probes: an enterprise's request (four callbacks: the problem, 线上指导, 紧急, 提交)
timed from the 提交 callback to the craftsman's offer arriving at the WeCom API fake."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence

import aiohttp

from benchmarks.platform_side import TimedList, shown
from benchmarks.wecom_traffic import Platform

REQUEST = ("冲床的模子老是崩刃，麻烦看看", "线上指导", "紧急", "提交")
CASE_NO = re.compile(r"案件编号 #(\d+)")
OFFER_NO = re.compile(r"新的服务需求 #(\d+)")


async def run_probes(ports: Sequence[int], users: Sequence[str], *, every_s: float, seconds: float,
                     platform: Platform) -> dict[str, float]:
    """Start one probe every ``every_s`` for ``seconds``; return user -> monotonic time of 提交."""
    submitted: dict[str, float] = {}

    async def probe(http: aiohttp.ClientSession, port: int, user: str) -> None:
        for text in REQUEST:
            cb = platform.text(user, text)
            if text == "提交":
                submitted[user] = time.monotonic()
            async with http.post(f"http://127.0.0.1:{port}/wecom/callback", params=cb.query, data=cb.body) as r:
                await r.read()

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        tasks = []
        end = time.monotonic() + seconds
        for i, user in enumerate(users):
            if time.monotonic() >= end:
                break
            tasks.append(asyncio.create_task(probe(http, ports[i % len(ports)], user)))
            await asyncio.sleep(every_s)
        await asyncio.gather(*tasks, return_exceptions=True)
    return submitted


def e2e_latencies(sent: TimedList, submitted: dict[str, float]) -> tuple[list[float], int]:
    """(seconds from 提交 to the first offer of that case, offers received more than once)."""
    case_of: dict[int, str] = {}
    offers: dict[int, list[float]] = {}
    seen: dict[tuple[str, int], int] = {}
    for body, at in zip(sent, sent.times, strict=True):
        text = shown(body)
        if (m := CASE_NO.search(text)) and body["touser"] in submitted:
            case_of[int(m.group(1))] = str(body["touser"])
        if m := OFFER_NO.search(text):
            number = int(m.group(1))
            offers.setdefault(number, []).append(at)
            key = (str(body["touser"]), number)
            seen[key] = seen.get(key, 0) + 1
    lat = [min(offers[n]) - submitted[u] for n, u in case_of.items() if n in offers]
    return lat, sum(1 for n in seen.values() if n > 1)
