"""The learning router in service: model versions in the database, the router that uses
the active one, and training from resolved tickets.

- :class:`LearningRouter` asks the catalogue's rules first. A service the citizen or
  agent chose, or keywords the catalogue knows, decide as before (the rules always
  win); the model's departments are then offered as alternatives. Only where the rules
  fall back does the model's department become the decision, with its confidence;
  a version that also learnt services then names the likeliest service that
  department takes, when it is at least SERVICE_CONFIDENCE sure (else the ticket keeps
  the general service).
- Versions live in ``routing_models`` with what they were trained on and how they
  measured on a fixed-seed held-out share. A new version becomes active when it
  measures no worse than the active one (less a small tolerance); an admin may
  activate any version.
- Every process loads the active version at start-up, then checks every few seconds
  and loads a new one in the background (never on a citizen's request).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import and_, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contact import learning
from contact.models import RoutingModel, Service, Ticket, TicketEvent, TicketStatus, utcnow
from contact.principal import SYSTEM
from contact.routing import (
    FALLBACK_SERVICE,
    Catalogue,
    Router,
    RoutingDecision,
    RoutingRequest,
    ServiceInfo,
    Step,
    explain,
    step,
)
from contact.runtime import Runtime

log = logging.getLogger(__name__)

MIN_ROWS = 100  # fewer resolved tickets than this teach nothing worth trusting
MIN_PER_LABEL = 5  # departments with fewer resolved tickets are left to the rules
MAX_ROWS = 200_000  # the newest resolved tickets are enough
HOLD_OUT = 0.2
# From this many tickets on, the version kept is the one measured on the held-out share
# (trained on the other 80 %): a second fit on all of them would double the training
# time (100,000 tickets: 162 s instead of 80) for a model no one has measured.
REFIT_BELOW = 20_000
SEED = 42
TOLERANCE = 0.02  # a new version may measure this much below the active one
CHECK_SECONDS = 10.0
# The service model names a ticket's service (its deadline, its statistics) only when at
# least this sure; below it the ticket keeps the general service, as the rules left it.
SERVICE_CONFIDENCE = 0.5
RULES_DECIDE = frozenset({"service", "keyword"})


def model_text(request: RoutingRequest) -> str:
    return " ".join(p for p in (request.text, request.address or "") if p).strip()


def facts(channel: str | None, district: str | None) -> list[str]:
    """What the model knows of a ticket beside its words."""
    out = []
    if channel:
        out.append(f"channel:{channel}")
    if district:
        out.append(f"district:{district}")
    return out


def _service_text(svc: ServiceInfo) -> str:
    """What the catalogue says of a service: its names, descriptions and keywords."""
    return " ".join((svc.name_zh, svc.name_en, *svc.descriptions, *svc.keywords)).strip()


def descriptions(catalogue: Catalogue) -> dict[str, list[str]]:
    """What the catalogue says each department handles: its names and keywords, and
    the names, descriptions and keywords of the services it (or, for a district's
    office, its bureau's territorial services) takes. The model reads them as extra
    examples, so a department with few resolved tickets is still known by its services'
    words."""
    out: dict[str, list[str]] = {}
    for d in catalogue.departments.values():
        out[d.code] = [f"{d.name_zh} {d.name_en}".strip()]
        if d.keywords:
            out[d.code].append(" ".join(d.keywords))
    for svc in catalogue.services.values():
        text = _service_text(svc)
        takers = [svc.department]
        if svc.territorial:
            takers += catalogue.children.get(svc.department, [])
        for code in takers:
            if code in out:
                out[code].append(text)
    return out


def service_descriptions(catalogue: Catalogue) -> dict[str, list[str]]:
    """What the catalogue says each service covers."""
    return {svc.code: [_service_text(svc)] for svc in catalogue.services.values()}


@dataclass(frozen=True)
class Loaded:
    version: int
    model: learning.TextModel  # departments
    services: learning.TextModel | None = None


class LearningRouter:
    """Catalogue rules first; the model where they leave the department open."""

    def __init__(self, rules: Router, loaded: Loaded | None) -> None:
        self.rules = rules
        self.loaded = loaded

    def route(self, catalogue: Catalogue, request: RoutingRequest) -> RoutingDecision:
        decision = self.rules.route(catalogue, request)
        if self.loaded is None:
            return decision
        ranked = [
            (code, conf)
            for code, conf in self.loaded.model.rank(
                model_text(request), n=4, facts=facts(request.channel, decision.district)
            )
            if code in catalogue.departments
        ]
        if not ranked:
            return decision
        version = str(self.loaded.version)
        offers = tuple(
            (code, round(conf, 3), explain(self._why(version, code, conf), None, "en"))
            for code, conf in ranked
        )
        if decision.rule in RULES_DECIDE:
            others = tuple(o for o in offers if o[0] != decision.department)
            return replace(decision, alternatives=decision.alternatives + others)
        code, conf = ranked[0]
        why = (*decision.why[:1], step("then"), *self._why(version, code, conf))
        service = decision.service
        named = self._service(catalogue, request, code, decision.district)
        if named is not None:
            service = named[0]
            why = (*why, step("model_service", service=named[0], confidence=f"{named[1]:.2f}"))
        return RoutingDecision(
            service=service,
            department=code,
            district=decision.district,
            reason=explain(why, None, "en"),
            confidence=round(conf, 3),
            rule="model",
            alternatives=offers[1:],
            why=why,
            version=self.loaded.version,
        )

    def _service(
        self, catalogue: Catalogue, request: RoutingRequest, dept: str, district: str | None
    ) -> tuple[str, float] | None:
        """The likeliest service the department ``dept`` (or a unit above it) takes,
        if the service model is at least SERVICE_CONFIDENCE sure of it."""
        services = self.loaded.services if self.loaded else None
        if services is None:
            return None
        owners, at = set(), catalogue.departments.get(dept)
        while at is not None and at.code not in owners:
            owners.add(at.code)
            at = catalogue.departments.get(at.parent or "")
        ranked = services.rank(
            model_text(request), n=len(services.labels), facts=facts(request.channel, district)
        )
        for code, conf in ranked:
            svc = catalogue.services.get(code)
            if svc is not None and code != FALLBACK_SERVICE and svc.department in owners:
                return (code, conf) if conf >= SERVICE_CONFIDENCE else None
        return None

    @staticmethod
    def _why(version: str, code: str, conf: float) -> tuple[Step, ...]:
        return (step("model", version=version, dept=code, confidence=f"{conf:.2f}"),)


# ---------------------------------------------------------------- the active version


def dump(model: learning.TextModel) -> bytes:
    return model.to_bytes()


def load(blob: bytes) -> learning.TextModel:
    """A stored version (arrays and a JSON header; never unpickled). Versions saved
    before this format raise ValueError: train a new one."""
    return learning.TextModel.from_bytes(blob)


@dataclass
class _Cache:
    checked: float = -1e9
    loaded: Loaded | None = None
    task: asyncio.Task[None] | None = None
    unreadable: int | None = None  # the active version could not be read (said once)


async def active_version(session: AsyncSession) -> int | None:
    return (
        await session.execute(select(RoutingModel.version).where(RoutingModel.active))
    ).scalar_one_or_none()


async def _refresh(rt: Runtime, cache: _Cache) -> None:
    async with rt.db.session() as s:
        version = await active_version(s)
        if version is None:
            cache.loaded = None
            return
        if cache.loaded is not None and cache.loaded.version == version:
            return
        if cache.unreadable == version:
            return
        blob, service_blob = (
            await s.execute(
                select(RoutingModel.blob, RoutingModel.service_blob).where(
                    RoutingModel.version == version
                )
            )
        ).one()
    try:
        model = await asyncio.to_thread(load, blob)
        services = await asyncio.to_thread(load, service_blob) if service_blob else None
    except ValueError:
        cache.unreadable = version  # logged by the caller once, not every few seconds
        raise
    cache.loaded = Loaded(version, model, services)
    log.info(
        "routing model v%s in use (%d departments, %s)",
        version,
        len(model.labels),
        f"{len(services.labels)} services" if services else "no service model",
    )


async def warm(rt: Runtime) -> None:
    """Load the active version before serving (start-up of a web or worker process)."""
    cache: _Cache = rt.extras.setdefault("routing_model", _Cache())
    cache.checked = time.monotonic()
    try:
        await _refresh(rt, cache)
    except Exception:  # a broken row must not stop start-up: the rules still route
        log.exception("routing model could not be loaded; the rules route alone")


async def router(rt: Runtime) -> Router:
    """The process's router: the catalogue's rules with the active model, if any.

    Never waits for the database: intake calls this inside its own transaction, and on
    SQLite a second connection there could wait on the very lock that transaction
    holds. A new version is looked for in the background every CHECK_SECONDS."""
    cache: _Cache = rt.extras.setdefault("routing_model", _Cache())
    now = time.monotonic()
    if now - cache.checked >= CHECK_SECONDS and (cache.task is None or cache.task.done()):
        cache.checked = now
        cache.task = rt.spawn(_guarded(rt, cache), name="routing-model-refresh")
    return LearningRouter(rt.router, cache.loaded)


async def _guarded(rt: Runtime, cache: _Cache) -> None:
    try:
        await _refresh(rt, cache)
    except Exception:
        log.exception("routing model could not be loaded; keeping the one in use")


def forget(rt: Runtime) -> None:
    """Look for the active version again on the next routing (after training or
    activation)."""
    cache = rt.extras.get("routing_model")
    if cache is not None:
        cache.checked = -1e9


# ---------------------------------------------------------------- training


@dataclass
class Outcome:
    version: int | None
    active: bool
    rows: int
    metrics: dict[str, Any]
    message: str


def evaluate_and_train(
    texts: Sequence[str],
    labels: Sequence[str],
    say: Callable[[str], None] | None = None,
    extras: Sequence[Sequence[str]] | None = None,
    auto_dispatch: float | None = None,
    described: learning.Descriptions = None,
) -> tuple[learning.TextModel, dict[str, Any]]:
    """Measure on a fixed-seed held-out share beside the baselines, then (below
    REFIT_BELOW tickets) train on all, both times with the labels' descriptions
    (``described``: departments' or services'), if any. What auto-dispatch would do is
    measured at the usual thresholds and at the configured one (``auto_dispatch``)."""
    from sklearn.model_selection import train_test_split

    x, y = list(texts), list(labels)
    ex = list(extras) if extras is not None else [[] for _ in x]
    a, b, ya, yb, ea, eb = train_test_split(
        x, y, ex, test_size=HOLD_OUT, random_state=SEED, stratify=y
    )
    refit = len(x) < REFIT_BELOW
    started = time.monotonic()
    held = learning.TextModel.train(
        a, ya, SEED, say=None if refit else say, extras=ea, descriptions=described
    )
    fitted = time.monotonic() - started
    predicted, confidence = held.predict_with_confidence(b, eb)
    scored = learning.score(yb, predicted)
    thresholds = sorted({*learning.THRESHOLDS, *([auto_dispatch] if auto_dispatch else [])})
    sure = learning.by_confidence(confidence, np.asarray(predicted) == np.asarray(yb), thresholds)
    majority = Counter(ya).most_common(1)[0][0]
    base_major = learning.score(yb, [majority] * len(yb))
    base_kw = learning.score(yb, learning.keyword_rules(a, ya)(b))
    model = held
    if refit:  # few tickets: every one of them counts
        started = time.monotonic()
        model = learning.TextModel.train(x, y, SEED, say=say, extras=ex, descriptions=described)
        fitted = time.monotonic() - started
    metrics = {
        "accuracy": round(scored.accuracy, 4),
        "macro_f1": round(scored.macro_f1, 4),
        "held_out": len(yb),
        "baseline_majority": {
            "accuracy": round(base_major.accuracy, 4),
            "macro_f1": round(base_major.macro_f1, 4),
        },
        "baseline_keywords": {
            "accuracy": round(base_kw.accuracy, 4),
            "macro_f1": round(base_kw.macro_f1, 4),
        },
        "per_label": {
            k: {"precision": round(p, 3), "recall": round(r, 3), "f1": round(f, 3), "n": n}
            for k, (p, r, f, n) in scored.per_label.items()
        },
        # What auto-dispatch at each threshold would have done on the held-out share.
        "auto_dispatch": [
            {
                "threshold": t,
                "share": round(share, 4),
                "accuracy": None if right is None else round(right, 4),
            }
            for t, share, right in sure
        ],
        "descriptions": sum(len(described.get(k, ())) for k in set(y)) if described else 0,
        "temperature": round(model.temperature, 3),
        "word_senses": model.features.lexicon or None,
        "trained_on": len(x) if refit else len(a),
        "train_seconds": round(fitted, 1),
    }
    model.metrics = metrics
    return model, metrics


# Tickets the model learns from: resolved by a department, not merged into another.
LEARNABLE = (
    Ticket.status.in_((TicketStatus.resolved, TicketStatus.closed)),
    Ticket.resolved_at.is_not(None),
    Ticket.department_id.is_not(None),
    Ticket.merged_into_id.is_(None),
)


async def learnable_count(session: AsyncSession) -> int:
    """How many resolved tickets there are to learn from."""
    return int(
        (
            await session.execute(select(func.count()).select_from(Ticket).where(*LEARNABLE))
        ).scalar_one()
    )


ROUTING_RULES = ("service", "keyword", "model", "fallback")  # how intake decided


@dataclass(frozen=True)
class LiveRouting:
    rule: str  # how intake routed the tickets (ROUTING_RULES)
    tickets: int  # resolved since the date asked
    right: int  # of those, resolved by the department intake suggested
    auto: int = 0  # of those, dispatched at once by auto-dispatch
    auto_right: int = 0  # of those, resolved by the department they were sent to
    version: int | None = None  # the routing model's version (rule "model"), if known
    services: int = 0  # of the tickets, those intake gave a service (not the general one)
    services_kept: int = 0  # of those, resolved under that service (no dispatcher changed it)


async def live_routing(session: AsyncSession, since: datetime) -> list[LiveRouting]:
    """How routing did on real tickets: those resolved since ``since``, by how intake
    routed them (the model's by version), and how many the department intake suggested
    resolved (the rest a dispatcher sent elsewhere, or a department returned); the same
    for those auto-dispatch sent at once (the system's dispatch from ``received``; its
    re-dispatch after a reopen is another move); and of those intake gave a service,
    how many kept it (the rest a dispatcher reclassified)."""
    suggested = Ticket.routing_department_id == Ticket.department_id
    auto = (
        select(TicketEvent.id)
        .where(
            TicketEvent.ticket_id == Ticket.id,
            TicketEvent.kind == "dispatched",
            TicketEvent.from_status == TicketStatus.received.value,
            TicketEvent.actor_id.is_(None),
            TicketEvent.actor == SYSTEM.name,
        )
        .exists()
    )
    named = Ticket.routing_service_id.in_(
        select(Service.id).where(Service.code != FALLBACK_SERVICE).scalar_subquery()
    )
    kept = Ticket.service_id == Ticket.routing_service_id

    def count(*when: Any) -> Any:
        return func.sum(case((and_(*when), 1), else_=0))

    rows = (
        await session.execute(
            select(
                Ticket.routing_rule,
                Ticket.routing_version,
                func.count(),
                count(suggested),
                count(auto),
                count(auto, suggested),
                count(named),
                count(named, kept),
            )
            .where(*LEARNABLE, Ticket.resolved_at >= since)
            .group_by(Ticket.routing_rule, Ticket.routing_version)
        )
    ).all()
    found = [
        LiveRouting(
            rule,
            int(n),
            int(ok or 0),
            int(sent or 0),
            int(sent_ok or 0),
            version,
            int(services or 0),
            int(services_kept or 0),
        )
        for rule, version, n, ok, sent, sent_ok, services, services_kept in rows
    ]
    rank = {r: i for i, r in enumerate(ROUTING_RULES)}
    # The rules in their order, then any other; the model's newest version first, and
    # the tickets routed before versions were recorded last.
    return sorted(
        found,
        key=lambda o: (
            rank.get(o.rule, len(rank)),
            o.rule,
            o.version is None,
            -(o.version or 0),
        ),
    )


@dataclass
class Examples:
    texts: list[str]
    labels: list[str]
    extras: list[list[str]]
    services: list[str | None] = field(default_factory=list)  # None: the general one


async def resolved_examples(
    session: AsyncSession, catalogue: Catalogue, limit: int = MAX_ROWS
) -> Examples:
    """The newest resolved tickets' text and facts (channel, district), labelled with
    the department that finally resolved them (not the first guess) and with their
    service (None for the general one, and for one the routing model named that no
    person confirmed: a model must not learn from its own guesses). Merged duplicates
    are left out."""
    rows = (
        await session.execute(
            select(
                Ticket.title,
                Ticket.description,
                Ticket.address,
                Ticket.department_id,
                Ticket.channel,
                Ticket.district_id,
                Ticket.service_id,
                Ticket.routing_rule,
                Ticket.service_confirmed_at,
            )
            .where(*LEARNABLE)
            .order_by(Ticket.resolved_at.desc())
            .limit(limit)
        )
    ).all()
    out = Examples([], [], [], [])
    for (
        title,
        description,
        address,
        dept_id,
        channel,
        district_id,
        service_id,
        rule,
        confirmed,
    ) in rows:
        dept = catalogue.dept_by_id.get(dept_id or -1)
        text = " ".join(p for p in (title, description, address) if p).strip()
        if dept is not None and text:
            district = catalogue.district_by_id.get(district_id or -1)
            service = catalogue.service_by_id.get(service_id or -1)
            if rule == "model" and confirmed is None:
                service = None
            out.texts.append(text)
            out.labels.append(dept.code)
            out.extras.append(facts(channel.value, district.code if district else None))
            out.services.append(
                service.code if service and service.code != FALLBACK_SERVICE else None
            )
    return out


def usable(examples: Examples, what: str = "departments") -> tuple[Examples, str | None]:
    """Drop labels with too few examples; say why training cannot go on, if so."""
    counts = Counter(examples.labels)
    keep = {label for label, n in counts.items() if n >= MIN_PER_LABEL}
    rows = [i for i, label in enumerate(examples.labels) if label in keep]
    if len(rows) < MIN_ROWS or len(keep) < 2:
        return Examples([], [], [], []), (
            f"not enough resolved tickets to learn from: {len(rows)} in {len(keep)} "
            f"{what} with at least {MIN_PER_LABEL} each (needs {MIN_ROWS} in 2)"
        )
    return (
        Examples(
            [examples.texts[i] for i in rows],
            [examples.labels[i] for i in rows],
            [examples.extras[i] for i in rows],
            [examples.services[i] for i in rows] if examples.services else [],
        ),
        None,
    )


def by_service(examples: Examples) -> Examples:
    """The same tickets labelled with their service (those with the general one left
    out): what the service model learns from."""
    rows = [i for i, svc in enumerate(examples.services) if svc is not None]
    return Examples(
        [examples.texts[i] for i in rows],
        [str(examples.services[i]) for i in rows],
        [examples.extras[i] for i in rows],
    )


async def store(
    rt: Runtime,
    model: learning.TextModel,
    metrics: dict[str, Any],
    *,
    source: str,
    rows: int,
    train_seconds: float,
    activate: bool | None = None,
    services: learning.TextModel | None = None,
) -> Outcome:
    """Save a new version (with its service model, if any); activate it when asked, or
    (``None``) when it measures no worse than the active one."""
    blob = await asyncio.to_thread(dump, model)
    service_blob = await asyncio.to_thread(dump, services) if services is not None else None
    async with rt.db.session() as s:
        active = select(RoutingModel.version, RoutingModel.metrics).where(RoutingModel.active)
        current = (await s.execute(active)).first()
        if activate is None:
            bar = float(current.metrics.get("accuracy", 0.0)) - TOLERANCE if current else -1.0
            activate = float(metrics.get("accuracy", 0.0)) >= bar
        version = int((await s.execute(select(func.max(RoutingModel.version)))).scalar() or 0) + 1
        if activate:
            await s.execute(update(RoutingModel).where(RoutingModel.active).values(active=False))
        s.add(
            RoutingModel(
                version=version,
                target="department",
                source=source[:200],
                rows=rows,
                labels=list(model.labels),
                metrics=metrics,
                active=activate,
                size=len(blob),
                sha256=hashlib.sha256(blob).hexdigest(),
                blob=blob,
                service_blob=service_blob,
                train_seconds=round(train_seconds, 1),
                created_at=utcnow(),
            )
        )
        await s.commit()
    forget(rt)
    kept = "" if activate else f"; v{current.version if current else '?'} stays active"
    message = (
        f"routing model v{version}: {rows} rows, {len(model.labels)} departments, "
        f"accuracy={metrics.get('accuracy', 0):.3f} macro_f1={metrics.get('macro_f1', 0):.3f}"
        f"{kept}"
    )
    return Outcome(version, bool(activate), rows, metrics, message)


async def train_from_tickets(rt: Runtime, say: Callable[[str], None] | None = None) -> Outcome:
    """Learn a new version from resolved tickets (the scheduled and on-demand job)."""
    catalogue = await rt.catalogue()
    async with rt.db.session() as s:
        found = await resolved_examples(s, catalogue)
    examples, problem = usable(found)
    if problem:
        return Outcome(None, False, len(examples.texts), {}, problem)
    started = time.monotonic()
    model, metrics = await asyncio.to_thread(
        evaluate_and_train,
        examples.texts,
        examples.labels,
        say,
        examples.extras,
        rt.settings.ROUTING_AUTO_DISPATCH,
        descriptions(catalogue),
    )
    services = None
    named, problem = usable(by_service(found), "services")
    if problem:
        metrics["service"] = {"skipped": problem}
    else:
        services, service_metrics = await asyncio.to_thread(
            evaluate_and_train,
            named.texts,
            named.labels,
            None,
            named.extras,
            None,
            service_descriptions(catalogue),
        )
        metrics["service"] = {k: v for k, v in service_metrics.items() if k != "auto_dispatch"}
        metrics["service"]["rows"] = len(named.texts)
        services.metrics = metrics["service"]
        if say:
            say(
                f"service model: {len(named.texts)} tickets, {len(services.labels)} services, "
                f"accuracy={service_metrics['accuracy']:.3f} "
                f"macro_f1={service_metrics['macro_f1']:.3f}"
            )
    return await store(
        rt,
        model,
        metrics,
        source="tickets",
        rows=len(examples.texts),
        train_seconds=time.monotonic() - started,
        services=services,
    )


async def activate(rt: Runtime, session: AsyncSession, version: int) -> bool:
    """Make ``version`` the one in use; False when there is no such version."""
    exists = (
        await session.execute(select(RoutingModel.id).where(RoutingModel.version == version))
    ).scalar_one_or_none()
    if exists is None:
        return False
    await session.execute(update(RoutingModel).where(RoutingModel.active).values(active=False))
    await session.execute(
        update(RoutingModel).where(RoutingModel.version == version).values(active=True)
    )
    return True
