"""The real-time bus: events logged in the transaction, published after commit.

Every event is a ``bus_events`` row written with the change that caused it, so
its id increases and ``/ws?since=`` can replay it. After commit it is published:
through Redis pub/sub when ``REDIS_URL`` is set (every web process and worker
shares it), in-process otherwise. Each process fans out to its own websocket
subscribers, filtering by what each may see.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contact.db import insert_into
from contact.events import AnyEvent, BusMessage
from contact.models import BusEvent, utcnow

log = logging.getLogger(__name__)
CHANNEL = "contact:events"


def channel_for(redis_url: str) -> str:
    """The pub/sub channel of the Redis database in ``redis_url``.

    Pub/sub ignores the database number, so two deployments sharing one Redis server on
    different databases would otherwise hear each other's events.
    """
    from redis.connection import parse_url

    db = int(parse_url(redis_url).get("db") or 0)
    return CHANNEL if db == 0 else f"{CHANNEL}:{db}"


PENDING_KEY = "contact.bus.pending"


@dataclass(frozen=True)
class Audience:
    """Who may see an event: a department (and everyone who sees all departments),
    supervisors only, or — both given — supervisors and that department's own staff."""

    department: str | None = None
    supervisors_only: bool = False


@dataclass
class Viewer:
    """What a subscriber may see: everything, or the departments it is scoped to."""

    all_departments: bool
    departments: frozenset[str] = frozenset()
    supervisor: bool = False

    def may_see(self, msg: BusMessage) -> bool:
        if msg.supervisors_only and not self.supervisor:
            # addressed to supervisors and one department: its own staff see it too
            return (
                not self.all_departments
                and msg.department is not None
                and msg.department in self.departments
            )
        if self.all_departments:
            return True
        return msg.department is not None and msg.department in self.departments


async def record(session: AsyncSession, event: AnyEvent, audience: Audience) -> None:
    """Write the event in the caller's transaction; it is published after commit."""
    payload = event.model_dump(mode="json", exclude={"type"})
    now = utcnow()
    result = await session.execute(
        insert_into(session, BusEvent, returning="id"),
        dict(
            type=event.type,
            payload=payload,
            department_code=audience.department,
            supervisors_only=audience.supervisors_only,
            created_at=now,
        ),
    )
    msg = BusMessage(
        id=result.scalar_one(),
        type=event.type,
        payload=payload,
        department=audience.department,
        supervisors_only=audience.supervisors_only,
        created_at=now.isoformat(),
    )
    session.info.setdefault(PENDING_KEY, []).append(msg)


def take_pending(session: AsyncSession) -> list[BusMessage]:
    return session.info.pop(PENDING_KEY, [])


async def head(session: AsyncSession) -> int:
    """The id of the latest event (0 when there is none)."""
    return int((await session.execute(select(func.max(BusEvent.id)))).scalar_one() or 0)


PRUNE_BATCH = 5_000  # rows a delete takes at a time: short transactions, short locks


async def prune(session: AsyncSession, before: datetime) -> int:
    """Delete the events logged before ``before``, a batch per commit, and return how
    many went. The newest event always stays: ids keep increasing after it (SQLite reuses
    the highest id + 1 of an empty table) and a reconnecting client's cursor stays valid.

    Ids increase with time, so the oldest event still kept bounds the delete: it is found
    by walking the primary key from the bottom, over the very rows being deleted."""
    newest = await head(session)
    first_kept = (
        await session.execute(
            select(BusEvent.id).where(BusEvent.created_at >= before).order_by(BusEvent.id).limit(1)
        )
    ).scalar()
    cut = min(newest, first_kept if first_kept is not None else newest)
    gone = 0
    while True:
        low = (await session.execute(select(func.min(BusEvent.id)))).scalar()
        if low is None or low >= cut:
            break
        upto = min(cut, low + PRUNE_BATCH)
        result = await session.execute(delete(BusEvent).where(BusEvent.id < upto))
        await session.commit()
        gone += result.rowcount or 0  # type: ignore[attr-defined]
    return gone


async def since(session: AsyncSession, last_id: int, limit: int = 1000) -> list[BusMessage]:
    rows = (
        await session.execute(
            select(BusEvent).where(BusEvent.id > last_id).order_by(BusEvent.id).limit(limit)
        )
    ).scalars()
    return [
        BusMessage(
            id=r.id,
            type=r.type,
            payload=r.payload,
            department=r.department_code,
            supervisors_only=r.supervisors_only,
            created_at=r.created_at.isoformat(),
        )
        for r in rows
    ]


@dataclass(eq=False)
class Subscription:
    queue: asyncio.Queue[BusMessage]
    overflowed: bool = False


@dataclass
class Hub:
    """Process-local fan-out to websocket subscribers."""

    subscribers: set[Subscription] = field(default_factory=set)

    def subscribe(self, maxsize: int = 1000) -> Subscription:
        sub = Subscription(asyncio.Queue(maxsize=maxsize))
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscribers.discard(sub)

    def dispatch(self, msg: BusMessage) -> None:
        for sub in list(self.subscribers):
            try:
                sub.queue.put_nowait(msg)
            except asyncio.QueueFull:
                # A stalled client: cut it off; it reconnects and catches up with ?since=.
                sub.overflowed = True
                self.subscribers.discard(sub)


class Bus:
    """Publishes committed events; in-process or through Redis pub/sub."""

    def __init__(self, redis_url: str | None = None) -> None:
        self.hub = Hub()
        self.redis_url = redis_url
        self._redis: Any = None
        self.channel = channel_for(redis_url) if redis_url else CHANNEL
        self._listener: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self, *, listen: bool = True) -> None:
        if self.redis_url:
            import redis.asyncio as aioredis

            self._redis = aioredis.from_url(self.redis_url)
            if listen:
                self._listener = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        self._stopping = True
        if self._listener:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._listener, timeout=5)
        if self._redis is not None:
            await self._redis.aclose()

    async def publish(self, messages: Iterable[BusMessage]) -> None:
        for msg in messages:
            if self._redis is None:
                self.hub.dispatch(msg)
                continue
            try:
                await self._redis.publish(self.channel, msg.model_dump_json())
            except Exception:  # the event is logged; consoles catch up with ?since=
                log.warning("bus publish failed for event %s", msg.id, exc_info=True)

    async def _listen(self) -> None:
        while not self._stopping:
            try:
                pubsub = self._redis.pubsub()
                await pubsub.subscribe(self.channel)
                async for raw in pubsub.listen():
                    if raw.get("type") != "message":
                        continue
                    try:
                        self.hub.dispatch(BusMessage.model_validate(json.loads(raw["data"])))
                    except ValueError:
                        log.warning("malformed bus message dropped")
            except asyncio.CancelledError:
                raise
            except Exception:
                if self._stopping:  # the client may turn our cancellation into an error
                    return
                log.warning("bus listener lost Redis; retrying", exc_info=True)
                await asyncio.sleep(1.0)
