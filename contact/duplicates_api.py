"""``GET /api/v1/tickets/{reference}/duplicates``: merge suggestions and linked tickets.

Scoped exactly like reading the ticket: whoever may not see it gets 404, and a
department sees only candidates it may see itself. Phone numbers never appear here;
staff merge through the ticket's ``merge`` action.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter
from pydantic import BaseModel, Field

from contact import repository
from contact.deps import CurrentPrincipal, DbSession, RuntimeDep
from contact.duplicates import Brief, find_duplicates
from contact.errors import ErrorBody
from contact.lifecycle import Action, allowed_actions
from contact.reference import grouped
from contact.routing import Catalogue

router = APIRouter(prefix="/api/v1/tickets", tags=["tickets"])

SUMMARY_CHARS = 80


class LinkedRead(BaseModel):
    reference: str
    reference_grouped: str
    status: str
    service: str | None
    channel: str
    created_at: datetime
    summary: str = Field(description="the opening of the ticket's title or description")


class SuggestionRead(LinkedRead):
    score: float = Field(ge=0, le=1)
    reasons: list[str] = Field(
        description="signals that matched: similar_text, same_address, similar_address, "
        "nearby, same_district, same_service, related_service, recent, same_reporter; "
        "and against it: other_address, far_apart"
    )
    distance_m: int | None = Field(None, description="between the two, when both have lat/lon")


class DuplicatesRead(BaseModel):
    reference: str
    threshold: float = Field(description="the least score suggested (CONTACT_DUPLICATE_THRESHOLD)")
    window_days: float = Field(
        description="suggestions were created within this many days of the ticket"
    )
    link_hours: float = Field(description="linked tickets were created within this many hours")
    can_merge: bool = Field(description="whether the caller may merge this ticket into one")
    suggestions: list[SuggestionRead]
    linked: list[LinkedRead] = Field(
        description="other tickets from the same phone number around the same time"
    )


def _summary(t: Brief) -> str:
    text = " ".join((t.title or t.description or "").split())
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


def _linked(t: Brief, cat: Catalogue) -> LinkedRead:
    service = cat.service_by_id.get(t.service_id or -1)
    return LinkedRead(
        reference=t.reference,
        reference_grouped=grouped(t.reference),
        status=t.status.value,
        service=service.code if service else None,
        channel=t.channel.value,
        created_at=t.created_at,
        summary=_summary(t),
    )


@router.get(
    "/{reference}/duplicates",
    response_model=DuplicatesRead,
    responses={404: {"model": ErrorBody, "description": "Not found, or not visible"}},
)
async def duplicates(
    reference: str, rt: RuntimeDep, session: DbSession, principal: CurrentPrincipal
) -> DuplicatesRead:
    """Open tickets that look like the same problem (same or related service, nearby or
    the same address, similar words, recent), best first with a score in [0, 1] and the
    signals that matched; and the other tickets of the same phone around the same time.
    The window, the least score and the linking hours are settings
    (``CONTACT_DUPLICATE_WINDOW_DAYS``, ``_THRESHOLD``, ``_LINK_HOURS``)."""
    ticket, _ = await repository.get_ticket(session, principal, reference)
    cat = await rt.catalogue()
    s = rt.settings
    found = await find_duplicates(
        session,
        principal,
        ticket,
        cat,
        threshold=s.DUPLICATE_THRESHOLD,
        window=timedelta(days=s.DUPLICATE_WINDOW_DAYS),
        link_window=timedelta(hours=s.DUPLICATE_LINK_HOURS),
    )
    return DuplicatesRead(
        reference=ticket.reference,
        threshold=s.DUPLICATE_THRESHOLD,
        window_days=s.DUPLICATE_WINDOW_DAYS,
        link_hours=s.DUPLICATE_LINK_HOURS,
        can_merge=Action.merge.value in allowed_actions(ticket.status, principal.actor),
        suggestions=[
            SuggestionRead(
                **_linked(s.ticket, cat).model_dump(),
                score=s.match.score,
                reasons=list(s.match.reasons),
                distance_m=round(s.match.distance_m) if s.match.distance_m is not None else None,
            )
            for s in found.suggestions
        ],
        linked=[_linked(t, cat) for t in found.linked],
    )
