"""Duplicate detection: the same problem reported twice, on any channels.

A new report is compared with the open tickets around it (same district or the same
or a related service, created within a window) on four signals:

- **text**: character bigrams of Chinese, trigrams inside Latin words, whole numbers;
  how much of the shorter text the longer one covers, blended with their overlap, so
  a 40-character text message matches the long kiosk report it repeats;
- **place**: distance (haversine) when both have coordinates; otherwise the
  normalised addresses (full-width to half-width, ``No.``/``#``/``号`` house numbers,
  ``号楼``/``幢``/``栋`` buildings, road abbreviations, Chinese numerals), or one
  report's address found in the other's words; the district as a last, weak hint;
- **service**: the same service, or a related one (same responsible department);
- **time**: older tickets weigh less, down to three quarters at the window's end.

:func:`score` is pure and says which signals matched (``reasons``); a pair at or above
:data:`THRESHOLD` is suggested to staff, who merge by hand. :func:`find_duplicates`
loads the candidates a caller may see and ranks them, and lists the other tickets of
the same phone number (``linked``) regardless of score.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_
from sqlalchemy.ext.asyncio import AsyncSession

from contact import repository
from contact.models import Channel, Ticket, TicketStatus
from contact.principal import Principal
from contact.routing import FALLBACK_SERVICE, Catalogue

# The defaults of the settings CONTACT_DUPLICATE_THRESHOLD, _WINDOW_DAYS and _LINK_HOURS.
# Suggested at or above this score (measured on constructed pairs: see
# docs/decisions/0016-duplicates.md and ``python -m bench.duplicates``).
THRESHOLD = 0.5
# Candidates are tickets created at most this long before or after the report.
WINDOW = timedelta(days=7)
# Other tickets of the same phone within this long of the report are listed as linked.
LINK_WINDOW = timedelta(hours=72)
# At most this many candidates are scored per report (newest first).
MAX_CANDIDATES = 500
MAX_SUGGESTIONS = 10
MAX_LINKED = 20
# Text beyond this is not compared: the opening of a report says what and where.
TEXT_CHARS = 500

# Closed and merged tickets are history; every other one (being handled, or resolved and
# awaiting the citizen's rating) is a candidate: a new report of the same problem belongs
# with it.
PAST_STATES = (TicketStatus.closed, TicketStatus.merged)

WEIGHTS = {"text": 0.5, "place": 0.3, "service": 0.2}
CONTAINMENT = 0.7  # of text similarity; the rest is Dice
SIMILAR_TEXT = 0.25  # text similarity from which "similar_text" is given as a reason
SHORT_TEXT = 12  # features: a text with fewer has its containment scaled down
NEAR_METRES = 150.0  # half credit for place at this distance
FAR_METRES = 1000.0  # beyond this the same problem is somewhere else
FAR_FACTOR = 0.4  # another district, or a kilometre or more apart
CONFLICT_FACTOR = 0.6  # another address, or a few hundred metres apart
SAME_DISTRICT_PLACE = 0.35
# A report that says nothing of where (a text message without an address) is neither
# near nor far: it gets this much for place.
PLACE_UNKNOWN = 0.3
OTHER_SERVICE_FACTOR = 0.8
SAME_REPORTER_BONUS = 0.1
TIME_FLOOR = 0.75  # the weight of a ticket created at the window's far end


# ------------------------------------------------------------------ numbers


_CN_DIGITS = {
    "零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4,
    "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
}  # fmt: skip
_CN_NUMBER = re.compile(r"([零〇一二两三四五六七八九十百千]+)(?=号|栋|幢|楼|单元|室|弄|巷|组)")


def _cn_number(match: re.Match[str]) -> str:
    """八十八 → 88, 一二八 → 128 (read digit by digit), 两百零五 → 205."""
    s = match.group(1)
    if all(ch in _CN_DIGITS for ch in s):  # 一二八 read digit by digit
        return "".join(str(_CN_DIGITS[ch]) for ch in s)
    total, current = 0, 0
    for ch in s:
        if ch in _CN_DIGITS:
            current = _CN_DIGITS[ch]
        else:
            unit = {"十": 10, "百": 100, "千": 1000}[ch]
            total += (current or 1) * unit
            current = 0
    return str(total + current)


# ------------------------------------------------------------------ text


_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_RUNS = re.compile(rf"[{_CJK}]+|[a-z]+|\d+")
_CJK_RUN = re.compile(rf"[{_CJK}]")
# Words that say nothing about which problem it is.
_STOP = frozenset(
    {
        "a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "for", "from",
        "has", "have", "i", "in", "is", "it", "its", "me", "my", "near", "of", "on", "or",
        "our", "please", "the", "there", "this", "to", "was", "we", "were", "with", "you",
        "your",
    }
)  # fmt: skip


def normalize_text(text: str) -> str:
    """Full-width to half-width (NFKC) and lower case."""
    return unicodedata.normalize("NFKC", text).lower()


def grams(text: str) -> frozenset[str]:
    """The text's features: Chinese character bigrams, trigrams inside Latin words (a
    typo spoils three, not the word), and whole numbers."""
    out: set[str] = set()
    text = _CN_NUMBER.sub(_cn_number, normalize_text(text[:TEXT_CHARS]))
    for run in _RUNS.findall(text):
        first = run[0]
        if first.isdigit():
            out.add("#" + (run.lstrip("0") or "0")[:12])
        elif _CJK_RUN.match(first):
            if len(run) == 1:
                out.add(run)
            out.update(run[i : i + 2] for i in range(len(run) - 1))
        elif run not in _STOP and len(run) > 1:
            word = f"<{run}>"
            out.update(word[i : i + 3] for i in range(len(word) - 2))
    return frozenset(out)


def text_similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """Mostly containment (how much of the shorter text the longer one covers: a text
    message retelling a long report), some Dice (how much they share overall)."""
    if not a or not b:
        return 0.0
    common = len(a & b)
    shorter = min(len(a), len(b))
    # A very short text is covered by chance: its containment counts by its size.
    containment = common / shorter * min(1.0, shorter / SHORT_TEXT)
    dice = 2 * common / (len(a) + len(b))
    return CONTAINMENT * containment + (1 - CONTAINMENT) * dice


# ------------------------------------------------------------------ addresses


_ENGLISH = (
    (re.compile(r"(?:\bno\.?|\bnumber|#)\s*(?=\d)"), " "),
    (re.compile(r"\brd\b\.?"), " road "),
    (re.compile(r"\bst\b\.?"), " street "),
    (re.compile(r"\bave?\b\.?"), " avenue "),
    (re.compile(r"\bdr\b\.?"), " drive "),
    (re.compile(r"\bblvd\b\.?"), " boulevard "),
    (re.compile(r"\bln\b\.?"), " lane "),
    (re.compile(r"\b(?:bldg|building|block|blk)\b\.?"), " 栋 "),
    (re.compile(r"\bunit\b\.?"), " 单元 "),
    (re.compile(r"\b(?:apt|flat|room|rm)\b\.?"), " 室 "),
)
_CHINESE = (
    (re.compile(r"号楼|幢|座楼"), "栋"),
    (re.compile(r"(\d+)号"), r"\1 "),
    (re.compile(r"(\d+)[号#]?院"), r"\1 院 "),
)
# Words that only say what a number is (building, unit, room, yard).
_MARKERS = frozenset({"栋", "单元", "室", "院"})
# A part of an address that names a road, a building or a number (not just an area).
_PLACE_PART = re.compile(r"\d|road|street|avenue|drive|boulevard|lane|路|街|道|巷|弄|栋|室|单元")
# Province, city and district at the start of a Chinese address ("小区" is a housing
# estate, not a district).
_ADMIN_PREFIX = re.compile(
    rf"^(?:[{_CJK}]{{1,6}}?省)?(?:[{_CJK}]{{1,6}}?市)?(?:[{_CJK}]{{1,4}}(?<!小)[区县])?"
)


@dataclass(frozen=True)
class AddressKey:
    """An address as a place name (the words, without province/city/district) and the
    numbers in it (house, building, room)."""

    name: str
    numbers: tuple[str, ...]
    grams: frozenset[str]


@lru_cache(maxsize=8192)
def normalize_address(address: str) -> AddressKey | None:
    """``江城市东湖区解放路８８号`` and ``解放路88号`` → the same key; ``3号楼`` = ``3栋``
    = ``building 3``; ``No. 88`` = ``#88`` = ``88``."""
    s = normalize_text(address)
    s = _CN_NUMBER.sub(_cn_number, s)
    for pattern, repl in _ENGLISH:
        s = pattern.sub(repl, s)
    for pattern, repl in _CHINESE:
        s = pattern.sub(repl, s)
    if "," in s:
        # "room 3, building 5, 88 harbor road, donghu, jiangcheng": the parts up to the
        # road are the place; the district and city after them say nothing more.
        parts = s.split(",")
        kept = parts[:1]
        for part in parts[1:]:
            if not _PLACE_PART.search(part):
                break
            kept.append(part)
        s = " ".join(kept)
    numbers = tuple(sorted({n.lstrip("0") or "0" for n in re.findall(r"\d+", s)}))
    words = [
        w for w in _RUNS.findall(s) if not w[0].isdigit() and w not in _STOP and w not in _MARKERS
    ]
    name = "".join(words)
    stripped = _ADMIN_PREFIX.sub("", name)
    name = stripped if len(stripped) >= 2 else name
    if not name and not numbers:
        return None
    return AddressKey(name, numbers, grams(" ".join([name, *numbers])))


def _numbers_agree(a: tuple[str, ...], b: tuple[str, ...]) -> float:
    """1 for the same numbers (or none to compare), less the further apart two house
    numbers are: 88 and 90 are neighbours, 88 and 188 are not."""
    if not a or not b:
        return 1.0
    shared = set(a) & set(b)
    if shared == set(a) or shared == set(b):
        return 1.0
    if len(a) == 1 and len(b) == 1:
        gap = abs(int(a[0]) - int(b[0]))
        return 0.8 if gap <= 4 else 0.5 if gap <= 10 else 0.2
    return 0.5 if shared else 0.2


def address_similarity(a: AddressKey, b: AddressKey) -> float:
    """1 for the same place written two ways; less for the same road at another number."""
    shorter = min(len(a.name), len(b.name))
    if shorter >= 2 and (a.name in b.name or b.name in a.name):
        name = 1.0
    elif a.name and b.name:
        name = text_similarity(a.grams, b.grams)
    else:
        name = 0.5
    return name * _numbers_agree(a.numbers, b.numbers)


def address_in_text(address: AddressKey, text_grams: frozenset[str]) -> float:
    """How well a report's words name the other's address (a text message has no
    address field: "解放路88号门口的路灯不亮")."""
    name_grams = address.grams - {"#" + n for n in address.numbers}
    if not name_grams:
        return 0.0
    found = len(name_grams & text_grams) / len(name_grams)
    if address.numbers:
        numbers = {"#" + n for n in address.numbers}
        found *= 1.0 if numbers & text_grams else 0.6
    return found


# ------------------------------------------------------------------ distance


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(min(1.0, math.sqrt(h)))


def nearness(metres: float) -> float:
    """1 on the spot, ½ at 150 m, about 0.2 at 300 m, nothing past a kilometre."""
    if metres >= FAR_METRES:
        return 0.0
    return 1.0 / (1.0 + (metres / NEAR_METRES) ** 2)


# ------------------------------------------------------------------ scoring


@dataclass(frozen=True)
class Report:
    """What duplicate detection looks at in a ticket."""

    text: str
    created_at: datetime
    address: str | None = None
    lat: float | None = None
    lon: float | None = None
    district: int | str | None = None
    service: str | None = None
    # Services of one family are related (the responsible department).
    family: str | None = None
    reporter: int | None = None  # the citizen (phone)


class Profile:
    """A report with its features, computed once and only when needed (a report is
    compared with hundreds; most are ruled out before their words are read)."""

    __slots__ = ("_grams", "address", "report")

    def __init__(self, report: Report) -> None:
        self.report = report
        self.address = normalize_address(report.address) if report.address else None
        self._grams: frozenset[str] | None = None

    @property
    def grams(self) -> frozenset[str]:
        if self._grams is None:
            self._grams = grams(self.report.text)
        return self._grams

    @property
    def located(self) -> bool:
        return self.report.lat is not None and self.report.lon is not None


def profile(report: Report) -> Profile:
    return Profile(report)


@dataclass(frozen=True)
class Match:
    score: float
    reasons: tuple[str, ...]
    distance_m: float | None = None
    signals: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class _Place:
    value: float | None  # None: nothing comparable
    metres: float | None
    reasons: tuple[str, ...]
    factor: float  # 1, or less when the places say it is somewhere else


def _place(a: Profile, b: Profile, *, hopeful: bool = False) -> _Place:
    """Where the two are, compared. ``hopeful``: take an address that may be in the other
    report's words as found, without reading them (for :func:`best_possible`)."""
    reasons: list[str] = []
    seen: list[float] = []
    metres = None
    factor = 1.0
    addr: float | None = None
    if a.address and b.address:
        addr = address_similarity(a.address, b.address)
        seen.append(addr)
        if addr < 0.3:
            reasons.append("other_address")
            factor = CONFLICT_FACTOR
    else:
        # A report with no address field may name the place in its words; one that
        # does not says nothing either way.
        for one, other in ((a, b), (b, a)):
            if one.address and not other.address:
                found = 1.0 if hopeful else address_in_text(one.address, other.grams)
                if found >= 0.5:
                    addr = max(addr or 0.0, found)
                    seen.append(found)
    same_address = addr is not None and addr >= 0.85
    if same_address:
        reasons.append("same_address")
    elif addr is not None and addr >= 0.5:
        reasons.append("similar_address")
    if a.located and b.located:
        metres = haversine_m(
            a.report.lat,  # type: ignore[arg-type]
            a.report.lon,  # type: ignore[arg-type]
            b.report.lat,  # type: ignore[arg-type]
            b.report.lon,  # type: ignore[arg-type]
        )
        seen.append(nearness(metres))
        if metres <= 2 * NEAR_METRES:
            reasons.append("nearby")
        elif not same_address:
            factor = min(factor, FAR_FACTOR if metres >= FAR_METRES else CONFLICT_FACTOR)
    da, db = a.report.district, b.report.district
    if da is not None and db is not None:
        if da == db:
            reasons.append("same_district")
            seen.append(SAME_DISTRICT_PLACE)
        elif not same_address:
            seen.append(0.0)
            factor = min(factor, FAR_FACTOR)
    if factor == FAR_FACTOR:
        reasons.append("far_apart")
    return _Place(max(seen) if seen else None, metres, tuple(reasons), factor)


def _service(a: Report, b: Report) -> tuple[float | None, tuple[str, ...]]:
    known = [s for s in (a.service, b.service) if s and s != FALLBACK_SERVICE]
    if len(known) < 2:
        return None, ()
    if a.service == b.service:
        return 1.0, ("same_service",)
    if a.family and a.family == b.family:
        return 0.6, ("related_service",)
    return 0.0, ()


def _combine(
    text: float, place: _Place, service: float | None, a: Report, b: Report, window: timedelta
) -> tuple[float, float]:
    """(score, how recent in [0, 1]) from the signals."""
    where = PLACE_UNKNOWN if place.value is None else place.value
    total = WEIGHTS["text"] * text + WEIGHTS["place"] * where
    weight = WEIGHTS["text"] + WEIGHTS["place"]
    if service is not None:
        total += WEIGHTS["service"] * service
        weight += WEIGHTS["service"]
    value = total / weight * place.factor
    if service == 0.0:
        value *= OTHER_SERVICE_FACTOR
    if a.reporter is not None and a.reporter == b.reporter:
        value += SAME_REPORTER_BONUS
    seconds = window.total_seconds()
    age = min(1.0, abs(a.created_at - b.created_at).total_seconds() / seconds) if seconds else 1.0
    value *= TIME_FLOOR + (1 - TIME_FLOOR) * (1 - age)
    return max(0.0, min(1.0, value)), 1 - age


def best_possible(a: Profile, b: Profile, *, window: timedelta = WINDOW) -> float:
    """The score the two would get if their words were the same: below the threshold,
    there is no need to read them."""
    service, _ = _service(a.report, b.report)
    return _combine(1.0, _place(a, b, hopeful=True), service, a.report, b.report, window)[0]


def score(a: Profile, b: Profile, *, window: timedelta = WINDOW) -> Match:
    """How likely two reports are the same problem, in [0, 1], and why."""
    text = text_similarity(a.grams, b.grams)
    place = _place(a, b)
    service, service_reasons = _service(a.report, b.report)
    value, recent = _combine(text, place, service, a.report, b.report, window)
    reasons = ["similar_text"] if text >= SIMILAR_TEXT else []
    reasons += [*place.reasons, *service_reasons]
    if a.report.reporter is not None and a.report.reporter == b.report.reporter:
        reasons.append("same_reporter")
    if abs(a.report.created_at - b.report.created_at) <= timedelta(hours=24):
        reasons.append("recent")
    signals = {
        "text": round(text, 3),
        "place": round(PLACE_UNKNOWN if place.value is None else place.value, 3),
        "time": round(recent, 3),
    }
    if service is not None:
        signals["service"] = service
    return Match(round(value, 3), tuple(reasons), place.metres, signals)


# ------------------------------------------------------------------ tickets


@dataclass(frozen=True, slots=True)
class Brief:
    """The columns of a ticket that duplicate detection and its listing read."""

    id: int
    reference: str
    status: TicketStatus
    channel: Channel
    service_id: int | None
    district_id: int | None
    citizen_id: int | None
    anonymous: bool
    title: str
    description: str
    address: str | None
    lat: float | None
    lon: float | None
    created_at: datetime


# Only the opening of a description is compared (and shown): the rest stays in the database.
_COLUMNS = tuple(
    func.substr(Ticket.description, 1, TEXT_CHARS).label("description")
    if f.name == "description"
    else getattr(Ticket, f.name)
    for f in fields(Brief)
)


def brief(ticket: Ticket) -> Brief:
    return Brief(*(getattr(ticket, f.name) for f in fields(Brief)))


@dataclass(frozen=True)
class Suggestion:
    ticket: Brief
    match: Match


@dataclass(frozen=True)
class Duplicates:
    suggestions: list[Suggestion]
    linked: list[Brief]


def report_of(ticket: Brief, catalogue: Catalogue) -> Report:
    service = catalogue.service_by_id.get(ticket.service_id or -1)
    return Report(
        text=f"{ticket.title} {ticket.description}".strip(),
        created_at=ticket.created_at,
        address=ticket.address,
        lat=ticket.lat,
        lon=ticket.lon,
        district=ticket.district_id,
        service=service.code if service else None,
        family=service.department if service else None,
        reporter=ticket.citizen_id,
    )


def related_services(catalogue: Catalogue, service_id: int | None) -> set[int]:
    """The service and those of the same responsible department (the fallback
    "other" service relates to nothing: it says only that no rule matched)."""
    service = catalogue.service_by_id.get(service_id or -1)
    if service is None or service.code == FALLBACK_SERVICE:
        return set()
    return {
        s.id
        for s in catalogue.services.values()
        if s.department == service.department and s.code != FALLBACK_SERVICE
    }


async def _briefs(session: AsyncSession, stmt: Select[Any]) -> list[Brief]:
    return [Brief(*row) for row in (await session.execute(stmt)).all()]


def _around(principal: Principal, ticket: Brief, window: timedelta) -> Select[Any]:
    """Other tickets the caller may see, created within ``window`` of this one, newest
    first (as briefs)."""
    return (
        repository.visible_tickets(principal)
        .with_only_columns(*_COLUMNS)
        .where(
            Ticket.id != ticket.id,
            Ticket.created_at >= ticket.created_at - window,
            Ticket.created_at <= ticket.created_at + window,
        )
        .order_by(Ticket.created_at.desc())
    )


async def candidates(
    session: AsyncSession,
    principal: Principal,
    ticket: Brief,
    catalogue: Catalogue,
    *,
    window: timedelta = WINDOW,
    limit: int = MAX_CANDIDATES,
) -> list[Brief]:
    """Open tickets the caller may see, created within ``window`` of this one, in its
    district or of a related service; newest first, at most ``limit``."""
    near: list[ColumnElement[bool]] = []
    if ticket.district_id is not None:
        near.append(Ticket.district_id == ticket.district_id)
    services = related_services(catalogue, ticket.service_id)
    if services:
        near.append(Ticket.service_id.in_(services))
    stmt = _around(principal, ticket, window).where(Ticket.status.not_in(PAST_STATES)).limit(limit)
    if near:
        stmt = stmt.where(or_(*near))
    return await _briefs(session, stmt)


async def linked_tickets(
    session: AsyncSession,
    principal: Principal,
    ticket: Brief,
    *,
    window: timedelta = LINK_WINDOW,
    limit: int = MAX_LINKED,
) -> list[Brief]:
    """Other tickets of the same citizen (phone) within ``window``, in any state. A
    department does not see links between reports filed anonymously towards it."""
    if ticket.citizen_id is None or (not principal.sees_all and ticket.anonymous):
        return []
    stmt = (
        _around(principal, ticket, window)
        .where(Ticket.citizen_id == ticket.citizen_id)
        .limit(limit)
    )
    if not principal.sees_all:
        stmt = stmt.where(Ticket.anonymous.is_(False))
    return await _briefs(session, stmt)


def rank(
    ticket: Brief,
    others: list[Brief],
    catalogue: Catalogue,
    *,
    threshold: float = THRESHOLD,
    window: timedelta = WINDOW,
    limit: int = MAX_SUGGESTIONS,
) -> list[Suggestion]:
    """The others that score at or above ``threshold``, best first."""
    me = profile(report_of(ticket, catalogue))
    found = []
    for other in others:
        them = profile(report_of(other, catalogue))
        if best_possible(me, them, window=window) < threshold:
            continue
        match = score(me, them, window=window)
        if match.score >= threshold:
            found.append(Suggestion(other, match))
    found.sort(key=lambda s: (-s.match.score, -s.ticket.created_at.timestamp()))
    return found[:limit]


async def find_duplicates(
    session: AsyncSession,
    principal: Principal,
    ticket: Ticket | Brief,
    catalogue: Catalogue,
    *,
    threshold: float = THRESHOLD,
    window: timedelta = WINDOW,
    link_window: timedelta = LINK_WINDOW,
) -> Duplicates:
    """Merge suggestions for a ticket the caller may see, and its linked tickets."""
    me = ticket if isinstance(ticket, Brief) else brief(ticket)
    others = await candidates(session, principal, me, catalogue, window=window)
    return Duplicates(
        suggestions=rank(me, others, catalogue, threshold=threshold, window=window),
        linked=await linked_tickets(session, principal, me, window=link_window),
    )
