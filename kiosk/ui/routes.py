"""The kiosk's screens: report, track, guides, in portrait 1080×1920 or landscape.

Server-rendered pages with large touch targets; a small script adds the on-screen
keypad and keyboard, the common phrases, the idle timeout (back to the start screen,
everything typed gone) and the card reader / scanner input. Nothing is kept between
screens except in the page itself (hidden fields), so going home forgets it all.
A submission carries a ``sid`` made when its form was first shown: tapping "submit"
twice keeps one submission.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit
from zoneinfo import ZoneInfo

import qrcode
import qrcode.image.svg
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from contact.fields import FieldProblem, clean_values
from contact.reference import grouped, is_valid
from contact.schemas import DESCRIPTION_MAX, normalize_phone
from kiosk.hardware.receipt import TextSlip
from kiosk.ui import i18n
from kiosk.ui.model import LOCALES, Catalogue, KioskBackend, ServiceInfo, TrackAnswer, pick

HERE = Path(__file__).parent
STATIC = {
    "kiosk.css": "text/css; charset=utf-8",
    "kiosk.js": "text/javascript; charset=utf-8",
    "icons.svg": "image/svg+xml",
}
DESCRIPTION_MIN = 5
ADDRESS_LIMIT = 300
PROVISIONAL = re.compile(r"^K[0-9]{6,20}$")
CARD = re.compile(r"^[0-9]{8,19}$")


@dataclass(frozen=True)
class Options:
    idle_seconds: int = 90
    default_locale: str = "zh-CN"
    region: str = "CN"
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    input_poll: bool = False  # a serial card reader / scanner feeds /kiosk/input


def clean_reference(typed: str) -> str:
    """A typed or scanned reference: grouping spaces dropped, ``K`` upper-cased, and a
    scanned track URL (``…/m/track?ref=…``) read for its ``ref``."""
    text = typed.strip()[:300]
    if "://" in text or text.startswith("/"):
        ref = parse_qs(urlsplit(text).query).get("ref", [""])[0]
        text = ref
    return "".join(ch for ch in text[:40] if not ch.isspace() and ch != "-").upper()


def mask_phone(phone: str) -> str:
    digits = phone.removeprefix("+86")
    return digits[:3] + "****" + digits[-4:] if len(digits) >= 8 else "****" + digits[-4:]


def qr_svg(data: str) -> Markup:
    """The QR code of ``data`` as inline SVG (no image files, no network)."""
    img = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    out = io.BytesIO()
    img.save(out)
    svg = out.getvalue().decode()
    svg = re.sub(r"^<\?xml[^>]*>\s*", "", svg)
    return Markup(svg)  # noqa: S704 - produced by qrcode from our own URL


@dataclass
class Draft:
    """What a citizen has entered so far (from the form post)."""

    sid: str
    description: str = ""
    address: str = ""
    phone: str = ""
    card_digest: str = ""
    card_last4: str = ""
    values: dict[str, Any] | None = None

    def payload(self, service: ServiceInfo, locale: str, phone: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "service": service.code,
            "description": self.description,
            "fields": self.values or {},
            "locale": locale,
        }
        if self.address:
            body["address"] = self.address
        if phone:
            body["phone"] = phone
        if self.card_digest:
            body["card"] = {"digest": self.card_digest, "last4": self.card_last4}
        return body


def make_router(backend: KioskBackend, options: Options | None = None) -> APIRouter:
    opts = options or Options()
    router = APIRouter(include_in_schema=False)
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["grouped"] = grouped

    def locale_of(value: str | None) -> str:
        return value if value in LOCALES else opts.default_locale

    def page(
        request: Request, name: str, locale: str, status_code: int = 200, **ctx: Any
    ) -> HTMLResponse:
        t = i18n.words(locale)
        other = "en" if locale == "zh-CN" else "zh-CN"
        here = request.url.path
        query = {k: v for k, v in request.query_params.items() if k != "lang"}
        switch = here + "?" + urlencode({**query, "lang": other})
        html = env.get_template(name).render(
            t=t,
            locale=locale,
            lang_switch=switch,
            idle=opts.idle_seconds,
            input_poll=opts.input_poll,
            link=lambda path, **q: path + "?" + urlencode({**q, "lang": locale}),
            **ctx,
        )
        return HTMLResponse(html, status_code, headers=_HEADERS)

    async def catalogue_or_page(
        request: Request, locale: str
    ) -> tuple[Catalogue | None, HTMLResponse | None]:
        cat = await backend.catalogue()
        if cat is None or not cat.services:
            return None, page(request, "unavailable.html", locale, 503)
        return cat, None

    # ------------------------------------------------------------ start screen

    @router.get("/kiosk/")
    async def home(request: Request, lang: str | None = None) -> Response:
        return page(request, "home.html", locale_of(lang))

    @router.get("/kiosk")
    async def home_slash(request: Request) -> Response:
        return Response(status_code=307, headers={"Location": "/kiosk/"})

    @router.get("/kiosk/static/{name}")
    async def static(name: str) -> Response:
        if name not in STATIC:
            return Response(status_code=404)
        return Response(
            (HERE / "static" / name).read_bytes(),
            media_type=STATIC[name],
            headers={"Cache-Control": "public, max-age=3600"},
        )

    # ------------------------------------------------------------ report

    def browse(section: str) -> None:
        """``/kiosk/<section>``: the categories; ``/kiosk/<section>/group/<g>``: its services
        (each leading to ``/kiosk/<section>/<service>``)."""
        base = f"/kiosk/{section}"

        async def groups(request: Request, lang: str | None = None) -> Response:
            locale = locale_of(lang)
            cat, down = await catalogue_or_page(request, locale)
            if cat is None:
                return down  # type: ignore[return-value]
            return page(request, "groups.html", locale, cat=cat, target=f"{base}/group/")

        async def services_of(request: Request, group: str, lang: str | None = None) -> Response:
            locale = locale_of(lang)
            cat, down = await catalogue_or_page(request, locale)
            if cat is None:
                return down  # type: ignore[return-value]
            g = cat.group(group)
            if g is None:
                return page(request, "groups.html", locale, 404, cat=cat, target=f"{base}/group/")
            return page(
                request,
                "services.html",
                locale,
                cat=cat,
                group=g,
                services=cat.in_group(group),
                target=f"{base}/",
                back=base,
            )

        router.add_api_route(base, groups, methods=["GET"])
        router.add_api_route(base + "/group/{group}", services_of, methods=["GET"])

    browse("report")
    browse("guides")

    def form_page(
        request: Request,
        locale: str,
        cat: Catalogue,
        service: ServiceInfo,
        draft: Draft,
        errors: Mapping[str, str] | None = None,
        status_code: int = 200,
    ) -> HTMLResponse:
        group = cat.group(service.group)
        return page(
            request,
            "form.html",
            locale,
            status_code,
            cat=cat,
            service=service,
            draft=draft,
            errors=errors or {},
            phrases=i18n.phrases(locale, group.icon if group else "other"),
            label=lambda f: f["label_zh"] if locale == "zh-CN" else f["label_en"],
            value_name=lambda v: v["name_zh"] if locale == "zh-CN" else v["name_en"],
            description_max=DESCRIPTION_MAX,
            address_max=ADDRESS_LIMIT,
        )

    @router.get("/kiosk/report/{code}")
    async def report_form(request: Request, code: str, lang: str | None = None) -> Response:
        locale = locale_of(lang)
        cat, down = await catalogue_or_page(request, locale)
        if cat is None:
            return down  # type: ignore[return-value]
        service = cat.services.get(code)
        if service is None:
            return page(request, "groups.html", locale, 404, cat=cat, target="/kiosk/report/group/")
        return form_page(request, locale, cat, service, Draft(sid=str(uuid.uuid4())))

    @router.post("/kiosk/report/{code}")
    async def report_step(request: Request, code: str) -> Response:
        form = await request.form()
        locale = locale_of(_str(form.get("lang")))
        cat, down = await catalogue_or_page(request, locale)
        if cat is None:
            return down  # type: ignore[return-value]
        service = cat.services.get(code)
        if service is None:
            return page(request, "groups.html", locale, 404, cat=cat, target="/kiosk/report/group/")
        draft = _draft(form, service)
        action = _str(form.get("action"))
        if action == "edit":
            return form_page(request, locale, cat, service, draft)
        errors, values, phone = _check(draft, service, locale, opts.region)
        if errors:
            return form_page(request, locale, cat, service, draft, errors, 422)
        draft.values = values
        if action != "submit":
            return page(
                request,
                "review.html",
                locale,
                cat=cat,
                service=service,
                draft=draft,
                phone_shown=mask_phone(phone) if phone else "",
                shown_values=_shown_values(service, values, locale),
                hidden=_hidden(draft, service),
            )
        outcome = await backend.submit(draft.sid, draft.payload(service, locale, phone), locale)
        return page(
            request,
            "receipt.html",
            locale,
            outcome=outcome,
            service=service,
            shown_ref=outcome.reference if outcome.provisional else grouped(outcome.reference),
            when=outcome.submitted_at.astimezone(opts.tz).strftime("%Y-%m-%d %H:%M"),
            phone_shown=mask_phone(phone) if phone else "",
            qr=qr_svg(cat.track_link(outcome.reference)),
        )

    @router.post("/kiosk/card")
    async def card(request: Request) -> Response:
        """A card number typed by a keyboard-wedge reader → its digest and last 4 digits;
        the number itself goes no further than this answer."""
        form = await request.form()
        number = "".join(ch for ch in _str(form.get("number"))[:40] if ch.isdigit())
        cat = await backend.catalogue()
        if cat is None or not CARD.match(number):
            return JSONResponse({"error": "not_a_card"}, 422, headers=_NO_STORE)
        return JSONResponse(cat.card(number), headers=_NO_STORE)

    @router.get("/kiosk/input")
    async def next_input(timeout: float = 20.0) -> Response:
        """The next code from a serial card reader or scanner (long poll; 204 if none)."""
        got = await backend.next_input(min(max(timeout, 0.0), 25.0))
        if got is None:
            return Response(status_code=204, headers=_NO_STORE)
        return JSONResponse(got, headers=_NO_STORE)

    # ------------------------------------------------------------ track

    @router.get("/kiosk/track")
    async def track_form(request: Request, lang: str | None = None, ref: str = "") -> Response:
        return page(request, "track.html", locale_of(lang), ref=clean_reference(ref))

    @router.post("/kiosk/track")
    async def track(request: Request) -> Response:
        form = await request.form()
        locale = locale_of(_str(form.get("lang")))
        t = i18n.words(locale)
        ref = clean_reference(_str(form.get("ref")))
        last4 = _str(form.get("last4")).strip()[:10]
        if not (is_valid(ref) or PROVISIONAL.match(ref)):
            return page(request, "track.html", locale, 422, ref=ref, error=t["invalid_reference"])
        if not (len(last4) == 4 and last4.isascii() and last4.isdigit()):
            return page(request, "track.html", locale, 422, ref=ref, error=t["invalid_last4"])
        answer = await backend.track(ref, last4, locale)
        if answer.outcome != "found":
            code = {"waiting": 404, "not_found": 404, "locked": 429, "offline": 503}
            return page(
                request,
                "track.html",
                locale,
                code.get(answer.outcome, 404),
                ref=ref,
                error=t.get(answer.outcome, t["not_found"]),
            )
        return page(request, "tracked.html", locale, answer=answer, shown=_shown_ref(answer))

    # ------------------------------------------------------------ guides

    async def guide_page(
        request: Request, code: str, locale: str, printed: str | None = None
    ) -> Response:
        cat, down = await catalogue_or_page(request, locale)
        if cat is None:
            return down  # type: ignore[return-value]
        service = cat.services.get(code)
        if service is None:
            return page(request, "groups.html", locale, 404, cat=cat, target="/kiosk/guides/group/")
        return page(
            request,
            "guide.html",
            locale,
            service=service,
            group=cat.group(service.group),
            printed=printed,
            form_name=lambda f: (
                pick({"zh-CN": f.get("name_zh"), "en": f.get("name_en")}, locale)
                or f.get("name", "")
            ),
        )

    @router.get("/kiosk/guides/{code}")
    async def guide(request: Request, code: str, lang: str | None = None) -> Response:
        return await guide_page(request, code, locale_of(lang))

    @router.post("/kiosk/guides/{code}/print")
    async def print_guide(request: Request, code: str) -> Response:
        form = await request.form()
        locale = locale_of(_str(form.get("lang")))
        cat = await backend.catalogue()
        service = cat.services.get(code) if cat else None
        if service is None:
            return await guide_page(request, code, locale)
        t = i18n.words(locale)
        lines = [line for line in service.guide(locale).splitlines() if line.strip()]
        slip = TextSlip(
            locale=locale,
            title=f"{t['guide_title']}：{service.name(locale)}"
            if locale == "zh-CN"
            else f"{t['guide_title']}: {service.name(locale)}",
            lines=lines or [service.name(locale)],
        )
        problem = await backend.print_slip(slip)
        return await guide_page(request, code, locale, printed=problem or "ok")

    return router


_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'",
}
_NO_STORE = {"Cache-Control": "no-store"}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _draft(form: Any, service: ServiceInfo) -> Draft:
    sid = _str(form.get("sid"))
    try:
        sid = str(uuid.UUID(sid))
    except ValueError:
        sid = str(uuid.uuid4())
    values: dict[str, Any] = {}
    for f in service.fields:
        key = f"f.{f['code']}"
        if f["datatype"] == "multivaluelist":
            chosen = [v for v in form.getlist(key) if isinstance(v, str) and v]
            if chosen:
                values[f["code"]] = chosen
        else:
            raw = _str(form.get(key)).strip()
            if raw:
                values[f["code"]] = raw
    digest = _str(form.get("card_digest")).strip().lower()
    last4 = _str(form.get("card_last4")).strip()
    ok_card = re.fullmatch(r"[0-9a-f]{64}", digest) and re.fullmatch(r"[0-9]{4}", last4)
    return Draft(
        sid=sid,
        description=_str(form.get("description")).strip()[: DESCRIPTION_MAX + 1],
        address=_str(form.get("address")).strip()[: ADDRESS_LIMIT + 1],
        phone=_str(form.get("phone")).strip()[:32],
        card_digest=digest if ok_card else "",
        card_last4=last4 if ok_card else "",
        values=values,
    )


def _check(
    draft: Draft, service: ServiceInfo, locale: str, region: str
) -> tuple[dict[str, str], dict[str, Any], str | None]:
    """The entry checked as the central server will check it, with messages for the
    citizen; returns (errors by input name, clean field values, E.164 phone)."""
    t = i18n.words(locale)
    errors: dict[str, str] = {}
    if len(draft.description) < DESCRIPTION_MIN or len(draft.description) > DESCRIPTION_MAX:
        errors["description"] = t["err_description"]
    phone = None
    if draft.phone:
        try:
            phone = normalize_phone(draft.phone, region)
        except ValueError:
            errors["phone"] = t["err_phone"]
    values: dict[str, Any] = {}
    try:
        values = clean_values(service.fields, draft.values or {}, enforce_required=True)
    except FieldProblem as problem:
        code = problem.where.removeprefix("fields.")
        f = next((f for f in service.fields if f["code"] == code), None)
        label = (f["label_zh"] if locale == "zh-CN" else f["label_en"]) if f else code
        why = t["err_required"] if problem.message == "is required" else t["err_value"]
        errors[f"f.{code}"] = t["err_field"].format(label=label, problem=why)
    if len(draft.address) > ADDRESS_LIMIT:
        errors["address"] = t["err_value"]
    return errors, values, phone


def _hidden(draft: Draft, service: ServiceInfo) -> list[tuple[str, str]]:
    out = [
        ("sid", draft.sid),
        ("description", draft.description),
        ("address", draft.address),
        ("phone", draft.phone),
        ("card_digest", draft.card_digest),
        ("card_last4", draft.card_last4),
    ]
    for code, value in (draft.values or {}).items():
        for v in value if isinstance(value, list) else [value]:
            out.append((f"f.{code}", str(v)))
    return out


def _shown_values(
    service: ServiceInfo, values: dict[str, Any], locale: str
) -> list[tuple[str, str]]:
    out = []
    for f in service.fields:
        if f["code"] not in values:
            continue
        label = f["label_zh"] if locale == "zh-CN" else f["label_en"]
        value = values[f["code"]]
        names = {
            v["key"]: (v["name_zh"] if locale == "zh-CN" else v["name_en"])
            for v in f.get("values", ())
        }
        chosen = value if isinstance(value, list) else [value]
        out.append((label, "、".join(names.get(str(v), str(v)) for v in chosen)))
    return out


def _shown_ref(answer: TrackAnswer) -> str:
    return grouped(answer.reference) if answer.reference.isdigit() else answer.reference
