"""The ``/m/`` pages: home, the report steps, tracking, and the forms to download.

``router`` is what the composition root includes; ``FORM_PATHS`` are the pages' form
posts, which check their own CSRF token (a cookie and its HMAC in the form) rather
than the staff pages' header.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from channels.mobile_web import report, track
from channels.mobile_web.catalogue import services
from channels.mobile_web.i18n import words
from channels.mobile_web.pages import HERE, language, render, url
from contact.deps import RuntimeDep

FORMS_DIR = HERE / "forms"
FORM_FILE = re.compile(r"^[a-z0-9][a-z0-9-]{0,80}\.pdf$")
FORM_PATHS = report.POST_PATHS | track.POST_PATHS

router = APIRouter(include_in_schema=False)


@router.get("/m")
async def bare() -> Response:
    return RedirectResponse("/m/", status_code=308)


@router.get("/m/")
async def home(request: Request, rt: RuntimeDep) -> Response:
    locale = language(rt, request)
    views = await services(rt)
    return render(
        request,
        rt,
        "home.html",
        locale,
        title=words(locale)["home_title"],
        mailboxes=[v for v in views.values() if v.mailbox],
    )


@router.get("/m/forms/{name}")
async def form_file(name: str, request: Request, rt: RuntimeDep) -> Response:
    """A form offered with a service's guidance (files shipped in this package)."""
    path = FORMS_DIR / name
    if not FORM_FILE.match(name) or not path.is_file():
        return RedirectResponse(url("/m/report", lang=language(rt, request)), status_code=303)
    return FileResponse(
        path,
        media_type="application/pdf",
        filename=name,
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "public, max-age=3600"},
    )


router.include_router(report.router)
router.include_router(track.router)
