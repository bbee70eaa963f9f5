"""Use cases of the ticket core. Services never commit: the request or job boundary does.

Every status change goes through :func:`contact.lifecycle.check`, writes one
append-only :class:`TicketEvent`, bumps the ticket's version (so two concurrent
moves cannot both win), records a bus event and, where a citizen should hear of
it, an outbox row — all in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contact import bus, model_router, outbox, repository
from contact.db import insert_into
from contact.errors import Conflict, InvalidInput, field_error
from contact.events import TicketAssigned, TicketCreated, TicketUpdated
from contact.fields import FieldProblem, clean_values
from contact.lifecycle import Action, Move, check
from contact.models import (
    Channel,
    Citizen,
    ExtensionState,
    Priority,
    SlaState,
    Ticket,
    TicketEvent,
    TicketKind,
    TicketStatus,
    utcnow,
)
from contact.notify import URGENT_TEMPLATES, hold_until
from contact.principal import SYSTEM, Principal
from contact.reference import grouped, new_reference
from contact.routing import Catalogue, RoutingDecision, RoutingRequest
from contact.runtime import PolicyInfo, Runtime
from contact.schemas import ActionBody, TicketCreate, normalize_phone
from contact.sla import due_at, final_state

# Channels with a form the citizen or integration filled in: required fields are enforced.
FORM_CHANNELS = frozenset({Channel.web, Channel.kiosk, Channel.open311})


def detect_locale(text: str, default: str) -> str:
    """zh-CN when the text has Chinese characters, en when it is Latin letters only."""
    if any("\u4e00" <= ch <= "\u9fff" for ch in text):
        return "zh-CN"
    if any(ch.isascii() and ch.isalpha() for ch in text):
        return "en"
    return default


def track_url(rt: Runtime, reference: str) -> str:
    return f"{rt.settings.PUBLIC_BASE_URL}/m/track?ref={reference}"


# ------------------------------------------------------------------ citizens


async def citizen_for_phone(session: AsyncSession, phone: str, locale: str) -> int:
    """The citizen with this E.164 phone, created on first contact."""
    stmt = insert_into(session, Citizen, conflict=("phone",), touch=True, returning="id")
    row = dict(phone=phone, locale=locale, opt_outs=[], blocked=False, created_at=utcnow())
    return int((await session.execute(stmt, row)).scalar_one())


# ------------------------------------------------------------------ intake


def _minutes(policy: PolicyInfo, priority: Priority, which: str) -> int:
    prefix = "urgent_" if priority == Priority.urgent else ""
    return int(getattr(policy, f"{prefix}{which}_minutes"))


async def open_ticket(
    rt: Runtime,
    session: AsyncSession,
    data: TicketCreate,
    principal: Principal,
    *,
    citizen_id: int | None = None,
    external_ref: str | None = None,
    source: str | None = None,
) -> tuple[Ticket, RoutingDecision]:
    """Intake (受理): a contact becomes a ticket, routed and given its deadline."""
    catalogue = await rt.catalogue()
    if data.service and data.service not in catalogue.services:
        raise field_error("service", f"unknown service '{data.service}'")
    if data.district and data.district not in catalogue.districts:
        raise field_error("district", f"unknown district '{data.district}'")
    decision = (await model_router.router(rt)).route(
        catalogue,
        RoutingRequest(
            text=f"{data.title} {data.description}".strip(),
            service=data.service,
            address=data.address,
            district=data.district,
            channel=data.channel.value,
            lat=data.lat,
            lon=data.lon,
        ),
    )
    service = catalogue.services.get(decision.service or "")
    try:
        fields = clean_values(
            service.fields if service else (),
            data.fields,
            enforce_required=data.service is not None and data.channel in FORM_CHANNELS,
        )
    except FieldProblem as problem:
        raise field_error(problem.where, problem.message) from None
    kind = data.kind or (TicketKind(service.kind) if service else TicketKind.complaint)
    locale = data.locale or detect_locale(data.description, rt.settings.DEFAULT_LOCALE)
    now = utcnow()
    resolve_by = None
    if service is not None:
        policy = (await rt.policies())[service.policy_id]
        resolve_by = due_at(
            now,
            _minutes(policy, data.priority, "resolve"),
            await rt.calendar(),
            policy.working_time,
        )
    if citizen_id is None and data.phone:
        citizen_id = await citizen_for_phone(session, data.phone, locale)

    district = catalogue.districts.get(decision.district or "")
    routed_to = catalogue.departments.get(decision.department or "")
    values: dict[str, Any] = dict(
        status=TicketStatus.received,
        kind=kind,
        priority=data.priority,
        channel=data.channel,
        locale=locale,
        service_id=service.id if service else None,
        department_id=None,
        citizen_id=citizen_id,
        anonymous=data.anonymous,
        title=data.title,
        description=data.description,
        address=data.address,
        district_id=district.id if district else None,
        lat=data.lat,
        lon=data.lon,
        fields=fields,
        routing_department_id=routed_to.id if routed_to else None,
        routing_reason=decision.reason,
        routing_confidence=decision.confidence,
        routing_rule=decision.rule,
        routing_version=decision.version,
        routing_service_id=service.id if service else None,
        due_at=resolve_by,
        sla_state=SlaState.ok,
        extension=ExtensionState.none,
        reopen_count=0,
        dispatch_count=0,
        urge_count=0,
        external_ref=external_ref,
        source=source,
        created_by_id=principal.user_id,
        version=1,
        created_at=now,
        updated_at=now,
    )
    local_now = now.astimezone(rt.settings.tz)
    for _ in range(8):  # a reference collision is rare; never reuse one
        values["reference"] = new_reference(local_now)
        ticket_id = (
            await session.execute(
                insert_into(session, Ticket, conflict=("reference",), returning="id"), values
            )
        ).scalar_one_or_none()
        if ticket_id is not None:
            break
    else:  # pragma: no cover - 8 collisions in a row
        raise Conflict("could not allocate a reference; try again")
    ticket = Ticket(id=ticket_id, **values)

    await session.execute(
        insert_into(session, TicketEvent),
        dict(
            ticket_id=ticket_id,
            kind="created",
            from_status=None,
            to_status=TicketStatus.received.value,
            actor_id=principal.user_id,
            actor=principal.name,
            reason=None,
            data={
                "channel": data.channel.value,
                "routing": {"department": decision.department, "reason": decision.reason},
            },
            public=True,
            created_at=now,
        ),
    )
    await bus.record(
        session,
        TicketCreated(
            reference=ticket.reference,
            ticket_id=ticket_id,
            status="received",
            channel=data.channel.value,
            service=decision.service,
            department=None,
        ),
        bus.Audience(),
    )
    # The citizen hears the reference in-band on SMS (the reply); elsewhere by SMS.
    if data.phone and data.channel != Channel.sms and citizen_id is not None:
        await _notify(
            rt,
            session,
            ticket,
            data.phone,
            "ticket_received",
            f"created:{ticket_id}",
            {},
        )
    threshold = rt.settings.ROUTING_AUTO_DISPATCH
    if threshold is not None and routed_to is not None and decision.confidence >= threshold:
        await _apply(
            rt,
            session,
            ticket,
            data.phone,
            SYSTEM,
            Action.dispatch,
            ActionBody(
                department=routed_to.code,
                reason=f"auto-dispatch: confidence {decision.confidence:.2f} ≥ {threshold:.2f}",
            ),
        )
    return ticket, decision


# ------------------------------------------------------------------ lifecycle actions


@dataclass
class Change:
    """What an action does to a ticket, built by its handler and applied in one place."""

    values: dict[str, Any] = field(default_factory=dict)
    event_data: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    public: bool = True
    notify: tuple[str, dict[str, Any]] | None = None  # (template, context) to the citizen
    # (template, context, departments) told on their duty mobiles (urging, escalation)
    tell_departments: tuple[str, dict[str, Any], tuple[str, ...]] | None = None
    then: Action | None = None  # an automatic follow-up move (reopen → dispatch)


Handler = Callable[
    [Runtime, AsyncSession, Ticket, Principal, ActionBody, Catalogue, datetime], Awaitable[Change]
]


async def _dispatch(rt, session, t, who, body, cat, now) -> Change:  # type: ignore[no-untyped-def]
    service = cat.service_by_id.get(t.service_id or -1)
    chosen = None
    if body.service is not None:
        chosen = cat.services.get(body.service)
        if chosen is None:
            raise field_error("service", f"unknown service '{body.service}'")
    new = chosen if chosen is not None and chosen.id != t.service_id else None  # 改事项
    code = body.department
    if code is None and new is not None:
        # A new service without a department goes where the rules send that service.
        district = cat.district_by_id.get(t.district_id or -1)
        code = (
            (await model_router.router(rt))
            .route(
                cat,
                RoutingRequest(
                    text=f"{t.title} {t.description}".strip(),
                    service=new.code,
                    address=t.address,
                    district=district.code if district else None,
                    channel=t.channel.value,
                ),
            )
            .department
        )
    if code is None:
        previous = cat.dept_by_id.get(t.department_id or -1)
        suggested = cat.dept_by_id.get(t.routing_department_id or -1)
        # Re-dispatch after a reopen goes back to the department that answered.
        target = previous if t.status == TicketStatus.reopened and previous else suggested
        if target is None:
            raise field_error("department", "required: the ticket has no routing suggestion")
        code = target.code
    dept = cat.departments.get(code)
    if dept is None:
        raise field_error("department", f"unknown department '{code}'")
    previous_code = cat.dept_by_id[t.department_id].code if t.department_id else None
    if previous_code == code and t.status in (TicketStatus.dispatched, TicketStatus.accepted):
        raise Conflict(f"the ticket is already with {code}", status=t.status.value)
    values: dict[str, Any] = {}
    event_data: dict[str, Any] = {"department": code, "previous_department": previous_code}
    if chosen is not None:
        values["service_confirmed_at"] = now
    if new is not None:
        # Reclassified: the deadline is the new service's, counted from intake, unless
        # a granted extension has set it.
        event_data |= {"service": new.code, "previous_service": service and service.code}
        values["service_id"] = new.id
        if t.extension != ExtensionState.granted:
            policy = (await rt.policies())[new.policy_id]
            values["due_at"] = due_at(
                t.created_at,
                _minutes(policy, t.priority, "resolve"),
                await rt.calendar(),
                policy.working_time,
            )
        service = new
    accept_by = None
    if service is not None:
        policy = (await rt.policies())[service.policy_id]
        accept_by = due_at(
            now, _minutes(policy, t.priority, "accept"), await rt.calendar(), policy.working_time
        )
    return Change(
        values=dict(
            values,
            department_id=dept.id,
            dispatched_at=now,
            accepted_at=None,
            accept_due_at=accept_by,
            dispatch_count=t.dispatch_count + 1,
            sla_state=SlaState.ok,
        ),
        event_data=event_data,
        reason=body.reason,
    )


async def _accept(rt, session, t, who, body, cat, now) -> Change:  # type: ignore[no-untyped-def]
    return Change(values=dict(accepted_at=now, sla_state=SlaState.ok))


async def _return(rt, session, t, who, body, cat, now) -> Change:  # type: ignore[no-untyped-def]
    dept = cat.dept_by_id.get(t.department_id or -1)
    return Change(
        values=dict(
            department_id=None, accepted_at=None, accept_due_at=None, sla_state=SlaState.ok
        ),
        event_data={"department": dept.code if dept else None},
        reason=body.reason,
    )


async def _request_extension(rt, session, t, who, body, cat, now) -> Change:  # type: ignore[no-untyped-def]
    until = _aware(body.until, "until")
    if until <= now or (t.due_at is not None and until <= t.due_at):
        raise field_error("until", "must be later than the current deadline")
    return Change(
        values=dict(extension=ExtensionState.requested, extension_until=until),
        event_data={"until": until.isoformat(), "due_at": _iso(t.due_at)},
        reason=body.reason,
        public=False,
    )


async def _grant_extension(rt, session, t, who, body, cat, now) -> Change:  # type: ignore[no-untyped-def]
    until = t.extension_until
    local = until.astimezone(rt.settings.tz) if until else None
    sla = SlaState.ok if until and until > now else t.sla_state
    # The citizen hears the department's reason unless the supervisor gave another.
    reason = body.reason or await _extension_reason(session, t.id)
    return Change(
        values=dict(extension=ExtensionState.granted, due_at=until, sla_state=sla),
        event_data={"until": _iso(until), "previous_due_at": _iso(t.due_at)},
        reason=reason,
        notify=(
            "extension_granted",
            {"until": local.strftime("%Y-%m-%d %H:%M") if local else "", "reason": reason or ""},
        ),
    )


async def _deny_extension(rt, session, t, who, body, cat, now) -> Change:  # type: ignore[no-untyped-def]
    return Change(
        values=dict(extension=ExtensionState.denied),
        reason=body.reason,
        public=False,
    )


async def _resolve(rt, session, t, who, body, cat, now) -> Change:  # type: ignore[no-untyped-def]
    dept = cat.dept_by_id.get(t.department_id or -1)
    return Change(
        values=dict(
            reply=body.reply,
            resolved_at=now,
            sla_state=final_state(now, t.due_at) if t.due_at else SlaState.met,
        ),
        event_data={"reply": body.reply, "department": dept.code if dept else None},
        notify=("ticket_resolved", {}),
    )


async def _reopen(rt, session, t, who, body, cat, now) -> Change:  # type: ignore[no-untyped-def]
    return Change(
        values=dict(
            reopen_count=t.reopen_count + 1,
            resolved_at=None,
            closed_at=None,
            satisfaction=body.satisfaction,
            solved=body.solved,
            sla_state=SlaState.ok,
        ),
        event_data=_rating(body),
        reason=body.reason,
        then=Action.dispatch if t.department_id else None,
    )


def _rating(body: ActionBody) -> dict[str, Any]:
    return {
        k: v
        for k, v in (("satisfaction", body.satisfaction), ("solved", body.solved))
        if v is not None
    }


async def _close(rt, session, t, who, body, cat, now) -> Change:  # type: ignore[no-untyped-def]
    not_accepted = t.status in (TicketStatus.received, TicketStatus.returned)
    rating = _rating(body)
    return Change(
        values=dict(closed_at=now, **rating),
        event_data={"not_accepted": not_accepted, **rating},
        reason=body.reason,
        notify=("ticket_closed", {"reason": body.reason or ""}) if not_accepted else None,
    )


async def _merge(rt, session, t, who, body, cat, now) -> Change:  # type: ignore[no-untyped-def]
    target = await repository.ticket_by_reference(session, body.into or "")
    if target is None:
        raise field_error("into", "no such ticket")
    if target.id == t.id:
        raise field_error("into", "a ticket cannot be merged into itself")
    if target.status in (TicketStatus.merged, TicketStatus.closed):
        raise field_error("into", f"the target ticket is {target.status.value}")
    return Change(
        values=dict(merged_into_id=target.id, closed_at=now),
        event_data={"into": target.reference},
        reason=body.reason,
        notify=("ticket_merged", {"into": target.reference}),
    )


async def _urge(rt, session, t, who, body, cat, now) -> Change:  # type: ignore[no-untyped-def]
    dept = cat.dept_by_id.get(t.department_id or -1)
    return Change(
        values=dict(urge_count=t.urge_count + 1),
        event_data={"count": t.urge_count + 1},
        reason=body.reason,
        public=False,
        tell_departments=(
            "dept_urged",
            {"count": t.urge_count + 1, "reason": body.reason or ""},
            (dept.code,) if dept else (),
        ),
    )


async def _escalate(rt, session, t, who, body, cat, now) -> Change:  # type: ignore[no-untyped-def]
    """提级督办: the ticket becomes urgent, and the bureau above the department hears of it."""
    dept = cat.dept_by_id.get(t.department_id or -1)
    told = [dept.code] if dept else []
    node = dept
    while node is not None and node.parent:
        told.append(node.parent)
        node = cat.departments.get(node.parent)
    return Change(
        values=dict(priority=Priority.urgent, urge_count=t.urge_count + 1),
        event_data={"count": t.urge_count + 1, "told": told},
        reason=body.reason,
        public=False,
        tell_departments=("dept_escalated", {"reason": body.reason or ""}, tuple(told)),
    )


async def _deny_return(rt, session, t, who, body, cat, now) -> Change:  # type: ignore[no-untyped-def]
    """The return is not accepted: the ticket goes back to the department that returned it."""
    returned_by = (
        await session.execute(
            select(TicketEvent.data)
            .where(TicketEvent.ticket_id == t.id, TicketEvent.kind == "returned")
            .order_by(TicketEvent.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    code = str((returned_by or {}).get("department") or "")
    if code not in cat.departments:
        raise Conflict("the department that returned this ticket is unknown", status=t.status.value)
    change = await _dispatch(
        rt, session, t, who, ActionBody(department=code, reason=body.reason), cat, now
    )
    change.tell_departments = ("dept_return_denied", {"reason": body.reason or ""}, (code,))
    return change


async def _note(rt, session, t, who, body, cat, now) -> Change:  # type: ignore[no-untyped-def]
    """An internal note, or (``public``) a note on the track page; a public note from the
    contact centre is also sent to the citizen over their channel (a reply)."""
    notify = None
    if body.public and who.sees_all and body.text:
        notify = ("reply", {"body": body.text})
    return Change(event_data={"text": body.text}, public=body.public, notify=notify)


HANDLERS: dict[Action, Handler] = {
    Action.dispatch: _dispatch,
    Action.escalate: _escalate,
    Action.deny_return: _deny_return,
    Action.accept: _accept,
    Action.return_: _return,
    Action.request_extension: _request_extension,
    Action.grant_extension: _grant_extension,
    Action.deny_extension: _deny_extension,
    Action.resolve: _resolve,
    Action.reopen: _reopen,
    Action.close: _close,
    Action.merge: _merge,
    Action.urge: _urge,
    Action.note: _note,
}


def _aware(value: datetime | None, name: str) -> datetime:
    if value is None:
        raise field_error(name, "required")
    if value.tzinfo is None:
        raise field_error(name, "needs a time zone offset, e.g. 2026-12-01T17:00:00+08:00")
    return value


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _require(move: Move, body: ActionBody) -> None:
    missing = {
        name: "required for this action"
        for name in move.needs
        if getattr(body, name) in (None, "")
        or (isinstance(getattr(body, name), str) and not getattr(body, name).strip())
    }
    if missing:
        raise InvalidInput("missing: " + ", ".join(sorted(missing)), fields=missing)


async def act(
    rt: Runtime,
    session: AsyncSession,
    principal: Principal,
    reference: str,
    action: Action,
    body: ActionBody,
) -> Ticket:
    """Apply one lifecycle action; raises NotFound / IllegalTransition / Forbidden / Conflict."""
    ticket, phone = await repository.get_ticket(session, principal, reference, for_update=True)
    await _apply(rt, session, ticket, phone, principal, action, body)
    return ticket


async def _apply(
    rt: Runtime,
    session: AsyncSession,
    ticket: Ticket,
    phone: str | None,
    principal: Principal,
    action: Action,
    body: ActionBody,
) -> None:
    move = check(
        ticket.status, action, principal.actor, kind=ticket.kind, extension=ticket.extension
    )
    _require(move, body)
    catalogue = await rt.catalogue()
    now = utcnow()
    change = await HANDLERS[action](rt, session, ticket, principal, body, catalogue, now)
    before = ticket.status
    after = move.to or before
    values = {**change.values, "status": after, "updated_at": now, "version": ticket.version + 1}
    result = await session.execute(
        update(Ticket)
        .where(Ticket.id == ticket.id, Ticket.version == ticket.version)
        .values(**values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(
            "the ticket was changed by someone else; reload and try again",
            code="ticket_changed",
            status=before.value,
        )
    for k, v in values.items():
        setattr(ticket, k, v)

    reason = change.reason
    event_id = (
        await session.execute(
            insert_into(session, TicketEvent, returning="id"),
            dict(
                ticket_id=ticket.id,
                kind=move.event,
                from_status=before.value,
                to_status=after.value,
                actor_id=principal.user_id,
                actor=principal.name,
                reason=reason,
                data=change.event_data,
                public=change.public,
                created_at=now,
            ),
        )
    ).scalar_one()

    dept = catalogue.dept_by_id.get(ticket.department_id or -1)
    dept_code = dept.code if dept else None
    await bus.record(
        session,
        TicketUpdated(
            reference=ticket.reference,
            ticket_id=ticket.id,
            kind=move.event,
            status=after.value,
            department=dept_code,
            event_id=event_id,
        ),
        bus.Audience(department=dept_code or change.event_data.get("department")),
    )
    if action == Action.dispatch and dept_code:
        await bus.record(
            session,
            TicketAssigned(
                reference=ticket.reference,
                ticket_id=ticket.id,
                department=dept_code,
                previous_department=change.event_data.get("previous_department"),
            ),
            bus.Audience(department=dept_code),
        )

    if change.notify:
        template, context = change.notify
        await _notify_reporters(
            rt, session, ticket, phone, template, f"{move.event}:{event_id}", context
        )

    if change.tell_departments:
        template, context, codes = change.tell_departments
        await _tell_departments(
            rt, session, ticket, catalogue, codes, template, f"{move.event}:{event_id}", context
        )

    if change.then is not None:
        await _apply(rt, session, ticket, phone, SYSTEM, change.then, ActionBody())


async def _extension_reason(session: AsyncSession, ticket_id: int) -> str | None:
    return (
        await session.execute(
            select(TicketEvent.reason)
            .where(TicketEvent.ticket_id == ticket_id, TicketEvent.kind == "extension_requested")
            .order_by(TicketEvent.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


# ------------------------------------------------------------------ notifications


def delivery_channel(rt: Runtime, ticket: Ticket, template: str) -> Channel:
    """Status updates go by SMS, or by phone call where the citizen asked for it; the
    reference itself always comes by SMS (the citizen keeps it)."""
    wanted = ticket.notify_channel
    if template in SMS_ONLY or wanted is None or wanted not in rt.registry.adapters:
        return Channel.sms
    return wanted


SMS_ONLY = frozenset({"ticket_received"})


async def _notify_reporters(
    rt: Runtime,
    session: AsyncSession,
    ticket: Ticket,
    phone: str | None,
    template: str,
    event_key: str,
    context: dict[str, Any],
) -> None:
    if phone:
        await _notify(rt, session, ticket, phone, template, event_key, context)
    if template in OUTCOMES:  # every reporter of a merged duplicate hears the outcome
        await _tell_duplicates(rt, session, ticket, template, event_key, context)
    elif template == "ticket_merged":
        # Merged into a ticket already resolved: the outcome is known now, not later.
        target = await repository.ticket_by_reference(session, str(context.get("into") or ""))
        if target is not None and target.status == TicketStatus.resolved:
            ticket.reply = target.reply
            ticket.department_id = target.department_id
            outcome = f"{event_key}:outcome"
            if phone:
                await _notify(rt, session, ticket, phone, "ticket_resolved", outcome, {})
            await _tell_duplicates(rt, session, ticket, "ticket_resolved", outcome, {})


# What happened to a ticket that its merged duplicates' reporters hear too (resolved, or
# not accepted).
OUTCOMES = frozenset({"ticket_resolved", "ticket_closed"})


async def _tell_duplicates(
    rt: Runtime,
    session: AsyncSession,
    ticket: Ticket,
    template: str,
    event_key: str,
    context: dict[str, Any],
) -> None:
    """The outcome to every reporter of a ticket merged into this one, or into one of
    those (a duplicate of a duplicate)."""
    seen, todo = {ticket.id}, [ticket.id]
    while todo:
        for dup, dup_phone in await repository.merged_into(session, todo.pop()):
            if dup.id in seen:
                continue
            seen.add(dup.id)
            todo.append(dup.id)
            if dup_phone:
                dup.reply = ticket.reply
                dup.department_id = ticket.department_id
                await _notify(rt, session, dup, dup_phone, template, event_key, context)


async def _tell_departments(
    rt: Runtime,
    session: AsyncSession,
    ticket: Ticket,
    catalogue: Catalogue,
    codes: tuple[str, ...],
    template: str,
    event_key: str,
    context: dict[str, Any],
) -> None:
    """A text to each department's duty mobile, where one is on file. Their clerks also
    see the event live on the workbench; this reaches whoever is away from it."""
    locale = rt.settings.DEFAULT_LOCALE
    zh = locale == "zh-CN"
    due = ticket.due_at.astimezone(rt.settings.tz).strftime("%m-%d %H:%M") if ticket.due_at else ""
    holder = catalogue.dept_by_id.get(ticket.department_id or -1)
    for code in dict.fromkeys(codes):
        dept = catalogue.departments.get(code)
        if dept is None or not dept.phone:
            continue
        try:
            phone = normalize_phone(dept.phone)
        except ValueError:
            continue  # a landline or a short number cannot take a text
        ctx = {
            "reference": ticket.reference,
            "ref_grouped": grouped(ticket.reference),
            "department": (holder.name_zh if zh else holder.name_en) if holder else "",
            "due": due,
            **context,
        }
        await outbox.queue(
            session,
            key=f"{event_key}:{ticket.id}:dept:{code}",
            channel=Channel.sms,
            recipient=phone,
            template=template,
            locale=locale,
            context=ctx,
        )


async def _notify(
    rt: Runtime,
    session: AsyncSession,
    ticket: Ticket,
    phone: str,
    template: str,
    event_key: str,
    context: dict[str, Any],
) -> None:
    catalogue = await rt.catalogue()
    dept = catalogue.dept_by_id.get(ticket.department_id or -1)
    zh = ticket.locale == "zh-CN"
    channel = delivery_channel(rt, ticket, template)
    ctx = {
        "reference": ticket.reference,
        "ref_grouped": grouped(ticket.reference),
        "track_url": track_url(rt, ticket.reference),
        "department": (dept.name_zh if zh else dept.name_en) if dept else "",
        "reply": ticket.reply or "",
        "truncated": False,
        **context,
    }
    ctx = fit_in_parts(rt, channel, template, ticket.locale, ctx)
    now = utcnow()
    hold = (
        None
        if template in URGENT_TEMPLATES
        else hold_until(now, rt.settings.tz, rt.settings.quiet_hours)
    )
    await outbox.queue(
        session,
        key=f"{event_key}:{ticket.id}:{channel.value}:{phone}",
        channel=channel,
        recipient=phone,
        template=template,
        locale=ticket.locale,
        context=ctx,
        ticket_id=ticket.id,
        citizen_id=ticket.citizen_id,
        not_before=hold,
    )


STATUS_PARTS = 2  # a status update stays within two SMS segments (≤ 134 Chinese characters)


def fit_in_parts(
    rt: Runtime, channel: Channel, template: str, locale: str, ctx: dict[str, Any]
) -> dict[str, Any]:
    """Shorten the department's reply until the text fits; the track link carries the rest."""

    def parts(c: dict[str, Any]) -> int:
        return rt.registry.parts(channel, rt.renderer.render(channel.value, template, locale, c))

    reply = str(ctx.get("reply") or "")
    if not reply or parts(ctx) <= STATUS_PARTS:
        return ctx
    lo, hi = 0, len(reply)  # the longest prefix that fits, with the link shown
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if parts({**ctx, "reply": reply[:mid], "truncated": True}) <= STATUS_PARTS:
            lo = mid
        else:
            hi = mid - 1
    return {**ctx, "reply": reply[:lo], "truncated": True}
