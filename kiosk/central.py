"""The central side of the kiosks: ``/api/v1/kiosk/`` for the kiosk runtime.

Every call carries ``Authorization: Bearer <device token>`` of an active kiosk
(``contact kiosk register`` or the admin page; stored as a sha256). A missing, unknown
or revoked token answers 401 ``invalid_token`` with ``WWW-Authenticate: Bearer`` before
anything else is read, and stores nothing. Each call the kiosk makes is noted as
``last_seen_at``.

- ``POST submissions`` — a citizen's report becomes a ``kiosk`` ticket
  (:mod:`kiosk.central_intake`), once per ``Idempotency-Key``.
- ``POST heartbeat`` — every 30 s: version, local queue, printer; the supervisors'
  wallboard hears ``kiosk.heartbeat``. Silent for 90 s, the kiosk is marked offline by
  the jobs' kiosk scan and ``kiosk.offline`` goes out, once per outage.
- ``GET catalogue`` — what the kiosk needs to work offline (:mod:`kiosk.central_catalogue`).
- ``GET track`` — a request's public timeline (:mod:`kiosk.central_track`).

Receipts carry a provisional ``K…`` number until the submission arrives;
:func:`register` lets the mobile web's track page resolve it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import select, update

from channels.mobile_web import track
from contact import bus
from contact.deps import DbSession, RuntimeDep
from contact.errors import BadRequest, ContactError, ErrorBody
from contact.models import KioskDevice, utcnow
from contact.security import hash_secret
from contact.tasks import KIOSK_AUDIENCE, OFFLINE_MARK, kiosk_event
from kiosk import central_catalogue, central_intake, central_track
from kiosk.central_intake import IDEMPOTENCY_MAX, Device, SubmissionIn, SubmissionRead

log = logging.getLogger(__name__)

PREFIX = "/api/v1/kiosk"
TOKEN_MAX = 200


class InvalidToken(ContactError):
    code = "invalid_token"
    http_status = 401

    def __init__(self, detail: str, *, error: bool) -> None:
        super().__init__(detail)
        challenge = 'Bearer realm="kiosk"'
        if error:
            challenge += ', error="invalid_token"'
        self.headers = {"WWW-Authenticate": challenge}


class KioskRoute(APIRoute):
    """Answers the core's errors in their one body, with the headers an error carries
    (``WWW-Authenticate`` on 401, ``Retry-After`` on 429)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except ContactError as exc:
                headers = getattr(exc, "headers", None)
                return JSONResponse(exc.body(), status_code=exc.http_status, headers=headers)

        return handle


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "no, unknown or revoked device token"},
    422: {"model": ErrorBody, "description": "a field is missing or wrong (named in fields)"},
}
router = APIRouter(prefix=PREFIX, tags=["kiosk"], route_class=KioskRoute, responses=ERRORS)


# ------------------------------------------------------------------ the device


async def current_device(request: Request, session: DbSession) -> Device:
    """The active kiosk whose token the request carries."""
    header = request.headers.get("authorization")
    if not header:
        raise InvalidToken(
            "a kiosk device token is required: Authorization: Bearer <token>", error=False
        )
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > TOKEN_MAX:
        raise InvalidToken("Authorization must be 'Bearer <device token>'", error=True)
    row = (
        await session.execute(
            select(
                KioskDevice.id, KioskDevice.name, KioskDevice.location, KioskDevice.active
            ).where(KioskDevice.token_hash == hash_secret(token))
        )
    ).first()
    if row is None or not row.active:
        raise InvalidToken("unknown or revoked kiosk device token", error=True)
    return Device(id=row.id, name=row.name, location=row.location or "")


CurrentDevice = Annotated[Device, Depends(current_device)]


# ------------------------------------------------------------------ submissions


@router.post(
    "/submissions",
    response_model=SubmissionRead,
    status_code=201,
    summary="Hand in a citizen's report",
    responses={
        200: {"model": SubmissionRead, "description": "a retry: the same key's ticket"},
        400: {"model": ErrorBody, "description": "Idempotency-Key missing or too long"},
        409: {
            "model": ErrorBody,
            "description": "provisional_conflict: the K-number is another submission's; "
            "idempotency_key_reused: the key was used for another submission",
        },
    },
)
async def submit(
    response: Response,
    rt: RuntimeDep,
    session: DbSession,
    device: CurrentDevice,
    body: SubmissionIn,
    idempotency_key: Annotated[
        str | None, Header(description=f"1 to {IDEMPOTENCY_MAX} characters, unique per report")
    ] = None,
) -> SubmissionRead:
    """A report becomes a ticket (channel ``kiosk``, source the kiosk's name) routed,
    given its deadline and acknowledged by SMS to ``phone`` like a web report. The same
    kiosk sending the same ``Idempotency-Key`` again gets the same ticket (200)."""
    key = (idempotency_key or "").strip()
    if not key:
        raise BadRequest(
            "the Idempotency-Key header is required (one key per report, reused on retries)",
            code="idempotency_key_required",
        )
    if len(key) > IDEMPOTENCY_MAX:
        raise BadRequest(
            f"Idempotency-Key: at most {IDEMPOTENCY_MAX} characters",
            code="invalid_idempotency_key",
        )
    answer, created = await central_intake.submit(rt, session, device, key, body)
    if created:
        log.info("kiosk %s handed in %s", device.name, answer.reference)
    else:
        await central_intake.touch(session, device.id, utcnow())
        await session.commit()
        response.status_code = 200
    return answer


# ------------------------------------------------------------------ heartbeat


class PrinterIn(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    online: bool | None = None
    paper: Literal["ok", "low", "out", "unknown"] = "unknown"
    detail: Annotated[str, Field(max_length=200)] = ""


class HeartbeatIn(BaseModel):
    """What a kiosk reports of itself. Fields a newer kiosk adds are ignored."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    version: Annotated[str, Field(max_length=40)]
    queue: Annotated[int, Field(ge=0, le=1_000_000, description="submissions not yet sent")]
    oldest_queued_at: AwareDatetime | None = None
    printer: PrinterIn = Field(default_factory=PrinterIn)


class HeartbeatKiosk(BaseModel):
    id: int
    name: str


class HeartbeatRead(BaseModel):
    server_time: datetime
    kiosk: HeartbeatKiosk


@router.post("/heartbeat", response_model=HeartbeatRead, summary="The kiosk is alive")
async def heartbeat(
    rt: RuntimeDep, session: DbSession, device: CurrentDevice, body: HeartbeatIn
) -> HeartbeatRead:
    """Stores the kiosk's state for the wallboard (clearing an offline mark) and
    announces it with ``kiosk.heartbeat`` when the wallboard would show something new
    (printer, paper, queue, back online) or at least every :data:`REANNOUNCE` — not
    every 30 s, which would fill the event log with nothing."""
    now = utcnow()
    previous = (
        await session.execute(select(KioskDevice.status).where(KioskDevice.id == device.id))
    ).scalar_one_or_none() or {}
    status: dict[str, Any] = {
        "version": body.version,
        "queue": body.queue,
        "oldest_queued_at": body.oldest_queued_at.isoformat() if body.oldest_queued_at else None,
        "printer": body.printer.model_dump(mode="json"),
        "reported_at": now.isoformat(),
    }
    announced = _announced_at(previous)
    changed = (
        OFFLINE_MARK in previous
        or announced is None
        or now - announced >= REANNOUNCE
        or any(previous.get(k) != status[k] for k in ("queue", "printer", "version"))
    )
    status["announced_at"] = now.isoformat() if changed else previous.get("announced_at")
    await session.execute(
        update(KioskDevice)
        .where(KioskDevice.id == device.id)
        .values(status=status, last_seen_at=now)
    )
    if changed:
        event = kiosk_event("kiosk.heartbeat", device.id, device.name, status, now)
        await bus.record(session, event, KIOSK_AUDIENCE)
    await rt.commit(session)
    return HeartbeatRead(server_time=now, kiosk=HeartbeatKiosk(id=device.id, name=device.name))


REANNOUNCE = timedelta(minutes=5)


def _announced_at(status: dict[str, Any]) -> datetime | None:
    raw = status.get("announced_at")
    try:
        return datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


# ------------------------------------------------------------------ catalogue, track


@router.get(
    "/catalogue",
    response_model=central_catalogue.CatalogueRead,
    summary="What the kiosk needs to work offline",
)
async def catalogue(
    rt: RuntimeDep, session: DbSession, device: CurrentDevice
) -> central_catalogue.CatalogueRead:
    """The services citizens may report on (as on the mobile web), grouped, with their
    guidance, fields and forms; the track page's address; the key kiosks hash citizen
    card numbers with."""
    answer = await central_catalogue.catalogue(rt, device)
    await central_intake.touch(session, device.id, utcnow())
    await session.commit()
    return answer


@router.get(
    "/track",
    response_model=central_track.TrackRead,
    summary="A request's public timeline",
    responses={
        404: {"model": ErrorBody, "description": "not_found, or provisional_pending"},
        429: {"model": ErrorBody, "description": "too many look-ups or wrong digits"},
    },
)
async def track_request(
    rt: RuntimeDep,
    session: DbSession,
    device: CurrentDevice,
    reference: Annotated[str, Query(max_length=40, description="14 digits, or a K-number")],
    last4: Annotated[str, Query(max_length=10, description="the phone's last 4 digits")],
    locale: Annotated[
        Literal["zh-CN", "en"] | None, Query(description="the steps' language")
    ] = None,
) -> central_track.TrackRead:
    """The steps the ``/m/track`` page shows, never personal data. Limits as on that page,
    counted per kiosk: 20 wrong digits for one reference lock it for an hour."""
    await central_intake.touch(session, device.id, utcnow())
    language = locale or rt.settings.DEFAULT_LOCALE
    return await central_track.look_up(rt, session, device, reference, last4.strip(), language)


# ------------------------------------------------------------------ composition

_registered: list[bool] = []


def register() -> None:
    """Let the mobile web's track page resolve receipts' ``K…`` numbers (once per process,
    however many apps are built)."""
    if not _registered:
        track.register_provisional(central_intake.provisional_lookup)
        _registered.append(True)
