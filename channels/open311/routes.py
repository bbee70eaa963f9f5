"""The GeoReport v2 endpoints under ``/open311/v2/``: thin, every answer in the format the
URL asks for, every error in the standard's error body."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Coroutine
from datetime import datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from channels.open311 import intake, public
from channels.open311.wire import DEFAULT_FORMAT, Open311Error, error_response, format_of, render
from contact import service
from contact.deps import DbSession, RuntimeDep
from contact.errors import ContactError
from contact.lifecycle import Actor
from contact.models import ApiClient, Channel, Service, Ticket, TicketEvent, TicketStatus, utcnow
from contact.principal import Principal
from contact.reference import normalize
from contact.runtime import Runtime

log = logging.getLogger(__name__)

PREFIX = "/open311/v2"
MAX_SPAN = timedelta(days=90)
PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_IDS = 200
# Resources and the methods they take: any other method answers 405, any other path 404.
RESOURCES = (
    (
        re.compile(r"^(discovery|services|tokens/[^/]+|services/[^/]+|requests/[^/]+)\.[^/]+$"),
        "GET",
    ),
    (re.compile(r"^requests\.[^/]+$"), "GET, POST"),
)


def _format_for(request: Request) -> str:
    fmt = str(request.path_params.get("fmt") or request.url.path.rsplit(".", 1)[-1]).lower()
    return fmt if fmt in ("xml", "json") else DEFAULT_FORMAT


class Open311Route(APIRoute):
    """Renders :class:`Open311Error` and the core's errors in the standard's error body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except Open311Error as exc:
                return error_response(_format_for(request), exc)
            except ContactError as exc:
                status = {422: 400, 401: 403}.get(exc.http_status, exc.http_status)
                return error_response(_format_for(request), Open311Error(status, exc.detail))
            except StarletteHTTPException as exc:  # e.g. a body that is not a form
                error = Open311Error(exc.status_code, str(exc.detail))
                return error_response(_format_for(request), error)

        return handle


router = APIRouter(prefix=PREFIX, tags=["open311"], route_class=Open311Route)


def _params(request: Request) -> dict[str, str]:
    return {k: v.strip() for k, v in request.query_params.items()}


def _check_jurisdiction(rt: Runtime, value: str | None) -> None:
    if value and value != rt.settings.open311_jurisdiction:
        raise Open311Error(404, f"unknown jurisdiction_id '{value}'")


def _locale(rt: Runtime, request: Request, given: str | None) -> str:
    return public.locale_from(
        given, request.headers.get("accept-language"), rt.settings.DEFAULT_LOCALE
    )


# ------------------------------------------------------------------ discovery, services


@router.get("/discovery.{fmt}", summary="Service discovery")
async def discovery(request: Request, rt: RuntimeDep, fmt: str) -> Response:
    fmt = format_of(fmt)
    q = _params(request)
    locale = _locale(rt, request, q.get("locale"))
    body = {
        "changeset": public.CHANGESET,
        "contact": public.text(locale, "contact"),
        "key_service": public.text(locale, "key_service"),
        "endpoints": [
            {
                "specification": public.SPECIFICATION,
                "url": rt.settings.PUBLIC_BASE_URL + PREFIX,
                "changeset": public.CHANGESET,
                "type": "production",
                "formats": ["text/xml", "application/json"],
            }
        ],
    }
    return render(fmt, "discovery", body)


@router.get("/services.{fmt}", summary="Service list")
async def services(request: Request, rt: RuntimeDep, session: DbSession, fmt: str) -> Response:
    fmt = format_of(fmt)
    q = _params(request)
    _check_jurisdiction(rt, q.get("jurisdiction_id"))
    locale = _locale(rt, request, q.get("locale"))
    rows = await public.active_services(session)
    return render(fmt, "services", [public.service_record(s, locale) for s in rows])


@router.get("/services/{service_code}.{fmt}", summary="Service definition")
async def service_definition(
    request: Request, rt: RuntimeDep, session: DbSession, service_code: str, fmt: str
) -> Response:
    fmt = format_of(fmt)
    q = _params(request)
    _check_jurisdiction(rt, q.get("jurisdiction_id"))
    locale = _locale(rt, request, q.get("locale"))
    found = await public.active_service(session, service_code)
    if found is None:
        raise Open311Error(404, f"unknown service_code '{service_code}'")
    return render(fmt, "service_definition", public.definition_record(found, locale))


# ------------------------------------------------------------------ reading requests


def _w3c_param(value: str, name: str, rt: Runtime) -> datetime:
    """A W3C datetime with an offset (``2026-11-01T00:00:00Z``) or a date (the city's midnight)."""
    try:
        if len(value) == 10:
            day = datetime.strptime(value, "%Y-%m-%d").date()
            return datetime.combine(day, time(0), tzinfo=rt.settings.tz)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise Open311Error(400, f"{name}: not a W3C datetime, e.g. 2026-11-01T00:00:00Z") from None
    if parsed.tzinfo is None:
        raise Open311Error(400, f"{name}: needs a time zone (Z or an offset such as +08:00)")
    return parsed


def _whole(value: str | None, name: str, default: int, high: int) -> int:
    if not value:
        return default
    if not value.isdigit() or not 1 <= int(value) <= high:
        raise Open311Error(400, f"{name}: a whole number from 1 to {high}")
    return int(value)


def _listed(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


async def _records(
    rt: Runtime, session: DbSession, tickets: list[Ticket], locale: str
) -> list[dict[str, Any]]:
    catalogue = await rt.catalogue()
    extras = await public.extras_for(session, tickets)
    tz = rt.settings.tz
    return [public.request_record(t, catalogue, extras, tz, locale) for t in tickets]


@router.get("/requests.{fmt}", summary="Service requests")
async def list_requests(request: Request, rt: RuntimeDep, session: DbSession, fmt: str) -> Response:
    """Newest first. ``service_request_id`` (comma list) overrides every other filter;
    ``start_date``/``end_date`` span at most 90 days (default: the last 90);
    ``status`` open, closed; ``page_size`` (default 100, at most 1000) and ``page``."""
    fmt = format_of(fmt)
    q = _params(request)
    _check_jurisdiction(rt, q.get("jurisdiction_id"))
    locale = _locale(rt, request, q.get("locale"))
    size = _whole(q.get("page_size"), "page_size", PAGE_SIZE, MAX_PAGE_SIZE)
    page = _whole(q.get("page"), "page", 1, 1_000_000)
    stmt = select(Ticket)
    ids = _listed(q.get("service_request_id"))
    if ids:
        if len(ids) > MAX_IDS:
            raise Open311Error(400, f"service_request_id: at most {MAX_IDS} ids at once")
        stmt = stmt.where(Ticket.reference.in_([normalize(i) for i in ids]))
    else:
        start = _w3c_param(q["start_date"], "start_date", rt) if q.get("start_date") else None
        end = _w3c_param(q["end_date"], "end_date", rt) if q.get("end_date") else None
        if start is None and end is None:
            end = utcnow()
        if start is None:
            assert end is not None
            start = end - MAX_SPAN
        if end is None:
            end = start + MAX_SPAN
        if end < start:
            raise Open311Error(400, "end_date is before start_date")
        if end - start > MAX_SPAN:
            raise Open311Error(400, "start_date to end_date spans more than 90 days")
        stmt = stmt.where(Ticket.created_at >= start, Ticket.created_at <= end)
        codes = _listed(q.get("service_code"))
        if codes:
            stmt = stmt.where(
                Ticket.service_id.in_(select(Service.id).where(Service.code.in_(codes)))
            )
        words = _listed(q.get("status"))
        if any(w not in ("open", "closed") for w in words):
            raise Open311Error(400, "status: open, closed or both (comma separated)")
        if words:
            stmt = stmt.where(Ticket.status.in_(public.statuses_for(words)))
    stmt = stmt.order_by(Ticket.created_at.desc(), Ticket.id.desc())
    tickets = list((await session.execute(stmt.limit(size).offset((page - 1) * size))).scalars())
    return render(fmt, "service_requests", await _records(rt, session, tickets, locale))


@router.get("/requests/{service_request_id}.{fmt}", summary="One service request")
async def one_request(
    request: Request, rt: RuntimeDep, session: DbSession, service_request_id: str, fmt: str
) -> Response:
    fmt = format_of(fmt)
    q = _params(request)
    _check_jurisdiction(rt, q.get("jurisdiction_id"))
    locale = _locale(rt, request, q.get("locale"))
    ticket = (
        await session.execute(
            select(Ticket).where(Ticket.reference == normalize(service_request_id))
        )
    ).scalar_one_or_none()
    if ticket is None:
        raise Open311Error(404, f"unknown service_request_id '{service_request_id}'")
    return render(fmt, "service_requests", await _records(rt, session, [ticket], locale))


@router.get("/tokens/{token}.{fmt}", summary="The request behind a token")
async def token(
    request: Request, rt: RuntimeDep, session: DbSession, token: str, fmt: str
) -> Response:
    """Requests posted here become tickets at once, so the POST answers their
    ``service_request_id`` and no token; a client that resolves tokens anyway may use that
    id as one."""
    fmt = format_of(fmt)
    _check_jurisdiction(rt, _params(request).get("jurisdiction_id"))
    reference = (
        await session.execute(
            select(Ticket.reference).where(
                Ticket.reference == normalize(token), Ticket.channel == Channel.open311
            )
        )
    ).scalar_one_or_none()
    if reference is None:
        raise Open311Error(404, f"unknown token '{token}'")
    return render(fmt, "service_requests", [{"service_request_id": reference, "token": token}])


# ------------------------------------------------------------------ posting a request


@router.post("/requests.{fmt}", summary="Post a service request", status_code=201)
async def post_request(request: Request, rt: RuntimeDep, session: DbSession, fmt: str) -> Response:
    """Form-encoded, as the standard says: ``api_key``, ``service_code``, a location
    (``lat``+``long``, ``address_string`` or ``address_id``), ``attribute[code]``
    (``attribute[code][]`` for a multivaluelist), ``description``, ``phone`` (status
    updates by SMS), ``email``, ``first_name``, ``last_name``, ``media_url``,
    ``device_id``, ``account_id``. With an ``Idempotency-Key`` header a retry answers
    the same request (200)."""
    fmt = format_of(fmt)
    body = await request.form()
    body_items = [(k, v) for k, v in body.multi_items() if isinstance(v, str)]
    form = {k: v for k, v in request.query_params.multi_items()}
    form.update(dict(body_items))
    items = [(k, v) for k, v in body_items if k.startswith("attribute[")] or [
        (k, v) for k, v in request.query_params.multi_items() if k.startswith("attribute[")
    ]
    _check_jurisdiction(rt, form.get("jurisdiction_id", "").strip())
    client = await intake.client_for_key(session, form.get("api_key"))
    client_id, client_name = client.id, client.name
    code = form.get("service_code", "").strip()
    if not code:
        raise Open311Error(400, "service_code is required")
    found = await public.active_service(session, code)
    if found is None:
        raise Open311Error(404, f"unknown service_code '{code}'")
    external = intake.idempotency_ref(client, request.headers.get("idempotency-key"))
    locale = _locale(rt, request, form.get("locale"))
    account_id = form.get("account_id", "").strip()
    if external:
        existing = await _by_external(session, external)
        if existing is not None:
            return _created(rt, fmt, existing, account_id, locale, 200)
    explicit = public.locale_from(form.get("locale"), None, "") or None
    submission = intake.check(
        form, items, found, locale=explicit, region=rt.settings.DEFAULT_REGION
    )
    try:
        ticket, _ = await service.open_ticket(
            rt,
            session,
            submission.ticket,
            Principal(Actor.citizen, client_name),
            external_ref=external,
            source=client_name,
        )
        now = utcnow()
        session.add(
            TicketEvent(
                ticket_id=ticket.id,
                kind=public.SUBMISSION_EVENT,
                from_status=TicketStatus.received.value,
                to_status=TicketStatus.received.value,
                actor=client_name,
                reason=None,
                data={
                    **submission.details,
                    "client": client_name,
                    "text": intake.staff_summary(client_name, submission.details),
                },
                public=False,
                created_at=now,
            )
        )
        await session.execute(
            update(ApiClient).where(ApiClient.id == client_id).values(last_used_at=now)
        )
        await rt.commit(session)
    except IntegrityError:
        await session.rollback()
        rt.discard(session)
        existing = await _by_external(session, external) if external else None
        if existing is None:
            raise
        return _created(rt, fmt, existing, account_id, locale, 200)
    log.info("open311: request %s from client %s", ticket.reference, client_name)
    return _created(rt, fmt, ticket, account_id, locale, 201)


async def _by_external(session: DbSession, external: str) -> Ticket | None:
    return (
        await session.execute(select(Ticket).where(Ticket.external_ref == external))
    ).scalar_one_or_none()


def _created(
    rt: Runtime, fmt: str, ticket: Ticket, account_id: str, locale: str, status: int
) -> Response:
    """The POST's answer: the new request's id (never a token as well), what to expect."""
    notice = public.service_notice(ticket, rt.settings.tz, locale)
    if ticket.citizen_id is not None:
        sep = "。" if locale == "zh-CN" else ". "
        notice = sep.join(p for p in (notice, public.text(locale, "by_sms")) if p)
    body = [
        {
            "service_request_id": ticket.reference,
            "service_notice": notice,
            "account_id": account_id,
        }
    ]
    return render(fmt, "service_requests", body, status)


# ------------------------------------------------------------------ anything else


@router.api_route(
    "/{rest:path}",
    methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    include_in_schema=False,
)
async def unknown(request: Request, rest: str) -> Response:
    for pattern, allowed in RESOURCES:
        if pattern.match(rest):
            raise Open311Error(
                405, f"{request.method} is not allowed here", headers={"Allow": allowed}
            )
    raise Open311Error(404, "unknown resource: see discovery.xml")
