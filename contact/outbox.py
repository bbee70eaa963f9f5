"""The transactional outbox: side effects a person will see, delivered at least once
to the adapter and exactly once per key to the citizen.

``queue()`` writes a row in the caller's transaction (unique key per event ×
recipient × channel). After commit the runtime kicks delivery (an rq job, or the
in-process runner); a sweeper picks up anything left behind (a crash between
commit and kick, a worker killed mid-delivery: its lease runs out). Delivery
claims the row atomically, writes the outbound ``messages`` row under the same
key, and calls the adapter with that key; the adapter makes one provider call
per key. Failures back off exponentially and end in ``dead``, visible in the API.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contact.channels import AdapterRegistry, DeliveryError, DeliveryReceipt, OutboundMessage
from contact.db import Database, insert_into
from contact.models import (
    Channel,
    Citizen,
    DeliveryStatus,
    Direction,
    Message,
    Outbox,
    OutboxStatus,
    utcnow,
)
from contact.notify import Renderer

log = logging.getLogger(__name__)
OUTBOX = cast(Table, Outbox.__table__)
UNSETTLED = (DeliveryStatus.queued, DeliveryStatus.sending, DeliveryStatus.failed)
MESSAGES = cast(Table, Message.__table__)
PENDING_KEY = "contact.outbox.pending"


async def queue(
    session: AsyncSession,
    *,
    key: str,
    channel: Channel,
    recipient: str,
    template: str,
    locale: str,
    context: dict[str, Any],
    ticket_id: int | None = None,
    citizen_id: int | None = None,
    not_before: datetime | None = None,
) -> None:
    stmt = insert_into(session, Outbox, conflict=("key",), returning="id")
    row = dict(
        key=key,
        channel=channel,
        recipient=recipient,
        template=template,
        locale=locale,
        context=context,
        ticket_id=ticket_id,
        citizen_id=citizen_id,
        status=OutboxStatus.pending,
        attempts=0,
        next_attempt_at=not_before or utcnow(),
        lease_until=None,
        last_error=None,
        message_id=None,
        created_at=utcnow(),
        sent_at=None,
    )
    new_id = (await session.execute(stmt, row)).scalar_one_or_none()
    if new_id is not None:
        session.info.setdefault(PENDING_KEY, []).append(new_id)


def take_pending(session: AsyncSession) -> list[int]:
    return session.info.pop(PENDING_KEY, [])


class Deliverer:
    def __init__(
        self,
        db: Database,
        registry: AdapterRegistry,
        renderer: Renderer,
        *,
        max_attempts: int,
        backoff_seconds: float,
        lease_seconds: float,
        concurrency: int = 20,
    ) -> None:
        self.db = db
        self.registry = registry
        self.renderer = renderer
        self.max_attempts = max_attempts
        self.backoff = backoff_seconds
        self.lease = timedelta(seconds=lease_seconds)
        self.concurrency = concurrency

    async def due(self, limit: int = 200) -> list[int]:
        now = utcnow()
        async with self.db.session() as s:
            rows = await s.execute(
                select(Outbox.id)
                .where(_claimable(now))
                .order_by(Outbox.next_attempt_at)
                .limit(limit)
            )
            return list(rows.scalars())

    async def deliver(self, outbox_id: int) -> str:
        """Deliver one row if it is due; safe to call twice, concurrently, or after a crash."""
        return (await self.deliver_many([outbox_id])).get(outbox_id, "not-due")

    async def deliver_many(self, outbox_ids: list[int]) -> dict[int, str]:
        """Deliver the due rows among ``outbox_ids``: one claim, one batch of messages,
        the provider calls side by side, one write of the outcome."""
        if not outbox_ids:
            return {}
        claimed = await self._claim(outbox_ids)
        results: dict[int, str] = {}
        todo: list[tuple[Outbox, str, int]] = []
        async with self.db.session() as s:
            skips = await self._skip_reasons(s, [row for row, _ in claimed])
            for row, _body in claimed:
                if row.id in skips:
                    results[row.id] = "skipped"
            if skips:
                await s.execute(
                    update(OUTBOX)
                    .where(Outbox.id == bindparam("oid"))
                    .values(
                        status=OutboxStatus.skipped, lease_until=None, last_error=bindparam("why")
                    ),
                    [{"oid": oid, "why": why} for oid, why in skips.items()],
                )
            sendable = [(row, body) for row, body in claimed if row.id not in skips]
            message_ids = await self._messages_for(s, sendable)
            for row, body in sendable:
                todo.append((row, body, message_ids[row.key]))
            await s.commit()
        if not todo:
            return results

        gate = asyncio.Semaphore(self.concurrency)

        async def send(row: Outbox, body: str) -> DeliveryReceipt | BaseException:
            async with gate:
                try:
                    adapter = self.registry.get(row.channel)
                    return await adapter.send(
                        OutboundMessage(
                            key=row.key,
                            channel=row.channel,
                            to=row.recipient,
                            body=body,
                            template=row.template,
                        )
                    )
                except Exception as exc:  # recorded below; a failure never loses the row
                    return exc

        outcomes = await asyncio.gather(*(send(row, body) for row, body, _ in todo))
        sent: list[tuple[Outbox, int, DeliveryReceipt]] = []
        for (row, _, message_id), outcome in zip(todo, outcomes, strict=True):
            if isinstance(outcome, DeliveryReceipt):
                sent.append((row, message_id, outcome))
                results[row.id] = "sent"
            else:
                if not isinstance(outcome, DeliveryError):
                    log.error("delivery of outbox %s failed: %r", row.id, outcome)
                results[row.id] = await self._failed(row, message_id, outcome)
        if sent:
            await self._record_sent(sent)
        return results

    async def _claim(self, outbox_ids: list[int]) -> list[tuple[Outbox, str]]:
        now = utcnow()
        async with self.db.session() as s:
            rows = (
                (
                    await s.execute(
                        update(Outbox)
                        .where(Outbox.id.in_(outbox_ids), _claimable(now))
                        .values(
                            status=OutboxStatus.sending,
                            lease_until=now + self.lease,
                            attempts=Outbox.attempts + 1,
                        )
                        .returning(Outbox)
                        .execution_options(synchronize_session=False)
                    )
                )
                .scalars()
                .all()
            )
            await s.commit()
        return [
            (row, self.renderer.render(row.channel.value, row.template, row.locale, row.context))
            for row in rows
        ]

    async def _skip_reasons(self, s: AsyncSession, rows: list[Outbox]) -> dict[int, str]:
        reasons = {row.id: "no address" for row in rows if not row.recipient}
        citizen_ids = {row.citizen_id for row in rows if row.citizen_id is not None}
        if citizen_ids:
            opt_outs: dict[int, list[str]] = dict(
                (
                    await s.execute(
                        select(Citizen.id, Citizen.opt_outs).where(Citizen.id.in_(citizen_ids))
                    )
                ).all()
            )
            for row in rows:
                if row.channel.value in (opt_outs.get(row.citizen_id or -1) or []):
                    reasons[row.id] = "opted out"
        return reasons

    async def _messages_for(
        self, s: AsyncSession, rows: list[tuple[Outbox, str]]
    ) -> dict[str, int]:
        """The outbound message of each key, created once (a retry finds the first)."""
        if not rows:
            return {}
        now = utcnow()
        await s.execute(
            insert_into(s, MESSAGES, conflict=("idempotency_key",)),
            [
                dict(
                    ticket_id=row.ticket_id,
                    citizen_id=row.citizen_id,
                    channel=row.channel,
                    direction=Direction.outbound,
                    provider="pending",
                    idempotency_key=row.key,
                    to_addr=row.recipient,
                    body=body,
                    template=row.template,
                    status=DeliveryStatus.queued,
                    segments=1,
                    created_at=now,
                    updated_at=now,
                )
                for row, body in rows
            ],
        )
        keys = [row.key for row, _ in rows]
        found = await s.execute(
            select(Message.idempotency_key, Message.id).where(Message.idempotency_key.in_(keys))
        )
        ids: dict[str, int] = {k: v for k, v in found.all() if k is not None}
        await s.execute(
            update(OUTBOX).where(Outbox.id == bindparam("oid")).values(message_id=bindparam("mid")),
            [{"oid": row.id, "mid": ids[row.key]} for row, _ in rows],
        )
        return ids

    async def _record_sent(self, sent: list[tuple[Outbox, int, DeliveryReceipt]]) -> None:
        now = utcnow()
        rows = [
            {
                "mid": mid,
                "provider": r.provider,
                "pid": r.provider_id,
                "st": DeliveryStatus(r.status),
                "seg": r.segments,
            }
            for _, mid, r in sent
        ]
        async with self.db.session() as s:
            await s.execute(
                update(MESSAGES)
                .where(Message.id == bindparam("mid"))
                .values(
                    provider=bindparam("provider"),
                    provider_id=bindparam("pid"),
                    segments=bindparam("seg"),
                    error_code=None,
                    updated_at=now,
                ),
                rows,
            )
            # A status callback may already have moved the message on: never backwards.
            await s.execute(
                update(MESSAGES)
                .where(
                    Message.id == bindparam("mid"),
                    or_(*(Message.status == st for st in UNSETTLED)),  # executemany: no IN
                )
                .values(status=bindparam("st")),
                [{"mid": r["mid"], "st": r["st"]} for r in rows],
            )
            # Only rows still claimed: a callback may have scheduled a retry meanwhile.
            await s.execute(
                update(OUTBOX)
                .where(
                    Outbox.id.in_([row.id for row, _, _ in sent]),
                    Outbox.status == OutboxStatus.sending,
                )
                .values(status=OutboxStatus.sent, sent_at=now, lease_until=None, last_error=None)
            )
            await s.commit()

    def next_try(self, attempts: int, permanent: bool) -> tuple[bool, datetime]:
        """The retry policy: (dead?, when to try again) after ``attempts`` failed."""
        dead = permanent or attempts >= self.max_attempts
        return dead, utcnow() + timedelta(seconds=self.backoff * (2 ** max(attempts - 1, 0)))

    async def retry_later(
        self, s: AsyncSession, row: Outbox, *, permanent: bool, error: str
    ) -> str | None:
        """The provider accepted this row's message, then reported it failed (a delivery
        receipt): try again later, or give up. Runs in the caller's transaction; only a
        ``sent`` row still at the same attempt moves (compare-and-set). Returns
        ``"retry"``, ``"dead"``, or None when someone else moved the row first."""
        dead, at = self.next_try(row.attempts, permanent)
        result = await s.execute(
            update(OUTBOX)
            .where(
                Outbox.id == row.id,
                Outbox.status == OutboxStatus.sent,
                Outbox.attempts == row.attempts,
            )
            .values(
                status=OutboxStatus.dead if dead else OutboxStatus.pending,
                next_attempt_at=at,
                lease_until=None,
                last_error=error[:1000],
                sent_at=None,
            )
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        outcome = "dead" if dead else "retry"
        log.warning("outbox %s failed after attempt %s (%s)", row.id, row.attempts, outcome)
        return outcome

    async def _failed(self, row: Outbox, message_id: int, exc: BaseException) -> str:
        permanent = isinstance(exc, DeliveryError) and exc.permanent
        code = exc.code if isinstance(exc, DeliveryError) else None
        error = str(exc) if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {exc}"
        dead, at = self.next_try(row.attempts, permanent)
        async with self.db.session() as s:
            await s.execute(
                update(Outbox)
                .where(Outbox.id == row.id)
                .values(
                    status=OutboxStatus.dead if dead else OutboxStatus.pending,
                    next_attempt_at=at,
                    lease_until=None,
                    last_error=error[:1000],
                )
            )
            await s.execute(
                update(Message)
                .where(Message.id == message_id)
                .values(status=DeliveryStatus.failed, error_code=code, updated_at=utcnow())
            )
            await s.commit()
        log.warning(
            "outbox %s attempt %s failed%s", row.id, row.attempts, " (dead)" if dead else ""
        )
        return "dead" if dead else "retry"


def _claimable(now):  # type: ignore[no-untyped-def]
    return or_(
        and_(Outbox.status == OutboxStatus.pending, Outbox.next_attempt_at <= now),
        and_(Outbox.status == OutboxStatus.sending, Outbox.lease_until < now),
    )
