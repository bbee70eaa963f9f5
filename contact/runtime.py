"""The runtime: what a process holds while it serves (database, bus, jobs, caches).

Built by the composition root (``contact.app``) for the web server and the worker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contact import bus as busmod
from contact import outbox as outboxmod
from contact.bus import Bus
from contact.channels import AdapterRegistry
from contact.db import Database
from contact.models import CalendarDay, DeadlinePolicy, Department, District, Service, WorkingHours
from contact.notify import Renderer
from contact.places import BoundaryError, DistrictBoundaries
from contact.routing import (
    Catalogue,
    DepartmentInfo,
    DistrictInfo,
    Router,
    RuleRouter,
    ServiceInfo,
)
from contact.settings import Settings, SettingsError
from contact.sla import BusinessCalendar

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Lane:
    """A kind of durable work an adapter hands to the jobs (e.g. inbound texts to process).

    The rows themselves are the queue (the adapter's sweep finds what is due); a nudge
    only says "look now". ``drain`` is the rq job (module-level, sync) that takes the
    nudged ids from Redis; ``sweep`` finds and does everything due, in-process or as
    a periodic rq job (``sweep_job``).
    """

    name: str
    drain: Callable[[], int]
    sweep: Callable[[Runtime], Awaitable[int]]
    sweep_job: Callable[[], int]


class Jobs:
    """Where durable work runs: rq when Redis is configured, in-process otherwise."""

    lanes: dict[str, Lane]

    def __init__(self) -> None:
        self.lanes = {}

    def add_lane(self, lane: Lane) -> None:
        self.lanes[lane.name] = lane

    async def kick(self, outbox_ids: list[int]) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    async def nudge(self, lane: str, ids: list[int]) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    async def start(self, runtime: Runtime) -> None:
        return None

    async def stop(self) -> None:
        return None


@dataclass
class PolicyInfo:
    code: str
    accept_minutes: int
    resolve_minutes: int
    urgent_accept_minutes: int
    urgent_resolve_minutes: int
    working_time: bool


@dataclass
class Runtime:
    settings: Settings
    db: Database
    bus: Bus
    registry: AdapterRegistry
    jobs: Jobs
    renderer: Renderer
    router: Router = field(default_factory=RuleRouter)
    # District boundaries (CONTACT_DISTRICTS_GEOJSON), read once at start-up.
    boundaries: DistrictBoundaries | None = None
    cache_seconds: float = 10.0
    _catalogue: tuple[float, Catalogue] | None = None
    _calendar: tuple[float, BusinessCalendar] | None = None
    _policies: tuple[float, dict[int, PolicyInfo]] | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _refreshing: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _background: set[asyncio.Task[Any]] = field(default_factory=set)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def deliverer(self) -> outboxmod.Deliverer:
        d = self.extras.get("deliverer")
        if d is None:
            s = self.settings
            d = self.extras["deliverer"] = outboxmod.Deliverer(
                self.db,
                self.registry,
                self.renderer,
                max_attempts=s.OUTBOX_MAX_ATTEMPTS,
                backoff_seconds=s.OUTBOX_BACKOFF_SECONDS,
                lease_seconds=s.OUTBOX_LEASE_SECONDS,
            )
        return d

    # ------------------------------------------------------------ commit boundary

    async def commit(self, session: AsyncSession) -> None:
        """Commit, then publish the transaction's events and kick its outbox rows."""
        await session.commit()
        await self.after_commit(session)

    async def after_commit(self, session: AsyncSession) -> None:
        messages = busmod.take_pending(session)
        outbox_ids = outboxmod.take_pending(session)
        if messages:
            await self.bus.publish(messages)
        if outbox_ids:
            try:
                await self.jobs.kick(outbox_ids)
            except Exception:  # the sweeper delivers them; never fail a committed request
                log.warning(
                    "could not enqueue outbox %s; the sweeper will", outbox_ids, exc_info=True
                )

    def discard(self, session: AsyncSession) -> None:
        busmod.take_pending(session)
        outboxmod.take_pending(session)

    # ------------------------------------------------------------ cached reference data

    def invalidate(self) -> None:
        """Reload the catalogue, calendar and policies soon (after an admin change)."""
        for attr in ("_catalogue", "_calendar", "_policies"):
            entry = getattr(self, attr)
            if entry is not None:
                setattr(self, attr, (float("-inf"), entry[1]))

    async def _cached(self, attr: str, load: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
        """The cached value; a stale one is served while a background task reloads it.

        Requests never wait for a reload: one that holds a pooled connection and waited
        for another to reload the cache could starve the pool under load.
        """
        entry = getattr(self, attr)
        if entry is not None:
            if time.monotonic() - entry[0] >= self.cache_seconds:
                self._refresh_soon(attr, load)
            return entry[1]
        async with self._lock:  # the first load only (start-up warms every cache)
            entry = getattr(self, attr)
            if entry is None:
                entry = (time.monotonic(), await self._load(load))
                setattr(self, attr, entry)
            return entry[1]

    async def _load(self, load: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
        async with self.db.session() as s:
            return await load(s)

    def _refresh_soon(self, attr: str, load: Callable[[AsyncSession], Awaitable[Any]]) -> None:
        if attr in self._refreshing:
            return

        async def refresh() -> None:
            try:
                setattr(self, attr, (time.monotonic(), await self._load(load)))
            except Exception:  # keep serving the last good value
                log.warning("reloading %s failed", attr.strip("_"), exc_info=True)
            finally:
                self._refreshing.pop(attr, None)

        self._refreshing[attr] = self.spawn(refresh(), name=f"refresh{attr}")

    def spawn(self, work: Awaitable[T], name: str) -> asyncio.Task[T]:
        """Run ``work`` in the background, tracked so that :meth:`close` waits for it."""
        task: asyncio.Task[T] = asyncio.ensure_future(work)
        task.set_name(name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def close(self, grace: float = 5.0) -> None:
        """Stop the jobs, let background work finish (cancel it after ``grace`` s), then
        close the bus and the database.

        Closing the database under a task still inside a query would leave that task
        waiting for a connection thread that is gone, and the process would never exit.
        """
        await self.jobs.stop()
        if self._background:
            _, late = await asyncio.wait(set(self._background), timeout=grace)
            for task in late:
                task.cancel()
            if late:
                _, stuck = await asyncio.wait(late, timeout=grace)
                for task in stuck:  # name what keeps the process from exiting
                    log.warning(
                        "background task %s ignored its cancellation:\n%s",
                        task.get_name(),
                        _stack_of(task),
                    )
        await self.bus.stop()
        await self.db.dispose()

    async def warm(self) -> None:
        """Load every cache before serving; a database not up yet is reported, not fatal."""
        try:
            await self.catalogue()
            await self.calendar()
            await self.policies()
        except Exception:
            log.warning("could not load the catalogue at start-up", exc_info=True)
        self.check_boundaries()

    def check_boundaries(self) -> None:
        """Every district the boundaries name must be in the catalogue (when it is loaded):
        SettingsError, one line naming the setting, otherwise."""
        if self.boundaries is None or self._catalogue is None:
            return
        try:
            self.boundaries.check_codes(self._catalogue[1].districts)
        except BoundaryError as exc:
            raise SettingsError(f"setting CONTACT_DISTRICTS_GEOJSON is invalid: {exc}") from None

    async def catalogue(self) -> Catalogue:
        return await self._cached("_catalogue", _load_catalogue)  # type: ignore[no-any-return]

    async def calendar(self) -> BusinessCalendar:
        async def load(s: AsyncSession) -> BusinessCalendar:
            hours = (await s.execute(select(WorkingHours))).scalars().all()
            days = (await s.execute(select(CalendarDay))).scalars().all()
            if not hours:
                return BusinessCalendar.standard(self.settings.tz)
            return BusinessCalendar.from_rows(self.settings.tz, hours, days)

        return await self._cached("_calendar", load)  # type: ignore[no-any-return]

    async def policies(self) -> dict[int, PolicyInfo]:
        async def load(s: AsyncSession) -> dict[int, PolicyInfo]:
            rows = (await s.execute(select(DeadlinePolicy))).scalars().all()
            return {
                r.id: PolicyInfo(
                    r.code,
                    r.accept_minutes,
                    r.resolve_minutes,
                    r.urgent_accept_minutes,
                    r.urgent_resolve_minutes,
                    r.working_time,
                )
                for r in rows
            }

        return await self._cached("_policies", load)  # type: ignore[no-any-return]


async def _load_catalogue(s: AsyncSession) -> Catalogue:
    districts = (await s.execute(select(District))).scalars().all()
    depts = (await s.execute(select(Department))).scalars().all()
    services = (await s.execute(select(Service).where(Service.active))).scalars().all()
    district_code = {d.id: d.code for d in districts}
    dept_code = {d.id: d.code for d in depts}
    return Catalogue(
        services={
            sv.code: ServiceInfo(
                id=sv.id,
                code=sv.code,
                name_zh=sv.name_zh,
                name_en=sv.name_en,
                kind=sv.kind.value,
                keywords=tuple(sv.keywords or ()),
                department=dept_code[sv.default_department_id],
                territorial=sv.territorial,
                policy_id=sv.deadline_policy_id,
                fields=tuple(sv.fields or ()),
                descriptions=tuple(d for d in (sv.description_zh, sv.description_en) if d),
            )
            for sv in services
        },
        departments={
            d.code: DepartmentInfo(
                id=d.id,
                code=d.code,
                name_zh=d.name_zh,
                name_en=d.name_en,
                level=d.level.value,
                parent=dept_code.get(d.parent_id) if d.parent_id else None,
                district=district_code.get(d.district_id) if d.district_id else None,
                keywords=tuple(d.keywords or ()),
                phone=d.phone,
            )
            for d in depts
            if d.active
        },
        districts={
            d.code: DistrictInfo(d.id, d.code, d.name_zh, d.name_en, tuple(d.keywords or ()))
            for d in districts
        },
    )


def _stack_of(task: asyncio.Task[Any]) -> str:
    import io

    out = io.StringIO()
    task.print_stack(file=out)
    return out.getvalue()
