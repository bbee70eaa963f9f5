"""Realistic intake bodies: Chinese descriptions, catalogue services, addresses, channels.

A body is split around its phone number so the load client can put a fresh
``+86138xxxxxxxx`` into every request (most callers are new citizens).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from contact.seed.places import DISTRICTS

PHONE_MARK = "@PHONE@"

OPENINGS = [
    "您好，我是附近的居民，",
    "市民来电反映：",
    "我想反映一个问题，",
    "你好，麻烦帮忙处理一下，",
    "来电人称，",
    "我们小区的住户都很着急，",
]
SITUATIONS = [
    "{place}一带{kw}的问题已经持续了一个多星期，",
    "最近几天{place}附近出现{kw}情况，",
    "{place}门口{kw}，每天早晚都是这样，",
    "从上周开始{place}周边就有{kw}，",
    "{place}那边{kw}，已经影响到老人和小孩出行，",
]
IMPACTS = [
    "严重影响了周边居民的正常生活，",
    "晚上回家很不方便，也存在安全隐患，",
    "之前打过电话但一直没有人来处理，",
    "附近商户和行人都有意见，",
    "孩子上学要经过这里，家长都很担心，",
]
ASKS = [
    "希望有关部门尽快派人来看一下。",
    "请尽快安排处理，谢谢。",
    "希望能给个处理时间，处理好后请短信告知。",
    "麻烦转给相关部门，尽快解决。",
    "请相关单位核实并处理，谢谢你们。",
]
GENERIC = ["乱停车", "噪音扰民", "垃圾堆放", "路面积水", "路灯不亮", "井盖松动"]
CHANNELS = ["voice", "voice", "voice", "agent", "agent", "web"]


@dataclass(frozen=True)
class ServiceRow:
    code: str
    keywords: tuple[str, ...]


def _places() -> list[tuple[str, str]]:
    """(district name, road or landmark) pairs from the demo map."""
    out: list[tuple[str, str]] = []
    for d in DISTRICTS:
        roads = list(d.get("roads", []))
        marks = list(d.get("landmarks", []))
        for street in d.get("streets", []):
            roads += street.get("roads", [])
            marks += street.get("landmarks", [])
        out += [(d["name_zh"], zh) for zh, _ in roads + marks]
    return out


def _description(rng: random.Random, kw: str, place: str) -> str:
    text = rng.choice(OPENINGS) + rng.choice(SITUATIONS).format(place=place, kw=kw)
    text += rng.choice(IMPACTS)
    while len(text) < rng.randint(40, 100):
        text += rng.choice(IMPACTS)
    text += rng.choice(ASKS)
    return text[:120]


def make_bodies(services: list[ServiceRow], n: int = 500, seed: int = 12345) -> list[str]:
    """``n`` JSON bodies; those with a phone carry :data:`PHONE_MARK` where it goes."""
    rng = random.Random(seed)
    places = _places()
    bodies: list[str] = []
    for _ in range(n):
        district, place = rng.choice(places)
        svc = rng.choice(services) if services and rng.random() < 0.7 else None
        zh_keywords = [k for k in (svc.keywords if svc else ()) if not k.isascii()]
        kw = rng.choice(zh_keywords or GENERIC)
        if place.endswith(("路", "大道", "街")):
            address = f"{district}{place}{rng.randint(1, 399)}号"
        else:
            address = f"{district}{place}"
        body: dict[str, object] = {
            "description": _description(rng, kw, place),
            "channel": rng.choice(CHANNELS),
            "address": address,
        }
        if svc is not None:
            body["service"] = svc.code
        if rng.random() < 0.9:
            body["phone"] = PHONE_MARK
        if rng.random() < 0.05:
            body["priority"] = "urgent"
        bodies.append(json.dumps(body, ensure_ascii=False, separators=(",", ":")))
    return bodies


def split_phone(body: str) -> tuple[str, str | None]:
    """(text before the phone, text after it) or (body, None) without a phone."""
    marked = json.dumps(PHONE_MARK)
    if marked not in body:
        return body, None
    before, after = body.split(marked, 1)
    return before + '"+86138', '"' + after


def fill_phone(body: str, rng: random.Random) -> str:
    before, after = split_phone(body)
    if after is None:
        return before
    return f"{before}{rng.randrange(10**8):08d}{after}"


def make_texts(services: list[ServiceRow], n: int = 500, seed: int = 54321) -> list[str]:
    """``n`` complaint texts as citizens send them by SMS (the descriptions above)."""
    rng = random.Random(seed)
    places = _places()
    texts: list[str] = []
    for _ in range(n):
        _, place = rng.choice(places)
        svc = rng.choice(services) if services and rng.random() < 0.7 else None
        zh_keywords = [k for k in (svc.keywords if svc else ()) if not k.isascii()]
        texts.append(_description(rng, rng.choice(zh_keywords or GENERIC), place))
    return texts
