"""``/m/report``: a citizen reports a problem (or writes to a leader's mailbox) from a phone.

Server-rendered steps, no JavaScript needed:

1. pick a service (grouped by the catalogue's groups; a search box filters on the server);
2. the service's guidance and forms, its custom fields, the description, up to three
   photos, where it is (address, district, or the phone's position);
3. the phone number, and whether to stay anonymous towards the department: a 6-digit
   code goes out by SMS through the outbox;
4. the code: the ticket is opened (channel ``web``), the reference shown on screen; the
   core's acknowledgement text brings it by SMS too.

Between the steps the report lives in a server-side draft (``web_drafts``) named by a
random cookie, so photos are sent once and the phone never travels back to the page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from channels.mobile_web import catalogue, guard, photos
from channels.mobile_web.i18n import words
from channels.mobile_web.pages import language, render, secure, url
from contact import outbox, service
from contact.deps import DbSession, RuntimeDep
from contact.errors import ContactError
from contact.fields import FieldProblem, clean_values
from contact.models import (
    Attachment,
    Channel,
    PhoneCode,
    Ticket,
    TicketEvent,
    WebDraft,
    utcnow,
)
from contact.principal import CITIZEN
from contact.reference import grouped
from contact.runtime import Runtime
from contact.schemas import ADDRESS_MAX, DESCRIPTION_MAX, TicketCreate, normalize_phone

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

DRAFT_COOKIE = "m_draft"
DRAFT_TTL = timedelta(hours=2)
CODE_TTL = timedelta(minutes=10)
CODE_TRIES = 5
CODE_RESEND_SECONDS = 60
CODES_PER_PHONE = guard.Limit("code-phone", 5, timedelta(hours=1))
CODES_PER_CLIENT = guard.Limit("code-client", 20, timedelta(hours=1))
# Three photos of 8 MB, the fields and the multipart framing.
MAX_UPLOAD = photos.MAX_PHOTOS * photos.MAX_BYTES + 512 * 1024
POST_PATHS = frozenset(
    {"/m/report/details", "/m/report/contact", "/m/report/verify", "/m/report/resend"}
)


# ---------------------------------------------------------------- drafts


async def load_draft(session: AsyncSession, request: Request) -> WebDraft | None:
    token = request.cookies.get(DRAFT_COOKIE, "")
    if not token or len(token) > 100:
        return None
    return (
        await session.execute(
            select(WebDraft).where(
                WebDraft.token_hash == guard.token_hash(token), WebDraft.expires_at > utcnow()
            )
        )
    ).scalar_one_or_none()


async def save_draft(
    session: AsyncSession, draft: WebDraft | None, data: dict[str, Any]
) -> str | None:
    """Write the draft's data (a new draft when ``draft`` is None): the new cookie, if any."""
    now = utcnow()
    if draft is not None:
        await session.execute(
            update(WebDraft)
            .where(WebDraft.id == draft.id)
            .values(data=data, updated_at=now, expires_at=now + DRAFT_TTL)
        )
        draft.data = data
        return None
    token, hashed = guard.new_secret_token()
    session.add(
        WebDraft(
            token_hash=hashed, data=data, created_at=now, updated_at=now, expires_at=now + DRAFT_TTL
        )
    )
    return token


def _with_cookie(rt: Runtime, response: Response, token: str | None) -> Response:
    if token:
        response.set_cookie(
            DRAFT_COOKIE,
            token,
            max_age=int(DRAFT_TTL.total_seconds()),
            httponly=True,
            samesite="lax",
            secure=secure(rt),
            path="/m",
        )
    return response


def _see(path: str, locale: str, **params: object) -> RedirectResponse:
    return RedirectResponse(url(path, lang=locale, **params), status_code=303)


def _expired(request: Request, rt: Runtime, locale: str) -> Response:
    t = words(locale)
    return render(
        request,
        rt,
        "problem.html",
        locale,
        here=("/m/report", {}),
        status_code=410,
        title=t["report"],
        message=t["err_expired"],
        back="/m/report",
        back_label=t["report"],
    )


def _csrf_refused(request: Request, rt: Runtime, locale: str, back: str) -> Response:
    t = words(locale)
    return render(
        request,
        rt,
        "problem.html",
        locale,
        here=(back, {}),
        status_code=403,
        title=t["report"],
        message=t["err_csrf"],
        back=back,
        back_label=t["next"] if back != "/m/report" else t["report"],
    )


# ---------------------------------------------------------------- 1. pick a service


@router.get("/m/report")
async def pick(request: Request, rt: RuntimeDep) -> Response:
    locale = language(rt, request)
    q = (request.query_params.get("q") or "").strip()[:50]
    views = list((await catalogue.services(rt)).values())
    if q:
        views = [v for v in views if v.matches(q)]
    return render(
        request,
        rt,
        "pick.html",
        locale,
        title=words(locale)["pick_title"],
        q=q,
        groups=catalogue.grouped(views, locale),
    )


# ---------------------------------------------------------------- 3. contact (fixed paths first)


@router.get("/m/report/contact")
async def contact_page(request: Request, rt: RuntimeDep, session: DbSession) -> Response:
    locale = language(rt, request)
    draft = await load_draft(session, request)
    if draft is None or draft.ticket_id is not None or not draft.data.get("service"):
        return _expired(request, rt, locale)
    return await _contact_form(request, rt, draft, locale)


async def _contact_form(
    request: Request,
    rt: Runtime,
    draft: WebDraft,
    locale: str,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    views = await catalogue.services(rt)
    view = views.get(draft.data["service"])
    if view is None:
        return _expired(request, rt, locale)
    text = str(draft.data.get("description", ""))
    return render(
        request,
        rt,
        "contact.html",
        locale,
        here=("/m/report/contact", {}),
        status_code=status_code,
        title=words(locale)["contact_title"],
        service=view,
        excerpt=text if len(text) <= 140 else text[:139] + "…",
        anonymous=bool(draft.data.get("anonymous")),
        errors=errors or {},
    )


@router.post("/m/report/contact")
async def contact_submit(request: Request, rt: RuntimeDep, session: DbSession) -> Response:
    form = await _small_form(request)
    locale = language(rt, request, form.get("lang"))
    if not guard.csrf_ok(rt.settings.SECRET_KEY, request, form.get("csrf")):
        return _csrf_refused(request, rt, locale, "/m/report/contact")
    draft = await load_draft(session, request)
    if draft is None or draft.ticket_id is not None or not draft.data.get("service"):
        return _expired(request, rt, locale)
    t = words(locale)
    try:
        phone = normalize_phone(str(form.get("phone") or "")[:32], rt.settings.DEFAULT_REGION)
    except ValueError:
        return await _contact_form(request, rt, draft, locale, {"phone": t["err_phone"]}, 422)
    data = {**draft.data, "phone": phone, "anonymous": form.get("anonymous") == "1"}
    problem = await send_code(rt, session, request, draft, phone, locale)
    if problem is not None:
        return await _contact_form(request, rt, draft, locale, {"phone": problem}, 429)
    await save_draft(session, draft, data)
    await rt.commit(session)
    return _see("/m/report/verify", locale)


async def send_code(
    rt: Runtime,
    session: AsyncSession,
    request: Request,
    draft: WebDraft,
    phone: str,
    locale: str,
) -> str | None:
    """Queue a new code for ``phone`` (in the caller's transaction): None, or what stops it."""
    t = words(locale)
    secret = rt.settings.SECRET_KEY
    now = utcnow()
    last = (
        await session.execute(
            select(PhoneCode.created_at)
            .where(PhoneCode.draft_id == draft.id)
            .order_by(PhoneCode.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if last is not None and (now - last).total_seconds() < CODE_RESEND_SECONDS:
        wait = CODE_RESEND_SECONDS - int((now - last).total_seconds())
        return t["err_code_wait"].format(n=wait)
    by_phone = guard.digest(secret, "code-phone", phone)
    by_client = guard.digest(secret, "code-client", guard.client_ip(request))
    for key, rule in ((by_phone, CODES_PER_PHONE), (by_client, CODES_PER_CLIENT)):
        if await guard.locked_until(session, key, rule) is not None:
            return t["err_code_limit"]
    await guard.count(session, by_phone, CODES_PER_PHONE)
    await guard.count(session, by_client, CODES_PER_CLIENT)
    await guard.purge_soon(session, rt.settings.MEDIA_DIR)
    code = f"{secrets.randbelow(10**6):06d}"
    row = PhoneCode(
        draft_id=draft.id,
        phone=phone,
        code_hash=guard.digest(secret, "code", draft.id, phone, code),
        tries=0,
        created_at=now,
        expires_at=now + CODE_TTL,
    )
    session.add(row)
    await session.flush()
    # Sent at once whatever the hour, even to a number that opted out of status texts:
    # the citizen is waiting for it.
    await outbox.queue(
        session,
        key=f"phone-code:{row.id}",
        channel=Channel.sms,
        recipient=phone,
        template="verify_code",
        locale=locale,
        context={"code": code, "minutes": int(CODE_TTL.total_seconds() // 60)},
    )
    return None


# ---------------------------------------------------------------- 4. the code


@router.get("/m/report/verify")
async def verify_page(request: Request, rt: RuntimeDep, session: DbSession) -> Response:
    locale = language(rt, request)
    draft = await load_draft(session, request)
    if draft is not None and draft.ticket_id is not None:
        return _see("/m/report/done", locale)
    if draft is None or not draft.data.get("phone"):
        return _expired(request, rt, locale)
    notice = words(locale)["code_resent"] if request.query_params.get("sent") else None
    return _verify_form(request, rt, draft, locale, notice=notice)


def _verify_form(
    request: Request,
    rt: Runtime,
    draft: WebDraft,
    locale: str,
    *,
    error: str | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        rt,
        "verify.html",
        locale,
        here=("/m/report/verify", {}),
        status_code=status_code,
        title=words(locale)["verify_title"],
        last4=str(draft.data["phone"])[-4:],
        error=error,
        notice=notice,
    )


@router.post("/m/report/resend")
async def resend(request: Request, rt: RuntimeDep, session: DbSession) -> Response:
    form = await _small_form(request)
    locale = language(rt, request, form.get("lang"))
    if not guard.csrf_ok(rt.settings.SECRET_KEY, request, form.get("csrf")):
        return _csrf_refused(request, rt, locale, "/m/report/verify")
    draft = await load_draft(session, request)
    if draft is not None and draft.ticket_id is not None:
        return _see("/m/report/done", locale)
    if draft is None or not draft.data.get("phone"):
        return _expired(request, rt, locale)
    problem = await send_code(rt, session, request, draft, draft.data["phone"], locale)
    if problem is not None:
        return _verify_form(request, rt, draft, locale, error=problem, status_code=429)
    await rt.commit(session)
    return _see("/m/report/verify", locale, sent=1)


@router.post("/m/report/verify")
async def verify_submit(request: Request, rt: RuntimeDep, session: DbSession) -> Response:
    form = await _small_form(request)
    locale = language(rt, request, form.get("lang"))
    if not guard.csrf_ok(rt.settings.SECRET_KEY, request, form.get("csrf")):
        return _csrf_refused(request, rt, locale, "/m/report/verify")
    draft = await load_draft(session, request)
    if draft is not None and draft.ticket_id is not None:
        return _see("/m/report/done", locale)
    if draft is None or not draft.data.get("phone") or not draft.data.get("service"):
        return _expired(request, rt, locale)
    t = words(locale)
    typed = "".join(ch for ch in str(form.get("code") or "")[:20] if not ch.isspace())
    if len(typed) != 6 or not typed.isascii() or not typed.isdigit():
        return _verify_form(request, rt, draft, locale, error=t["err_code_format"], status_code=422)
    code = (
        await session.execute(
            select(PhoneCode)
            .where(PhoneCode.draft_id == draft.id)
            .order_by(PhoneCode.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    phone = str(draft.data["phone"])
    now = utcnow()
    if (
        code is None
        or code.phone != phone
        or code.used_at is not None
        or code.expires_at <= now
        or code.tries >= CODE_TRIES
    ):
        return _verify_form(request, rt, draft, locale, error=t["err_code_dead"], status_code=422)
    expected = guard.digest(rt.settings.SECRET_KEY, "code", draft.id, phone, typed)
    if not secrets.compare_digest(expected, code.code_hash):
        left = CODE_TRIES - code.tries - 1
        tried = await session.execute(
            update(PhoneCode)
            .where(PhoneCode.id == code.id, PhoneCode.tries < CODE_TRIES)
            .values(tries=PhoneCode.tries + 1)
        )
        await session.commit()
        if tried.rowcount != 1 or left <= 0:  # type: ignore[attr-defined]
            return _verify_form(
                request, rt, draft, locale, error=t["err_code_dead"], status_code=422
            )
        return _verify_form(
            request, rt, draft, locale, error=t["err_code_wrong"].format(n=left), status_code=422
        )
    # The code is used once: a second submit (a double tap, a retry) finds it used.
    used = await session.execute(
        update(PhoneCode)
        .where(PhoneCode.id == code.id, PhoneCode.used_at.is_(None))
        .values(used_at=now)
    )
    if used.rowcount != 1:  # type: ignore[attr-defined]
        await session.rollback()
        return _see("/m/report/done", locale)
    try:
        ticket_id = await submit(rt, session, draft, locale)
    except ContactError as exc:
        await session.rollback()
        rt.discard(session)
        log.warning("web report refused at submit: %s", exc.detail)
        return _expired(request, rt, locale)
    if ticket_id is None:
        await session.rollback()
        rt.discard(session)
        return _see("/m/report/done", locale)
    await rt.commit(session)
    return _see("/m/report/done", locale)


async def submit(rt: Runtime, session: AsyncSession, draft: WebDraft, locale: str) -> int | None:
    """Open the ticket of a confirmed draft, with its photos (in the caller's transaction).

    The core queues the acknowledgement text with the reference (the phone is given and
    the channel is not SMS). None when the draft was submitted meanwhile.
    """
    data = draft.data
    fields = dict(data.get("fields") or {})
    subject = fields.get("subject")
    ticket, _ = await service.open_ticket(
        rt,
        session,
        TicketCreate(
            description=str(data["description"]),
            service=str(data["service"]),
            phone=str(data["phone"]),
            address=data.get("address") or None,
            district=data.get("district") or None,
            channel=Channel.web,
            title=subject[:200] if isinstance(subject, str) else "",
            fields=fields,
            anonymous=bool(data.get("anonymous")),
            locale=data.get("locale") or locale,
            lat=data.get("lat"),
            lon=data.get("lon"),
        ),
        CITIZEN,
    )
    now = utcnow()
    for i, p in enumerate(data.get("photos") or [], 1):
        if not (rt.settings.MEDIA_DIR / p["path"]).exists():
            continue
        att = Attachment(
            ticket_id=ticket.id,
            filename=f"photo-{i}.jpg",
            content_type=photos.CONTENT_TYPE,
            size=int(p["size"]),
            sha256=p["sha256"],
            path=p["path"],
            public=False,
            created_at=now,
        )
        session.add(att)
        await session.flush()
        session.add(
            TicketEvent(
                ticket_id=ticket.id,
                kind="attachment_added",
                from_status=ticket.status.value,
                to_status=ticket.status.value,
                actor="citizen",
                data={
                    "attachment_id": att.id,
                    "content_type": photos.CONTENT_TYPE,
                    "size": int(p["size"]),
                },
                public=False,
                created_at=now,
            )
        )
    # What the citizen typed is on the ticket now: the draft keeps only the ticket.
    claimed = await session.execute(
        update(WebDraft)
        .where(WebDraft.id == draft.id, WebDraft.ticket_id.is_(None))
        .values(ticket_id=ticket.id, data={}, updated_at=now, expires_at=now + DRAFT_TTL)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return ticket.id


@router.get("/m/report/done")
async def done(request: Request, rt: RuntimeDep, session: DbSession) -> Response:
    locale = language(rt, request)
    draft = await load_draft(session, request)
    if draft is None or draft.ticket_id is None:
        return _see("/m/track", locale)
    reference = (
        await session.execute(select(Ticket.reference).where(Ticket.id == draft.ticket_id))
    ).scalar_one()
    return render(
        request,
        rt,
        "done.html",
        locale,
        title=words(locale)["done_title"],
        reference=reference,
        reference_grouped=grouped(reference),
    )


# ---------------------------------------------------------------- 2. the details


@router.get("/m/report/{code}")
async def details_page(code: str, request: Request, rt: RuntimeDep, session: DbSession) -> Response:
    locale = language(rt, request)
    view = (await catalogue.services(rt)).get(code)
    if view is None:
        return _see("/m/report", locale)
    draft = await load_draft(session, request)
    values: dict[str, Any] = {}
    kept: list[dict[str, Any]] = []
    if draft is not None and draft.ticket_id is None and draft.data.get("service") == code:
        d = draft.data
        values = _field_inputs(d.get("fields") or {}, view.fields, rt)
        for k in ("description", "address", "district", "lat", "lon"):
            if d.get(k) not in (None, ""):
                values[k] = d[k]
        kept = list(d.get("photos") or [])
    return await _details_form(request, rt, view, locale, values, {}, [], kept)


async def _details_form(
    request: Request,
    rt: Runtime,
    view: catalogue.ServiceView,
    locale: str,
    values: dict[str, Any],
    errors: dict[str, str],
    photo_errors: list[str],
    kept: list[dict[str, Any]],
    status_code: int = 200,
) -> Response:
    cat = await rt.catalogue()
    return render(
        request,
        rt,
        "details.html",
        locale,
        here=(f"/m/report/{view.code}", {}),
        status_code=status_code,
        title=view.name(locale),
        service=view,
        values=values,
        errors=errors,
        photo_errors=photo_errors,
        kept=kept,
        slots=list(range(len(kept) + 1, photos.MAX_PHOTOS + 1)),
        districts=sorted(cat.districts.values(), key=lambda d: d.id),
    )


@router.post("/m/report/details")
async def details_submit(request: Request, rt: RuntimeDep, session: DbSession) -> Response:
    locale = language(rt, request)
    t = words(locale)
    code = request.query_params.get("service", "")
    view = (await catalogue.services(rt)).get(code)
    if view is None:
        return _see("/m/report", locale)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_UPLOAD:
        return await _details_form(
            request, rt, view, locale, {}, {}, [t["err_upload_size"]], [], 413
        )
    try:
        form = await request.form(
            max_files=photos.MAX_PHOTOS, max_fields=300, max_part_size=64 * 1024
        )
    except HTTPException:
        return await _details_form(
            request, rt, view, locale, {}, {}, [t["err_upload_size"]], [], 400
        )
    try:
        return await _details(request, rt, session, view, form)
    finally:
        await form.close()


async def _details(
    request: Request,
    rt: Runtime,
    session: AsyncSession,
    view: catalogue.ServiceView,
    form: FormData,
) -> Response:
    locale = language(rt, request, form.get("lang"))
    t = words(locale)
    if not guard.csrf_ok(rt.settings.SECRET_KEY, request, form.get("csrf")):
        return _csrf_refused(request, rt, locale, f"/m/report/{view.code}")
    draft = await load_draft(session, request)
    if draft is not None and (
        draft.ticket_id is not None or draft.data.get("service") != view.code
    ):
        draft = None  # a new report
    errors: dict[str, str] = {}
    raw_fields, fields = _read_fields(rt, view, form, t, errors)
    values: dict[str, Any] = dict(raw_fields)

    description = _text(form, "description")
    values["description"] = description
    if not description.strip():
        errors["description"] = t["err_required"]
    elif len(description) > DESCRIPTION_MAX:
        errors["description"] = t["err_too_long"].format(n=DESCRIPTION_MAX)

    address = _text(form, "address").strip()
    district = _text(form, "district").strip()
    values.update(address=address, district=district)
    if len(address) > ADDRESS_MAX:
        errors["address"] = t["err_too_long"].format(n=ADDRESS_MAX)
    if district and district not in (await rt.catalogue()).districts:
        errors["district"] = t["err_choose"]
    lat, lon = _coordinate(form, "lat", 90), _coordinate(form, "lon", 180)
    if (lat is None) != (lon is None) or lat is False or lon is False:
        errors["location"] = t["err_location"]
        lat = lon = None
    else:
        values.update(lat=lat if lat is not None else "", lon=lon if lon is not None else "")

    # Photos: those already kept (unless unticked), then the new ones, three at most.
    previous = {p["sha256"]: p for p in (draft.data.get("photos") or [])} if draft else {}
    keep = {str(k) for k in form.getlist("keep")}
    kept = [p for sha, p in previous.items() if sha in keep]
    await guard.drop_photos(  # unticked: the citizen took them back
        session, rt.settings.MEDIA_DIR, [p for sha, p in previous.items() if sha not in keep]
    )
    photo_errors: list[str] = []
    first_label = len(previous) + 1  # the form numbers its file inputs after the kept ones
    for i, upload in enumerate(form.getlist("photo")):
        if not isinstance(upload, UploadFile) or not upload.filename:
            continue
        n = first_label + i
        raw = await upload.read(photos.MAX_BYTES + 1)
        if not raw:
            continue
        if len(kept) >= photos.MAX_PHOTOS:
            photo_errors.append(t["err_photo_many"])
            break
        if len(raw) > photos.MAX_BYTES:
            photo_errors.append(t["err_photo_size"].format(n=n))
            continue
        try:
            photo = await asyncio.to_thread(photos.clean_photo, raw)
        except photos.NotAPhoto as exc:
            log.info("web report photo refused: %s", exc)
            photo_errors.append(t["err_photo_type"].format(n=n))
            continue
        if any(p["sha256"] == photo.sha256 for p in kept):
            continue
        rel = await asyncio.to_thread(photos.store, rt.settings.MEDIA_DIR, photo)
        kept.append(
            {
                "sha256": photo.sha256,
                "path": rel,
                "size": len(photo.data),
                "width": photo.width,
                "height": photo.height,
            }
        )

    data: dict[str, Any] = {
        **(draft.data if draft else {}),
        "service": view.code,
        "locale": locale,
        "fields": fields,
        "description": description,
        "address": address if not view.mailbox else "",
        "district": district if not view.mailbox else "",
        "lat": lat if not view.mailbox else None,
        "lon": lon if not view.mailbox else None,
        "photos": kept,
    }
    new_cookie = await save_draft(session, draft, data)  # kept photos survive a bad field
    await rt.commit(session)
    if errors or photo_errors:
        response = await _details_form(
            request, rt, view, locale, values, errors, photo_errors, kept, 422
        )
        return _with_cookie(rt, response, new_cookie)
    return _with_cookie(rt, _see("/m/report/contact", locale), new_cookie)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _coordinate(form: FormData, name: str, bound: float) -> float | bool | None:
    """A latitude or longitude; None when empty, False when not one."""
    raw = _text(form, name).strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        return False
    return round(value, 6) if -bound <= value <= bound else False


FIELD_MESSAGES = (
    ("is required", "err_required"),
    ("must be a number", "err_number"),
    ("must be a date", "err_datetime"),
    ("one of", "err_choose"),
    ("values from", "err_choose"),
    ("must be text", "err_invalid"),
)


def _read_fields(
    rt: Runtime,
    view: catalogue.ServiceView,
    form: FormData,
    t: dict[str, str],
    errors: dict[str, str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The service's custom fields as typed (to show again) and as cleaned (to keep)."""
    raw: dict[str, Any] = {}
    cleaned: dict[str, Any] = {}
    for f in view.fields:
        code = f["code"]
        if f["datatype"] == "multivaluelist":
            value: Any = [v for v in form.getlist(code) if isinstance(v, str) and v]
        else:
            value = _text(form, code).strip()
        raw[code] = value
        given = value
        if f["datatype"] == "datetime" and isinstance(value, str) and value:
            given = _with_zone(value, rt)
        try:
            cleaned.update(clean_values([f], {code: given}, enforce_required=True))
        except FieldProblem as problem:
            errors[code] = _message(problem.message, t)
    return raw, cleaned


def _message(problem: str, t: dict[str, str]) -> str:
    if problem.startswith("at most"):
        n = "".join(ch for ch in problem if ch.isdigit())
        return t["err_too_long"].format(n=n)
    for start, key in FIELD_MESSAGES:
        if problem.startswith(start):
            return t[key]
    return t["err_invalid"]


def _with_zone(value: str, rt: Runtime) -> str:
    """A date and time typed in the city's time (a phone's datetime field has no zone)."""
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value  # the field's check names the problem
    if when.tzinfo is None:
        when = when.replace(tzinfo=rt.settings.tz)
    return when.isoformat(timespec="minutes")


def _field_inputs(
    fields: dict[str, Any], definition: tuple[dict[str, Any], ...], rt: Runtime
) -> dict[str, Any]:
    """Stored values as the form's inputs show them (a datetime in the city's time)."""
    out: dict[str, Any] = {}
    for f in definition:
        value = fields.get(f["code"])
        if value is None:
            continue
        if f["datatype"] == "datetime" and isinstance(value, str):
            with contextlib.suppress(ValueError):
                local = datetime.fromisoformat(value).astimezone(rt.settings.tz)
                value = local.strftime("%Y-%m-%dT%H:%M")
        out[f["code"]] = value
    return out


async def _small_form(request: Request) -> FormData:
    """A form without files (the contact and code steps)."""
    try:
        return await request.form(max_files=0, max_fields=20, max_part_size=16 * 1024)
    except HTTPException:
        return FormData()
