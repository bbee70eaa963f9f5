"""Statistics cities are ranked by (DOMAIN: 三率), computed from tickets and their events.

- response rate (响应率): dispatches signed for before the accept-by deadline ÷ dispatches
  with a deadline, over tickets created in the period;
- on-time resolution (按期办结率): resolved no later than due ÷ resolved;
- satisfaction rate (满意率): ratings "satisfied" or "fairly satisfied" ÷ ratings given;
- resolution rate (解决率): callbacks answering "solved" ÷ callbacks that answered it;
- reopen rate (发回重办率): reopen events ÷ resolutions.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contact.models import Ticket, TicketEvent
from contact.principal import Principal


@dataclass
class Summary:
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

    @staticmethod
    def _rate(part: int, whole: int) -> float | None:
        return round(part / whole, 4) if whole else None

    @property
    def response_rate(self) -> float | None:
        return self._rate(self.accepted_in_time, self.dispatched)

    @property
    def on_time_rate(self) -> float | None:
        return self._rate(self.resolved_in_time, self.resolved)

    @property
    def satisfaction_rate(self) -> float | None:
        return self._rate(self.satisfied, self.ratings)

    @property
    def resolution_rate(self) -> float | None:
        return self._rate(self.solved, self.solved_answers)

    @property
    def reopen_rate(self) -> float | None:
        return self._rate(self.reopened, self.resolved)


async def summary(
    session: AsyncSession, principal: Principal, start: datetime, end: datetime
) -> Summary:
    out = Summary(start, end)
    scope = Ticket.created_at.between(start, end)
    tickets = select(Ticket).where(scope)
    if not principal.sees_all:
        tickets = tickets.where(Ticket.department_id.in_(principal.scope_ids or {-1}))
    rows = (
        await session.execute(
            tickets.with_only_columns(
                Ticket.id,
                Ticket.status,
                Ticket.channel,
                Ticket.dispatched_at,
                Ticket.accepted_at,
                Ticket.accept_due_at,
                Ticket.resolved_at,
                Ticket.due_at,
            )
        )
    ).all()
    ids = [r.id for r in rows]
    out.tickets = len(rows)
    out.by_status = dict(Counter(r.status.value for r in rows))
    out.by_channel = dict(Counter(r.channel.value for r in rows))
    for r in rows:
        if r.dispatched_at and r.accept_due_at:
            out.dispatched += 1
            out.accepted_in_time += bool(r.accepted_at and r.accepted_at <= r.accept_due_at)
    if not ids:
        return out
    events = (
        await session.execute(
            select(TicketEvent.kind, TicketEvent.data, TicketEvent.created_at, Ticket.due_at)
            .join(Ticket, Ticket.id == TicketEvent.ticket_id)
            .where(
                TicketEvent.ticket_id.in_(ids),
                TicketEvent.kind.in_(("resolved", "reopened", "closed")),
            )
        )
    ).all()
    for kind, data, at, due in events:
        data = data or {}
        if kind == "resolved":
            out.resolved += 1
            out.resolved_in_time += bool(due is None or at <= due)
        if kind == "reopened":
            out.reopened += 1
        if "satisfaction" in data:
            out.ratings += 1
            out.satisfied += data["satisfaction"] in (1, 2)
        if "solved" in data:
            out.solved_answers += 1
            out.solved += bool(data["solved"])
    return out
