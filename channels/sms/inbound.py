"""An inbound text, whatever carried it (the Twilio webhook or the dev gateway).

Stored idempotently on the provider's id first: Twilio retries and concurrent
duplicates give one message and one ticket. A first text opens a ticket and is
answered with its reference; texts within the join window add to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contact import service
from contact.channels import InboundMessage
from contact.db import insert_into
from contact.lifecycle import OPEN_STATES
from contact.models import (
    Channel,
    Citizen,
    DeliveryStatus,
    Direction,
    Message,
    Ticket,
    TicketEvent,
    utcnow,
)
from contact.principal import CITIZEN
from contact.reference import grouped
from contact.runtime import Runtime
from contact.schemas import DESCRIPTION_MAX, TicketCreate, normalize_phone


@dataclass(frozen=True)
class InboundResult:
    message_id: int
    ticket_reference: str | None
    reply: str
    duplicate: bool = False


async def handle_inbound(rt: Runtime, session: AsyncSession, msg: InboundMessage) -> InboundResult:
    """Store, attach to a ticket, and say what to answer. The caller commits."""
    phone = normalize_phone(msg.from_addr, rt.settings.DEFAULT_REGION)
    body = (msg.body or "").strip()
    now = utcnow()
    message_id = (
        await session.execute(
            insert_into(session, Message, conflict=("provider", "provider_id"), returning="id"),
            dict(
                channel=Channel.sms,
                direction=Direction.inbound,
                provider=msg.provider,
                provider_id=msg.provider_id,
                from_addr=phone,
                to_addr=msg.to_addr,
                body=body[:DESCRIPTION_MAX],
                status=DeliveryStatus.received,
                segments=1,
                created_at=now,
                updated_at=now,
            ),
        )
    ).scalar_one_or_none()
    if message_id is None:
        return await _replay(rt, session, msg)

    locale = service.detect_locale(body, rt.settings.DEFAULT_LOCALE)
    citizen_id = await service.citizen_for_phone(session, phone, locale)
    await session.execute(update(Citizen).where(Citizen.id == citizen_id).values(locale=locale))
    if not body:
        reply = rt.renderer.render("sms", "help", locale, {})
        await _link(session, message_id, citizen_id, None)
        return InboundResult(message_id, None, reply)

    ticket = await _open_ticket_of(rt, session, citizen_id)
    if ticket is not None:
        await _link(session, message_id, citizen_id, ticket.id)
        session.add(
            TicketEvent(
                ticket_id=ticket.id,
                kind="citizen_message",
                from_status=ticket.status.value,
                to_status=ticket.status.value,
                actor="citizen",
                data={"message_id": message_id},
                public=False,
                created_at=now,
            )
        )
        reply = rt.renderer.render(
            "sms", "message_added", ticket.locale, {"ref_grouped": grouped(ticket.reference)}
        )
        return InboundResult(message_id, ticket.reference, reply)

    ticket, _ = await service.open_ticket(
        rt,
        session,
        TicketCreate(
            description=body[:DESCRIPTION_MAX], channel=Channel.sms, phone=phone, locale=locale
        ),
        CITIZEN,
        citizen_id=citizen_id,
    )
    await _link(session, message_id, citizen_id, ticket.id)
    reply = rt.renderer.render(
        "sms",
        "ticket_received",
        locale,
        {
            "reference": ticket.reference,
            "ref_grouped": grouped(ticket.reference),
            "track_url": service.track_url(rt, ticket.reference),
        },
    )
    return InboundResult(message_id, ticket.reference, reply)


async def _link(
    session: AsyncSession, message_id: int, citizen_id: int, ticket_id: int | None
) -> None:
    await session.execute(
        update(Message)
        .where(Message.id == message_id)
        .values(citizen_id=citizen_id, ticket_id=ticket_id)
    )


async def _open_ticket_of(rt: Runtime, session: AsyncSession, citizen_id: int) -> Ticket | None:
    window = rt.settings.SMS_JOIN_WINDOW_MINUTES
    if window <= 0:
        return None
    since = utcnow() - timedelta(minutes=window)
    return (
        await session.execute(
            select(Ticket)
            .where(
                Ticket.citizen_id == citizen_id,
                Ticket.channel == Channel.sms,
                Ticket.status.in_(OPEN_STATES),
                Ticket.created_at >= since,
            )
            .order_by(Ticket.created_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


async def _replay(rt: Runtime, session: AsyncSession, msg: InboundMessage) -> InboundResult:
    """A retry of a text already stored: the same answer, nothing new."""
    await session.rollback()
    row = (
        await session.execute(
            select(Message.id, Ticket.reference, Ticket.locale)
            .outerjoin(Ticket, Ticket.id == Message.ticket_id)
            .where(Message.provider == msg.provider, Message.provider_id == msg.provider_id)
        )
    ).one()
    ref = row.reference
    if ref is None:
        reply = rt.renderer.render("sms", "help", rt.settings.DEFAULT_LOCALE, {})
    else:
        reply = rt.renderer.render(
            "sms",
            "ticket_received",
            row.locale,
            {
                "reference": ref,
                "ref_grouped": grouped(ref),
                "track_url": service.track_url(rt, ref),
            },
        )
    return InboundResult(row.id, ref, reply, duplicate=True)
