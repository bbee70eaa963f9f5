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

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contact.channels import AdapterRegistry, DeliveryError, OutboundMessage
from contact.db import Database, insert_ignore
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
) -> None:
    stmt = (
        insert_ignore(session, Outbox, ["key"])
        .values(
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
            next_attempt_at=utcnow(),
            created_at=utcnow(),
        )
        .returning(Outbox.id)
    )
    new_id = (await session.execute(stmt)).scalar_one_or_none()
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
    ) -> None:
        self.db = db
        self.registry = registry
        self.renderer = renderer
        self.max_attempts = max_attempts
        self.backoff = backoff_seconds
        self.lease = timedelta(seconds=lease_seconds)

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
        now = utcnow()
        async with self.db.session() as s:
            row = (
                await s.execute(
                    update(Outbox)
                    .where(Outbox.id == outbox_id, _claimable(now))
                    .values(
                        status=OutboxStatus.sending,
                        lease_until=now + self.lease,
                        attempts=Outbox.attempts + 1,
                    )
                    .returning(Outbox)
                )
            ).scalar_one_or_none()
            if row is None:
                await s.rollback()
                return "not-due"
            skip = await self._skip_reason(s, row)
            if skip:
                row.status = OutboxStatus.skipped
                row.last_error = skip
                row.lease_until = None
                await s.commit()
                return "skipped"
            body = self.renderer.render(row.channel.value, row.template, row.locale, row.context)
            message_id = await self._message_for(s, row, body)
            row.message_id = message_id
            await s.commit()

        try:
            adapter = self.registry.get(row.channel)
            receipt = await adapter.send(
                OutboundMessage(
                    key=row.key,
                    channel=row.channel,
                    to=row.recipient,
                    body=body,
                    template=row.template,
                )
            )
        except DeliveryError as exc:
            return await self._failed(row, str(exc), exc.permanent, exc.code)
        except Exception as exc:  # a bug or an unreachable provider: retry, never lose it
            log.exception("delivery of outbox %s failed", row.id)
            return await self._failed(row, f"{type(exc).__name__}: {exc}", False, None)

        async with self.db.session() as s:
            await s.execute(
                update(Message)
                .where(Message.id == message_id)
                .values(
                    provider=receipt.provider,
                    provider_id=receipt.provider_id,
                    status=DeliveryStatus(receipt.status),
                    segments=receipt.segments,
                    updated_at=utcnow(),
                )
            )
            await s.execute(
                update(Outbox)
                .where(Outbox.id == row.id)
                .values(
                    status=OutboxStatus.sent, sent_at=utcnow(), lease_until=None, last_error=None
                )
            )
            await s.commit()
        return "sent"

    async def _skip_reason(self, s: AsyncSession, row: Outbox) -> str | None:
        if not row.recipient:
            return "no address"
        if row.citizen_id is not None:
            citizen = await s.get(Citizen, row.citizen_id)
            if citizen is not None and row.channel.value in (citizen.opt_outs or []):
                return "opted out"
        return None

    async def _message_for(self, s: AsyncSession, row: Outbox, body: str) -> int:
        """The outbound message for this key, created once."""
        now = utcnow()
        await s.execute(
            insert_ignore(s, Message, ["idempotency_key"]).values(
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
                created_at=now,
                updated_at=now,
            )
        )
        return (
            await s.execute(select(Message.id).where(Message.idempotency_key == row.key))
        ).scalar_one()

    async def _failed(self, row: Outbox, error: str, permanent: bool, code: str | None) -> str:
        dead = permanent or row.attempts >= self.max_attempts
        delay = timedelta(seconds=self.backoff * (2 ** max(row.attempts - 1, 0)))
        async with self.db.session() as s:
            await s.execute(
                update(Outbox)
                .where(Outbox.id == row.id)
                .values(
                    status=OutboxStatus.dead if dead else OutboxStatus.pending,
                    next_attempt_at=utcnow() + delay,
                    lease_until=None,
                    last_error=error[:1000],
                )
            )
            if row.message_id is not None:
                await s.execute(
                    update(Message)
                    .where(Message.id == row.message_id)
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
