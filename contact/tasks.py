"""Jobs: module-level, take ids, open their own sessions, safe to run twice.

rq calls the sync wrappers in the worker process (``contact worker`` installs the
runtime); the in-process runner calls the ``*_async`` functions directly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from sqlalchemy import or_, select, update

from contact import bus, reports
from contact.db import insert_into
from contact.events import HotspotEvent, KioskEvent, SlaEvent
from contact.models import (
    HotspotAlert,
    KioskDevice,
    SlaState,
    Ticket,
    TicketEvent,
    TicketStatus,
    utcnow,
)
from contact.principal import SYSTEM
from contact.runtime import Runtime
from contact.sla import sla_state

log = logging.getLogger(__name__)
T = TypeVar("T")

RUNTIME: Runtime | None = None
_LOOP: asyncio.AbstractEventLoop | None = None


def install(runtime: Runtime, loop: asyncio.AbstractEventLoop) -> None:
    global RUNTIME, _LOOP
    RUNTIME, _LOOP = runtime, loop


def _run(coro: Coroutine[Any, Any, T]) -> T:
    if RUNTIME is None or _LOOP is None:
        coro.close()
        raise RuntimeError("no runtime installed: jobs run inside `contact worker`")
    return _LOOP.run_until_complete(coro)


# ---------------------------------------------------------------- outbox


def drain_outbox(batch: int = 200) -> int:
    """Deliver the ids the web processes pushed, a batch at a time, until none are left."""
    from contact.jobs import DRAINING, DUE_LIST

    assert RUNTIME is not None
    deliverer = RUNTIME.deliverer

    def deliver(ids: list[int]) -> int:
        results = _run(deliverer.deliver_many(ids))
        return sum(1 for r in results.values() if r == "sent")

    return drain_list(DUE_LIST, DRAINING, deliver, batch)


def drain_list(due: str, flag: str, handle: Callable[[list[int]], int], batch: int = 200) -> int:
    """Pop nudged ids off a Redis list in batches until it is empty, then give up the flag
    that keeps web processes from enqueueing a second drain."""
    from redis import Redis

    from contact.jobs import DRAIN_CLAIM_SECONDS

    assert RUNTIME is not None and RUNTIME.settings.REDIS_URL
    redis = Redis.from_url(RUNTIME.settings.REDIS_URL)
    done = 0
    try:
        while True:
            while ids := redis.lpop(due, batch):
                redis.expire(flag, DRAIN_CLAIM_SECONDS)
                done += handle([int(i) for i in ids])
            redis.delete(flag)
            # Ids pushed between the last pop and the release found the flag taken and
            # enqueued nothing: take them too, unless another drain has started since.
            if not redis.llen(due) or not redis.set(flag, 1, nx=True, ex=DRAIN_CLAIM_SECONDS):
                break
    finally:
        redis.close()
    return done


def sweep_outbox() -> int:
    return _run(sweep_outbox_async(RUNTIME))  # type: ignore[arg-type]


async def sweep_outbox_async(rt: Runtime) -> int:
    """Deliver every row that is due: missed nudges, retries, expired leases."""
    done = 0
    while ids := await rt.deliverer.due(limit=200):
        results = await rt.deliverer.deliver_many(ids)
        done += sum(1 for r in results.values() if r == "sent")
        if len(ids) < 200 or not any(r == "sent" for r in results.values()):
            break
    return done


# ---------------------------------------------------------------- deadlines

WATCHED = (
    TicketStatus.received,
    TicketStatus.dispatched,
    TicketStatus.accepted,
    TicketStatus.returned,
    TicketStatus.reopened,
)


def sla_scan() -> int:
    return _run(sla_scan_async(RUNTIME))  # type: ignore[arg-type]


async def sla_scan_async(rt: Runtime) -> int:
    """Mark due-soon and overdue tickets once each, emit the events, tell the department."""
    now = utcnow()
    fraction = rt.settings.DUE_SOON_FRACTION
    catalogue = await rt.catalogue()
    horizon = now + timedelta(days=14)
    changed = 0
    async with rt.db.session() as s:
        rows = (
            (
                await s.execute(
                    select(Ticket).where(
                        Ticket.status.in_(WATCHED),
                        Ticket.sla_state.in_((SlaState.ok, SlaState.due_soon)),
                        # Only deadlines near enough to matter (a due-soon window is a fraction
                        # of at most a few weeks).
                        or_(Ticket.accept_due_at <= horizon, Ticket.due_at <= horizon),
                    )
                )
            )
            .scalars()
            .all()
        )
        for t in rows:
            # Until the department signs for it, the accept-by deadline is the one that runs.
            if t.status == TicketStatus.dispatched and t.accept_due_at:
                which, start, due = "accept", t.dispatched_at or t.created_at, t.accept_due_at
            elif t.due_at:
                which, start, due = "resolve", t.created_at, t.due_at
            else:
                continue
            state = sla_state(now, start, due, fraction)
            if state == t.sla_state:
                continue
            result = await s.execute(
                update(Ticket)
                .where(Ticket.id == t.id, Ticket.sla_state == t.sla_state)
                .values(sla_state=state)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                continue  # moved meanwhile; the next scan looks again
            dept = catalogue.dept_by_id.get(t.department_id or -1)
            code = dept.code if dept else None
            kind = "sla_overdue" if state == SlaState.overdue else "sla_due_soon"
            s.add(
                TicketEvent(
                    ticket_id=t.id,
                    kind=kind,
                    from_status=t.status.value,
                    to_status=t.status.value,
                    actor="system",
                    data={"deadline": which, "due_at": due.isoformat(), "department": code},
                    public=False,
                    created_at=now,
                )
            )
            await bus.record(
                s,
                SlaEvent(
                    type="sla.overdue" if state == SlaState.overdue else "sla.due_soon",
                    reference=t.reference,
                    ticket_id=t.id,
                    department=code,
                    deadline=which,  # type: ignore[arg-type]
                    due_at=due.isoformat(),
                ),
                bus.Audience(department=code),
            )
            changed += 1
        await rt.commit(s)
    if changed:
        log.info("sla scan: %s tickets changed deadline state", changed)
    return changed


# ---------------------------------------------------------------- kiosks

# A kiosk reports every 30 s; three missed reports and it counts as offline.
OFFLINE_AFTER = timedelta(seconds=90)
KIOSK_SCAN_SECONDS = 30
# The mark in ``KioskDevice.status`` that an outage was announced (cleared by a heartbeat).
OFFLINE_MARK = "offline_since"
# Kiosk health is for the supervisors' wallboard: never a department's business.
KIOSK_AUDIENCE = bus.Audience(supervisors_only=True)


def kiosk_event(
    kind: Literal["kiosk.heartbeat", "kiosk.offline"],
    kiosk_id: int,
    name: str,
    status: dict[str, Any],
    last_seen_at: Any,
) -> KioskEvent:
    raw = status.get("printer")
    printer: dict[str, Any] = raw if isinstance(raw, dict) else {}
    queue = status.get("queue")
    return KioskEvent(
        type=kind,
        kiosk_id=kiosk_id,
        name=name,
        online=kind == "kiosk.heartbeat",
        paper=str(printer.get("paper") or "unknown"),
        printer_online=printer.get("online") if isinstance(printer.get("online"), bool) else None,
        queue=queue if isinstance(queue, int) else None,
        last_seen_at=last_seen_at.isoformat() if last_seen_at is not None else None,
    )


def kiosk_scan() -> int:
    return _run(kiosk_scan_async(RUNTIME))  # type: ignore[arg-type]


async def kiosk_scan_async(rt: Runtime) -> int:
    """Mark active kiosks not heard from for :data:`OFFLINE_AFTER` as offline, once per
    outage, and announce each with ``kiosk.offline``. Safe to run in several processes at
    once: the mark is set by a conditional update, so only one of them announces it."""
    now = utcnow()
    cutoff = now - OFFLINE_AFTER
    unmarked = KioskDevice.status[OFFLINE_MARK].as_string().is_(None)
    marked = 0
    async with rt.db.session() as s:
        rows = (
            await s.execute(
                select(
                    KioskDevice.id, KioskDevice.name, KioskDevice.status, KioskDevice.last_seen_at
                ).where(KioskDevice.active, KioskDevice.last_seen_at < cutoff, unmarked)
            )
        ).all()
        for row in rows:
            status = {**(row.status or {}), OFFLINE_MARK: now.isoformat()}
            result = await s.execute(
                update(KioskDevice)
                .where(
                    KioskDevice.id == row.id,
                    KioskDevice.active,
                    KioskDevice.last_seen_at < cutoff,
                    unmarked,
                )
                .values(status=status)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                continue  # heard from meanwhile, or marked by another scan
            event = kiosk_event("kiosk.offline", row.id, row.name, status, row.last_seen_at)
            await bus.record(s, event, KIOSK_AUDIENCE)
            marked += 1
        await rt.commit(s)
    if marked:
        log.warning("kiosk scan: %s kiosk(s) went offline", marked)
    return marked


# ---------------------------------------------------------------- housekeeping


PRUNE_EVENTS_SECONDS = 3600  # how often old real-time events are deleted


def prune_events() -> int:
    return _run(prune_events_async(RUNTIME))  # type: ignore[arg-type]


async def prune_events_async(rt: Runtime) -> int:
    """Delete real-time events older than ``EVENT_RETENTION_DAYS`` from the replay log.
    Safe in several processes at once: each deletes what is still there."""
    before = utcnow() - timedelta(days=rt.settings.EVENT_RETENTION_DAYS)
    async with rt.db.session() as s:
        gone = await bus.prune(s, before)
    if gone:
        log.info("deleted %d real-time events logged before %s", gone, before.isoformat())
    return gone


# ---------------------------------------------------------------- hot spots


def hotspot_scan() -> int:
    return _run(hotspot_scan_async(RUNTIME))  # type: ignore[arg-type]


async def hotspot_scan_async(rt: Runtime, *, now: datetime | None = None) -> int:
    """Today's hot spots (local day) over every ticket; each new one is stored in
    ``hotspot_alerts`` and announced with ``hotspot.detected`` to the supervisors and the
    owning department (not to agents: it is the department's to act on). Insert-once on
    (day, service, district): a second scan, another process or a retry never announces
    it twice."""
    now = now or utcnow()
    tz = rt.settings.tz
    day = now.astimezone(tz).date()
    catalogue = await rt.catalogue()
    calendar = await rt.calendar()
    announced = 0
    async with rt.db.session() as s:
        window = reports.Filters(start=reports.local_midnight(day, tz), end=now)
        scan = await reports.hotspots(
            s, SYSTEM, window, catalogue, tz, day=day, working_day=calendar.is_working_day
        )
        for hit in scan.items:
            service = catalogue.services.get(hit.service)
            district = catalogue.districts.get(hit.district)
            if service is None or district is None:
                continue  # retired from the catalogue: nobody to tell
            row = dict(
                day=day,
                service_id=service.id,
                district_id=district.id,
                count=hit.count,
                expected=hit.expected,
                p_value=hit.p_value,
                created_at=now,
            )
            stmt = insert_into(
                s, HotspotAlert, conflict=("day", "service_id", "district_id"), returning="id"
            )
            if (await s.execute(stmt, row)).scalar_one_or_none() is None:
                continue  # announced already
            owner = reports.hotspot_owner(catalogue, service, district.code)
            # The hit's codes, names and counts, as the scan found them.
            found = {k: v for k, v in asdict(hit).items() if k in HotspotEvent.model_fields}
            event = HotspotEvent(day=day.isoformat(), department=owner, **found)
            audience = bus.Audience(department=owner, supervisors_only=True)
            await bus.record(s, event, audience)
            announced += 1
        await rt.commit(s)
    if announced:
        log.info("hot-spot scan: %s new hot spot(s) on %s", announced, day)
    return announced


# ---------------------------------------------------------------- routing model

RETRAIN_CHECK_SECONDS = 3600  # how often the schedule asks whether a retrain is due


def retrain_routing(scheduled: bool = True) -> str:
    return _run(retrain_routing_async(RUNTIME, scheduled=scheduled))  # type: ignore[arg-type]


async def retrain_routing_async(rt: Runtime, *, scheduled: bool = True) -> str:
    """Train a new routing model version from resolved tickets. On the schedule it runs
    only when the newest version is older than ``ROUTING_RETRAIN_HOURS`` (so restarts
    and several workers do not retrain); on demand it always runs."""
    from contact import model_router
    from contact.models import RoutingModel

    hours = rt.settings.ROUTING_RETRAIN_HOURS
    if scheduled:
        if hours <= 0:
            return "retraining is on demand only"
        async with rt.db.session() as s:
            newest = (
                await s.execute(
                    select(RoutingModel.created_at)
                    .order_by(RoutingModel.created_at.desc())
                    .limit(1)
                )
            ).scalar()
        if newest is not None and utcnow() - newest < timedelta(hours=hours):
            return "the routing model is recent enough"
    outcome = await model_router.train_from_tickets(rt)
    log.info("%s", outcome.message)
    return outcome.message
