"""A citizen follows a request at a kiosk: the ``/m/track`` timeline, as JSON for the kiosk.

The same proof (the reference, or the receipt's ``K…`` number, and the phone's last 4
digits), the same public steps and the same limits as the mobile web's track page —
with the kiosk as the client the limits count against, since one kiosk serves many
citizens from one address. Never personal data: no phone, no name, no address, no
description.
"""

from __future__ import annotations

import hmac
import math
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.mobile_web import guard, track
from channels.mobile_web.catalogue import services
from channels.mobile_web.i18n import status_name, words
from contact.errors import ContactError, InvalidInput, NotFound
from contact.models import Citizen, Ticket, TicketEvent, utcnow
from contact.reference import is_valid
from contact.runtime import Runtime
from kiosk.central_intake import Device, provisional_lookup


class TrackStep(BaseModel):
    at: datetime
    text: str
    detail: str


class TrackRead(BaseModel):
    reference: str
    service: dict[str, str] | None
    status: str
    status_text: str
    steps: list[TrackStep]


class TooMany(ContactError):
    """429, with ``Retry-After`` (seconds) in ``headers``."""

    code = "locked"
    http_status = 429

    def __init__(self, detail: str, until: datetime, *, code: str | None = None) -> None:
        super().__init__(detail, code=code)
        wait = max(1, math.ceil((until - utcnow()).total_seconds()))
        self.headers = {"Retry-After": str(wait)}


def _client(device: Device) -> str:
    """What the limits count against: the kiosk, never a citizen's address."""
    return f"kiosk:{device.id}"


async def look_up(
    rt: Runtime, session: AsyncSession, device: Device, typed: str, last4: str, locale: str
) -> TrackRead:
    """The public timeline of a request, or the error the track page would show."""
    secret = rt.settings.SECRET_KEY
    client = _client(device)
    by_client = guard.digest(secret, "track-client", client)
    wrong_client = guard.digest(secret, "track-wrong", client)
    until = await guard.locked_until(session, by_client, track.LOOKUPS)
    if until is not None:
        raise TooMany(
            "too many look-ups from this kiosk; wait a few minutes", until, code="rate_limited"
        )
    until = await guard.locked_until(session, wrong_client, track.WRONG_PER_CLIENT)
    if until is not None:
        raise TooMany("too many wrong look-ups from this kiosk; try again later", until)
    await guard.count(session, by_client, track.LOOKUPS)
    await guard.purge_soon(session, rt.settings.MEDIA_DIR)
    await session.commit()

    ref = track.clean_reference(typed)
    if track.PROVISIONAL.match(ref):
        found = await provisional_lookup(session, ref)
        if found is None:
            raise NotFound(
                f"kiosk reference {ref} has not reached the server yet; try again later",
                code="provisional_pending",
            )
        ref = found
    if not is_valid(ref):
        raise InvalidInput(
            "reference: 14 digits (or a kiosk receipt's K number)",
            code="invalid_reference",
            fields={"reference": "14 digits (or a kiosk receipt's K number)"},
        )
    if len(last4) != 4 or not last4.isascii() or not last4.isdigit():
        raise InvalidInput(
            "last4: the last 4 digits of the phone given with the request",
            code="invalid_last4",
            fields={"last4": "4 digits"},
        )
    by_reference = guard.digest(secret, "track-ref", ref, client)
    until = await guard.locked_until(session, by_reference, track.WRONG_PER_REFERENCE)
    if until is not None:
        raise TooMany("too many wrong digits for this reference; try again later", until)
    ticket = (
        await session.execute(select(Ticket).where(Ticket.reference == ref))
    ).scalar_one_or_none()
    phone = None
    if ticket is not None and ticket.citizen_id is not None:
        phone = (
            await session.execute(select(Citizen.phone).where(Citizen.id == ticket.citizen_id))
        ).scalar_one_or_none()
    if ticket is None or not phone or not hmac.compare_digest(phone[-4:], last4):
        await guard.count(session, by_reference, track.WRONG_PER_REFERENCE)
        await guard.count(session, wrong_client, track.WRONG_PER_CLIENT)
        await session.commit()
        raise NotFound("no request matches this reference and these digits")
    await guard.forget(session, by_reference)
    await session.commit()
    return await _timeline(rt, session, ticket, locale)


async def _timeline(rt: Runtime, session: AsyncSession, ticket: Ticket, locale: str) -> TrackRead:
    cat = await rt.catalogue()
    zh = locale == "zh-CN"
    names = {code: (d.name_zh if zh else d.name_en) for code, d in cat.departments.items()}
    events = list(
        (
            await session.execute(
                select(TicketEvent)
                .where(TicketEvent.ticket_id == ticket.id, TicketEvent.public)
                .order_by(TicketEvent.id)
            )
        ).scalars()
    )
    service: dict[str, str] | None = None
    svc = cat.service_by_id.get(ticket.service_id or -1)
    if svc is not None:
        view = (await services(rt)).get(svc.code)
        service = {
            "zh-CN": view.name_zh if view else svc.name_zh,
            "en": view.name_en if view else svc.name_en,
        }
    steps = track.timeline(events, names, words(locale), rt)
    tz = rt.settings.tz
    return TrackRead(
        reference=ticket.reference,
        service=service,
        status=ticket.status.value,
        status_text=status_name(locale, ticket.status.value),
        steps=[TrackStep(at=s.at.astimezone(tz), text=s.text, detail=s.detail) for s in steps],
    )
