"""Calls in the REST API: the agents' queue, taking the next caller, a call with its
caller's history (tickets, texts, calls) for the console to pop."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contact.deps import CurrentPrincipal, DbSession, RuntimeDep
from contact.errors import Forbidden, NotFound
from contact.models import Call, Channel, Message, Ticket, utcnow
from contact.principal import Principal
from contact.security import mask_phone
from ivr.gateway import VoiceGateway
from ivr.twiml import Urls

router = APIRouter(prefix="/api/v1/calls", tags=["calls"])
HISTORY = 10


class WaitingCall(BaseModel):
    id: int
    caller: str | None  # masked
    language: str
    queued_at: datetime
    wait_seconds: int


class QueueStats(BaseModel):
    waiting: int
    longest_wait_seconds: int
    agents_on_calls: int
    calls: list[WaitingCall]


class CallRead(BaseModel):
    id: int
    direction: str
    purpose: str
    caller: str | None
    status: str
    language: str
    path: list[str]
    ticket: str | None
    recording_url: str | None
    transcription: str | None
    started_at: datetime
    ended_at: datetime | None
    agent_id: int | None


class History(BaseModel):
    tickets: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    calls: list[dict[str, Any]]


class CallWithHistory(BaseModel):
    call: CallRead
    history: History


def _agents_only(principal: Principal) -> None:
    if principal.actor.value not in ("agent", "supervisor", "admin"):
        raise Forbidden("agents and supervisors only")


WAITING = (Call.queue.is_not(None), Call.connected_at.is_(None), Call.ended_at.is_(None))


def _waiting() -> Any:
    return select(Call).where(*WAITING)


async def agents_on_calls(session: AsyncSession) -> int:
    """Agents with a caller on the line now."""
    return int(
        (
            await session.execute(
                select(func.count(func.distinct(Call.agent_id))).where(
                    Call.connected_at.is_not(None), Call.ended_at.is_(None)
                )
            )
        ).scalar_one()
    )


@router.get("/queue", response_model=QueueStats)
async def queue_stats(session: DbSession, principal: CurrentPrincipal) -> QueueStats:
    """Callers waiting for an agent (longest first) and agents on calls."""
    _agents_only(principal)
    now = utcnow()
    waiting = list((await session.execute(_waiting().order_by(Call.queued_at))).scalars())
    on_calls = await agents_on_calls(session)
    calls = [
        WaitingCall(
            id=c.id,
            caller=mask_phone(c.from_addr) if c.from_addr else None,
            language=c.locale,
            queued_at=c.queued_at or c.started_at,
            wait_seconds=int((now - (c.queued_at or c.started_at)).total_seconds()),
        )
        for c in waiting
    ]
    return QueueStats(
        waiting=len(calls),
        longest_wait_seconds=max((c.wait_seconds for c in calls), default=0),
        agents_on_calls=on_calls,
        calls=calls,
    )


@router.post("/next", response_model=CallWithHistory)
async def take_next(
    rt: RuntimeDep, session: DbSession, principal: CurrentPrincipal
) -> CallWithHistory:
    """Connect the caller who has waited longest to the signed-in agent; the answer
    carries the caller's history, and ``call.connected`` follows when they are bridged."""
    _agents_only(principal)
    stmt = _waiting().where(Call.agent_id.is_(None)).order_by(Call.queued_at).limit(1)
    if rt.db.postgres:
        stmt = stmt.with_for_update(skip_locked=True)
    call = (await session.execute(stmt)).scalar_one_or_none()
    if call is None:
        raise NotFound("no caller is waiting", code="queue_empty")
    call.agent_id = principal.user_id
    call.updated_at = utcnow()
    await session.commit()
    gateway: VoiceGateway = rt.registry.get(Channel.voice)  # type: ignore[assignment]
    url = Urls(rt.settings.PUBLIC_BASE_URL)("connect", agent=principal.user_id or 0)
    try:
        await gateway.redirect(call.call_sid, url)
    except Exception:
        call.agent_id = None  # back in the queue for the next agent
        await session.commit()
        raise
    return await _with_history(session, call)


@router.get("/{call_id}", response_model=CallWithHistory)
async def get_call(
    call_id: int, session: DbSession, principal: CurrentPrincipal
) -> CallWithHistory:
    """A call and its caller's history."""
    _agents_only(principal)
    call = await session.get(Call, call_id)
    if call is None:
        raise NotFound("no such call", code="call_not_found")
    return await _with_history(session, call)


async def _with_history(session: Any, call: Call) -> CallWithHistory:
    reference = None
    if call.ticket_id is not None:
        reference = (
            await session.execute(select(Ticket.reference).where(Ticket.id == call.ticket_id))
        ).scalar_one_or_none()
    history = History(tickets=[], messages=[], calls=[])
    if call.citizen_id is not None:
        tickets = (
            await session.execute(
                select(Ticket.reference, Ticket.status, Ticket.channel, Ticket.created_at)
                .where(Ticket.citizen_id == call.citizen_id)
                .order_by(Ticket.id.desc())
                .limit(HISTORY)
            )
        ).all()
        history.tickets = [
            {"reference": r, "status": s.value, "channel": ch.value, "created_at": at}
            for r, s, ch, at in tickets
        ]
        messages = (
            await session.execute(
                select(Message.direction, Message.channel, Message.body, Message.created_at)
                .where(Message.citizen_id == call.citizen_id)
                .order_by(Message.id.desc())
                .limit(2 * HISTORY)
            )
        ).all()
        history.messages = [
            {"direction": d.value, "channel": ch.value, "body": b, "created_at": at}
            for d, ch, b, at in messages
        ]
        calls = (
            await session.execute(
                select(Call.id, Call.direction, Call.purpose, Call.started_at, Call.status)
                .where(Call.citizen_id == call.citizen_id, Call.id != call.id)
                .order_by(Call.id.desc())
                .limit(HISTORY)
            )
        ).all()
        history.calls = [
            {"id": i, "direction": d.value, "purpose": p, "started_at": at, "status": st}
            for i, d, p, at, st in calls
        ]
    state = call.state or {}
    return CallWithHistory(
        call=CallRead(
            id=call.id,
            direction=call.direction.value,
            purpose=call.purpose,
            caller=call.from_addr if call.direction.value == "in" else call.to_addr,
            status=call.status,
            language=call.locale,
            path=list(state.get("path", [])),
            ticket=reference,
            recording_url=call.recording_url,
            transcription=call.transcription,
            started_at=call.started_at,
            ended_at=call.ended_at,
            agent_id=call.agent_id,
        ),
        history=history,
    )
