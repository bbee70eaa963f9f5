"""REST API ``/api/v1`` and the real-time websocket: thin routers, no business rules."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Header, Query, Request, Response, WebSocket, status
from pydantic import BaseModel
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from starlette.websockets import WebSocketDisconnect

from contact import auth, bus, reports, repository, service
from contact.attachments import attachment_read, ticket_attachments
from contact.deps import (
    CurrentPrincipal,
    DbSession,
    RuntimeDep,
    client_of,
    forget_principals,
    principal_for_token,
    token_from,
)
from contact.errors import (
    ErrorBody,
    Forbidden,
    InvalidInput,
    Locked,
    NotFound,
    Unauthorized,
    field_error,
)
from contact.lifecycle import Action, allowed_actions
from contact.models import (
    Channel,
    Citizen,
    Department,
    ExtensionState,
    Outbox,
    OutboxStatus,
    Role,
    Service,
    SlaState,
    Ticket,
    TicketStatus,
    User,
    utcnow,
)
from contact.principal import Principal
from contact.reference import grouped
from contact.routing import Catalogue
from contact.runtime import Runtime
from contact.schemas import (
    ActionBody,
    BlockBody,
    CitizenRead,
    DepartmentRead,
    EventRead,
    MessageRead,
    OutboxRead,
    RoutingRead,
    ServiceRead,
    SummaryRead,
    TicketCreate,
    TicketPage,
    TicketRead,
    TokenRead,
    UserCreate,
    UserRead,
    normalize_phone,
)
from contact.security import hash_password, issue_token, mask_phone

log = logging.getLogger(__name__)

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": desc}
    for code, desc in (
        (400, "Malformed request"),
        (401, "Not signed in"),
        (403, "Not allowed for this role"),
        (404, "Not found, or not visible to the caller"),
        (409, "Illegal transition or concurrent change: carries `status` and `allowed`"),
        (422, "Invalid field: `fields` names each one"),
    )
}

api = APIRouter(prefix="/api/v1", responses=ERRORS)
health = APIRouter()
realtime = APIRouter()

# ------------------------------------------------------------------ health


@health.get("/healthz", tags=["health"])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@health.get("/readyz", tags=["health"], responses={503: {"description": "a store is unreachable"}})
async def readyz(rt: RuntimeDep, response: Response) -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        async with rt.db.session() as s:
            await asyncio.wait_for(s.execute(text("SELECT 1")), timeout=3)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    if rt.settings.REDIS_URL:
        try:
            import redis.asyncio as aioredis

            client = aioredis.from_url(rt.settings.REDIS_URL, socket_timeout=3)
            try:
                await client.ping()
            finally:
                await client.aclose()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"unreachable: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    if not ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return {"status": "ok" if ready else "unavailable", **checks}


# ------------------------------------------------------------------ sign-in


@api.post("/auth/token", response_model=TokenRead, tags=["auth"])
async def sign_in(
    request: Request,
    rt: RuntimeDep,
    session: DbSession,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=200)],
) -> TokenRead:
    result = await auth.authenticate(session, username, password, client_of(request))
    if result.outcome == "account_locked":
        log.warning("sign-in refused: %s is locked", username)
        raise Locked("too many failed sign-ins; try again later", code="account_locked")
    if result.user is None:
        log.warning("sign-in failed for %s", username)
        raise Unauthorized("wrong username or password", code="bad_credentials")
    user = result.user
    log.info("sign-in: %s (%s)", user.username, user.role.value)
    ttl = rt.settings.TOKEN_TTL_HOURS * 3600
    return TokenRead(
        access_token=issue_token(rt.settings.SECRET_KEY, user.id, user.token_version, ttl),
        expires_in=ttl,
    )


@api.get("/me", response_model=UserRead, tags=["auth"])
async def me(principal: CurrentPrincipal, session: DbSession) -> UserRead:
    user = await session.get(User, principal.user_id)
    assert user is not None
    return user_read(user, principal.department)


def user_read(user: User, department: str | None) -> UserRead:
    return UserRead(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        department=department,
        locale=user.locale,
        active=user.active,
    )


# ------------------------------------------------------------------ tickets


def ticket_read(
    t: Ticket,
    phone: str | None,
    cat: Catalogue,
    viewer: Principal,
    *,
    events: list[Any] | None = None,
    messages: list[Any] | None = None,
    attachments: list[Any] | None = None,
    merged_into: str | None = None,
) -> TicketRead:
    dept = cat.dept_by_id.get(t.department_id or -1)
    svc = cat.service_by_id.get(t.service_id or -1)
    district = cat.district_by_id.get(t.district_id or -1)
    routed = cat.dept_by_id.get(t.routing_department_id or -1)
    routed_as = cat.service_by_id.get(t.routing_service_id or -1)
    if not viewer.sees_all:  # departments see the phone only when the citizen allows it
        phone = None if t.anonymous else phone
    return TicketRead(
        reference=t.reference,
        reference_grouped=grouped(t.reference),
        status=t.status.value,
        kind=t.kind.value,
        priority=t.priority.value,
        channel=t.channel.value,
        source=t.source,
        locale=t.locale,
        service=svc.code if svc else None,
        department=dept.code if dept else None,
        district=district.code if district else None,
        title=t.title,
        description=t.description,
        address=t.address,
        phone=phone,
        anonymous=t.anonymous,
        fields=t.fields or {},
        routing=RoutingRead(
            department=routed.code if routed else None,
            service=routed_as.code if routed_as else None,
            reason=t.routing_reason,
            confidence=t.routing_confidence,
            rule=t.routing_rule,
            version=t.routing_version,
        ),
        accept_due_at=t.accept_due_at,
        due_at=t.due_at,
        sla_state=t.sla_state.value,
        extension=t.extension.value,
        extension_until=t.extension_until,
        reply=t.reply,
        satisfaction=t.satisfaction,
        merged_into=merged_into,
        allowed_actions=allowed_actions(t.status, viewer.actor),
        created_at=t.created_at,
        updated_at=t.updated_at,
        dispatched_at=t.dispatched_at,
        accepted_at=t.accepted_at,
        resolved_at=t.resolved_at,
        closed_at=t.closed_at,
        urge_count=t.urge_count,
        service_confirmed_at=t.service_confirmed_at,
        events=events,
        messages=messages,
        attachments=attachments,
    )


async def full_ticket(
    rt: Runtime, session: DbSession, principal: Principal, reference: str
) -> TicketRead:
    ticket, phone = await repository.get_ticket(session, principal, reference)
    events = await repository.ticket_events(session, ticket.id)
    messages = await repository.ticket_messages(session, ticket.id)
    into = None
    if ticket.merged_into_id:
        target = await session.get(Ticket, ticket.merged_into_id)
        into = target.reference if target else None
    return ticket_read(
        ticket,
        phone,
        await rt.catalogue(),
        principal,
        events=[EventRead.model_validate(e, from_attributes=True) for e in events],
        messages=[
            MessageRead(
                id=m.id,
                channel=m.channel.value,
                direction=m.direction.value,
                body=m.body,
                status=m.status.value,
                template=m.template,
                created_at=m.created_at,
            )
            for m in messages
        ],
        attachments=[
            attachment_read(ticket.reference, a)
            for a in await ticket_attachments(session, ticket.id)
        ],
        merged_into=into,
    )


def as_json(model: BaseModel, status_code: int = 200) -> Response:
    """A model serialized once (the route's ``response_model`` documents it)."""
    return Response(model.model_dump_json(), status_code, media_type="application/json")


@api.post("/tickets", status_code=201, response_model=TicketRead, tags=["tickets"])
async def create_ticket(
    rt: RuntimeDep,
    session: DbSession,
    principal: CurrentPrincipal,
    data: TicketCreate,
    idempotency_key: Annotated[str | None, Header(max_length=100)] = None,
) -> Response:
    """Intake. With an ``Idempotency-Key`` header a retry returns the same ticket (200)."""
    if not principal.sees_all:
        raise Forbidden("departments do not take in tickets")
    external = None
    if idempotency_key:
        external = (
            "idem:"
            + hashlib.sha256(f"{principal.name}:{idempotency_key}".encode()).hexdigest()[:58]
        )
        existing = (
            await session.execute(select(Ticket.reference).where(Ticket.external_ref == external))
        ).scalar_one_or_none()
        if existing:
            return as_json(await full_ticket(rt, session, principal, existing))
    try:
        ticket, _ = await service.open_ticket(rt, session, data, principal, external_ref=external)
        await rt.commit(session)
    except IntegrityError:
        await session.rollback()
        rt.discard(session)
        if external is None:
            raise
        existing = (
            await session.execute(select(Ticket.reference).where(Ticket.external_ref == external))
        ).scalar_one()
        return as_json(await full_ticket(rt, session, principal, existing))
    read = ticket_read(ticket, data.phone, await rt.catalogue(), principal, events=[], messages=[])
    return as_json(read, 201)


@api.get("/tickets", response_model=TicketPage, tags=["tickets"])
async def list_tickets(
    rt: RuntimeDep,
    session: DbSession,
    principal: CurrentPrincipal,
    status_: Annotated[list[TicketStatus] | None, Query(alias="status")] = None,
    department: Annotated[list[str] | None, Query()] = None,
    service_: Annotated[list[str] | None, Query(alias="service")] = None,
    channel: Annotated[list[Channel] | None, Query()] = None,
    phone: Annotated[str | None, Query(max_length=32)] = None,
    overdue: bool | None = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    sla: Annotated[list[SlaState] | None, Query()] = None,
    extension: Annotated[list[ExtensionState] | None, Query()] = None,
    order: Annotated[Literal["newest", "oldest", "due"], Query()] = "newest",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> TicketPage:
    cat = await rt.catalogue()
    filters = repository.TicketFilters(
        status=status_,
        department_ids=[cat.departments[c].id for c in department if c in cat.departments]
        if department
        else None,
        service_ids=[cat.services[c].id for c in service_ if c in cat.services]
        if service_
        else None,
        channel=channel,
        phone=_phone_filter(phone),
        overdue=overdue,
        q=q,
        created_from=created_from,
        created_to=created_to,
        sla=sla,
        extension=extension,
        order=order,
    )
    rows, total = await repository.list_tickets(
        session, principal, filters, limit=limit, offset=offset
    )
    return TicketPage(
        items=[ticket_read(t, p, cat, principal) for t, p in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


def _phone_filter(phone: str | None) -> str | None:
    if not phone:
        return None
    try:
        return normalize_phone(phone)
    except ValueError as exc:
        raise field_error("phone", str(exc)) from None


@api.get("/tickets/{reference}", response_model=TicketRead, tags=["tickets"])
async def get_ticket(
    rt: RuntimeDep, session: DbSession, principal: CurrentPrincipal, reference: str
) -> TicketRead:
    return await full_ticket(rt, session, principal, reference)


@api.post("/tickets/{reference}/actions/{action}", response_model=TicketRead, tags=["tickets"])
async def ticket_action(
    rt: RuntimeDep,
    session: DbSession,
    principal: CurrentPrincipal,
    reference: str,
    action: Action,
    body: ActionBody | None = None,
) -> TicketRead:
    """One lifecycle move: dispatch, accept, return, request-/grant-/deny-extension, resolve,
    reopen, close, urge, merge, note. Illegal moves answer 409 with ``status`` and ``allowed``."""
    ticket = await service.act(rt, session, principal, reference, action, body or ActionBody())
    await rt.commit(session)
    try:
        return await full_ticket(rt, session, principal, ticket.reference)
    except NotFound:  # the move took it out of the caller's sight (a return): what it was
        return ticket_read(ticket, None, await rt.catalogue(), principal)


# ------------------------------------------------------------------ catalogue, users


@api.get("/departments", response_model=list[DepartmentRead], tags=["catalogue"])
async def departments(rt: RuntimeDep, principal: CurrentPrincipal) -> list[DepartmentRead]:
    cat = await rt.catalogue()
    return [
        DepartmentRead(
            code=d.code,
            name_zh=d.name_zh,
            name_en=d.name_en,
            level=d.level,
            parent=d.parent,
            district=d.district,
        )
        for d in sorted(cat.departments.values(), key=lambda d: d.code)
    ]


def service_read(s: Service, dept_code: str) -> ServiceRead:
    return ServiceRead(
        code=s.code,
        name_zh=s.name_zh,
        name_en=s.name_en,
        group_zh=s.group_zh,
        group_en=s.group_en,
        description_zh=s.description_zh,
        description_en=s.description_en,
        kind=s.kind.value,
        department=dept_code,
        territorial=s.territorial,
        keywords=list(s.keywords or []),
        fields=list(s.fields or []),
    )


@api.get("/services", response_model=list[ServiceRead], tags=["catalogue"])
async def services(session: DbSession, principal: CurrentPrincipal) -> list[ServiceRead]:
    rows = await session.execute(
        select(Service, Department.code)
        .join(Department, Department.id == Service.default_department_id)
        .where(Service.active)
        .order_by(Service.group_en, Service.code)
    )
    return [service_read(s, code) for s, code in rows.all()]


@api.get("/services/{code}", response_model=ServiceRead, tags=["catalogue"])
async def service_detail(session: DbSession, principal: CurrentPrincipal, code: str) -> ServiceRead:
    row = (
        await session.execute(
            select(Service, Department.code)
            .join(Department, Department.id == Service.default_department_id)
            .where(Service.code == code)
        )
    ).first()
    if row is None:
        raise NotFound(f"no service '{code}'", code="service_not_found")
    return service_read(row[0], row[1])


def _require_supervisor(principal: Principal) -> None:
    if not principal.supervisor:
        raise Forbidden("supervisors and admins only")


def _require_admin(principal: Principal) -> None:
    if principal.actor.value != Role.admin.value:
        raise Forbidden("admins only")


@api.get("/users", response_model=list[UserRead], tags=["users"])
async def users(session: DbSession, principal: CurrentPrincipal) -> list[UserRead]:
    _require_supervisor(principal)
    rows = await session.execute(
        select(User, Department.code)
        .outerjoin(Department, Department.id == User.department_id)
        .order_by(User.username)
    )
    return [user_read(u, code) for u, code in rows.all()]


@api.post("/users", response_model=UserRead, status_code=201, tags=["users"])
async def create_user(
    session: DbSession, principal: CurrentPrincipal, data: UserCreate
) -> UserRead:
    _require_admin(principal)
    dept_id = None
    if data.role == Role.department:
        if not data.department:
            raise field_error("department", "required for the department role")
        dept_id = (
            await session.execute(select(Department.id).where(Department.code == data.department))
        ).scalar_one_or_none()
        if dept_id is None:
            raise field_error("department", f"unknown department '{data.department}'")
    elif data.department:
        raise field_error("department", "only department users are bound to a department")
    if (await session.execute(select(User.id).where(User.username == data.username))).first():
        raise InvalidInput("username taken", code="username_taken", fields={"username": "taken"})
    user = User(
        username=data.username,
        display_name=data.display_name,
        password_hash=hash_password(data.password),
        role=data.role,
        department_id=dept_id,
        locale=data.locale,
    )
    session.add(user)
    await session.commit()
    forget_principals()
    return user_read(user, data.department if dept_id else None)


@api.get("/outbox", response_model=list[OutboxRead], tags=["operations"])
async def outbox_rows(
    session: DbSession,
    principal: CurrentPrincipal,
    status_: Annotated[OutboxStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[OutboxRead]:
    """Notifications and their delivery state; ``status=dead`` lists the dead letters."""
    _require_supervisor(principal)
    stmt = select(Outbox).order_by(Outbox.id.desc()).limit(limit)
    if status_:
        stmt = stmt.where(Outbox.status == status_)
    return [
        OutboxRead(
            id=o.id,
            key=o.key.rsplit(":", 1)[0],
            channel=o.channel.value,
            recipient=mask_phone(o.recipient),
            template=o.template,
            status=o.status.value,
            attempts=o.attempts,
            next_attempt_at=o.next_attempt_at,
            last_error=o.last_error,
            created_at=o.created_at,
            sent_at=o.sent_at,
        )
        for o in (await session.execute(stmt)).scalars()
    ]


@api.post("/outbox/{outbox_id}/retry", response_model=OutboxRead, tags=["operations"])
async def retry_outbox(
    rt: RuntimeDep, session: DbSession, principal: CurrentPrincipal, outbox_id: int
) -> OutboxRead:
    """Send a dead letter again (after fixing its cause)."""
    _require_supervisor(principal)
    result = await session.execute(
        update(Outbox)
        .where(Outbox.id == outbox_id, Outbox.status == OutboxStatus.dead)
        .values(status=OutboxStatus.pending, attempts=0, next_attempt_at=utcnow())
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound("no dead letter with that id")
    await session.commit()
    await rt.jobs.kick([outbox_id])
    rows = await outbox_rows(session, principal, None, 500)
    return next(r for r in rows if r.id == outbox_id)


# ------------------------------------------------------------------ citizens, statistics


@api.post("/citizens/block", response_model=CitizenRead, tags=["citizens"])
async def block_number(
    rt: RuntimeDep, session: DbSession, principal: CurrentPrincipal, body: BlockBody
) -> CitizenRead:
    """Block (or unblock) a number: its texts are stored and never answered."""
    _require_supervisor(principal)
    citizen_id = await service.citizen_for_phone(session, body.phone, rt.settings.DEFAULT_LOCALE)
    citizen = await session.get(Citizen, citizen_id)
    assert citizen is not None
    citizen.blocked = body.blocked
    await session.commit()
    log.info(
        "number %s %s by %s",
        mask_phone(body.phone),
        "blocked" if body.blocked else "unblocked",
        principal.name,
    )
    return CitizenRead(
        phone=body.phone,
        locale=citizen.locale,
        opt_outs=list(citizen.opt_outs or []),
        blocked=citizen.blocked,
    )


@api.get("/stats/summary", response_model=SummaryRead, tags=["statistics"])
async def stats_summary(
    session: DbSession,
    principal: CurrentPrincipal,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
) -> SummaryRead:
    """Volume and the rates cities are ranked by, over tickets created in the period
    (default: the last 30 days). Departments see their own figures."""
    if principal.actor.value == Role.agent.value:
        raise Forbidden("statistics are for supervisors, admins and departments")
    end = to or utcnow()
    start = from_ or end - timedelta(days=30)
    if start.tzinfo is None or end.tzinfo is None:
        raise field_error("from", "needs a time zone offset")
    s = await reports.summary(session, principal, start, end)
    return SummaryRead(
        period_from=s.period_from,
        period_to=s.period_to,
        tickets=s.tickets,
        by_status=s.by_status,
        by_channel=s.by_channel,
        response_rate=s.response_rate,
        on_time_rate=s.on_time_rate,
        satisfaction_rate=s.satisfaction_rate,
        resolution_rate=s.resolution_rate,
        reopen_rate=s.reopen_rate,
        ratings=s.ratings,
        satisfied=s.satisfied,
        reopened=s.reopened,
    )


# ------------------------------------------------------------------ real time


# How often an open socket checks that its user may still sign in.
RECHECK_SECONDS = 30.0


@realtime.websocket("/ws")
async def websocket_events(websocket: WebSocket, since: int | None = None) -> None:
    """Events the signed-in user may see; ``?since=<id>`` replays what came after that id."""
    rt: Runtime = websocket.app.state.runtime
    principal = await principal_for_token(rt, token_from(websocket))
    if principal is None:
        await websocket.close(code=4401, reason="sign in first")
        return
    if not _same_origin(websocket):
        # A page on another site may open a websocket with our cookie: refuse it.
        await websocket.close(code=4403, reason="cross-site")
        return
    viewer = _viewer(principal)
    await websocket.accept()
    sub = rt.bus.hub.subscribe()  # subscribe before replaying: nothing falls in between
    reader: asyncio.Task[None] | None = None
    getter: asyncio.Future[Any] | None = None
    sent: set[int] = set()
    try:
        if since is not None:
            async with rt.db.session() as s:
                for msg in await bus.since(s, since):
                    if viewer.may_see(msg):
                        await websocket.send_text(msg.wire_text)
                        sent.add(msg.id)
        else:
            # Where the log stands: a client that reconnects asks for what came after it.
            async with rt.db.session() as s:
                head = await bus.head(s)
            await websocket.send_json({"id": head, "type": "hello"})
        reader = asyncio.create_task(_drain(websocket))
        checked = time.monotonic()
        while not reader.done():
            if time.monotonic() - checked >= RECHECK_SECONDS:
                # A user deactivated or signed out elsewhere stops hearing events.
                now_principal = await principal_for_token(rt, token_from(websocket))
                if now_principal is None:
                    await websocket.close(code=4401, reason="signed out")
                    break
                viewer = _viewer(now_principal)  # a new role or department applies now
                checked = time.monotonic()
            if getter is None:
                getter = asyncio.ensure_future(sub.queue.get())
            done, _ = await asyncio.wait(
                {getter, reader}, timeout=RECHECK_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
            if reader in done:
                break
            if getter not in done:
                continue  # quiet: check the user again, keep waiting for the same event
            msg, getter = getter.result(), None
            if msg.id in sent or not viewer.may_see(msg):
                continue
            await websocket.send_text(msg.wire_text)
            if sub.overflowed:
                await websocket.close(code=4000, reason="too slow; reconnect with ?since=")
                break
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        rt.bus.hub.unsubscribe(sub)
        if getter is not None:
            getter.cancel()
        if reader is not None:
            reader.cancel()


def _viewer(principal: Principal) -> bus.Viewer:
    return bus.Viewer(
        all_departments=principal.sees_all,
        departments=principal.scope,
        supervisor=principal.supervisor,
    )


def _same_origin(websocket: WebSocket) -> bool:
    """Cookie-authenticated sockets must come from a page of this site (browsers send
    ``Origin``); bearer-token clients are not browsers riding on a cookie."""
    if websocket.headers.get("authorization"):
        return True
    origin = websocket.headers.get("origin")
    if origin is None:
        return True  # not a browser
    host = websocket.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


async def _drain(websocket: WebSocket) -> None:
    """Read until the client goes away (clients send nothing that matters)."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
