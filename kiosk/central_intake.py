"""A kiosk's submissions on the central side: checked, turned into tickets once per key.

A kiosk keeps a report in its local queue until the server has answered it, so the
same submission may arrive twice (a lost answer, a restart, a slow network). The
kiosk's ``Idempotency-Key`` — kept per device in ``kiosk_submissions``, as a sha256 —
makes the second arrival answer the first one's ticket. A unique constraint settles
two arrivals at the same moment: the loser's transaction is rolled back and it answers
the winner's ticket.

Everything is checked before anything is written; the first problem answers 422 naming
the field (or 409 for a provisional reference already taken), and nothing is stored.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contact import service
from contact.errors import Conflict, field_error
from contact.fields import FieldProblem, clean_values
from contact.lifecycle import Actor
from contact.models import (
    Channel,
    KioskDevice,
    KioskSubmission,
    Ticket,
    TicketEvent,
    TicketStatus,
    utcnow,
)
from contact.principal import Principal
from contact.runtime import Runtime
from contact.schemas import ADDRESS_MAX, DESCRIPTION_MAX, TicketCreate, normalize_phone

SUBMISSION_EVENT = "kiosk_submitted"  # the staff-only event holding what the kiosk sent
IDEMPOTENCY_MAX = 100
PROVISIONAL_PATTERN = r"^K[0-9]{6,20}$"
PROVISIONAL = re.compile(PROVISIONAL_PATTERN)
# A kiosk's clock may run a little ahead of the server's; more than this is refused.
CLOCK_SKEW = timedelta(minutes=5)
MAILBOX_SUFFIX = "-mailbox"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CardIn(_In):
    """A citizen card read at the kiosk: never its number, only the kiosk's HMAC of it
    (under the catalogue's ``card_key``) and its last 4 digits."""

    digest: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$", description="64 hex characters")]
    last4: Annotated[str, Field(pattern=r"^[0-9]{4}$")]


class SubmissionIn(_In):
    service: Annotated[str, Field(min_length=1, max_length=64, description="a service code")]
    description: Annotated[str, Field(min_length=1, max_length=DESCRIPTION_MAX)]
    phone: Annotated[str | None, Field(max_length=32)] = None
    fields: dict[str, Any] = Field(default_factory=dict)
    address: Annotated[str | None, Field(max_length=ADDRESS_MAX)] = None
    provisional_reference: Annotated[
        str | None,
        Field(pattern=PROVISIONAL_PATTERN, description="the receipt's K-number, if printed"),
    ] = None
    submitted_at: AwareDatetime | None = Field(
        default=None, description="when the citizen pressed submit at the kiosk"
    )
    locale: Literal["zh-CN", "en"] | None = Field(
        default=None, description="the citizen's language for status texts"
    )
    card: CardIn | None = None

    @field_validator("phone", "address")
    @classmethod
    def _blank_is_none(cls, v: str | None) -> str | None:
        return v or None


class SubmissionRead(BaseModel):
    reference: str
    provisional_reference: str | None
    status: str
    track_url: str


@dataclass(frozen=True)
class Device:
    """The kiosk a request came from (read once, by its token)."""

    id: int
    name: str
    location: str


@dataclass(frozen=True)
class Checked:
    ticket: TicketCreate
    submitted_at: datetime | None


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def fingerprint(body: SubmissionIn) -> str:
    """The submission's content, to tell a retry from another report under a reused key."""
    canonical = json.dumps(
        body.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def check(rt: Runtime, body: SubmissionIn) -> Checked:
    """The submission against the catalogue and the rules every form channel keeps."""
    catalogue = await rt.catalogue()
    found = catalogue.services.get(body.service)
    if found is None:
        raise field_error("service", f"unknown service '{body.service}'")
    try:
        fields = clean_values(found.fields, body.fields, enforce_required=True)
    except FieldProblem as problem:
        raise field_error(problem.where, problem.message) from None
    phone = None
    if body.phone:
        try:
            phone = normalize_phone(body.phone, rt.settings.DEFAULT_REGION)
        except ValueError as exc:
            raise field_error("phone", str(exc)) from None
    if body.submitted_at is not None and body.submitted_at > utcnow() + CLOCK_SKEW:
        raise field_error("submitted_at", "is in the future: check the kiosk's clock")
    subject = fields.get("subject") if found.code.endswith(MAILBOX_SUFFIX) else None
    ticket = TicketCreate(
        description=body.description,
        service=found.code,
        phone=phone,
        address=body.address,
        channel=Channel.kiosk,
        title=subject[:200] if isinstance(subject, str) else "",
        fields=fields,
        locale=body.locale,
    )
    return Checked(ticket, body.submitted_at)


async def existing(
    session: AsyncSession, device_id: int, key: str
) -> tuple[str, str, str | None, TicketStatus] | None:
    """(reference, request hash, provisional reference, status) of this device's key."""
    row = (
        await session.execute(
            select(
                Ticket.reference,
                KioskSubmission.request_hash,
                KioskSubmission.provisional_reference,
                Ticket.status,
            )
            .join(Ticket, Ticket.id == KioskSubmission.ticket_id)
            .where(KioskSubmission.device_id == device_id, KioskSubmission.key_hash == key)
        )
    ).first()
    return (row[0], row[1], row[2], row[3]) if row is not None else None


async def provisional_taken(session: AsyncSession, provisional: str) -> bool:
    found = await session.execute(
        select(KioskSubmission.id).where(KioskSubmission.provisional_reference == provisional)
    )
    return found.first() is not None


def _replayed(
    rt: Runtime, found: tuple[str, str, str | None, TicketStatus], request_hash: str
) -> SubmissionRead:
    reference, stored_hash, provisional, status = found
    if stored_hash != request_hash:
        raise Conflict(
            "this Idempotency-Key was already used by this kiosk for a different submission",
            code="idempotency_key_reused",
        )
    return read(rt, reference, provisional, status)


def read(
    rt: Runtime, reference: str, provisional: str | None, status: TicketStatus
) -> SubmissionRead:
    return SubmissionRead(
        reference=reference,
        provisional_reference=provisional,
        status=status.value,
        track_url=service.track_url(rt, reference),
    )


def _conflict(provisional: str) -> Conflict:
    return Conflict(
        f"provisional reference {provisional} is already mapped to another submission",
        code="provisional_conflict",
    )


def _summary(device: Device, checked: Checked, body: SubmissionIn, rt: Runtime) -> str:
    """One line for the ticket's history (staff only)."""
    parts = [f"Kiosk: {device.name}"]
    if device.location:
        parts.append(f"at {device.location}")
    if checked.submitted_at is not None:
        local = checked.submitted_at.astimezone(rt.settings.tz).strftime("%Y-%m-%d %H:%M")
        parts.append(f"submitted {local}")
    if body.provisional_reference:
        parts.append(f"receipt {body.provisional_reference}")
    if body.card is not None:
        parts.append(f"card ending {body.card.last4}")
    return "; ".join(parts)


async def submit(
    rt: Runtime, session: AsyncSession, device: Device, key: str, body: SubmissionIn
) -> tuple[SubmissionRead, bool]:
    """The ticket for this submission, and whether it was created now (else a retry)."""
    hashed, request_hash = key_hash(key), fingerprint(body)
    found = await existing(session, device.id, hashed)
    if found is not None:
        return _replayed(rt, found, request_hash), False
    checked = await check(rt, body)
    provisional = body.provisional_reference
    if provisional and await provisional_taken(session, provisional):
        raise _conflict(provisional)
    now = utcnow()
    try:
        ticket, _ = await service.open_ticket(
            rt,
            session,
            checked.ticket,
            Principal(Actor.citizen, device.name),
            source=device.name,
        )
        data: dict[str, Any] = {
            "kiosk": device.name,
            "kiosk_id": device.id,
            "submitted_at": checked.submitted_at.isoformat() if checked.submitted_at else None,
            "received_at": now.isoformat(),
            "provisional_reference": provisional,
            "text": _summary(device, checked, body, rt),
        }
        if body.card is not None:
            data["card"] = {"digest": body.card.digest.lower(), "last4": body.card.last4}
        session.add(
            TicketEvent(
                ticket_id=ticket.id,
                kind=SUBMISSION_EVENT,
                from_status=TicketStatus.received.value,
                to_status=TicketStatus.received.value,
                actor=device.name,
                reason=None,
                data=data,
                public=False,
                created_at=now,
            )
        )
        await session.execute(
            insert(KioskSubmission).values(
                device_id=device.id,
                key_hash=hashed,
                request_hash=request_hash,
                provisional_reference=provisional,
                ticket_id=ticket.id,
                submitted_at=checked.submitted_at,
                received_at=now,
            )
        )
        await touch(session, device.id, now)
        await rt.commit(session)
    except IntegrityError:
        # Another request of this kiosk stored the same key (or took the provisional
        # reference) first: nothing of this one is kept.
        await session.rollback()
        rt.discard(session)
        found = await existing(session, device.id, hashed)
        if found is not None:
            return _replayed(rt, found, request_hash), False
        if provisional and await provisional_taken(session, provisional):
            raise _conflict(provisional) from None
        raise
    return read(rt, ticket.reference, provisional, ticket.status), True


async def touch(session: AsyncSession, device_id: int, now: datetime) -> None:
    """The kiosk was heard from (in the caller's transaction)."""
    await session.execute(
        update(KioskDevice).where(KioskDevice.id == device_id).values(last_seen_at=now)
    )


async def provisional_lookup(session: AsyncSession, provisional: str) -> str | None:
    """The ticket's reference for a receipt's ``K…`` number, once its submission arrived."""
    if not PROVISIONAL.match(provisional):
        return None
    found = await session.execute(
        select(Ticket.reference)
        .join(KioskSubmission, KioskSubmission.ticket_id == Ticket.id)
        .where(KioskSubmission.provisional_reference == provisional)
    )
    return found.scalar_one_or_none()
