"""What the staff pages ask the server beyond the ticket API: routing suggestions, the
knowledge base, the supervisor's wallboard (with the kiosks' health), the signed-in
user's language."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, time
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contact import model_router
from contact.deps import CurrentPrincipal, DbSession, RuntimeDep, forget_principals
from contact.errors import Forbidden, NotFound
from contact.models import (
    Call,
    Channel,
    KbArticle,
    KioskDevice,
    SlaState,
    Ticket,
    TicketStatus,
    User,
    utcnow,
)
from contact.principal import Principal
from contact.routing import Named, RoutingRequest, explain, suggest
from contact.tasks import OFFLINE_AFTER, OFFLINE_MARK
from ivr.api import WAITING, agents_on_calls

router = APIRouter(prefix="/api/v1", tags=["console"])

OPEN_STATES = (
    TicketStatus.received,
    TicketStatus.dispatched,
    TicketStatus.accepted,
    TicketStatus.returned,
    TicketStatus.reopened,
)


def _contact_centre(principal: Principal) -> None:
    if not principal.sees_all:
        raise Forbidden("for the contact centre and supervisors")


class Suggestion(BaseModel):
    department: str
    name: str
    confidence: float
    reason: str


class SuggestRead(BaseModel):
    service: str | None
    district: str | None
    suggestions: list[Suggestion]


@router.get("/routing/suggest", response_model=SuggestRead)
async def routing_suggest(
    rt: RuntimeDep,
    principal: CurrentPrincipal,
    text: Annotated[str, Query(max_length=4000)] = "",
    service: Annotated[str | None, Query(max_length=32)] = None,
    address: Annotated[str | None, Query(max_length=300)] = None,
    district: Annotated[str | None, Query(max_length=32)] = None,
    channel: Annotated[Channel | None, Query()] = None,
) -> SuggestRead:
    """The top three departments for a text (and service, address), each with its reason
    and confidence; the new-ticket form also takes the district from here."""
    _contact_centre(principal)
    cat = await rt.catalogue()
    request = RoutingRequest(
        text=text,
        service=service,
        address=address,
        district=district,
        channel=channel.value if channel else None,
    )
    decision, ranked = suggest(cat, request, router=await model_router.router(rt))
    zh = principal.locale == "zh-CN"
    return SuggestRead(
        service=decision.service,
        district=decision.district,
        suggestions=[
            Suggestion(
                department=code,
                name=(cat.departments[code].name_zh if zh else cat.departments[code].name_en),
                confidence=round(conf, 2),
                reason=explain(why, cat, principal.locale) if why else reason,
            )
            for code, conf, reason, why in ranked
        ],
    )


class KbRead(BaseModel):
    id: int
    title: str
    body: str
    service: str | None


@router.get("/kb", response_model=list[KbRead])
async def kb_search(
    rt: RuntimeDep,
    session: DbSession,
    principal: CurrentPrincipal,
    q: Annotated[str, Query(min_length=1, max_length=100)],
    limit: Annotated[int, Query(ge=1, le=20)] = 5,
) -> list[KbRead]:
    """Knowledge-base answers whose title, body or keywords mention the words asked."""
    terms = [w for w in q.split() if w][:5]
    stmt = select(KbArticle)
    for term in terms:
        like = f"%{term.replace('%', '').replace('_', '')}%"
        stmt = stmt.where(
            or_(
                KbArticle.title_zh.ilike(like),
                KbArticle.title_en.ilike(like),
                KbArticle.body_zh.ilike(like),
                KbArticle.body_en.ilike(like),
            )
        )
    rows = (await session.execute(stmt.order_by(KbArticle.id).limit(limit))).scalars().all()
    cat = await rt.catalogue()
    zh = principal.locale == "zh-CN"
    return [
        KbRead(
            id=a.id,
            title=a.title_zh if zh else a.title_en,
            body=a.body_zh if zh else a.body_en,
            service=cat.service_by_id[a.service_id].code
            if a.service_id in cat.service_by_id
            else None,
        )
        for a in rows
    ]


class KioskState(BaseModel):
    """A kiosk as its last heartbeat left it."""

    id: int
    name: str
    location: str
    online: bool
    last_seen_at: datetime | None
    version: str | None
    paper: str  # ok | low | out | unknown
    printer_online: bool | None
    printer_detail: str
    queue: int  # submissions waiting on the kiosk to be sent
    oldest_queued_at: datetime | None


class Wallboard(BaseModel):
    calls_waiting: int
    longest_wait_seconds: int
    agents_on_calls: int
    today_by_channel: dict[str, int]
    open_by_state: dict[str, int]
    overdue: int
    due_soon: int
    extensions_requested: int
    kiosks_online: int
    kiosks_offline: int
    kiosks: list[KioskState]
    at: datetime


@router.get("/wallboard", response_model=Wallboard)
async def wallboard(rt: RuntimeDep, session: DbSession, principal: CurrentPrincipal) -> Wallboard:
    """The supervisor's live figures: the voice queue, today's contacts, open work, breaches."""
    if not principal.supervisor:
        raise Forbidden("supervisors only")
    now = utcnow()
    waiting = (
        await session.execute(
            select(func.count(), func.min(func.coalesce(Call.queued_at, Call.started_at))).where(
                *WAITING
            )
        )
    ).one()
    on_calls = await agents_on_calls(session)
    local_midnight = datetime.combine(now.astimezone(rt.settings.tz).date(), time(), rt.settings.tz)
    by_channel = dict(
        (c.value, n)
        for c, n in (
            await session.execute(
                select(Ticket.channel, func.count())
                .where(Ticket.created_at >= local_midnight)
                .group_by(Ticket.channel)
            )
        ).all()
    )
    open_rows = (
        await session.execute(
            select(Ticket.status, Ticket.sla_state, Ticket.extension, func.count())
            .where(Ticket.status.in_(OPEN_STATES))
            .group_by(Ticket.status, Ticket.sla_state, Ticket.extension)
        )
    ).all()
    states: Counter[str] = Counter()
    overdue = due_soon = extensions = 0
    for status, sla, extension, n in open_rows:
        states[status.value] += n
        overdue += n if sla == SlaState.overdue else 0
        due_soon += n if sla == SlaState.due_soon else 0
        extensions += n if extension.value == "requested" else 0
    oldest = waiting[1]
    kiosks = await kiosk_states(session, now)
    online = sum(1 for k in kiosks if k.online)
    return Wallboard(
        calls_waiting=int(waiting[0]),
        longest_wait_seconds=int((now - oldest).total_seconds()) if oldest else 0,
        agents_on_calls=on_calls,
        today_by_channel={c.value: by_channel.get(c.value, 0) for c in Channel},
        open_by_state={s.value: states.get(s.value, 0) for s in OPEN_STATES},
        overdue=overdue,
        due_soon=due_soon,
        extensions_requested=extensions,
        kiosks_online=online,
        kiosks_offline=len(kiosks) - online,
        kiosks=kiosks,
        at=now,
    )


def _when(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


async def kiosk_states(session: AsyncSession, now: datetime) -> list[KioskState]:
    """The active kiosks: online while heard from within ``OFFLINE_AFTER`` and not
    marked offline since; their printer and queue as last reported."""
    rows = (
        await session.execute(
            select(
                KioskDevice.id,
                KioskDevice.name,
                KioskDevice.location,
                KioskDevice.last_seen_at,
                KioskDevice.status,
            )
            .where(KioskDevice.active)
            .order_by(KioskDevice.name, KioskDevice.id)
        )
    ).all()
    out: list[KioskState] = []
    for r in rows:
        status = r.status if isinstance(r.status, dict) else {}
        raw_printer = status.get("printer")
        printer = raw_printer if isinstance(raw_printer, dict) else {}
        seen = r.last_seen_at
        queue = status.get("queue")
        version = status.get("version")
        printer_online = printer.get("online")
        out.append(
            KioskState(
                id=r.id,
                name=r.name,
                location=r.location or "",
                online=seen is not None
                and now - seen <= OFFLINE_AFTER
                and not status.get(OFFLINE_MARK),
                last_seen_at=seen,
                version=str(version) if version else None,
                paper=str(printer.get("paper") or "unknown"),
                printer_online=printer_online if isinstance(printer_online, bool) else None,
                printer_detail=str(printer.get("detail") or ""),
                queue=queue if isinstance(queue, int) else 0,
                oldest_queued_at=_when(status.get("oldest_queued_at")),
            )
        )
    return out


class Preferences(BaseModel):
    locale: Literal["zh-CN", "en"] = Field(description="the language of the staff pages")


@router.patch("/me", response_model=Preferences, tags=["auth"])
async def set_preferences(
    session: DbSession, principal: CurrentPrincipal, body: Preferences
) -> Preferences:
    if principal.user_id is None:
        raise NotFound("no such user")
    await session.execute(
        update(User).where(User.id == principal.user_id).values(locale=body.locale)
    )
    await session.commit()
    forget_principals()
    return body


class Names(BaseModel):
    service: dict[str, str]
    dept: dict[str, str]
    district: dict[str, str]


@router.get("/names", response_model=Names, tags=["catalogue"])
async def names(rt: RuntimeDep, principal: CurrentPrincipal) -> Names:
    """Codes → names in the user's language, for the pages to show names, not codes."""
    cat = await rt.catalogue()
    zh = principal.locale == "zh-CN"

    def named(items: Iterable[Named]) -> dict[str, str]:
        return {i.code: i.name_zh if zh else i.name_en for i in items}

    return Names(
        service=named(cat.services.values()),
        dept=named(cat.departments.values()),
        district=named(cat.districts.values()),
    )
