"""A client's POST requests: its key, the location, the attributes, the person's contact.

Everything is checked before anything is written; the first problem found answers
400 (bad input) or 403 (key) naming the parameter, and nothing is stored.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.open311.wire import Open311Error
from contact.fields import FieldProblem, clean_values
from contact.models import ApiClient, Channel, Service
from contact.schemas import ADDRESS_MAX, DESCRIPTION_MAX, TicketCreate, normalize_phone
from contact.security import hash_secret

_ATTRIBUTE = re.compile(r"^attribute\[([^\[\]]{1,64})\](\[\])?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
NAME_MAX = 100
ID_MAX = 100
URL_MAX = 500
IDEMPOTENCY_MAX = 100


@dataclass(frozen=True)
class Submission:
    """A checked POST: the ticket to open and what only staff may see of the sender."""

    ticket: TicketCreate
    details: dict[str, str]  # address_id, media_url, account_id, device_id, names, email
    account_id: str


async def client_for_key(session: AsyncSession, key: str | None) -> ApiClient:
    """The active client holding this key (stored as its sha256), else 403."""
    if not key:
        raise Open311Error(403, "api_key is required to post a request")
    client = (
        await session.execute(
            select(ApiClient).where(ApiClient.key_hash == hash_secret(key.strip()))
        )
    ).scalar_one_or_none()
    if client is None or not client.active:
        raise Open311Error(403, "invalid api_key")
    return client


def idempotency_ref(client: ApiClient, key: str | None) -> str | None:
    """The ticket's ``external_ref`` for a client's ``Idempotency-Key`` (one per client)."""
    if not key:
        return None
    if len(key) > IDEMPOTENCY_MAX:
        raise Open311Error(400, f"Idempotency-Key: at most {IDEMPOTENCY_MAX} characters")
    return "o311:" + hashlib.sha256(f"{client.id}:{key}".encode()).hexdigest()[:59]


def attributes_of(items: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """``attribute[code]=v`` and, for multivaluelist, ``attribute[code][]=v1&...``."""
    out: dict[str, Any] = {}
    for name, value in items:
        m = _ATTRIBUTE.match(name)
        if m is None:
            continue
        code, many = m.group(1), m.group(2) is not None
        if code in out:
            previous = out[code] if isinstance(out[code], list) else [out[code]]
            out[code] = [*previous, value]
        else:
            out[code] = [value] if many else value
    return out


def _one(form: dict[str, str], name: str, limit: int) -> str:
    value = form.get(name, "").strip()
    if len(value) > limit:
        raise Open311Error(400, f"{name}: at most {limit} characters")
    return value


def _coordinate(form: dict[str, str], name: str, bound: float) -> float | None:
    raw = form.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not -bound <= value <= bound:
        raise Open311Error(400, f"{name}: a number from {-bound:g} to {bound:g}")
    return value


def check(
    form: dict[str, str],
    items: list[tuple[str, str]],
    service: Service,
    *,
    locale: str | None,
    region: str,
) -> Submission:
    """The POST's parameters checked against the standard and the service's fields."""
    lat = _coordinate(form, "lat", 90)
    lon = _coordinate(form, "long", 180)
    if (lat is None) != (lon is None):
        raise Open311Error(400, "lat and long: give both, or neither")
    address = _one(form, "address_string", ADDRESS_MAX)
    address_id = _one(form, "address_id", ID_MAX)
    if lat is None and not address and not address_id:
        raise Open311Error(
            400, "a location is required: lat and long, address_string or address_id"
        )
    try:
        fields = clean_values(service.fields or (), attributes_of(items), enforce_required=True)
    except FieldProblem as problem:
        where = problem.where.removeprefix("fields.").split(".", 1)[0]
        raise Open311Error(400, f"attribute[{where}]: {problem.message}") from None

    phone = _one(form, "phone", 32)
    if phone:
        try:
            phone = normalize_phone(phone, region)
        except ValueError as exc:
            raise Open311Error(400, f"phone: {exc}") from None
    email = _one(form, "email", 254)
    if email and not _EMAIL.match(email):
        raise Open311Error(400, "email: not an e-mail address")
    media_url = _one(form, "media_url", URL_MAX)
    if media_url and not re.match(r"^https?://[^\s]+$", media_url):
        raise Open311Error(400, "media_url: an http(s) URL")
    description = form.get("description", "").strip()
    if len(description) > DESCRIPTION_MAX:
        raise Open311Error(400, f"description: at most {DESCRIPTION_MAX} characters")
    if not description:  # optional in the standard; a ticket needs words
        description = service.name_zh if (locale or "zh-CN") == "zh-CN" else service.name_en
    details = {
        "address_id": address_id,
        "media_url": media_url,
        "account_id": _one(form, "account_id", ID_MAX),
        "device_id": _one(form, "device_id", ID_MAX),
        "first_name": _one(form, "first_name", NAME_MAX),
        "last_name": _one(form, "last_name", NAME_MAX),
        "email": email,
    }
    try:
        ticket = TicketCreate(
            description=description,
            service=service.code,
            phone=phone or None,
            address=address or None,
            lat=lat,
            lon=lon,
            channel=Channel.open311,
            fields=fields,
            locale=locale,
        )
    except ValidationError as exc:  # pragma: no cover - every field is checked above
        raise Open311Error(400, f"invalid request: {exc.errors()[0].get('msg')}") from None
    return Submission(
        ticket=ticket,
        details={k: v for k, v in details.items() if v},
        account_id=details["account_id"],
    )


def staff_summary(client: str, details: dict[str, str]) -> str:
    """One line for the ticket's history: who sent it through which client."""
    name = " ".join(p for p in (details.get("first_name"), details.get("last_name")) if p)
    parts = [f"Open311: {client}"]
    for label, value in (
        ("name", name),
        ("email", details.get("email", "")),
        ("account", details.get("account_id", "")),
        ("device", details.get("device_id", "")),
        ("address id", details.get("address_id", "")),
        ("media", details.get("media_url", "")),
    ):
        if value:
            parts.append(f"{label} {value}")
    return "; ".join(parts)
