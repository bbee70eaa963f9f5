"""Routing: from what a citizen said to a service and a department, with the reason.

Pure functions over a :class:`Catalogue` snapshot. Rules v1, from the catalogue:
service → its default department; keywords in the text → a service; address
words → the district, and for territorial services the bureau's office there
(and a street office when its street is named). A learning router plugs in
behind the same :class:`Router` protocol; the catalogue's rules always win.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from contact.places import gazetteer_for

if TYPE_CHECKING:
    from contact.places import DistrictBoundaries

FALLBACK_SERVICE = "other"


@dataclass(frozen=True)
class ServiceInfo:
    id: int
    code: str
    name_zh: str
    name_en: str
    kind: str
    keywords: tuple[str, ...]
    department: str  # default department code
    territorial: bool
    policy_id: int  # deadline policy
    fields: tuple[dict[str, object], ...] = ()
    descriptions: tuple[str, ...] = ()  # what the service covers, in each language


@dataclass(frozen=True)
class DepartmentInfo:
    id: int
    code: str
    name_zh: str
    name_en: str
    level: str
    parent: str | None
    district: str | None
    keywords: tuple[str, ...] = ()
    phone: str | None = None  # the duty mobile that hears urging and escalation


@dataclass(frozen=True)
class DistrictInfo:
    id: int
    code: str
    name_zh: str
    name_en: str
    keywords: tuple[str, ...]


Named = ServiceInfo | DepartmentInfo | DistrictInfo


@dataclass
class Catalogue:
    """An in-memory snapshot of services, departments and districts."""

    services: dict[str, ServiceInfo] = field(default_factory=dict)
    departments: dict[str, DepartmentInfo] = field(default_factory=dict)
    districts: dict[str, DistrictInfo] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.dept_by_id = {d.id: d for d in self.departments.values()}
        self.service_by_id = {s.id: s for s in self.services.values()}
        self.district_by_id = {d.id: d for d in self.districts.values()}
        self.children: dict[str, list[str]] = {}
        for d in self.departments.values():
            if d.parent:
                self.children.setdefault(d.parent, []).append(d.code)
        # Longest keywords first, so "路灯不亮" beats "路灯".
        self._service_words = sorted(
            ((kw.lower(), s.code) for s in self.services.values() for kw in s.keywords if kw),
            key=lambda p: -len(p[0]),
        )

    def subtree(self, code: str) -> frozenset[str]:
        """A department and every office under it."""
        out, stack = set(), [code]
        while stack:
            c = stack.pop()
            if c not in out:
                out.add(c)
                stack.extend(self.children.get(c, ()))
        return frozenset(out)

    def service_matches(self, text: str) -> dict[str, list[str]]:
        low = text.lower()
        hits: dict[str, list[str]] = {}
        for word, code in self._service_words:
            if word in low:
                hits.setdefault(code, []).append(word)
        return hits


@dataclass(frozen=True)
class RoutingRequest:
    text: str
    service: str | None = None
    address: str | None = None
    district: str | None = None
    channel: str | None = None
    lat: float | None = None
    lon: float | None = None


# A step of a routing reason: a phrase key and its arguments (codes, or words quoted
# from the text). Stored reasons are English with codes; staff see them in their own
# language with names through :func:`explain`.
Step = tuple[str, tuple[tuple[str, str], ...]]
WORD_SEP = "\x1f"  # between quoted words inside one argument

PHRASES: dict[str, tuple[str, str]] = {
    # key: (English with codes, Chinese); {service} {dept} {district} become names in
    # :func:`explain`.
    "service": ("service {service} chosen", "已选事项「{service}」"),
    "keywords": ("keywords {words} → service {service}", "关键词 {words} → 事项「{service}」"),
    "fallback": ("no rule matched → general service", "未匹配规则 → 综合事项"),
    "none": ("no rule matched", "未匹配规则"),
    "to": (" → {dept}", " → {dept}"),
    "district": ("; district {district} ({word})", "；区域 {district}（{word}）"),
    "district_given": ("; district {district} (given)", "；区域 {district}（已指定）"),
    "district_at": ("; district {district} (by location)", "；区域 {district}（按位置）"),
    "office": (" → office {dept}", " → {dept}"),
    "street": ("; street '{word}' → {dept}", "；街道「{word}」→ {dept}"),
    "bureau_over": ("the unit above {dept}", "{dept}的上级单位"),
    "then": ("; ", "；"),
    "model": (
        "routing model v{version} → {dept} ({confidence})",
        "分类模型 v{version} → {dept}（置信度 {confidence}）",
    ),
    "model_service": (
        ", service {service} ({confidence})",
        "，事项「{service}」（置信度 {confidence}）",
    ),
}


def step(key: str, **args: str) -> Step:
    return key, tuple(args.items())


def explain(steps: tuple[Step, ...], catalogue: Catalogue | None, locale: str) -> str:
    """A reason in ``locale`` (zh-CN or en); with a catalogue, codes become names."""
    zh = locale == "zh-CN"
    out = []
    for key, args in steps:
        values = dict(args)
        if catalogue is not None:
            tables: dict[str, Mapping[str, Named]] = {
                "service": catalogue.services,
                "dept": catalogue.departments,
                "district": catalogue.districts,
            }
            for name, table in tables.items():
                item = table.get(values.get(name, ""))
                if item is not None:
                    values[name] = item.name_zh if zh else item.name_en
        if "words" in values:
            sep = "、" if zh else ", "
            quote = "「{}」" if zh else "'{}'"
            values["words"] = sep.join(quote.format(w) for w in values["words"].split(WORD_SEP))
        if key == "district":
            values["word"] = f"「{values['word']}」" if zh else f"'{values['word']}'"
        out.append(PHRASES[key][1 if zh else 0].format(**values))
    return "".join(out)


@dataclass(frozen=True)
class RoutingDecision:
    service: str | None
    department: str | None
    district: str | None
    reason: str
    confidence: float
    rule: str  # service | keyword | fallback | model
    alternatives: tuple[tuple[str, float, str], ...] = ()  # (department, confidence, reason)
    why: tuple[Step, ...] = ()  # the reason as steps, for :func:`explain`
    version: int | None = None  # the routing model's, where it decided (rule "model")


class Router(Protocol):
    def route(self, catalogue: Catalogue, request: RoutingRequest) -> RoutingDecision: ...


def find_district(catalogue: Catalogue, *texts: str | None) -> tuple[str | None, str | None]:
    """(district code, the word that placed it) from an address or free text: the first
    text that names a district, by its longest place word (see :mod:`contact.places`)."""
    place = gazetteer_for(catalogue).locate(*texts)
    return place.district, place.district_word


def _territorial_office(
    catalogue: Catalogue, bureau: str, district: str, texts: tuple[str | None, ...]
) -> tuple[str, tuple[Step, ...]]:
    """The bureau's office in the district, narrowed to a street office when one is named."""
    office = next(
        (
            c
            for c in catalogue.children.get(bureau, ())
            if catalogue.departments[c].district == district
        ),
        None,
    )
    if office is None:
        return bureau, ()
    place = gazetteer_for(catalogue).locate(*texts, district=district)
    street = place.office_among(catalogue.children.get(office, ()))
    if street is not None and place.street_word:
        return street, (step("street", word=place.street_word, dept=street),)
    return office, (step("office", dept=office),)


class RuleRouter:
    """Routing v1: the catalogue's rules.

    The district: the one given, else the address's words, else the district whose
    boundary holds the ticket's location (when ``boundaries`` are configured), else the
    description's words.
    """

    def __init__(self, boundaries: DistrictBoundaries | None = None) -> None:
        self.boundaries = boundaries

    def _district_at(self, catalogue: Catalogue, request: RoutingRequest) -> str | None:
        if self.boundaries is None or request.lat is None or request.lon is None:
            return None
        code = self.boundaries.district_at(request.lat, request.lon)
        return code if code in catalogue.districts else None

    def route(self, catalogue: Catalogue, request: RoutingRequest) -> RoutingDecision:
        texts = (request.address, request.text)
        district, place_word = (request.district, None)
        by_location = False
        if district is None:
            district, place_word = find_district(catalogue, request.address)
        if district is None:
            district = self._district_at(catalogue, request)
            by_location = district is not None
        if district is None:
            district, place_word = find_district(catalogue, request.text)

        service: ServiceInfo | None = None
        why: list[Step] = []
        if request.service and request.service in catalogue.services:
            service = catalogue.services[request.service]
            why.append(step("service", service=service.code))
            confidence, rule = 1.0, "service"
        else:
            hits = catalogue.service_matches(request.text)
            if hits:
                code, words = max(hits.items(), key=lambda kv: (len(kv[1]), sum(map(len, kv[1]))))
                service = catalogue.services[code]
                why.append(step("keywords", words=WORD_SEP.join(words[:3]), service=code))
                confidence = min(0.5 + 0.15 * len(words), 0.9)
                rule = "keyword"
            elif FALLBACK_SERVICE in catalogue.services:
                service = catalogue.services[FALLBACK_SERVICE]
                why.append(step("fallback"))
                confidence, rule = 0.2, "fallback"
            else:
                none: tuple[Step, ...] = (step("none"),)
                return RoutingDecision(
                    None, None, district, explain(none, None, "en"), 0.0, "fallback", why=none
                )

        department = service.department
        why.append(step("to", dept=department))
        if service.territorial and district:
            department, how = _territorial_office(catalogue, service.department, district, texts)
            if place_word:
                why.append(step("district", district=district, word=place_word))
            elif by_location:
                why.append(step("district_at", district=district))
            else:
                why.append(step("district_given", district=district))
            why.extend(how)
        steps = tuple(why)
        return RoutingDecision(
            service.code,
            department,
            district,
            explain(steps, None, "en"),
            confidence,
            rule,
            why=steps,
        )


def suggest(
    catalogue: Catalogue, request: RoutingRequest, n: int = 3, router: Router | None = None
) -> tuple[RoutingDecision, list[tuple[str, float, str, tuple[Step, ...]]]]:
    """The routing decision and up to ``n`` departments to offer an agent, best first:
    the decision itself, the router's alternatives, then the departments of the other
    services the text's keywords point to, then the bureau above a local office.
    Each offer is (department, confidence, reason, reason steps)."""
    decision = (router or RuleRouter()).route(catalogue, request)
    ranked: list[tuple[str, float, str, tuple[Step, ...]]] = []

    def offer(code: str | None, confidence: float, reason: str, why: tuple[Step, ...]) -> None:
        if code and code in catalogue.departments and all(code != c for c, *_ in ranked):
            ranked.append((code, confidence, reason, why))

    offer(decision.department, decision.confidence, decision.reason, decision.why)
    for code, confidence, reason in decision.alternatives:
        offer(code, confidence, reason, ())
    hits = catalogue.service_matches(request.text)
    for service_code, words in sorted(hits.items(), key=lambda kv: -len(kv[1])):
        if service_code == decision.service:
            continue
        service = catalogue.services[service_code]
        department = service.department
        if service.territorial and decision.district:
            department, _ = _territorial_office(
                catalogue, department, decision.district, (request.address, request.text)
            )
        offered: tuple[Step, ...] = (
            step("keywords", words=WORD_SEP.join(words[:3]), service=service_code),
            step("to", dept=department),
        )
        offer(department, min(0.3 + 0.1 * len(words), 0.6), explain(offered, None, "en"), offered)
    if decision.department in catalogue.departments:
        parent = catalogue.departments[decision.department].parent
        over = (step("bureau_over", dept=decision.department),)
        offer(parent, max(decision.confidence - 0.3, 0.1), explain(over, None, "en"), over)
    return decision, ranked[:n]
