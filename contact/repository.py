"""All ticket queries, each starting from what the caller may read.

A department clerk's statements are scoped to its departments before any other
filter, so a ticket of another department simply does not exist for it (404).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from contact.db import dialect_name
from contact.errors import NotFound
from contact.models import (
    Channel,
    Citizen,
    ExtensionState,
    Message,
    SlaState,
    Ticket,
    TicketEvent,
    TicketStatus,
)
from contact.principal import Principal
from contact.reference import normalize


def visible_tickets(principal: Principal) -> Select[Ticket, str | None]:
    stmt = select(Ticket, Citizen.phone).outerjoin(Citizen, Citizen.id == Ticket.citizen_id)
    if not principal.sees_all:
        stmt = stmt.where(Ticket.department_id.in_(principal.scope_ids or {-1}))
    return stmt


async def get_ticket(
    session: AsyncSession, principal: Principal, reference: str, *, for_update: bool = False
) -> tuple[Ticket, str | None]:
    stmt = visible_tickets(principal).where(Ticket.reference == normalize(reference))
    if for_update and dialect_name(session) == "postgresql":
        stmt = stmt.with_for_update(of=Ticket)
    row = (await session.execute(stmt)).first()
    if row is None:
        raise NotFound("no such ticket", code="ticket_not_found")
    return row[0], row[1]


async def ticket_by_reference(session: AsyncSession, reference: str) -> Ticket | None:
    return (
        await session.execute(select(Ticket).where(Ticket.reference == normalize(reference)))
    ).scalar_one_or_none()


@dataclass
class TicketFilters:
    status: list[TicketStatus] | None = None
    department_ids: list[int] | None = None
    service_ids: list[int] | None = None
    channel: list[Channel] | None = None
    phone: str | None = None
    overdue: bool | None = None
    q: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    sla: list[SlaState] | None = None
    extension: list[ExtensionState] | None = None
    order: str = "newest"  # newest | oldest | due (the most urgent first)


async def list_tickets(
    session: AsyncSession, principal: Principal, f: TicketFilters, *, limit: int, offset: int
) -> tuple[list[tuple[Ticket, str | None]], int]:
    stmt = visible_tickets(principal)
    if f.status:
        stmt = stmt.where(Ticket.status.in_(f.status))
    if f.department_ids is not None:
        stmt = stmt.where(Ticket.department_id.in_(f.department_ids or {-1}))
    if f.service_ids is not None:
        stmt = stmt.where(Ticket.service_id.in_(f.service_ids or {-1}))
    if f.channel:
        stmt = stmt.where(Ticket.channel.in_(f.channel))
    if f.phone:
        stmt = stmt.where(Citizen.phone == f.phone)
    if f.overdue is not None:
        overdue = Ticket.sla_state.in_((SlaState.overdue, SlaState.missed))
        stmt = stmt.where(overdue if f.overdue else ~overdue)
    if f.q:
        like = f"%{f.q.replace('%', '').replace('_', '')}%"
        stmt = stmt.where(
            or_(
                Ticket.description.ilike(like),
                Ticket.title.ilike(like),
                Ticket.address.ilike(like),
                Ticket.reference == normalize(f.q),
            )
        )
    if f.created_from:
        stmt = stmt.where(Ticket.created_at >= f.created_from)
    if f.created_to:
        stmt = stmt.where(Ticket.created_at < f.created_to)
    if f.sla:
        stmt = stmt.where(Ticket.sla_state.in_(f.sla))
    if f.extension:
        stmt = stmt.where(Ticket.extension.in_(f.extension))
    total = (
        await session.execute(select(func.count()).select_from(stmt.order_by(None).subquery()))
    ).scalar_one()
    order = {
        "newest": (Ticket.created_at.desc(), Ticket.id.desc()),
        "oldest": (Ticket.created_at, Ticket.id),
        # No deadline (not yet dispatched) sorts last; ties by age.
        "due": (Ticket.due_at.is_(None), Ticket.due_at, Ticket.created_at, Ticket.id),
    }[f.order]
    rows = (await session.execute(stmt.order_by(*order).limit(limit).offset(offset))).all()
    return [(r[0], r[1]) for r in rows], total


async def ticket_events(
    session: AsyncSession, ticket_id: int, *, public_only: bool = False
) -> list[TicketEvent]:
    stmt = select(TicketEvent).where(TicketEvent.ticket_id == ticket_id)
    if public_only:
        stmt = stmt.where(TicketEvent.public)
    return list((await session.execute(stmt.order_by(TicketEvent.id))).scalars())


async def ticket_messages(session: AsyncSession, ticket_id: int) -> list[Message]:
    stmt = select(Message).where(Message.ticket_id == ticket_id).order_by(Message.id)
    return list((await session.execute(stmt)).scalars())


async def merged_into(session: AsyncSession, ticket_id: int) -> list[tuple[Ticket, str | None]]:
    """Tickets merged into this one, with their reporters' phones (all get the outcome)."""
    stmt = (
        select(Ticket, Citizen.phone)
        .outerjoin(Citizen, Citizen.id == Ticket.citizen_id)
        .where(Ticket.merged_into_id == ticket_id)
    )
    return [(r[0], r[1]) for r in (await session.execute(stmt)).all()]
