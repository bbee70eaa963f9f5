"""The demo city, 江城市 / Jiangcheng: catalogue, users, knowledge base and a ticket history.

Three layers:

- :func:`demo_catalogue` — the static data (districts, departments, policies,
  services, working hours, knowledge base) as plain dicts. Pure: no database.
- :func:`demo_history` — citizens, tickets and their events over the last ~60 days
  before ``now``. Pure and deterministic for a given ``(now, tickets, seed)``;
  deadlines come from :mod:`contact.sla` over the official calendar and routing
  decisions from :class:`contact.routing.RuleRouter`, so the history looks like what
  the live system would have written.
- :func:`seed_demo` — writes both into an empty database, in batches, in one
  transaction. On a database that already has departments it raises
  :class:`AlreadySeeded` and changes nothing (check :func:`is_empty` first to skip
  quietly).
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import random
import time as _time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, update

from contact import calendar_cn, routing, sla
from contact.db import Database
from contact.errors import Conflict
from contact.models import (
    CalendarDay,
    CalendarDayKind,
    Channel,
    Citizen,
    DeadlinePolicy,
    Department,
    DeptLevel,
    District,
    ExtensionState,
    KbArticle,
    Priority,
    Role,
    Service,
    ServiceForm,
    SlaState,
    Ticket,
    TicketEvent,
    TicketKind,
    TicketStatus,
    User,
    WorkingHours,
    utcnow,
)
from contact.reference import damm_digit
from contact.security import hash_password
from contact.seed import catalogue as cat_data
from contact.seed import kb, messages, places

DEFAULT_TIMEZONE = "Asia/Shanghai"
HISTORY_DAYS = 60
DUE_SOON_FRACTION = 0.2  # the settings default (CONTACT_DUE_SOON_FRACTION)
EXTENSION_MINUTES = 5 * cat_data.WORKING_DAY_MINUTES  # an extension adds 5 working days

STAFF_USERS: list[dict[str, Any]] = [
    {"username": "admin", "display_name": "系统管理员", "role": "admin", "locale": "zh-CN"},
    {
        "username": "supervisor1",
        "display_name": "值班长 王敏",
        "role": "supervisor",
        "locale": "zh-CN",
    },
    {"username": "agent1", "display_name": "话务员 李静", "role": "agent", "locale": "zh-CN"},
    {"username": "agent2", "display_name": "Agent Chen Chen", "role": "agent", "locale": "en"},
]
AGENTS = ("agent1", "agent2")
SUPERVISOR = "supervisor1"


class AlreadySeeded(Conflict):
    """The database already holds a city (it has departments): seeding would duplicate it."""

    code = "already_seeded"


def clerk_username(department_code: str) -> str:
    return f"{department_code}-clerk"


# ---------------------------------------------------------------- the catalogue


@dataclass(frozen=True)
class DemoCatalogue:
    """The demo city's static data as plain rows; codes stand where the tables hold ids."""

    districts: list[dict[str, Any]]
    departments: list[dict[str, Any]]  # parent, district: codes
    policies: list[dict[str, Any]]
    services: list[dict[str, Any]]  # dept (a bureau), policy: codes
    working_hours: list[dict[str, Any]]
    kb_articles: list[dict[str, Any]]  # service: a code or None
    # Downloadable forms offered with a service's guidance; service: a code.
    service_forms: list[dict[str, Any]] = field(default_factory=list)

    def service(self, code: str) -> dict[str, Any]:
        return next(s for s in self.services if s["code"] == code)

    def department(self, code: str) -> dict[str, Any]:
        return next(d for d in self.departments if d["code"] == code)

    def district(self, code: str) -> dict[str, Any]:
        return next(d for d in self.districts if d["code"] == code)

    def policy(self, code: str) -> dict[str, Any]:
        return next(p for p in self.policies if p["code"] == code)

    def bureaus(self) -> list[dict[str, Any]]:
        return [d for d in self.departments if d["level"] == "bureau"]

    def routing_catalogue(self, ids: dict[str, dict[str, int]] | None = None) -> routing.Catalogue:
        """A :class:`contact.routing.Catalogue` of this data.

        ``ids`` maps table → code → id (as the seeder gets them back); without it,
        ids are positions (1, 2, ...), enough for routing without a database.
        """
        ids = ids or {}

        def _id(table: str, code: str, i: int) -> int:
            return ids.get(table, {}).get(code, i + 1)

        policy_ids = {p["code"]: _id("policies", p["code"], i) for i, p in enumerate(self.policies)}
        return routing.Catalogue(
            services={
                s["code"]: routing.ServiceInfo(
                    id=_id("services", s["code"], i),
                    code=s["code"],
                    name_zh=s["name_zh"],
                    name_en=s["name_en"],
                    kind=s["kind"],
                    keywords=tuple(s["keywords"]),
                    department=s["dept"],
                    territorial=s["territorial"],
                    policy_id=policy_ids[s["policy"]],
                    fields=tuple(s["fields"]),
                    descriptions=tuple(
                        d for d in (s.get("description_zh"), s.get("description_en")) if d
                    ),
                )
                for i, s in enumerate(self.services)
            },
            departments={
                d["code"]: routing.DepartmentInfo(
                    id=_id("departments", d["code"], i),
                    code=d["code"],
                    name_zh=d["name_zh"],
                    name_en=d["name_en"],
                    level=d["level"],
                    parent=d["parent"],
                    district=d["district"],
                    keywords=tuple(d["keywords"]),
                )
                for i, d in enumerate(self.departments)
            },
            districts={
                d["code"]: routing.DistrictInfo(
                    id=_id("districts", d["code"], i),
                    code=d["code"],
                    name_zh=d["name_zh"],
                    name_en=d["name_en"],
                    keywords=tuple(d["keywords"]),
                )
                for i, d in enumerate(self.districts)
            },
        )


def demo_catalogue() -> DemoCatalogue:
    """A fresh copy of the demo city's static data (callers may change it freely)."""
    return DemoCatalogue(
        districts=places.build_districts(),
        departments=places.build_departments(),
        policies=copy.deepcopy(cat_data.POLICIES),
        services=cat_data.build_services(),
        working_hours=copy.deepcopy(cat_data.WORKING_HOURS),
        kb_articles=copy.deepcopy(kb.KB_ARTICLES),
        service_forms=cat_data.build_service_forms(),
    )


def calendar_rows(years: list[int] | tuple[int, ...]) -> list[tuple[date, str, str, str]]:
    """Official holidays and make-up working days of ``years`` (from :mod:`contact.calendar_cn`)."""
    rows: dict[date, tuple[date, str, str, str]] = {}
    for year in sorted(set(years)):
        for row in calendar_cn.rows_for(year):
            rows[row[0]] = row
    return [rows[d] for d in sorted(rows)]


def _calendar_years(now: datetime) -> list[int]:
    return sorted({2026, 2027, now.year - 1, now.year, now.year + 1})


def business_calendar(now: datetime, timezone: str = DEFAULT_TIMEZONE) -> sla.BusinessCalendar:
    rows = calendar_rows(_calendar_years(now))
    return sla.BusinessCalendar(
        tz=ZoneInfo(timezone),
        hours={weekday: cat_data.WORKING_PERIODS for weekday in range(5)},
        holidays=frozenset(d for d, kind, _, _ in rows if kind == "holiday"),
        workdays=frozenset(d for d, kind, _, _ in rows if kind == "workday"),
    )


# ---------------------------------------------------------------- the history


@dataclass
class DemoHistory:
    """Rows ready to insert; references stand for ids (``service``, ``department``, ...)."""

    citizens: list[dict[str, Any]]
    tickets: list[dict[str, Any]]
    events: list[dict[str, Any]]  # each with "reference" of its ticket


# Share of each final status, and how long ago such tickets were received (hours).
STATUS_MIX: tuple[tuple[str, float], ...] = (
    ("closed", 0.55),
    ("resolved", 0.11),
    ("accepted", 0.10),
    ("dispatched", 0.06),
    ("received", 0.04),
    ("returned", 0.03),
    ("reopened", 0.04),
    ("merged", 0.07),
)
AGE_HOURS: dict[str, tuple[float, float]] = {
    "received": (0.05, 10),
    "dispatched": (0.1, 30),
    "accepted": (2, 24 * 20),
    "returned": (1, 48),
    "resolved": (5, 24 * 12),
    "reopened": (24, 24 * 12),
    "closed": (24, 24 * HISTORY_DAYS),
    "merged": (1, 24 * HISTORY_DAYS),
}
CHANNEL_MIX: tuple[tuple[str, float], ...] = (
    ("voice", 40),
    ("sms", 18),
    ("web", 16),
    ("agent", 10),
    ("open311", 9),
    ("kiosk", 7),
)
ENGLISH_SHARE = {
    "voice": 0.04,
    "sms": 0.08,
    "web": 0.12,
    "agent": 0.03,
    "open311": 0.15,
    "kiosk": 0.05,
}
UNSIGNED = frozenset({"received", "dispatched"})
OPEN = frozenset({"received", "dispatched", "accepted", "returned", "reopened"})
FORM_CHANNELS = frozenset({"voice", "web", "agent", "open311", "kiosk"})
SATISFACTION_MIX: tuple[tuple[int, float], ...] = ((5, 50), (4, 27), (3, 11), (2, 7), (1, 5))
# fmt: off
MOBILE_PREFIXES = (
    "130", "131", "132", "135", "136", "137", "138", "139", "150", "151", "152", "155", "157",
    "158", "159", "166", "177", "180", "181", "185", "186", "187", "188", "189", "191", "199",
)
# fmt: on
FIELD_SAMPLES: dict[str, list[str]] = {
    "pole_number": ["DH-0231", "JB-1187", "XS-0562", "NH-0910", "GX-0075", "LD-3321"],
    "shop_name": ["好味来餐馆", "鲜丰超市", "力美健身", "悦享数码", "老街烧烤", "阳光培训中心"],
    "estate": ["湖滨花园", "滨江名苑", "枫林小区", "学府雅居", "工人新村", "未来城一期"],
    "site_name": ["地铁5号线施工段", "江北商业中心二期", "滨江名苑三期", "市政管网改造工程"],
    "route": ["5路", "12路", "108路", "201路", "地铁接驳1号线", "K3路"],
    "bus_plate": ["江A·12345", "江A·B0021", "江A·D7712"],
    "plate_number": ["江A·7K21Q", "江A·D3396", "江B·55X72", "江A·9M8E3", "江A·F0626"],
    "employer": ["江城宏达建筑劳务有限公司", "江城顺意物流有限公司", "某装修工程队"],
    "institution": ["市第一医院", "东湖区妇幼保健院", "南湖社区卫生服务中心"],
}


def _weighted(rng: random.Random, items: list[Any] | tuple[Any, ...], weights: list[float]) -> Any:
    return rng.choices(items, weights=weights, k=1)[0]


# One event under construction (a dict keeps it easy to insert).
_Event = dict[str, Any]


@dataclass
class _Draft:
    status: str
    created_at: datetime
    reference: str = ""
    ticket: dict[str, Any] = field(default_factory=dict)
    events: list[_Event] = field(default_factory=list)


class _HistoryBuilder:
    def __init__(self, catalogue: DemoCatalogue, now: datetime, seed: int, timezone: str) -> None:
        self.cat = catalogue
        self.now = now
        self.rng = random.Random(seed)
        self.tz = ZoneInfo(timezone)
        self.calendar = business_calendar(now, timezone)
        self.router = routing.RuleRouter()
        self.rcat = catalogue.routing_catalogue()
        self.services = {s["code"]: s for s in catalogue.services}
        self.policies = {p["code"]: _PolicyView(**p) for p in catalogue.policies}
        self.departments = {d["code"]: d for d in catalogue.departments}
        self.districts = {d["code"]: d for d in places.DISTRICTS}
        self.weights = {s["code"]: float(s.get("weight", 1)) for s in cat_data.SERVICES}
        self.citizens: list[dict[str, Any]] = []
        self.by_locale: dict[str, list[dict[str, Any]]] = {}
        self.phones: set[str] = set()
        self.references: set[str] = set()
        self.external_seq = 0

    # ------------------------------------------------------------ plan

    def plan(self, count: int) -> list[_Draft]:
        counts = {status: int(count * share) for status, share in STATUS_MIX}
        if count >= len(STATUS_MIX):
            for status in counts:
                counts[status] = max(counts[status], 1)
        counts["closed"] += count - sum(counts.values())
        if counts["closed"] < 0:  # tiny counts: take from the largest shares
            for status, _ in STATUS_MIX:
                while counts["closed"] < 0 and counts[status] > 1:
                    counts[status] -= 1
                    counts["closed"] += 1
        drafts = []
        for status, n in counts.items():
            lo, hi = AGE_HOURS[status]
            for _ in range(n):
                created = self._daytime(self.now - timedelta(hours=self.rng.uniform(lo, hi)))
                if status in UNSIGNED and self.rng.random() < 0.8:
                    # Mostly still inside the accept deadline: a few working hours old.
                    for _ in range(30):
                        if self.calendar.working_minutes_between(created, self.now) < 200:
                            break
                        created = self._daytime(
                            self.now - timedelta(hours=self.rng.uniform(lo, hi))
                        )
                drafts.append(_Draft(status, created))
        drafts.sort(key=lambda d: d.created_at)
        return drafts

    def _daytime(self, t: datetime) -> datetime:
        """Most contacts come in by day: move most small-hours times into the day."""
        local = t.astimezone(self.tz)
        if local.hour < 7 and self.rng.random() < 0.8:
            moved = local.replace(hour=self.rng.randint(8, 21), minute=self.rng.randint(0, 59))
            moved = moved.astimezone(UTC)
            if moved < self.now - timedelta(minutes=5):
                return moved
        return t.astimezone(UTC)

    # ------------------------------------------------------------ build

    def build(self, count: int) -> DemoHistory:
        drafts = self.plan(count)
        done: list[_Draft] = []
        for draft in drafts:
            self._ticket(draft, done)
            done.append(draft)
        events = [e for d in done for e in d.events]
        return DemoHistory(citizens=self.citizens, tickets=[d.ticket for d in done], events=events)

    def _reference(self, created: datetime) -> str:
        prefix = created.astimezone(self.tz).strftime("%y%m%d")
        while True:
            body = prefix + f"{self.rng.randrange(10**7):07d}"
            ref = body + damm_digit(body)
            if ref not in self.references:
                self.references.add(ref)
                return ref

    def _ticket(self, d: _Draft, done: list[_Draft]) -> None:
        rng = self.rng
        d.reference = self._reference(d.created_at)
        target: _Draft | None = None
        if d.status == "merged":
            target = self._merge_target(d, done)
            if target is None:
                d.status = "closed"
        channel = _weighted(rng, [c for c, _ in CHANNEL_MIX], [w for _, w in CHANNEL_MIX])
        if d.status == "received" and channel in ("voice", "agent"):
            channel = "sms"  # what waits for an agent is what came in unattended
        if target is not None:
            locale = target.ticket["locale"]
            svc = self.services[target.ticket["service"]]
            district = target.ticket["district"]
            address = target.ticket["address"]
        else:
            locale = "en" if rng.random() < ENGLISH_SHARE[channel] else "zh-CN"
            # Open tickets older than a few hours are seldom on a clock-time deadline.
            old_open = d.status in OPEN and self.now - d.created_at > timedelta(hours=4)
            svc = self._pick_service(locale, slow_only=old_open and rng.random() < 0.9)
            district = None
            address = None
        templates = (messages.MESSAGES_EN if locale == "en" else messages.MESSAGES_ZH)[svc["code"]]
        template = rng.choice(templates)
        if target is None and ("{addr}" in template or svc["territorial"]):
            district = _weighted(
                rng, list(self.districts), [x["weight"] for x in self.districts.values()]
            )
        if district is not None and address is None:
            address = self._address(self.districts[district], locale)
        description = template.format(addr=address or "")
        policy = self.policies[svc["policy"]]
        priority = "urgent" if svc["policy"] == "urgent" or rng.random() < 0.03 else "normal"
        citizen = self._citizen(d, channel, locale)
        agent = rng.choice(AGENTS)
        created_by = agent if channel in ("voice", "agent") else None

        # Routing at intake: SMS text goes through the keywords; elsewhere a service is chosen.
        decision = self.router.route(
            self.rcat,
            routing.RoutingRequest(
                text=description,
                service=None if channel == "sms" else svc["code"],
                address=None if channel == "sms" else address,
                district=None,
                channel=channel,
            ),
        )
        correct = self.router.route(
            self.rcat,
            routing.RoutingRequest(text=description, service=svc["code"], address=address),
        ).department
        assert correct is not None

        lat = lon = None
        if district and channel in ("web", "open311", "kiosk") and rng.random() < 0.8:
            clat, clon = self.districts[district]["center"]
            lat = round(clat + rng.uniform(-0.02, 0.02), 6)
            lon = round(clon + rng.uniform(-0.02, 0.02), 6)
        external_ref = None
        if channel == "open311":
            self.external_seq += 1
            external_ref = f"o311-{self.external_seq:06d}"

        d.ticket = {
            "reference": d.reference,
            "status": d.status,
            "kind": svc["kind"],
            "priority": priority,
            "channel": channel,
            "locale": locale,
            "service": svc["code"],
            "department": None,
            "citizen": citizen["phone"] if citizen else None,
            "anonymous": citizen is not None and rng.random() < 0.08,
            "title": self._title(svc, address, locale),
            "description": description,
            "address": address,
            "district": district,
            "lat": lat,
            "lon": lon,
            "fields": self._fields(svc, channel, locale, d.created_at),
            "routing_department": decision.department,
            "routing_reason": decision.reason,
            "routing_confidence": round(decision.confidence, 3),
            "routing_rule": decision.rule,
            "external_ref": external_ref,
            "created_by": created_by,
            "created_at": d.created_at,
            "merged_into": target.reference if target else None,
        }
        story = _Story(self, d, svc, policy, priority, agent)
        story.tell(correct, target, decision.confidence >= 0.8 and decision.department == correct)
        story.finish()

    def _merge_target(self, d: _Draft, done: list[_Draft]) -> _Draft | None:
        window = d.created_at - timedelta(days=7)
        candidates = [
            x for x in done if x.status not in ("merged", "received") and x.created_at >= window
        ]
        if not candidates:
            candidates = [x for x in done if x.status not in ("merged", "received")][-1:]
        return self.rng.choice(candidates) if candidates else None

    def _pick_service(self, locale: str, *, slow_only: bool = False) -> dict[str, Any]:
        pool = [
            s
            for s in self.cat.services
            if (locale != "en" or s["code"] in messages.MESSAGES_EN)
            and (not slow_only or self.policies[s["policy"]].working_time)
        ]
        weights = [self.weights.get(s["code"], 1.0) for s in pool]
        return _weighted(self.rng, pool, weights)

    def _address(self, district: dict[str, Any], locale: str) -> str:
        rng = self.rng
        streets = district["streets"]
        roads = [r for s in streets for r in s["roads"]] + district["roads"]
        marks = [m for s in streets for m in s["landmarks"]] + district["landmarks"]
        if rng.random() < 0.78:
            zh, en = rng.choice(roads)
            n = rng.randint(1, 320)
            if locale == "en":
                return f"{n} {en}, {district['name_en']}"
            prefix = places.CITY_ZH if rng.random() < 0.2 else ""
            return f"{prefix}{district['name_zh']}{zh}{n}号"
        zh, en = rng.choice(marks)
        if locale == "en":
            return f"{en}, {district['name_en']}"
        return zh if zh.startswith(district["name_zh"]) else f"{district['name_zh']}{zh}"

    def _title(self, svc: dict[str, Any], address: str | None, locale: str) -> str:
        if locale == "en":
            return f"{svc['name_en']} — {address}" if address else svc["name_en"]
        return f"{svc['name_zh']}：{address}" if address else svc["name_zh"]

    def _fields(
        self, svc: dict[str, Any], channel: str, locale: str, created: datetime
    ) -> dict[str, Any]:
        if channel not in FORM_CHANNELS:
            return {}
        rng = self.rng
        out: dict[str, Any] = {}
        for f in svc["fields"]:
            if not f["required"] and rng.random() < 0.4:
                continue
            kind = f["datatype"]
            if kind == "singlevaluelist":
                out[f["code"]] = rng.choice(f["values"])["key"]
            elif kind == "multivaluelist":
                keys = [v["key"] for v in f["values"]]
                out[f["code"]] = sorted(rng.sample(keys, rng.randint(1, 2)))
            elif kind == "number":
                out[f["code"]] = _number_sample(rng, f["code"])
            elif kind == "datetime":
                when = created - timedelta(hours=rng.uniform(1, 48))
                out[f["code"]] = when.astimezone(self.tz).isoformat(timespec="minutes")
            else:
                samples = FIELD_SAMPLES.get(f["code"], ["—"])
                out[f["code"]] = rng.choice(samples)
        return out

    def _citizen(self, d: _Draft, channel: str, locale: str) -> dict[str, Any] | None:
        rng = self.rng
        if channel == "kiosk" and rng.random() < 0.35:
            return None
        same = self.by_locale.setdefault(locale, [])
        if same and rng.random() < 0.18:
            return rng.choice(same)
        phone = self._phone(locale)
        if locale == "en":
            name = f"{rng.choice(['Mr', 'Ms'])} {rng.choice(messages.SURNAMES_EN)}"
        elif rng.random() < 0.65:
            name = rng.choice(messages.SURNAMES_ZH) + rng.choice(["先生", "女士"])
        else:
            name = None
        citizen = {
            "phone": phone,
            "name": name if rng.random() < 0.9 else None,
            "locale": locale,
            "opt_outs": ["sms"] if rng.random() < 0.03 else [],
            "blocked": False,
            "created_at": d.created_at - timedelta(seconds=rng.randint(5, 300)),
        }
        self.citizens.append(citizen)
        same.append(citizen)
        return citizen

    def _phone(self, locale: str) -> str:
        rng = self.rng
        while True:
            if locale == "en" and rng.random() < 0.4:
                # North American fictional range 555-0100..0199.
                phone = f"+1{rng.choice(['202', '312', '415', '617'])}5550{rng.randint(100, 199)}"
            else:
                phone = f"+86{rng.choice(MOBILE_PREFIXES)}{rng.randrange(10**8):08d}"
            if phone not in self.phones:
                self.phones.add(phone)
                return phone


def _number_sample(rng: random.Random, code: str) -> int | float:
    if code == "room_temperature":
        return rng.choice([12, 13, 14, 15, 16, 16.5, 17])
    if code == "workers":
        return rng.randint(1, 40)
    if code == "amount":
        return rng.choice([199, 680, 1500, 2980, 5000, 12800, 36000])
    return rng.randint(1, 100)


@dataclass(frozen=True)
class _PolicyView:
    code: str
    name_zh: str
    name_en: str
    accept_minutes: int
    resolve_minutes: int
    urgent_accept_minutes: int
    urgent_resolve_minutes: int
    working_time: bool


class _Story:
    """The events of one ticket, in order, and the ticket fields they imply."""

    def __init__(
        self,
        b: _HistoryBuilder,
        d: _Draft,
        svc: dict[str, Any],
        policy: _PolicyView,
        priority: str,
        agent: str,
    ) -> None:
        self.b = b
        self.rng = b.rng
        self.d = d
        self.svc = svc
        self.policy = policy
        self.priority = priority
        self.agent = agent
        self.status = "received"
        self.t = d.created_at
        self.department: str | None = None
        self.cycle_start = d.created_at
        self.accept_due, self.due = self._deadlines(d.created_at)

    # ------------------------------------------------------------ helpers

    def _deadlines(self, start: datetime) -> tuple[datetime, datetime]:
        return sla.deadlines(start, self.policy, self.priority, self.b.calendar)

    def _wait(
        self, minutes: float, *, working: bool | None = None, daytime: bool = False
    ) -> datetime:
        """Move the clock on, never past "now".

        Department work lands in working time when the policy counts it; ``daytime``
        steps (callbacks) between 08:00 and 21:00. A step that would overrun "now"
        takes a share of the time left instead.
        """
        limit = self.b.now - timedelta(minutes=2)
        in_working_time = self.policy.working_time if working is None else working
        t = self.t + timedelta(minutes=max(minutes, 0.5))
        if t > limit:
            share = self.rng.uniform(0.2, 0.6)
            work_left = self.b.calendar.working_minutes_between(self.t, limit)
            if in_working_time and work_left >= 2:
                t = self.b.calendar.add_working_minutes(self.t, max(1, int(work_left * share)))
            else:
                room = max((limit - self.t).total_seconds(), 0.0)
                t = self.t + timedelta(seconds=max(room * share, 1.0))
        fitted = t
        if in_working_time:
            if self.b.calendar.add_working_minutes(t, 1) != t + timedelta(minutes=1):
                fitted = self.b.calendar.add_working_minutes(t, self.rng.randint(3, 40))
        elif daytime:
            local = t.astimezone(self.b.tz)
            if not 8 <= local.hour < 21:
                day = local.date() + timedelta(days=1 if local.hour >= 21 else 0)
                start = datetime.combine(day, time(8, 30), tzinfo=self.b.tz)
                fitted = (start + timedelta(minutes=self.rng.uniform(0, 150))).astimezone(UTC)
        if fitted <= limit:
            t = fitted
        self.t = t
        return t

    def _toward(self, due: datetime, lo: float, hi: float) -> float:
        """Minutes from now to a point between ``lo`` and ``hi`` of the way to ``due``."""
        span = max((due - self.t).total_seconds() / 60, 10.0)
        return span * self.rng.uniform(lo, hi)

    def event(
        self,
        kind: str,
        to: str | None,
        actor: str,
        *,
        reason: str | None = None,
        data: dict[str, Any] | None = None,
        public: bool = True,
    ) -> _Event:
        e = dict(
            reference=self.d.reference,
            kind=kind,
            from_status=self.status if kind != "created" else None,
            to_status=to or self.status,
            actor=actor,
            reason=reason,
            data=data or {},
            public=public,
            created_at=self.t,
        )
        self.d.events.append(e)
        if to:
            self.status = to
        return e

    def clerk(self) -> str:
        assert self.department is not None
        return clerk_username(self.department)

    def reply(self) -> str:
        en = self.d.ticket["locale"] == "en"
        own = (messages.REPLIES_EN if en else messages.REPLIES_ZH).get(self.svc["code"])
        generic = messages.GENERIC_REPLIES_EN if en else messages.GENERIC_REPLIES_ZH
        return self.rng.choice(own or generic[self.svc["kind"]])

    # ------------------------------------------------------------ steps

    def dispatch(self, to: str, actor: str) -> None:
        data = {"department": to}
        if self.department and self.department != to:
            data["previous_department"] = self.department
        self.event("dispatched", "dispatched", actor, data=data)
        self.department = to

    def accept(self, late: bool) -> None:
        if late:
            self._wait(self._toward(self.accept_due, 1.05, 2.5) + 5)
        else:
            self._wait(self._toward(self.accept_due, 0.05, 0.85))
        self.event("accepted", "accepted", self.clerk(), data={"department": self.department})

    def resolve(self, late: bool) -> None:
        if late:
            self._wait(self._toward(self.due, 1.03, 1.5) + 30)
        else:
            self._wait(self._toward(self.due, 0.15, 0.9))
        text = self.reply()
        self.d.ticket["reply"] = text
        self.event("resolved", "resolved", self.clerk(), data={"reply": text})

    def callback(self, satisfaction: int, solved: bool) -> str:
        """回访: an agent calls back (or the citizen answers the SMS survey)."""
        self._wait(self.rng.uniform(60, 60 * 48), working=False, daytime=True)
        by_sms = self.d.ticket["citizen"] is not None and self.rng.random() < 0.4
        actor = "citizen" if by_sms else self.rng.choice(AGENTS)
        self.event(
            "satisfaction",
            None,
            actor,
            data={
                "satisfaction": satisfaction,
                "solved": solved,
                "via": "sms" if by_sms else "voice",
            },
            public=False,
        )
        return actor

    def reopen(self, actor: str) -> None:
        self._wait(self.rng.uniform(1, 30), working=False)
        self.event("reopened", "reopened", actor, reason=self.rng.choice(messages.REOPEN_REASONS))
        self.cycle_start = self.t
        self.accept_due, self.due = self._deadlines(self.t)

    def satisfaction(self) -> tuple[int, bool]:
        sat = _weighted(
            self.rng, [s for s, _ in SATISFACTION_MIX], [w for _, w in SATISFACTION_MIX]
        )
        p_solved = 0.96 if sat >= 4 else 0.6 if sat == 3 else 0.15
        return sat, self.rng.random() < p_solved

    # ------------------------------------------------------------ the story

    def tell(self, correct: str, target: _Draft | None, auto: bool) -> None:
        rng, final = self.rng, self.d.status
        channel = self.d.ticket["channel"]
        creator = self.d.ticket["created_by"] or "citizen"
        self.event(
            "created", "received", creator, data={"channel": channel, "service": self.svc["code"]}
        )
        if final == "received":
            return
        if final == "merged":
            assert target is not None
            self._wait(rng.uniform(3, 180), working=False)
            self.department = target.ticket["department"] or correct
            self.event(
                "merged",
                "merged",
                self.agent,
                reason=f"与工单 {target.reference} 反映同一问题，合并办理",
                data={"into": target.reference},
            )
            return

        # 派单: the system when routing is sure, else an agent reading it.
        misroute = final == "returned" or (final in ("closed", "resolved") and rng.random() < 0.07)
        auto = auto and not misroute and channel != "voice" and rng.random() < 0.7
        self._wait(rng.uniform(0.2, 2) if auto else rng.uniform(2, 90), working=False)
        self.dispatch(
            self._wrong(correct) if misroute else correct, "system" if auto else self.agent
        )

        if misroute:  # 退单 and re-dispatch
            wrong = self.department
            assert wrong is not None
            self._wait(self._toward(self.accept_due, 0.1, 0.8))
            self.event(
                "returned",
                "returned",
                self.clerk(),
                reason=self._return_reason(wrong, correct),
                data={"department": wrong},
                public=False,
            )
            if final == "returned":
                return
            self._wait(rng.uniform(10, 120), working=False)
            self.dispatch(correct, self.agent)
        if final == "dispatched":
            return

        self.accept(late=rng.random() < 0.08)
        if self.policy.working_time and rng.random() < 0.12:
            self._wait(self._toward(self.due, 0.3, 0.6))
            self.event(
                "extension_requested",
                None,
                self.clerk(),
                reason=rng.choice(messages.EXTENSION_REASONS),
                public=False,
            )
            if final == "accepted" and rng.random() < 0.4:
                return
            self._wait(rng.uniform(30, 480))
            self.event("extension_granted", None, SUPERVISOR)
            self.due = self.b.calendar.add_working_minutes(self.due, EXTENSION_MINUTES)
        if final == "accepted":
            return

        self.resolve(late=rng.random() < 0.10)
        if final == "resolved":
            return

        if final == "reopened" or rng.random() < 0.07:  # 发回重办
            sat = rng.choice([1, 1, 2])
            actor = self.callback(sat, False)
            self.reopen(actor)
            if final == "reopened":
                return
            self._wait(rng.uniform(10, 120), working=False)
            self.dispatch(correct, self.agent)
            self.accept(late=False)
            self.resolve(late=rng.random() < 0.08)

        if rng.random() < 0.08:  # 回访无应答: closed after three tries
            self._wait(rng.uniform(60 * 48, 60 * 80), working=False)
            self.event("closed", "closed", "system", reason="三次回访未接通，按规定办结")
            return
        sat, solved = self.satisfaction()
        self.callback(sat, solved)
        self.d.ticket["satisfaction"] = sat
        self.d.ticket["solved"] = solved
        self._wait(rng.uniform(1, 60), working=False)
        self.event("closed", "closed", "system")

    def _wrong(self, correct: str) -> str:
        """Where an agent might wrongly send it: another district's office, or another bureau."""
        depts = self.b.departments
        here = depts[correct]
        if here["level"] != "bureau":
            office = here if here["level"] == "district" else depts[here["parent"]]
            others = [
                c
                for c, x in depts.items()
                if x["level"] == "district"
                and x["parent"] == office["parent"]
                and c != office["code"]
            ]
            if others:
                return self.rng.choice(sorted(others))
        bureaus = sorted(c for c, x in depts.items() if x["level"] == "bureau" and c != correct)
        return self.rng.choice(bureaus)

    def _return_reason(self, wrong: str, correct: str) -> str:
        depts = self.b.departments
        w, c = depts[wrong], depts[correct]
        if w["level"] != "bureau" and c["district"] and w["district"] != c["district"]:
            name = self.b.cat.district(c["district"])["name_zh"]
            return messages.RETURN_WRONG_DISTRICT.format(district=name)
        bureau = c if c["level"] == "bureau" else depts[_bureau_of(depts, correct)]
        return messages.RETURN_WRONG_DUTY.format(bureau=bureau["name_zh"])

    # ------------------------------------------------------------ after the story

    def finish(self) -> None:
        """Fit the story before ``now``, add the urges deadlines called for, fill the ticket."""
        now = self.b.now
        events = self.d.events
        margin = timedelta(minutes=1)
        t0 = self.d.created_at
        last = events[-1]["created_at"]
        if last > now - margin and len(events) > 1:
            room = max((now - margin - t0).total_seconds(), len(events))
            span = (last - t0).total_seconds()
            for e in events[1:]:
                e["created_at"] = t0 + timedelta(
                    seconds=(e["created_at"] - t0).total_seconds() * room / span
                )
        for prev, e in itertools.pairwise(events):
            if e["created_at"] <= prev["created_at"]:
                e["created_at"] = prev["created_at"] + timedelta(seconds=1)

        # Deadlines of the current cycle (from the last reopen, else from receipt).
        reopens = [e for e in events if e["kind"] == "reopened"]
        cycle_start = reopens[-1]["created_at"] if reopens else t0
        accept_due, due = self._deadlines(cycle_start)
        cycle = [e for e in events if e["created_at"] >= cycle_start]
        ext_req = next((e for e in cycle if e["kind"] == "extension_requested"), None)
        ext_ok = next((e for e in cycle if e["kind"] == "extension_granted"), None)
        extension, until = "none", None
        if ext_req is not None:
            until = self.b.calendar.add_working_minutes(due, EXTENSION_MINUTES)
            ext_req["data"] = {"until": until.isoformat()}
            extension = "requested"
            if ext_ok is not None:
                ext_ok["data"] = {"until": until.isoformat()}
                extension = "granted"
                due = until

        self._urges(cycle, accept_due, due)
        events.sort(key=lambda e: e["created_at"])

        def last_at(kind: str) -> datetime | None:
            return next((e["created_at"] for e in reversed(events) if e["kind"] == kind), None)

        status = self.d.status
        accepted_at = last_at("accepted") if status not in ("received", "merged") else None
        resolved_at = last_at("resolved")
        if status in ("resolved", "closed") and resolved_at is not None:
            sla_state = sla.final_state(resolved_at, due).value
        elif status == "closed" or status == "merged":
            sla_state = SlaState.ok.value
        else:
            states = [sla.sla_state(now, cycle_start, due, DUE_SOON_FRACTION)]
            if status in UNSIGNED:  # the accept deadline runs until someone signs for it
                states.append(sla.sla_state(now, cycle_start, accept_due, DUE_SOON_FRACTION))
            order = [SlaState.ok, SlaState.due_soon, SlaState.overdue]
            sla_state = max(states, key=order.index).value

        self.d.ticket.update(
            {
                "department": self.department if status != "received" else None,
                "accept_due_at": accept_due,
                "due_at": due,
                "sla_state": sla_state,
                "extension": extension,
                "extension_until": until,
                "dispatched_at": last_at("dispatched"),
                "accepted_at": accepted_at,
                "resolved_at": resolved_at,
                "closed_at": last_at("closed"),
                "reply": self.d.ticket.get("reply"),
                "satisfaction": self.d.ticket.get("satisfaction") if status == "closed" else None,
                "solved": self.d.ticket.get("solved") if status == "closed" else None,
                "reopen_count": sum(1 for e in events if e["kind"] == "reopened"),
                "dispatch_count": sum(1 for e in events if e["kind"] == "dispatched"),
                "urge_count": sum(1 for e in events if e["kind"] == "urged"),
                "version": len(events),
                "updated_at": events[-1]["created_at"],
            }
        )

    def _urges(self, cycle: list[_Event], accept_due: datetime, due: datetime) -> None:
        """催办: the system urges when a deadline passes unmet; a supervisor follows up on some."""
        now = self.b.now

        story = sorted(self.d.events, key=lambda e: e["created_at"])

        def status_just_before(t: datetime) -> str:
            current = story[0]["to_status"]
            for e in story:
                if e["created_at"] <= t:
                    current = e["to_status"]
            return current

        def first(kind: str) -> datetime | None:
            return next((e["created_at"] for e in cycle if e["kind"] == kind), None)

        accepted = first("accepted")
        resolved = first("resolved")
        for deadline, done, name in ((accept_due, accepted, "accept"), (due, resolved, "resolve")):
            end = done or now
            if deadline >= end:
                continue
            at = deadline + min(timedelta(minutes=5), (end - deadline) / 2)
            if status_just_before(at) not in ("dispatched", "accepted", "reopened"):
                continue
            label = "签收" if name == "accept" else "办结"
            self.d.events.append(
                dict(
                    reference=self.d.reference,
                    kind="urged",
                    from_status=status_just_before(at),
                    to_status=status_just_before(at),
                    actor="system",
                    reason=f"已超过{label}时限，系统自动催办",
                    data={"deadline": name, "level": 1},
                    public=False,
                    created_at=at,
                )
            )
            later = at + timedelta(hours=self.rng.uniform(2, 30))
            if name == "resolve" and later < end and self.rng.random() < 0.5:
                self.d.events.append(
                    dict(
                        reference=self.d.reference,
                        kind="urged",
                        from_status=status_just_before(later),
                        to_status=status_just_before(later),
                        actor=SUPERVISOR,
                        reason="超期未办结，请加快办理并说明原因",
                        data={"deadline": name, "level": 2},
                        public=False,
                        created_at=later,
                    )
                )


def _bureau_of(depts: dict[str, dict[str, Any]], code: str) -> str:
    while depts[code]["parent"]:
        code = depts[code]["parent"]
    return code


def demo_history(
    *,
    now: datetime | None = None,
    tickets: int = 300,
    seed: int = 12345,
    timezone: str = DEFAULT_TIMEZONE,
    catalogue: DemoCatalogue | None = None,
) -> DemoHistory:
    """Citizens, tickets and events of the last ~60 days before ``now`` (deterministic)."""
    now = now or utcnow()
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if tickets < 0:
        raise ValueError("tickets must not be negative")
    builder = _HistoryBuilder(catalogue or demo_catalogue(), now.astimezone(UTC), seed, timezone)
    return builder.build(tickets)


# ---------------------------------------------------------------- the database


@dataclass
class SeedReport:
    districts: int
    departments: int
    policies: int
    services: int
    working_hours: int
    calendar_days: int
    users: int
    kb_articles: int
    citizens: int
    tickets: int
    events: int
    tickets_by_status: dict[str, int]
    usernames: list[str]
    seconds: float


async def is_empty(db: Database) -> bool:
    """True when the database has no departments (no city seeded or set up yet)."""
    async with db.session() as s:
        return (await s.scalar(select(Department.id).limit(1))) is None


async def seed_demo(
    db: Database,
    *,
    password: str,
    tickets: int = 300,
    now: datetime | None = None,
    seed: int = 12345,
    timezone: str = DEFAULT_TIMEZONE,
) -> SeedReport:
    """Seed the demo city into an empty database, in one transaction.

    Raises :class:`AlreadySeeded` (and writes nothing) when departments exist.
    Every demo user gets ``password``.
    """
    started = _time.perf_counter()
    if not password:
        raise ValueError("a password for the demo users is required")
    if not await is_empty(db):
        raise AlreadySeeded("the database already has departments; the demo city was not seeded")
    now = (now or utcnow()).astimezone(UTC)
    catalogue = demo_catalogue()
    history = demo_history(
        now=now, tickets=tickets, seed=seed, timezone=timezone, catalogue=catalogue
    )
    password_hash = await asyncio.to_thread(hash_password, password)
    rng = random.Random(seed + 1)

    async with db.session() as s, s.begin():
        if (await s.scalar(select(Department.id).limit(1))) is not None:
            raise AlreadySeeded(
                "the database already has departments; the demo city was not seeded"
            )
        ids: dict[str, dict[str, int]] = {}

        await _insert(s, District, catalogue.districts)
        ids["districts"] = await _ids(s, District.id, District.code)

        for level in (DeptLevel.bureau, DeptLevel.district, DeptLevel.street):
            rows = [
                {
                    "code": d["code"],
                    "name_zh": d["name_zh"],
                    "name_en": d["name_en"],
                    "level": level,
                    "parent_id": ids.get("departments", {}).get(d["parent"])
                    if d["parent"]
                    else None,
                    "district_id": ids["districts"][d["district"]] if d["district"] else None,
                    "keywords": d["keywords"],
                    "phone": d["phone"],
                    "active": True,
                }
                for d in catalogue.departments
                if d["level"] == level.value
            ]
            if rows:
                await _insert(s, Department, rows)
            ids["departments"] = await _ids(s, Department.id, Department.code)
        dept_ids = ids["departments"]

        await _insert(s, DeadlinePolicy, catalogue.policies)
        ids["policies"] = await _ids(s, DeadlinePolicy.id, DeadlinePolicy.code)

        service_rows = []
        for svc in catalogue.services:
            row = {k: v for k, v in svc.items() if k not in ("dept", "policy")}
            row["kind"] = TicketKind(svc["kind"])
            row["default_department_id"] = dept_ids[svc["dept"]]
            row["deadline_policy_id"] = ids["policies"][svc["policy"]]
            row["active"] = True
            service_rows.append(row)
        await _insert(s, Service, service_rows)
        ids["services"] = await _ids(s, Service.id, Service.code)
        form_rows = [
            {
                "service_id": ids["services"][f["service"]],
                **{k: v for k, v in f.items() if k != "service"},
            }
            for f in catalogue.service_forms
        ]
        if form_rows:
            await _insert(s, ServiceForm, form_rows)

        await _insert(s, WorkingHours, catalogue.working_hours)
        cal_rows = [
            {"day": d, "kind": CalendarDayKind(kind), "name_zh": zh, "name_en": en}
            for d, kind, zh, en in calendar_rows(_calendar_years(now))
        ]
        if cal_rows:
            await _insert(s, CalendarDay, cal_rows)

        users = [{**u, "role": Role(u["role"]), "department_id": None} for u in STAFF_USERS]
        users += [
            {
                "username": clerk_username(d["code"]),
                "display_name": f"{d['name_zh']}办理员",
                "role": Role.department,
                "department_id": dept_ids[d["code"]],
                "locale": "zh-CN",
            }
            for d in catalogue.departments
        ]
        user_created = now - timedelta(days=120)
        for u in users:
            u.update(
                password_hash=password_hash,
                active=True,
                failed_logins=0,
                token_version=0,
                locked_until=None,
                created_at=user_created,
            )
        await _insert(s, User, users)
        user_ids = await _ids(s, User.id, User.username)

        kb_rows = [
            {
                "service_id": ids["services"][a["service"]] if a["service"] else None,
                "title_zh": a["title_zh"],
                "title_en": a["title_en"],
                "body_zh": a["body_zh"],
                "body_en": a["body_en"],
                "keywords": a["keywords"],
                "updated_at": now
                - timedelta(days=rng.randint(3, 200), minutes=rng.randint(0, 600)),
            }
            for a in catalogue.kb_articles
        ]
        await _insert(s, KbArticle, kb_rows)

        if history.citizens:
            await _insert(s, Citizen, history.citizens)
        citizen_ids = await _ids(s, Citizen.id, Citizen.phone)

        ticket_rows = [
            _ticket_row(t, ids, dept_ids, citizen_ids, user_ids) for t in history.tickets
        ]
        await _insert(s, Ticket, ticket_rows)
        ticket_ids = await _ids(s, Ticket.id, Ticket.reference)
        merges = [
            {"id": ticket_ids[t["reference"]], "merged_into_id": ticket_ids[t["merged_into"]]}
            for t in history.tickets
            if t["merged_into"]
        ]
        if merges:
            await s.execute(update(Ticket), merges)

        event_rows = [
            {
                "ticket_id": ticket_ids[e["reference"]],
                "kind": e["kind"],
                "from_status": e["from_status"],
                "to_status": e["to_status"],
                "actor_id": user_ids.get(e["actor"]),
                "actor": e["actor"],
                "reason": e["reason"],
                "data": e["data"],
                "public": e["public"],
                "created_at": e["created_at"],
            }
            for e in history.events
        ]
        await _insert(s, TicketEvent, event_rows)

    return SeedReport(
        districts=len(catalogue.districts),
        departments=len(catalogue.departments),
        policies=len(catalogue.policies),
        services=len(catalogue.services),
        working_hours=len(catalogue.working_hours),
        calendar_days=len(cal_rows),
        users=len(users),
        kb_articles=len(kb_rows),
        citizens=len(history.citizens),
        tickets=len(history.tickets),
        events=len(history.events),
        tickets_by_status=dict(Counter(t["status"] for t in history.tickets)),
        usernames=[u["username"] for u in users],
        seconds=round(_time.perf_counter() - started, 3),
    )


async def _insert(s: Any, model: Any, rows: list[dict[str, Any]]) -> None:
    """One executemany per chunk through Core (the ORM's bulk path splits rows by their NULLs)."""
    for chunk in _chunks(rows, 1000):
        await s.execute(insert(model.__table__), chunk)


async def _ids(s: Any, id_col: Any, key_col: Any) -> dict[Any, int]:
    return {key: id_ for id_, key in (await s.execute(select(id_col, key_col))).all()}


def _chunks(rows: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def _ticket_row(
    t: dict[str, Any],
    ids: dict[str, dict[str, int]],
    dept_ids: dict[str, int],
    citizen_ids: dict[Any, int],
    user_ids: dict[Any, int],
) -> dict[str, Any]:
    return {
        "reference": t["reference"],
        "status": TicketStatus(t["status"]),
        "kind": TicketKind(t["kind"]),
        "priority": Priority(t["priority"]),
        "channel": Channel(t["channel"]),
        "locale": t["locale"],
        "service_id": ids["services"][t["service"]],
        "department_id": dept_ids[t["department"]] if t["department"] else None,
        "citizen_id": citizen_ids[t["citizen"]] if t["citizen"] else None,
        "anonymous": t["anonymous"],
        "title": t["title"][:200],
        "description": t["description"],
        "address": t["address"],
        "district_id": ids["districts"][t["district"]] if t["district"] else None,
        "lat": t["lat"],
        "lon": t["lon"],
        "fields": t["fields"],
        "routing_department_id": dept_ids.get(t["routing_department"] or ""),
        "routing_reason": t["routing_reason"],
        "routing_confidence": t["routing_confidence"],
        "routing_rule": t["routing_rule"],
        "routing_service_id": ids["services"][t["service"]],
        "accept_due_at": t["accept_due_at"],
        "due_at": t["due_at"],
        "sla_state": SlaState(t["sla_state"]),
        "extension": ExtensionState(t["extension"]),
        "extension_until": t["extension_until"],
        "dispatched_at": t["dispatched_at"],
        "accepted_at": t["accepted_at"],
        "resolved_at": t["resolved_at"],
        "closed_at": t["closed_at"],
        "reply": t["reply"],
        "satisfaction": t["satisfaction"],
        "solved": t["solved"],
        "reopen_count": t["reopen_count"],
        "dispatch_count": t["dispatch_count"],
        "urge_count": t["urge_count"],
        "merged_into_id": None,
        "external_ref": t["external_ref"],
        "created_by_id": user_ids.get(t["created_by"]) if t["created_by"] else None,
        "version": t["version"],
        "created_at": t["created_at"],
        "updated_at": t["updated_at"],
    }


def seed_url(url: str, *, password: str, tickets: int = 300) -> SeedReport:
    """``seed_demo`` for callers outside an event loop (tests, benchmarks)."""

    async def run() -> SeedReport:
        db = Database(url)
        try:
            return await seed_demo(db, password=password, tickets=tickets)
        finally:
            await db.dispose()

    return asyncio.run(run())
