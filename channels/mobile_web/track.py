"""``/m/track``: a citizen follows a request with its reference and the phone's last 4 digits.

The page shows the public timeline — the steps with their times, the department's
answer, public notes and public files — and never personal data: no phone, no name,
no address, not even the description (the citizen's own words may hold any of them).

Guessing is bounded per client (its address as the server sees it):

- at most :data:`LOOKUPS` look-ups per 10 minutes, right or wrong;
- :data:`WRONG_PER_REFERENCE` wrong digits for one reference lock that reference for
  that client for an hour (the right digits before then work, and clear the count);
- :data:`WRONG_PER_CLIENT` wrong look-ups across references lock the client for an hour.

After resolution, within ``SATISFACTION_WINDOW_DAYS``, the citizen may rate the outcome
(满意 / 基本满意 / 不满意: the core's ``close`` with satisfaction 1 / 2 / 3) or ask for it
to be handled again (the core's ``reopen``, once per ticket).

Kiosk receipts carry a provisional reference (``K`` + digits) until the kiosk's
submission reaches the server; :func:`register_provisional` is where the kiosk adapter
plugs in the lookup from a provisional reference to the ticket's reference.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.mobile_web import guard
from channels.mobile_web.catalogue import services
from channels.mobile_web.i18n import words
from channels.mobile_web.pages import language, render, url
from channels.mobile_web.report import _small_form
from contact import service
from contact.deps import DbSession, RuntimeDep
from contact.errors import ContactError
from contact.lifecycle import Action
from contact.models import Attachment, Citizen, Ticket, TicketEvent, TicketStatus, utcnow
from contact.principal import CITIZEN
from contact.reference import grouped, is_valid
from contact.runtime import Runtime
from contact.schemas import ActionBody

router = APIRouter(include_in_schema=False)

LOOKUPS = guard.Limit("track-client", 60, timedelta(minutes=10))
WRONG_PER_REFERENCE = guard.Limit("track-ref", 20, timedelta(hours=1), lock=timedelta(hours=1))
WRONG_PER_CLIENT = guard.Limit("track-wrong", 50, timedelta(hours=1), lock=timedelta(hours=1))
POST_PATHS = frozenset({"/m/track", "/m/track/rate", "/m/track/reopen"})
REASON_MAX = 1000
PROVISIONAL = re.compile(r"^K[0-9]{4,20}$")

# A kiosk's provisional reference → the ticket's reference, once its submission arrived.
ProvisionalLookup = Callable[[AsyncSession, str], Awaitable[str | None]]
_provisional: list[ProvisionalLookup] = []


def register_provisional(lookup: ProvisionalLookup) -> None:
    """Let ``K…`` references be tracked: ``lookup`` answers the ticket's reference, or None
    while the kiosk's submission has not arrived (the citizen is asked to try later)."""
    _provisional.append(lookup)


async def resolve_provisional(session: AsyncSession, reference: str) -> str | None:
    for lookup in _provisional:
        found = await lookup(session, reference)
        if found:
            return found
    return None


def clean_reference(text: str) -> str:
    """What was typed, without the grouping spaces and dashes (``K`` upper-cased)."""
    return "".join(ch for ch in text[:40] if not ch.isspace() and ch != "-").upper()


# ---------------------------------------------------------------- look-up


@router.get("/m/track")
async def track_page(request: Request, rt: RuntimeDep) -> Response:
    locale = language(rt, request)
    ref = clean_reference(request.query_params.get("ref", ""))
    shown = grouped(ref) if ref.isdigit() else ref
    return _form(request, rt, locale, ref=shown)


def _form(
    request: Request,
    rt: Runtime,
    locale: str,
    *,
    ref: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        rt,
        "track.html",
        locale,
        here=("/m/track", {}),
        status_code=status_code,
        title=words(locale)["track_title"],
        ref=ref,
        error=error,
    )


@router.post("/m/track")
async def look_up(request: Request, rt: RuntimeDep, session: DbSession) -> Response:
    form = await _small_form(request)
    locale = language(rt, request, form.get("lang"))
    t = words(locale)
    typed = str(form.get("ref") or "")
    ref = clean_reference(typed)
    last4 = "".join(ch for ch in str(form.get("last4") or "")[:10] if not ch.isspace())
    if not guard.csrf_ok(rt.settings.SECRET_KEY, request, form.get("csrf")):
        return _form(request, rt, locale, ref=typed[:24], error=t["err_csrf"], status_code=403)
    secret = rt.settings.SECRET_KEY
    ip = guard.client_ip(request)
    by_client = guard.digest(secret, "track-client", ip)
    wrong_client = guard.digest(secret, "track-wrong", ip)
    if await guard.locked_until(session, by_client, LOOKUPS) is not None:
        return _form(request, rt, locale, ref=typed[:24], error=t["err_busy"], status_code=429)
    if await guard.locked_until(session, wrong_client, WRONG_PER_CLIENT) is not None:
        return _form(request, rt, locale, ref=typed[:24], error=t["err_locked"], status_code=429)
    await guard.count(session, by_client, LOOKUPS)
    await guard.purge_soon(session, rt.settings.MEDIA_DIR)
    await session.commit()

    if PROVISIONAL.match(ref):
        found = await resolve_provisional(session, ref)
        if found is None:
            return _form(request, rt, locale, ref=ref, error=t["err_provisional"], status_code=404)
        ref = found
    if not is_valid(ref):
        return _form(request, rt, locale, ref=typed[:24], error=t["err_reference"], status_code=422)
    if len(last4) != 4 or not last4.isascii() or not last4.isdigit():
        return _form(request, rt, locale, ref=grouped(ref), error=t["err_last4"], status_code=422)
    by_reference = guard.digest(secret, "track-ref", ref, ip)
    if await guard.locked_until(session, by_reference, WRONG_PER_REFERENCE) is not None:
        return _form(request, rt, locale, ref=grouped(ref), error=t["err_locked"], status_code=429)

    phone = (
        await session.execute(
            select(Citizen.phone)
            .join(Ticket, Ticket.citizen_id == Citizen.id)
            .where(Ticket.reference == ref)
        )
    ).scalar_one_or_none()
    if not phone or not hmac.compare_digest(phone[-4:].encode(), last4.encode()):
        await guard.count(session, by_reference, WRONG_PER_REFERENCE)
        await guard.count(session, wrong_client, WRONG_PER_CLIENT)
        await session.commit()
        return _form(
            request, rt, locale, ref=grouped(ref), error=t["err_not_found"], status_code=404
        )
    await guard.forget(session, by_reference)
    await session.commit()
    return RedirectResponse(
        url("/m/track/view", lang=locale, t=guard.track_token(secret, ref)), status_code=303
    )


# ---------------------------------------------------------------- the timeline


@dataclass(frozen=True)
class Step:
    at: datetime
    local: str
    text: str
    detail: str = ""


SATISFACTION = {1: "sat_1", 2: "sat_2", 3: "sat_3"}


def timeline(
    events: list[TicketEvent], names: dict[str, str], t: dict[str, str], rt: Runtime
) -> list[Step]:
    """The public steps, in the citizen's words; unknown kinds are left out."""
    steps: list[Step] = []
    dept = t["the_department"]
    for e in events:
        data = e.data or {}
        code = data.get("department")
        if isinstance(code, str) and code in names:
            dept = names[code]
        text, detail = "", ""
        if e.kind == "created":
            text = t["ev_created"]
        elif e.kind == "dispatched":
            text = t["ev_dispatched"].format(dept=dept)
        elif e.kind == "accepted":
            text = t["ev_accepted"].format(dept=dept)
        elif e.kind == "returned":
            text = t["ev_returned"]
        elif e.kind == "extension_granted":
            until = _when(data.get("until"), rt)
            text = t["ev_extension_granted"].format(until=until)
            detail = t["reason"].format(reason=e.reason) if e.reason else ""
        elif e.kind == "resolved":
            text = t["ev_resolved"].format(dept=dept)
            detail = str(data.get("reply") or "")
        elif e.kind == "reopened":
            text = t["ev_reopened_citizen"] if e.actor == "citizen" else t["ev_reopened"]
        elif e.kind == "closed" and data.get("not_accepted"):
            text = t["ev_not_accepted"]
            detail = t["reason"].format(reason=e.reason) if e.reason else ""
        elif e.kind == "closed":
            text = t["ev_closed"]
            rating = data.get("satisfaction")
            if e.actor == "citizen" and rating in SATISFACTION:
                detail = t["your_rating"].format(label=t[SATISFACTION[rating]])
        elif e.kind == "merged":
            text = t["ev_merged"]
        elif e.kind == "note" and data.get("text"):
            text = t["ev_note"]
            detail = str(data["text"])
        if text:
            steps.append(Step(e.created_at, _local(e.created_at, rt), text, detail))
    return steps


def _local(when: datetime, rt: Runtime) -> str:
    return when.astimezone(rt.settings.tz).strftime("%Y-%m-%d %H:%M")


def _when(value: Any, rt: Runtime) -> str:
    try:
        return _local(datetime.fromisoformat(str(value)), rt)
    except (TypeError, ValueError):
        return ""


@dataclass(frozen=True)
class Callback:
    """What the citizen may still do about a resolved request (回访)."""

    rate: bool
    reopen: bool
    window_end: datetime | None


async def callback(rt: Runtime, session: AsyncSession, ticket: Ticket) -> Callback:
    if ticket.status != TicketStatus.resolved or ticket.resolved_at is None:
        return Callback(False, False, None)
    end = ticket.resolved_at + timedelta(days=rt.settings.SATISFACTION_WINDOW_DAYS)
    if utcnow() >= end:
        return Callback(False, False, end)
    reopened_before = (
        await session.execute(
            select(func.count(TicketEvent.id)).where(
                TicketEvent.ticket_id == ticket.id,
                TicketEvent.kind == "reopened",
                TicketEvent.actor == "citizen",
            )
        )
    ).scalar_one()
    return Callback(True, not reopened_before, end)


async def _ticket(session: AsyncSession, reference: str) -> Ticket | None:
    return (
        await session.execute(select(Ticket).where(Ticket.reference == reference))
    ).scalar_one_or_none()


@router.get("/m/track/view")
async def view(request: Request, rt: RuntimeDep, session: DbSession) -> Response:
    locale = language(rt, request)
    token = request.query_params.get("t", "")
    done = request.query_params.get("done")
    t = words(locale)
    notice = {"rated": t["rated"], "reopened": t["reopened"]}.get(done or "")
    return await _view(request, rt, session, locale, token, notice=notice)


async def _view(
    request: Request,
    rt: Runtime,
    session: AsyncSession,
    locale: str,
    token: str,
    *,
    notice: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    t = words(locale)
    reference = guard.read_track_token(rt.settings.SECRET_KEY, token)
    ticket = await _ticket(session, reference) if reference else None
    if ticket is None:
        return _form(request, rt, locale, error=t["err_link"], status_code=403)
    cat = await rt.catalogue()
    zh = locale == "zh-CN"
    names = {code: (d.name_zh if zh else d.name_en) for code, d in cat.departments.items()}
    events = [
        e
        for e in (
            await session.execute(
                select(TicketEvent)
                .where(TicketEvent.ticket_id == ticket.id, TicketEvent.public)
                .order_by(TicketEvent.id)
            )
        ).scalars()
    ]
    svc = cat.service_by_id.get(ticket.service_id or -1)
    view_names = await services(rt)
    service_name = ""
    if svc is not None:
        v = view_names.get(svc.code)
        service_name = v.name(locale) if v else (svc.name_zh if zh else svc.name_en)
    reply, merged = ticket.reply, False
    if ticket.status == TicketStatus.merged and ticket.merged_into_id:
        target = await session.get(Ticket, ticket.merged_into_id)
        if target is not None and target.reply:
            reply, merged = target.reply, True
    files = (
        (
            await session.execute(
                select(Attachment)
                .where(Attachment.ticket_id == ticket.id, Attachment.public)
                .order_by(Attachment.id)
            )
        )
        .scalars()
        .all()
    )
    cb = await callback(rt, session, ticket)
    expected = ""
    if ticket.due_at and ticket.status in (
        TicketStatus.dispatched,
        TicketStatus.accepted,
        TicketStatus.reopened,
    ):
        expected = _local(ticket.due_at, rt)
    return render(
        request,
        rt,
        "view.html",
        locale,
        here=("/m/track/view", {"t": token}),
        status_code=status_code,
        title=t["track_title"],
        token=token,
        notice=notice,
        error=error,
        reference_grouped=grouped(ticket.reference),
        status=ticket.status.value,
        service_name=service_name,
        created=ticket.created_at,
        created_local=_local(ticket.created_at, rt),
        expected=expected,
        reply=reply if ticket.status in _ANSWERED or merged else None,
        merged=merged,
        files=files,
        steps=timeline(events, names, t, rt),
        can_rate=cb.rate,
        can_reopen=cb.reopen,
        window_end=_local(cb.window_end, rt) if cb.window_end else "",
    )


_ANSWERED = frozenset({TicketStatus.resolved, TicketStatus.closed})


@router.get("/m/track/file/{attachment_id}")
async def public_file(
    attachment_id: int, request: Request, rt: RuntimeDep, session: DbSession
) -> Response:
    """A file the department published with its answer (only public ones, only with the
    ticket's track link)."""
    reference = guard.read_track_token(rt.settings.SECRET_KEY, request.query_params.get("t"))
    row = None
    if reference:
        row = (
            await session.execute(
                select(Attachment)
                .join(Ticket, Ticket.id == Attachment.ticket_id)
                .where(
                    Attachment.id == attachment_id,
                    Attachment.public,
                    Ticket.reference == reference,
                )
            )
        ).scalar_one_or_none()
    path = rt.settings.MEDIA_DIR / row.path if row is not None else None
    if row is None or path is None or not path.is_file():
        locale = language(rt, request)
        return _form(request, rt, locale, error=words(locale)["err_link"], status_code=404)
    return FileResponse(
        path,
        media_type=row.content_type,
        filename=row.filename,
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"},
    )


# ---------------------------------------------------------------- rating and reopening


@router.post("/m/track/rate")
async def rate(request: Request, rt: RuntimeDep, session: DbSession) -> Response:
    return await _callback_action(request, rt, session, "rate")


@router.post("/m/track/reopen")
async def reopen(request: Request, rt: RuntimeDep, session: DbSession) -> Response:
    return await _callback_action(request, rt, session, "reopen")


async def _callback_action(
    request: Request, rt: Runtime, session: AsyncSession, which: str
) -> Response:
    form = await _small_form(request)
    locale = language(rt, request, form.get("lang"))
    t = words(locale)
    token = str(form.get("t") or "")
    if not guard.csrf_ok(rt.settings.SECRET_KEY, request, form.get("csrf")):
        return await _view(
            request, rt, session, locale, token, error=t["err_csrf"], status_code=403
        )
    reference = guard.read_track_token(rt.settings.SECRET_KEY, token)
    ticket = await _ticket(session, reference) if reference else None
    if ticket is None:
        return _form(request, rt, locale, error=t["err_link"], status_code=403)
    cb = await callback(rt, session, ticket)
    if which == "rate":
        raw = str(form.get("satisfaction") or "")
        if raw not in ("1", "2", "3"):
            return await _view(
                request, rt, session, locale, token, error=t["err_rate_choose"], status_code=422
            )
        if not cb.rate:
            return await _view(
                request, rt, session, locale, token, error=t["err_not_now"], status_code=409
            )
        solved = {"yes": True, "no": False}.get(str(form.get("solved") or ""))
        action, body = Action.close, ActionBody(satisfaction=int(raw), solved=solved)
    else:
        reason = str(form.get("reason") or "").strip()
        if not reason:
            return await _view(
                request, rt, session, locale, token, error=t["err_required"], status_code=422
            )
        if not cb.reopen:
            return await _view(
                request, rt, session, locale, token, error=t["err_not_now"], status_code=409
            )
        action = Action.reopen
        body = ActionBody(reason=reason[:REASON_MAX], satisfaction=3, solved=False)
    try:
        await service.act(rt, session, CITIZEN, ticket.reference, action, body)
    except ContactError:
        await session.rollback()
        rt.discard(session)
        return await _view(
            request, rt, session, locale, token, error=t["err_changed"], status_code=409
        )
    await rt.commit(session)
    done = "rated" if which == "rate" else "reopened"
    return RedirectResponse(url("/m/track/view", lang=locale, t=token, done=done), status_code=303)
