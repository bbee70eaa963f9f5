"""Statistics cities are ranked by (DOMAIN: 三率), computed from tickets.

Every figure counts tickets created in the period that match the filters (department
with its offices, service, channel, district) and that the reader may see. Each
ticket counts once, with its standing state:

- response rate (响应率): tickets dispatched with an accept-by deadline and signed for
  by it ÷ tickets dispatched with a deadline (the latest dispatch counts);
- on-time completion (按期办结率): tickets resolved no later than their due time ÷
  resolved tickets (resolved, or closed after being resolved);
- satisfaction rate (满意率): ratings "satisfied" (1) or "fairly satisfied" (2) ÷ tickets
  rated (the citizen's latest rating counts);
- resolution rate (解决率): callbacks answering "solved" ÷ callbacks that answered it;
- redo rate (发回重办率): send-backs ÷ answers, where every send-back (reopen) undid one
  answer, so answers = send-backs + standing resolutions;
- average handling time: hours from intake to resolution, over resolved tickets.

The database aggregates: on PostgreSQL one pass with GROUPING SETS yields the breakdowns
by department, service, channel, district and status at once; elsewhere one GROUP BY
over those keys together is rolled up in Python. Totals are sums of a breakdown, so the
figures always agree with each other. Tickets per local day come from a second GROUP BY.

Department ranking: a composite score from 0 to 100, the weighted mean of the rates a
department has figures for — response 20 %, on-time 20 %, resolution 20 %,
satisfaction 25 % and no send-back (1 − redo rate) 15 %. Higher is better; ties go to
the larger volume. Departments with no measurable rate are listed unranked.

Hot spots (未诉先办): service × district pairs whose count on one day is improbably high
given the pair's trailing level (default: the previous 28 days), the kind of day it is
(working days are busier than weekends and holidays) and how much daily counts vary
beyond chance, see :func:`find_hotspots` and :func:`baseline_shape`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Date,
    Select,
    and_,
    cast,
    extract,
    func,
    literal_column,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession

from contact.db import dialect_name
from contact.errors import NotFound, field_error
from contact.models import Channel, Ticket
from contact.principal import Principal
from contact.routing import Catalogue, ServiceInfo

DEFAULT_PERIOD = timedelta(days=30)
MAX_PERIOD = timedelta(days=366)
BASELINE_DAYS = 28
# A pair-day is flagged below this p-value. 0.001 raised a false alarm in about one
# ordinary week in four for 60 pairs (420 tests); 1e-5 is a Bonferroni bound for about
# a thousand tests (1 % family-wise) and still catches 30 extra complaints in a day for
# pairs averaging up to ~20 a day (docs/decisions/0015-places-and-hotspots.md).
HOTSPOT_ALPHA = 1e-5
HOTSPOT_MIN_COUNT = 5
# Day kinds are weighed with half an average day's worth of prior, so a kind seen on
# few baseline days (a holiday) moves the expectation only as far as the data allow.
DAY_KIND_PRIOR = 0.5
MAX_DISPERSION = 10.0
# A past day this many standard deviations above what the rest of its baseline expects
# was an event, not the pair's usual level: it is set aside (counted as expected).
PAST_EVENT_Z = 5.0
# More such days than this in one pair's baseline are how the pair behaves (a weekly
# batch, say), not events: none of them is set aside.
PAST_EVENTS_PER_PAIR = 2
SATISFIED = (1, 2)

# Composite ranking weights (see the module docstring).
SCORE_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("response_rate", 0.20),
    ("on_time_rate", 0.20),
    ("resolution_rate", 0.20),
    ("satisfaction_rate", 0.25),
    ("no_redo_rate", 0.15),
)


# ------------------------------------------------------------------ figures


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


class _Rates:
    """The rates, from the counts of a :class:`Figures` or :class:`Summary`."""

    dispatched: int
    accepted_in_time: int
    resolved: int
    resolved_in_time: int
    ratings: int
    satisfied: int
    solved_answers: int
    solved: int
    reopened: int
    handling_seconds: float

    @property
    def response_rate(self) -> float | None:
        return _rate(self.accepted_in_time, self.dispatched)

    @property
    def on_time_rate(self) -> float | None:
        return _rate(self.resolved_in_time, self.resolved)

    @property
    def satisfaction_rate(self) -> float | None:
        return _rate(self.satisfied, self.ratings)

    @property
    def resolution_rate(self) -> float | None:
        return _rate(self.solved, self.solved_answers)

    @property
    def reopen_rate(self) -> float | None:
        return _rate(self.reopened, self.reopened + self.resolved)

    @property
    def avg_handling_hours(self) -> float | None:
        return round(self.handling_seconds / self.resolved / 3600, 2) if self.resolved else None


@dataclass
class Figures(_Rates):
    """Counts of one cell or one group; every field adds up."""

    tickets: int = 0
    dispatched: int = 0
    accepted_in_time: int = 0
    resolved: int = 0
    resolved_in_time: int = 0
    ratings: int = 0
    satisfied: int = 0
    solved_answers: int = 0
    solved: int = 0
    reopened: int = 0  # send-backs (发回重办)
    handling_seconds: float = 0.0  # intake → resolution, summed over resolved tickets

    def add(self, other: Figures) -> None:
        self.tickets += other.tickets
        self.dispatched += other.dispatched
        self.accepted_in_time += other.accepted_in_time
        self.resolved += other.resolved
        self.resolved_in_time += other.resolved_in_time
        self.ratings += other.ratings
        self.satisfied += other.satisfied
        self.solved_answers += other.solved_answers
        self.solved += other.solved
        self.reopened += other.reopened
        self.handling_seconds += other.handling_seconds


@dataclass
class Summary(_Rates):
    period_from: datetime
    period_to: datetime
    tickets: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_channel: dict[str, int] = field(default_factory=dict)
    dispatched: int = 0
    accepted_in_time: int = 0
    resolved: int = 0
    resolved_in_time: int = 0
    ratings: int = 0
    satisfied: int = 0
    solved_answers: int = 0
    solved: int = 0
    reopened: int = 0
    handling_seconds: float = 0.0

    def add(self, f: Figures) -> None:
        self.tickets += f.tickets
        self.dispatched += f.dispatched
        self.accepted_in_time += f.accepted_in_time
        self.resolved += f.resolved
        self.resolved_in_time += f.resolved_in_time
        self.ratings += f.ratings
        self.satisfied += f.satisfied
        self.solved_answers += f.solved_answers
        self.solved += f.solved
        self.reopened += f.reopened
        self.handling_seconds += f.handling_seconds


@dataclass
class Row:
    """One line of a breakdown: a department, service, channel or district."""

    code: str | None  # None: tickets without one (not yet dispatched, no district, ...)
    name_zh: str
    name_en: str
    figures: Figures
    level: str | None = None  # departments: bureau | district | street
    parent: str | None = None  # departments: the code of the unit above
    score: float | None = None  # departments: the composite ranking score
    rank: int | None = None


# ------------------------------------------------------------------ filters


@dataclass(frozen=True)
class Filters:
    """What a report counts: tickets created in [start, end] matching every given filter."""

    start: datetime
    end: datetime
    department: str | None = None
    department_ids: frozenset[int] | None = None  # the department and every office under it
    service: str | None = None
    service_id: int | None = None
    channel: Channel | None = None
    district: str | None = None
    district_id: int | None = None


def make_filters(
    catalogue: Catalogue,
    principal: Principal,
    start: datetime | None,
    end: datetime | None,
    *,
    department: str | None = None,
    service: str | None = None,
    channel: str | None = None,
    district: str | None = None,
    now: datetime | None = None,
) -> Filters:
    """Check and resolve the filters a reader asked for (unknown codes → 422; a department
    outside a department user's scope → 404, as if it did not exist)."""
    if start is not None and start.tzinfo is None:
        raise field_error("from", "needs a time zone offset, e.g. 2025-06-01T00:00:00+08:00")
    if end is not None and end.tzinfo is None:
        raise field_error("to", "needs a time zone offset, e.g. 2025-06-30T23:59:59+08:00")
    end = end or now or datetime.now(UTC)
    start = start or end - DEFAULT_PERIOD
    if start > end:
        raise field_error("from", "must not be later than 'to'")
    if end - start > MAX_PERIOD:
        raise field_error("from", f"the period may span at most {MAX_PERIOD.days} days")
    dept_ids: frozenset[int] | None = None
    if department:
        if department not in catalogue.departments:
            raise field_error("department", f"unknown department '{department}'")
        if not principal.sees_all and department not in principal.scope:
            raise NotFound(f"no department '{department}' in your scope")
        dept_ids = frozenset(
            catalogue.departments[c].id
            for c in catalogue.subtree(department)
            if c in catalogue.departments
        )
    service_id = None
    if service:
        if service not in catalogue.services:
            raise field_error("service", f"unknown service '{service}'")
        service_id = catalogue.services[service].id
    chan = None
    if channel:
        try:
            chan = Channel(channel)
        except ValueError:
            allowed = ", ".join(c.value for c in Channel)
            message = f"unknown channel '{channel}' (one of {allowed})"
            raise field_error("channel", message) from None
    district_id = None
    if district:
        if district not in catalogue.districts:
            raise field_error("district", f"unknown district '{district}'")
        district_id = catalogue.districts[district].id
    return Filters(
        start=start,
        end=end,
        department=department or None,
        department_ids=dept_ids,
        service=service or None,
        service_id=service_id,
        channel=chan,
        district=district or None,
        district_id=district_id,
    )


def _matching(principal: Principal, f: Filters) -> list[ColumnElement[bool]]:
    """Every condition but the time window."""
    out: list[ColumnElement[bool]] = []
    if not principal.sees_all:
        out.append(Ticket.department_id.in_(principal.scope_ids or {-1}))
    if f.department_ids is not None:
        out.append(Ticket.department_id.in_(f.department_ids or {-1}))
    if f.service_id is not None:
        out.append(Ticket.service_id == f.service_id)
    if f.channel is not None:
        out.append(Ticket.channel == f.channel)
    if f.district_id is not None:
        out.append(Ticket.district_id == f.district_id)
    return out


def conditions(principal: Principal, f: Filters) -> list[ColumnElement[bool]]:
    """The WHERE clause of every figure of a report (the reader's scope included)."""
    return [Ticket.created_at.between(f.start, f.end), *_matching(principal, f)]


# ------------------------------------------------------------------ aggregation


@dataclass
class Totals:
    """The period's figures, whole and broken down; every breakdown adds up to ``total``."""

    total: Figures = field(default_factory=Figures)
    by_status: dict[str, int] = field(default_factory=dict)
    departments: dict[int | None, Figures] = field(default_factory=dict)
    services: dict[int | None, Figures] = field(default_factory=dict)
    channels: dict[str, Figures] = field(default_factory=dict)
    districts: dict[int | None, Figures] = field(default_factory=dict)


# The keys every figure is broken down by, in this order.
KEYS = (Ticket.department_id, Ticket.service_id, Ticket.channel, Ticket.district_id, Ticket.status)


def _handling_seconds(dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return extract("epoch", Ticket.resolved_at) - extract("epoch", Ticket.created_at)
    return (func.julianday(Ticket.resolved_at) - func.julianday(Ticket.created_at)) * 86400.0


def _measures(dialect: str) -> list[ColumnElement[Any]]:
    """The counts of :class:`Figures`, as aggregates (``count(*) FILTER (WHERE ...)``)."""
    dispatched = and_(Ticket.dispatched_at.is_not(None), Ticket.accept_due_at.is_not(None))
    resolved = Ticket.resolved_at.is_not(None)
    return [
        func.count().label("tickets"),
        func.count().filter(dispatched).label("dispatched"),
        func.count()
        .filter(
            dispatched,
            Ticket.accepted_at.is_not(None),
            Ticket.accepted_at <= Ticket.accept_due_at,
        )
        .label("accepted_in_time"),
        func.count().filter(resolved).label("resolved"),
        func.count()
        .filter(resolved, or_(Ticket.due_at.is_(None), Ticket.resolved_at <= Ticket.due_at))
        .label("resolved_in_time"),
        func.count().filter(Ticket.satisfaction.is_not(None)).label("ratings"),
        func.count().filter(Ticket.satisfaction.in_(SATISFIED)).label("satisfied"),
        func.count().filter(Ticket.solved.is_not(None)).label("solved_answers"),
        func.count().filter(Ticket.solved == true()).label("solved"),
        func.sum(Ticket.reopen_count).label("reopened"),
        func.sum(_handling_seconds(dialect)).filter(resolved).label("handling"),
    ]


def _figures(r: Any) -> Figures:
    return Figures(
        tickets=int(r.tickets),
        dispatched=int(r.dispatched or 0),
        accepted_in_time=int(r.accepted_in_time or 0),
        resolved=int(r.resolved or 0),
        resolved_in_time=int(r.resolved_in_time or 0),
        ratings=int(r.ratings or 0),
        satisfied=int(r.satisfied or 0),
        solved_answers=int(r.solved_answers or 0),
        solved=int(r.solved or 0),
        reopened=int(r.reopened or 0),
        handling_seconds=float(r.handling or 0.0),
    )


def totals_query(
    principal: Principal, f: Filters, dialect: str, *, grouping_sets: bool
) -> Select[Any]:
    """With ``grouping_sets`` (PostgreSQL): one pass over the period's tickets, one small
    group per department, service, channel, district and status. Without: GROUP BY all
    the keys together, for the caller to roll up."""
    where = conditions(principal, f)
    if not grouping_sets:
        return select(*KEYS, *_measures(dialect)).where(*where).group_by(*KEYS)
    return (
        select(*KEYS, func.grouping(*KEYS).label("grouping"), *_measures(dialect))
        .where(*where)
        .group_by(func.grouping_sets(*(tuple_(k) for k in KEYS)))
    )


async def totals(
    session: AsyncSession,
    principal: Principal,
    f: Filters,
    *,
    grouping_sets: bool | None = None,
) -> Totals:
    """Every figure of the period in one query (see :func:`totals_query`); grouping sets
    are used on PostgreSQL unless ``grouping_sets`` says otherwise."""
    dialect = dialect_name(session)
    if grouping_sets is None:
        grouping_sets = dialect == "postgresql"
    query = totals_query(principal, f, dialect, grouping_sets=grouping_sets)
    rows = (await session.execute(query)).all()
    out = Totals()

    def add(group: dict[Any, Figures], key: Any, figures: Figures) -> None:
        group.setdefault(key, Figures()).add(figures)

    if not grouping_sets:
        for r in rows:
            figures = _figures(r)
            out.total.add(figures)
            add(out.departments, r.department_id, figures)
            add(out.services, r.service_id, figures)
            add(out.channels, r.channel.value, figures)
            add(out.districts, r.district_id, figures)
            status = r.status.value
            out.by_status[status] = out.by_status.get(status, 0) + figures.tickets
        return out

    n = len(KEYS)
    # grouping() has a 1 bit for every key a row is not grouped by, the first key highest
    which = {((1 << n) - 1) ^ (1 << (n - 1 - i)): i for i in range(n)}
    for r in rows:
        figures = _figures(r)
        i = which[r.grouping]
        if i == 0:
            add(out.departments, r.department_id, figures)
        elif i == 1:
            add(out.services, r.service_id, figures)
        elif i == 2:
            add(out.channels, r.channel.value, figures)
            out.total.add(figures)  # every ticket has exactly one channel
        elif i == 3:
            add(out.districts, r.district_id, figures)
        else:
            out.by_status[r.status.value] = figures.tickets
    return out


def _summarise(t: Totals, f: Filters) -> Summary:
    out = Summary(f.start, f.end)
    out.add(t.total)
    out.by_status = dict(t.by_status)
    out.by_channel = {channel: figures.tickets for channel, figures in t.channels.items()}
    return out


async def summary(
    session: AsyncSession,
    principal: Principal,
    start: datetime,
    end: datetime,
    filters: Filters | None = None,
) -> Summary:
    """Volume and rates over tickets created in the period (and matching ``filters``)."""
    f = filters or Filters(start, end)
    return _summarise(await totals(session, principal, f), f)


# ------------------------------------------------------------------ breakdowns


def score(f: Figures) -> float | None:
    """The composite ranking score (0–100) of a department's figures; None if it has no
    measurable rate."""
    reopen = f.reopen_rate
    rates = {
        "response_rate": f.response_rate,
        "on_time_rate": f.on_time_rate,
        "resolution_rate": f.resolution_rate,
        "satisfaction_rate": f.satisfaction_rate,
        "no_redo_rate": None if reopen is None else 1 - reopen,
    }
    weighted = [(rates[name], w) for name, w in SCORE_WEIGHTS if rates[name] is not None]
    if not weighted:
        return None
    total = sum(w for _, w in weighted)
    return round(100 * sum(r * w for r, w in weighted if r is not None) / total, 2)


def rank_departments(rows: list[Row]) -> list[Row]:
    """Best first by score, then by volume; equal scores share a rank (1, 2, 2, 4)."""
    for r in rows:
        r.score = score(r.figures) if r.code is not None else None
    ranked = sorted(
        (r for r in rows if r.score is not None),
        key=lambda r: (-(r.score or 0.0), -r.figures.tickets, r.code or ""),
    )
    previous: float | None = None
    for i, r in enumerate(ranked, start=1):
        r.rank = i if r.score != previous else ranked[i - 2].rank
        previous = r.score
    rest = sorted(
        (r for r in rows if r.score is None),
        key=lambda r: (r.code is None, -r.figures.tickets, r.code or ""),
    )
    return ranked + rest


NOT_DISPATCHED = ("未派单", "Not dispatched")
NO_SERVICE = ("未分类", "No service")
NO_DISTRICT = ("未定位", "No district")
CHANNEL_NAMES: dict[str, tuple[str, str]] = {
    "sms": ("短信", "SMS"),
    "voice": ("电话", "Phone"),
    "web": ("网站", "Web"),
    "kiosk": ("自助终端", "Kiosk"),
    "open311": ("开放接口", "Open311"),
    "agent": ("人工录入", "Agent"),
}


def _named(
    group: Mapping[int | None, Figures],
    lookup: Mapping[int, Any],
    missing: tuple[str, str],
) -> list[Row]:
    rows = []
    for key, figures in group.items():
        item = lookup.get(key) if key is not None else None
        if key is None:
            rows.append(Row(None, *missing, figures))
        elif item is None:  # no longer in the catalogue
            rows.append(Row(f"#{key}", f"#{key}", f"#{key}", figures))
        else:
            rows.append(Row(item.code, item.name_zh, item.name_en, figures))
    return rows


def _by_volume(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: (r.code is None, -r.figures.tickets, r.code or ""))


def department_rows(t: Totals, cat: Catalogue) -> list[Row]:
    rows = _named(t.departments, cat.dept_by_id, NOT_DISPATCHED)
    for r in rows:
        d = cat.departments.get(r.code or "")
        if d is not None:
            r.level, r.parent = d.level, d.parent
    return rank_departments(rows)


def service_rows(t: Totals, cat: Catalogue) -> list[Row]:
    return _by_volume(_named(t.services, cat.service_by_id, NO_SERVICE))


def channel_rows(t: Totals) -> list[Row]:
    return _by_volume(
        [
            Row(code, *CHANNEL_NAMES.get(code, (code, code)), figures)
            for code, figures in t.channels.items()
        ]
    )


def district_rows(t: Totals, cat: Catalogue) -> list[Row]:
    return _by_volume(_named(t.districts, cat.district_by_id, NO_DISTRICT))


# ------------------------------------------------------------------ daily series

_TZ_NAME = re.compile(r"^[A-Za-z0-9_+\-/]+$")


def _day_bucket(dialect: str, tz: ZoneInfo) -> ColumnElement[Any]:
    """PostgreSQL buckets by the local date itself; SQLite (no time zone database) by the
    UTC hour, turned into the local date in Python — exact for whole-hour offsets.

    Constants are inlined so that SELECT and GROUP BY carry the very same expression."""
    if dialect == "postgresql":
        if _TZ_NAME.match(tz.key or ""):
            zone: ColumnElement[str] = literal_column(f"'{tz.key}'")
            return cast(func.timezone(zone, Ticket.created_at), Date)
        return func.date_trunc(literal_column("'hour'"), Ticket.created_at)
    return func.substr(Ticket.created_at, 1, 13)  # 'YYYY-MM-DD HH' of the stored UTC time


def _local_day(value: Any, tz: ZoneInfo) -> date:
    if isinstance(value, datetime):
        return value.astimezone(tz).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    text = str(value)
    if len(text) == 10:
        return date.fromisoformat(text)
    hour = datetime.strptime(text[:13], "%Y-%m-%d %H").replace(tzinfo=UTC)
    return hour.astimezone(tz).date()


def days_between(start: datetime, end: datetime, tz: ZoneInfo) -> list[date]:
    first, last = start.astimezone(tz).date(), end.astimezone(tz).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _series(counts: Mapping[date, int], f: Filters, tz: ZoneInfo) -> list[tuple[date, int]]:
    out = dict.fromkeys(days_between(f.start, f.end, tz), 0)
    for day, n in counts.items():
        if day in out:
            out[day] += n
    return sorted(out.items())


async def daily_series(
    session: AsyncSession, principal: Principal, f: Filters, tz: ZoneInfo
) -> list[tuple[date, int]]:
    """Tickets created per local day of the period, zero days included."""
    bucket = _day_bucket(dialect_name(session), tz).label("bucket")
    rows = (
        await session.execute(
            select(bucket, func.count()).where(*conditions(principal, f)).group_by(bucket)
        )
    ).all()
    counts: dict[date, int] = {}
    for value, n in rows:
        day = _local_day(value, tz)
        counts[day] = counts.get(day, 0) + int(n)
    return _series(counts, f, tz)


# ------------------------------------------------------------------ hot spots

K = TypeVar("K", bound=Hashable)


def poisson_sf(k: int, mean: float) -> float:
    """P(X ≥ k) for X ~ Poisson(mean), accurate far into the tail."""
    if k <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    log_mean = math.log(mean)

    def pmf(i: int) -> float:
        return math.exp(-mean + i * log_mean - math.lgamma(i + 1))

    if k > mean:  # the tail's terms shrink from the first one on: sum them directly
        term, total, i = pmf(k), 0.0, k
        while term > 0.0 and term > total * 1e-17:
            total += term
            i += 1
            term *= mean / i
        return min(1.0, total)
    return max(0.0, 1.0 - math.fsum(pmf(i) for i in range(k)))


def count_sf(k: int, mean: float, dispersion: float = 1.0) -> float:
    """P(X ≥ k) for a count with this mean and variance ``dispersion`` × mean: Poisson at
    1, else negative binomial (size mean ÷ (dispersion − 1), success probability
    1 ÷ dispersion), whose tail is a regularised incomplete beta function."""
    if dispersion <= 1.0 + 1e-9 or k <= 0 or mean <= 0:
        return poisson_sf(k, mean)
    from scipy.special import betainc

    size = mean / (dispersion - 1.0)
    return float(betainc(k, size, 1.0 - 1.0 / dispersion))


@dataclass(frozen=True)
class BaselineShape:
    """How the baseline days differ from a flat Poisson: ``exposure`` is the baseline in
    average days' worth of volume (the days' weights summed), ``today`` the scanned
    day's weight (1.0 = an average day) and ``dispersion`` how many times a pair's daily
    counts vary more than Poisson (1.0 = not at all)."""

    exposure: float
    today: float = 1.0
    dispersion: float = 1.0
    weights: tuple[float, ...] = ()  # each baseline day's weight, oldest first
    pairs: Mapping[Hashable, float] = field(default_factory=dict)  # each busy pair's own

    def dispersion_of(self, key: Hashable) -> float:
        return self.pairs.get(key, self.dispersion)


def baseline_shape(
    daily: Mapping[K, Sequence[float]], kinds: Sequence[bool], today_kind: bool
) -> BaselineShape:
    """Fit the baseline's shape from each pair's daily counts over the baseline days
    (oldest first) and each day's kind (True: a working day in the business calendar,
    so weekends, holidays and make-up working days count as what they are).

    The weight of a kind of day is its mean volume over all pairs against the average
    day, with :data:`DAY_KIND_PRIOR` average days of prior. Dispersion is the Pearson
    statistic of the pairs busy enough to tell (at least one a day on average) over
    its degrees of freedom, pooled across those pairs, between 1 and
    :data:`MAX_DISPERSION`. Each of those pairs is tested with the mean of its own
    figure and the pooled one: calm pairs keep their sensitivity, bursty ones stop
    crying wolf, and four weeks of one pair's days do not decide alone."""
    days = len(kinds)
    if days == 0:
        raise ValueError("the baseline needs at least one day")
    volume = [0.0] * days
    for series in daily.values():
        for i, n in enumerate(series):
            volume[i] += n
    average = sum(volume) / days
    weight = {True: 1.0, False: 1.0}
    if average > 0:
        for kind in (True, False):
            on = [v for v, k in zip(volume, kinds, strict=True) if k == kind]
            prior = DAY_KIND_PRIOR * average
            weight[kind] = (sum(on) + prior) / (len(on) + DAY_KIND_PRIOR) / average
        scale = days / sum(weight[k] for k in kinds)  # the average baseline day weighs 1
        weight = {kind: w * scale for kind, w in weight.items()}
    weights = [weight[k] for k in kinds]
    exposure = sum(weights)
    own: dict[Hashable, float] = {}
    for key, series in daily.items():
        total = sum(series)
        if total < days:
            continue  # too sparse to tell variation from chance
        rate = total / exposure
        own[key] = sum(
            (n - rate * w) ** 2 / (rate * w) for n, w in zip(series, weights, strict=True)
        )
    freedom = (days - 1) * len(own)
    dispersion = _bounded(sum(own.values()) / freedom) if freedom else 1.0
    pairs = {key: _bounded((x2 / (days - 1) + dispersion) / 2) for key, x2 in own.items()}
    return BaselineShape(exposure, weight[today_kind], dispersion, tuple(weights), pairs)


def _bounded(dispersion: float) -> float:
    return min(max(dispersion, 1.0), MAX_DISPERSION)


def without_past_events(
    daily: Mapping[K, Sequence[float]], kinds: Sequence[bool], today_kind: bool
) -> tuple[dict[K, list[float]], int]:
    """The baseline with its past events set aside, and how many days were.

    A past hot spot left in the baseline would raise its pair's level and the city's
    dispersion for four weeks, hiding the next one. A day counts as an event when its
    count is at least :data:`HOTSPOT_MIN_COUNT` and more than :data:`PAST_EVENT_Z`
    standard deviations (Poisson × dispersion) above what the pair's other days expect
    for that kind of day; it is then counted as that expectation — unless the pair has
    more than :data:`PAST_EVENTS_PER_PAIR` such days, which is then its usual rhythm."""
    shape = baseline_shape(daily, kinds, today_kind)
    cleaned: dict[K, list[float]] = {}
    set_aside = 0
    for key, series in daily.items():
        out = [float(n) for n in series]
        total = sum(out)
        events = {}
        for i, (n, w) in enumerate(zip(series, shape.weights, strict=True)):
            if len(out) < 2:
                break  # nothing else to compare the day with
            if n < HOTSPOT_MIN_COUNT:
                continue
            expected = (total - n + 0.5) / (shape.exposure - w) * w
            if n - expected > PAST_EVENT_Z * math.sqrt(shape.dispersion * expected):
                events[i] = expected
        if len(events) <= PAST_EVENTS_PER_PAIR:
            for i, expected in events.items():
                out[i] = expected
            set_aside += len(events)
        cleaned[key] = out
    return cleaned, set_aside


@dataclass(frozen=True)
class HotspotHit(Generic[K]):
    key: K
    count: int
    baseline_mean: float  # mean daily count over the baseline days
    expected: float  # the mean tested against (the baseline, smoothed, for this day)
    ratio: float  # count ÷ expected
    p_value: float  # P(X ≥ count) for a count with that mean and the baseline's spread


def find_hotspots(
    day_counts: Mapping[K, int],
    baseline_totals: Mapping[K, float],
    baseline_days: int = BASELINE_DAYS,
    *,
    alpha: float = HOTSPOT_ALPHA,
    min_count: int = HOTSPOT_MIN_COUNT,
    shape: BaselineShape | None = None,
) -> list[HotspotHit[K]]:
    """Keys whose count on the day is improbably high given their trailing baseline.

    ``baseline_totals`` holds each key's total over the ``baseline_days`` before the day.
    The expected count is (total + ½) ÷ the baseline's exposure × the day's weight (with
    no ``shape``: ÷ days, every day alike), so a pair never seen before still has a
    small positive mean. A key is flagged when its count is at least ``min_count`` and
    P(X ≥ count) < ``alpha`` for a count with that mean and the shape's dispersion
    (Poisson when none). Most improbable first.
    """
    if baseline_days <= 0:
        raise ValueError("baseline_days must be positive")
    shape = shape or BaselineShape(float(baseline_days))
    hits = []
    for key, count in day_counts.items():
        if count < min_count:
            continue
        total = baseline_totals.get(key, 0)
        expected = (total + 0.5) / shape.exposure * shape.today
        p = count_sf(count, expected, shape.dispersion_of(key))
        if p < alpha:
            hits.append(
                HotspotHit(
                    key=key,
                    count=count,
                    baseline_mean=round(total / baseline_days, 3),
                    expected=round(expected, 3),
                    ratio=round(count / expected, 2),
                    p_value=float(f"{p:.3g}"),
                )
            )
    hits.sort(key=lambda h: (h.p_value, -h.ratio, -h.count))
    return hits


@dataclass(frozen=True)
class Hotspot:
    service: str
    service_name_zh: str
    service_name_en: str
    district: str
    district_name_zh: str
    district_name_en: str
    count: int
    baseline_mean: float
    expected: float
    ratio: float
    p_value: float


@dataclass
class HotspotScan:
    day: date
    baseline_days: int
    alpha: float
    min_count: int
    items: list[Hotspot] = field(default_factory=list)
    day_weight: float = 1.0  # the day's expected volume against an average baseline day
    dispersion: float = 1.0  # daily counts' variance ÷ mean over the baseline (1: Poisson)
    past_events: int = 0  # baseline pair-days set aside as events of their own


def hotspot_owner(catalogue: Catalogue, service: ServiceInfo, district: str) -> str:
    """The department that can act on a hot spot: for a territorial service the bureau's
    office in the district (its bureau sees it too), otherwise the service's department."""
    if service.territorial:
        for code in catalogue.children.get(service.department, ()):
            if catalogue.departments[code].district == district:
                return code
    return service.department


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=tz)


def local_day(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The local ``day`` as [start, end): its midnight and the next one."""
    return local_midnight(day, tz), local_midnight(day + timedelta(days=1), tz)


def _in_pairs(principal: Principal, f: Filters, start: datetime, end: datetime) -> list[Any]:
    return [
        Ticket.created_at >= start,
        Ticket.created_at < end,
        Ticket.service_id.is_not(None),
        Ticket.district_id.is_not(None),
        *_matching(principal, f),
    ]


async def pair_counts(
    session: AsyncSession, principal: Principal, f: Filters, start: datetime, end: datetime
) -> dict[tuple[int, int], int]:
    """Tickets created in [start, end) per (service, district) pair, of those the
    principal may see that match ``f``."""
    rows = (
        await session.execute(
            select(Ticket.service_id, Ticket.district_id, func.count())
            .where(*_in_pairs(principal, f, start, end))
            .group_by(Ticket.service_id, Ticket.district_id)
        )
    ).all()
    return {(s, d): int(n) for s, d, n in rows if s is not None and d is not None}


async def _pair_days(
    session: AsyncSession, principal: Principal, f: Filters, days: list[date], tz: ZoneInfo
) -> dict[tuple[int, int], list[int]]:
    """Each pair's count on each of ``days`` (consecutive local days, oldest first)."""
    start, end = local_midnight(days[0], tz), local_midnight(days[-1] + timedelta(days=1), tz)
    bucket = _day_bucket(dialect_name(session), tz).label("bucket")
    rows = (
        await session.execute(
            select(Ticket.service_id, Ticket.district_id, bucket, func.count())
            .where(*_in_pairs(principal, f, start, end))
            .group_by(Ticket.service_id, Ticket.district_id, bucket)
        )
    ).all()
    out: dict[tuple[int, int], list[int]] = {}
    for service_id, district_id, value, n in rows:
        at = (_local_day(value, tz) - days[0]).days
        if service_id is not None and district_id is not None and 0 <= at < len(days):
            out.setdefault((service_id, district_id), [0] * len(days))[at] += int(n)
    return out


def _weekday(d: date) -> bool:
    return d.weekday() < 5


async def hotspots(
    session: AsyncSession,
    principal: Principal,
    f: Filters,
    cat: Catalogue,
    tz: ZoneInfo,
    *,
    day: date | None = None,
    baseline_days: int = BASELINE_DAYS,
    alpha: float = HOTSPOT_ALPHA,
    min_count: int = HOTSPOT_MIN_COUNT,
    working_day: Callable[[date], bool] = _weekday,
) -> HotspotScan:
    """Hot spots on ``day`` (default: the period's last local day), under the same
    department, service, channel and district filters as the rest of the report.
    ``working_day`` tells the business calendar's working days (default Monday to
    Friday) from the rest: they are weighed apart in the baseline."""
    day = day or f.end.astimezone(tz).date()
    start, end = local_day(day, tz)
    today = await pair_counts(session, principal, f, start, end)
    scan = HotspotScan(day, baseline_days, alpha, min_count)
    if not any(n >= min_count for n in today.values()):
        return scan
    days = [day - timedelta(days=baseline_days - i) for i in range(baseline_days)]
    kinds, today_kind = [working_day(d) for d in days], working_day(day)
    daily, scan.past_events = without_past_events(
        await _pair_days(session, principal, f, days, tz), kinds, today_kind
    )
    shape = baseline_shape(daily, kinds, today_kind)
    scan.day_weight, scan.dispersion = round(shape.today, 3), round(shape.dispersion, 3)
    baseline = {pair: sum(counts) for pair, counts in daily.items()}
    hits = find_hotspots(
        today, baseline, baseline_days, alpha=alpha, min_count=min_count, shape=shape
    )
    for hit in hits:
        service_id, district_id = hit.key
        s = cat.service_by_id.get(service_id)
        d = cat.district_by_id.get(district_id)
        scan.items.append(
            Hotspot(
                service=s.code if s else f"#{service_id}",
                service_name_zh=s.name_zh if s else f"#{service_id}",
                service_name_en=s.name_en if s else f"#{service_id}",
                district=d.code if d else f"#{district_id}",
                district_name_zh=d.name_zh if d else f"#{district_id}",
                district_name_en=d.name_en if d else f"#{district_id}",
                count=hit.count,
                baseline_mean=hit.baseline_mean,
                expected=hit.expected,
                ratio=hit.ratio,
                p_value=hit.p_value,
            )
        )
    return scan


# ------------------------------------------------------------------ the whole report


@dataclass
class Report:
    filters: Filters
    summary: Summary
    departments: list[Row]
    services: list[Row]
    channels: list[Row]
    districts: list[Row]
    series: list[tuple[date, int]]
    hotspots: HotspotScan


async def report(
    session: AsyncSession,
    principal: Principal,
    f: Filters,
    cat: Catalogue,
    tz: ZoneInfo,
    *,
    hotspot_day: date | None = None,
    baseline_days: int = BASELINE_DAYS,
    alpha: float = HOTSPOT_ALPHA,
    min_count: int = HOTSPOT_MIN_COUNT,
    working_day: Callable[[date], bool] = _weekday,
) -> Report:
    t = await totals(session, principal, f)
    return Report(
        filters=f,
        summary=_summarise(t, f),
        departments=department_rows(t, cat),
        services=service_rows(t, cat),
        channels=channel_rows(t),
        districts=district_rows(t, cat),
        series=await daily_series(session, principal, f, tz),
        hotspots=await hotspots(
            session,
            principal,
            f,
            cat,
            tz,
            day=hotspot_day,
            baseline_days=baseline_days,
            alpha=alpha,
            min_count=min_count,
            working_day=working_day,
        ),
    )


# ------------------------------------------------------------------ ticket rows (exports)


@dataclass(frozen=True)
class TicketLine:
    reference: str
    created_at: datetime
    channel: str
    service: str | None
    district: str | None
    department: str | None
    status: str
    description: str


async def ticket_lines(
    session: AsyncSession,
    principal: Principal,
    f: Filters,
    cat: Catalogue,
    *,
    limit: int,
    excerpt: int = 200,
) -> list[TicketLine]:
    """The period's tickets, oldest first, with a description excerpt (at most ``limit``)."""
    rows = (
        await session.execute(
            select(
                Ticket.reference,
                Ticket.created_at,
                Ticket.channel,
                Ticket.service_id,
                Ticket.district_id,
                Ticket.department_id,
                Ticket.status,
                func.substr(Ticket.description, 1, excerpt).label("excerpt"),
            )
            .where(*conditions(principal, f))
            .order_by(Ticket.created_at, Ticket.id)
            .limit(limit)
        )
    ).all()

    def code(table: Mapping[int, Any], key: int | None) -> str | None:
        if key is None:
            return None
        item = table.get(key)
        return item.code if item is not None else f"#{key}"

    return [
        TicketLine(
            reference=r.reference,
            created_at=r.created_at,
            channel=r.channel.value,
            service=code(cat.service_by_id, r.service_id),
            district=code(cat.district_by_id, r.district_id),
            department=code(cat.dept_by_id, r.department_id),
            status=r.status.value,
            description=" ".join((r.excerpt or "").split()),
        )
        for r in rows
    ]
