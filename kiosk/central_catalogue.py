"""What a kiosk keeps to work offline: the service catalogue as the citizens' pages offer
it (groups, guidance, fields, forms), the track page's address and the card key.

The services are the mobile web's (:mod:`channels.mobile_web.catalogue`): the same
active services, in the same groups and order. The leaders' mailboxes are included —
their one field, the letter's subject, is a short text a kiosk's on-screen keyboard
types like any other; ``mailbox`` tells the kiosk to skip the address step for them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

from pydantic import BaseModel

from channels.mobile_web.catalogue import ServiceView, grouped, services
from contact.runtime import Runtime
from kiosk.central_intake import Device

# Groups of the city's catalogue by their names (zh, en) → a stable code. A group an
# administrator adds later gets a code made of its English name.
KNOWN_GROUPS: dict[tuple[str, str], str] = {
    ("市政设施", "Roads and public facilities"): "facilities",
    ("环境卫生", "Sanitation"): "sanitation",
    ("市容秩序", "Street order"): "order",
    ("园林绿化", "Parks and greenery"): "greenery",
    ("水电气暖", "Water, power, gas and heating"): "utilities",
    ("住房保障与物业", "Housing and property"): "housing",
    ("城乡规划与建设", "Planning and building works"): "building",
    ("环境保护", "Environment"): "environment",
    ("交通出行", "Transport"): "transport",
    ("市场监管", "Markets and consumers"): "market",
    ("劳动和社会保障", "Jobs and social security"): "labour",
    ("教育", "Education"): "education",
    ("卫生健康", "Health"): "health",
    ("民政服务", "Civil affairs"): "civil",
    ("社会治安", "Public safety"): "safety",
    ("综合", "General"): "general",
    ("领导信箱", "Leaders' mailboxes"): "mailbox",
}
# Group code → the icon the kiosk UI draws for it (a symbol of its ``icons.svg``: road,
# environment, traffic, housing, water, social, market, health, education, safety,
# mailbox, other); a group not listed here gets DEFAULT_ICON.
ICONS: dict[str, str] = {
    "facilities": "road",
    "sanitation": "environment",
    "order": "road",
    "greenery": "environment",
    "utilities": "water",
    "housing": "housing",
    "building": "housing",
    "environment": "environment",
    "transport": "traffic",
    "market": "market",
    "labour": "social",
    "education": "education",
    "health": "health",
    "civil": "social",
    "safety": "safety",
    "general": "other",
    "mailbox": "mailbox",
}
DEFAULT_ICON = "other"
CARD_KEY_LABEL = b"kiosk-card"


class GroupRead(BaseModel):
    code: str
    name: dict[str, str]
    icon: str


class FormRead(BaseModel):
    name: dict[str, str]
    url: str


class ServiceRead(BaseModel):
    code: str
    group: str
    name: dict[str, str]
    kind: str
    mailbox: bool
    guidance: dict[str, str]
    fields: list[dict[str, Any]]
    forms: list[FormRead]


class KioskRead(BaseModel):
    id: int
    name: str
    location: str


class CatalogueRead(BaseModel):
    kiosk: KioskRead
    groups: list[GroupRead]
    services: list[ServiceRead]
    track_url: str
    card_key: str


def card_key(secret_key: str) -> str:
    """The key every kiosk hashes citizen card numbers with (HMAC-SHA256), so that one
    card gives one digest whichever kiosk read it."""
    return hmac.new(secret_key.encode(), CARD_KEY_LABEL, hashlib.sha256).hexdigest()


def group_code(name_zh: str, name_en: str) -> str:
    known = KNOWN_GROUPS.get((name_zh, name_en))
    if known:
        return known
    slug = re.sub(r"[^a-z0-9]+", "-", name_en.casefold()).strip("-")[:40]
    return slug or "group-" + hashlib.sha256(name_zh.encode()).hexdigest()[:8]


def _absolute(rt: Runtime, url: str) -> str:
    return rt.settings.PUBLIC_BASE_URL + url if url.startswith("/") else url


def _service(rt: Runtime, view: ServiceView, group: str) -> ServiceRead:
    return ServiceRead(
        code=view.code,
        group=group,
        name={"zh-CN": view.name_zh, "en": view.name_en},
        kind=view.kind,
        mailbox=view.mailbox,
        guidance={"zh-CN": view.description_zh, "en": view.description_en},
        fields=[dict(f) for f in view.fields],
        forms=[
            FormRead(name={"zh-CN": f.title_zh, "en": f.title_en}, url=_absolute(rt, f.url))
            for f in view.forms
        ],
    )


async def catalogue(rt: Runtime, device: Device) -> CatalogueRead:
    groups: list[GroupRead] = []
    out: list[ServiceRead] = []
    for _, members in grouped(list((await services(rt)).values()), "en"):
        first = members[0]
        code = group_code(first.group_zh, first.group_en)
        groups.append(
            GroupRead(
                code=code,
                name={"zh-CN": first.group_zh, "en": first.group_en},
                icon=ICONS.get(code, DEFAULT_ICON),
            )
        )
        out.extend(_service(rt, view, code) for view in members)
    return CatalogueRead(
        kiosk=KioskRead(id=device.id, name=device.name, location=device.location),
        groups=groups,
        services=out,
        track_url=rt.settings.PUBLIC_BASE_URL + "/m/track",
        card_key=card_key(rt.settings.SECRET_KEY),
    )
