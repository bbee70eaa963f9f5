"""What the public reads over Open311: the catalogue's services and the city's requests.

Requests are public records: they never carry a phone number, a name, an e-mail or
a client's account; phone numbers and e-mail addresses typed into free text are
masked; a report the citizen made anonymously keeps its own words (description,
media) to itself and shows only what was reported where and what became of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contact.lifecycle import OPEN_STATES
from contact.models import Service, Ticket, TicketEvent, TicketStatus
from contact.routing import Catalogue

LOCALES = ("zh-CN", "en")
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-22T00:00:00+08:00"  # when this API's surface last changed
SUBMISSION_EVENT = "open311_submitted"  # the staff-only event holding what a client sent

TEXTS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "received": "已受理，正在分派承办部门",
        "dispatched": "已派至{department}",
        "accepted": "{department}已签收，正在办理",
        "returned": "正在重新分派承办部门",
        "reopened": "已交{department}重新办理",
        "resolved": "已办结",
        "closed": "已办结",
        "merged": "与请求 {into} 合并办理",
        "due": "预计{when}前办结",
        "by_sms": "办理进展将以短信告知提交时留的手机号。",
        "contact": "市民服务热线 12345",
        "key_service": "提交请求需要 API 密钥，请向市民服务热线管理员申请。",
        "string": "文字，最多 200 字",
        "text": "文字，最多 2000 字",
        "number": "数字",
        "datetime": "日期和时间（ISO 8601，带时区，如 2026-11-22T09:30:00+08:00）",
        "singlevaluelist": "从 values 中选一项，填写它的 key",
        "multivaluelist": "从 values 中选一项或多项，每项填写 key（attribute[代码][]=key）",
    },
    "en": {
        "received": "Received; being assigned to a department",
        "dispatched": "Sent to {department}",
        "accepted": "{department} is handling it",
        "returned": "Being assigned to another department",
        "reopened": "Sent back to {department} to handle again",
        "resolved": "Resolved",
        "closed": "Resolved",
        "merged": "Handled together with request {into}",
        "due": "Expected to be resolved by {when}",
        "by_sms": "Updates go by SMS to the phone number given.",
        "contact": "Citizen hotline 12345",
        "key_service": "Posting requests needs an API key: ask the hotline's administrators.",
        "string": "Text, at most 200 characters",
        "text": "Text, at most 2000 characters",
        "number": "A number",
        "datetime": "A date and time (ISO 8601 with an offset, e.g. 2026-11-22T09:30:00+08:00)",
        "singlevaluelist": "One of the values: give its key",
        "multivaluelist": "One or more of the values: give each key (attribute[code][]=key)",
    },
}

# Phone numbers (7 digits or more, spaces and dashes allowed) and e-mail addresses.
_PHONE = re.compile(r"(?<!\d)\+?\d(?:[\d \-]{5,}\d)(?!\d)")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


# ------------------------------------------------------------------ locale


def locale_from(query: str | None, accept_language: str | None, default: str) -> str:
    """``?locale=`` first, then the best Accept-Language the city speaks, else its default."""
    chosen = _match(query) if query else None
    if chosen:
        return chosen
    weighted: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        loc = _match(tag)
        if loc and q > 0:
            weighted.append((-q, i, loc))
    return min(weighted)[2] if weighted else default


def _match(tag: str) -> str | None:
    tag = tag.strip().lower().replace("_", "-")
    if tag == "zh" or tag.startswith("zh-"):
        return "zh-CN"
    if tag == "en" or tag.startswith("en-"):
        return "en"
    return None


def text(locale: str, key: str, **values: str) -> str:
    return TEXTS[locale][key].format(**values)


def w3c(value: datetime | None, tz: ZoneInfo) -> str | None:
    """ISO 8601 in the city's time zone, with its offset (``2026-11-22T09:30:00+08:00``)."""
    return value.astimezone(tz).isoformat(timespec="seconds") if value else None


def masked(value: str | None) -> str:
    """Free text with phone numbers and e-mail addresses hidden."""
    if not value:
        return ""
    value = _EMAIL.sub("***@***", value)
    return _PHONE.sub(lambda m: re.sub(r"\d", "*", m.group(0)), value)


# ------------------------------------------------------------------ services


def _named(row: Any, stem: str, locale: str) -> str:
    return str(getattr(row, f"{stem}_zh" if locale == "zh-CN" else f"{stem}_en") or "")


def _keywords(words: Iterable[str], locale: str) -> str:
    """The keywords in the reader's language (all of them when none are)."""
    words = [w for w in words if w]
    cjk = [w for w in words if any("\u4e00" <= ch <= "\u9fff" for ch in w)]
    latin = [w for w in words if w not in cjk]
    mine = cjk if locale == "zh-CN" else latin
    return ", ".join(mine or words)


def service_record(s: Service, locale: str) -> dict[str, Any]:
    return {
        "service_code": s.code,
        "service_name": _named(s, "name", locale),
        "description": _named(s, "description", locale),
        "metadata": bool(s.fields),
        "type": "realtime",  # a request becomes a ticket at once
        "keywords": _keywords(s.keywords or (), locale),
        "group": _named(s, "group", locale),
    }


def definition_record(s: Service, locale: str) -> dict[str, Any]:
    """The service's custom fields as GeoReport attributes."""
    attributes = []
    for f in sorted(s.fields or (), key=lambda f: f.get("order", 0)):
        hint = text(locale, f["datatype"])
        help_text = f.get("description_zh" if locale == "zh-CN" else "description_en")
        attribute: dict[str, Any] = {
            "variable": True,
            "code": f["code"],
            "datatype": f["datatype"],
            "required": bool(f.get("required")),
            "datatype_description": f"{help_text} ({hint})" if help_text else hint,
            "order": int(f.get("order", 0)),
            "description": f.get("label_zh" if locale == "zh-CN" else "label_en") or f["code"],
        }
        # Empty unless a list: every attribute reads the same in both formats.
        attribute["values"] = [
            {"key": v["key"], "name": v.get("name_zh" if locale == "zh-CN" else "name_en")}
            for v in f.get("values", ())
        ]
        attributes.append(attribute)
    return {"service_code": s.code, "attributes": attributes}


async def active_services(session: AsyncSession) -> list[Service]:
    rows = await session.execute(
        select(Service).where(Service.active).order_by(Service.group_en, Service.code)
    )
    return list(rows.scalars())


async def active_service(session: AsyncSession, code: str) -> Service | None:
    return (
        await session.execute(select(Service).where(Service.code == code, Service.active))
    ).scalar_one_or_none()


# ------------------------------------------------------------------ requests


def public_status(status: TicketStatus) -> str:
    return "open" if status in OPEN_STATES else "closed"


def statuses_for(words: Sequence[str]) -> set[TicketStatus]:
    out: set[TicketStatus] = set()
    for word in words:
        out |= set(OPEN_STATES) if word == "open" else set(TicketStatus) - set(OPEN_STATES)
    return out


def service_notice(t: Ticket, tz: ZoneInfo, locale: str) -> str:
    if t.due_at is None or public_status(t.status) == "closed":
        return ""
    return text(locale, "due", when=t.due_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"))


@dataclass
class Extras:
    """What a page of requests needs beyond the tickets, each fetched in one query."""

    services: dict[int, tuple[str, str, str]]  # id → (code, name_zh, name_en)
    submitted: dict[int, dict[str, Any]]  # ticket id → what its Open311 client sent
    merged_into: dict[int, str]  # ticket id → the reference it was merged into
    close_reason: dict[int, str]  # closed without a reply: the reason given


async def extras_for(session: AsyncSession, tickets: Sequence[Ticket]) -> Extras:
    ids = [t.id for t in tickets]
    service_ids = {t.service_id for t in tickets if t.service_id is not None}
    services: dict[int, tuple[str, str, str]] = {}
    if service_ids:
        names = await session.execute(
            select(Service.id, Service.code, Service.name_zh, Service.name_en).where(
                Service.id.in_(service_ids)
            )
        )
        services = {i: (code, zh, en) for i, code, zh, en in names.all()}
    submitted: dict[int, dict[str, Any]] = {}
    if ids:
        sent = await session.execute(
            select(TicketEvent.ticket_id, TicketEvent.data).where(
                TicketEvent.ticket_id.in_(ids), TicketEvent.kind == SUBMISSION_EVENT
            )
        )
        submitted = {i: dict(data or {}) for i, data in sent.all()}
    targets = {t.merged_into_id for t in tickets if t.merged_into_id}
    merged_into: dict[int, str] = {}
    if targets:
        found = await session.execute(
            select(Ticket.id, Ticket.reference).where(Ticket.id.in_(targets))
        )
        refs = dict(found.all())
        merged_into = {t.id: refs[t.merged_into_id] for t in tickets if t.merged_into_id in refs}
    unexplained = [t.id for t in tickets if t.status == TicketStatus.closed and not t.reply]
    close_reason: dict[int, str] = {}
    if unexplained:
        reasons = await session.execute(
            select(TicketEvent.ticket_id, TicketEvent.reason)
            .where(
                TicketEvent.ticket_id.in_(unexplained),
                TicketEvent.kind == "closed",
                TicketEvent.public,
            )
            .order_by(TicketEvent.id)
        )
        for ticket_id, reason in reasons.all():
            if reason:
                close_reason[ticket_id] = reason  # the latest wins
    return Extras(services, submitted, merged_into, close_reason)


def _status_notes(t: Ticket, cat: Catalogue, extras: Extras, locale: str) -> str:
    if t.status == TicketStatus.merged:
        return text(locale, "merged", into=extras.merged_into.get(t.id, ""))
    if t.reply and t.status in (TicketStatus.resolved, TicketStatus.closed):
        return masked(t.reply)
    if t.id in extras.close_reason:
        return masked(extras.close_reason[t.id])
    dept = cat.dept_by_id.get(t.department_id or -1)
    name = _named(dept, "name", locale) if dept else ""
    with_department = (TicketStatus.dispatched, TicketStatus.accepted, TicketStatus.reopened)
    if t.status in with_department and not name:
        return text(locale, "received")
    return text(locale, t.status.value, department=name, into="")


def request_record(
    t: Ticket, cat: Catalogue, extras: Extras, tz: ZoneInfo, locale: str
) -> dict[str, Any]:
    """One service request as the public reads it (every field of the standard)."""
    code, name_zh, name_en = extras.services.get(t.service_id or -1, ("", "", ""))
    dept = cat.dept_by_id.get(t.department_id or -1) or cat.dept_by_id.get(
        t.routing_department_id or -1
    )
    sent = extras.submitted.get(t.id, {})
    return {
        "service_request_id": t.reference,
        "status": public_status(t.status),
        "status_notes": _status_notes(t, cat, extras, locale),
        "service_name": name_zh if locale == "zh-CN" else name_en,
        "service_code": code,
        # An anonymous report's own words could tell who made it.
        "description": "" if t.anonymous else masked(t.description),
        "agency_responsible": _named(dept, "name", locale) if dept else "",
        "service_notice": service_notice(t, tz, locale),
        "requested_datetime": w3c(t.created_at, tz),
        "updated_datetime": w3c(t.updated_at, tz),
        "expected_datetime": w3c(t.due_at, tz),
        "address": t.address or "",
        "address_id": str(sent.get("address_id") or ""),
        "zipcode": "",
        "lat": t.lat,
        "long": t.lon,
        "media_url": "" if t.anonymous else str(sent.get("media_url") or ""),
    }
