"""The staff pages: sign-in, the agent console, the department workbench, the supervisor's
wallboard and statistics, admin. Server-rendered shells; the pages' scripts talk to the
REST API with the session cookie and its CSRF token, and listen on ``/ws``.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select

from agent_ui.i18n import LOCALES, pick, words
from contact import auth
from contact.deps import (
    SESSION_COOKIE,
    DbSession,
    RuntimeDep,
    client_of,
    forget_session,
    principal_for_token,
)
from contact.lifecycle import Actor
from contact.models import AuditEntry
from contact.principal import Principal
from contact.runtime import Runtime

HERE = Path(__file__).parent
PRESIGN_COOKIE = "contact_presign"
FORM_PATHS = frozenset({"/signin", "/signout"})
STATIC_PREFIX = "/static/staff"

env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
router = APIRouter(include_in_schema=False)

# Which roles open which page; the first page a role may open is its home.
PAGES: dict[str, frozenset[Actor]] = {
    "/console/": frozenset({Actor.agent, Actor.supervisor, Actor.admin}),
    "/dept/": frozenset({Actor.department}),
    "/supervisor/": frozenset({Actor.supervisor, Actor.admin}),
    "/supervisor/stats": frozenset({Actor.supervisor, Actor.admin, Actor.department}),
    "/admin/": frozenset({Actor.admin}),
}
HOME = {
    Actor.agent: "/console/",
    Actor.department: "/dept/",
    Actor.supervisor: "/supervisor/",
    Actor.admin: "/admin/",
}

# Staff pages load nothing from elsewhere and may not be framed.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def static_files() -> StaticFiles:
    return StaticFiles(directory=HERE / "static")


def _secure(rt: Runtime) -> bool:
    return rt.settings.PUBLIC_BASE_URL.startswith("https://")


def render(
    name: str,
    locale: str,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    text = words(locale)
    html = env.get_template(name).render(
        t=text, locale=locale, static=STATIC_PREFIX, nav=_nav(context.get("me")), **context
    )
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def _nav(me: Principal | None) -> list[tuple[str, str]]:
    if me is None:
        return []
    return [(path, key) for path, key in NAV if me.actor in PAGES[path]]


NAV = [
    ("/console/", "console"),
    ("/dept/", "dept"),
    ("/supervisor/", "supervisor"),
    ("/supervisor/stats", "stats"),
    ("/admin/", "admin"),
]


def _lang(request: Request, fallback: str) -> str:
    asked = request.query_params.get("lang")
    return asked if asked in LOCALES else fallback


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site (never ``//host`` or a scheme) may follow sign-in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


# ------------------------------------------------------------------ sign-in


@router.get("/signin")
async def signin_page(request: Request, rt: RuntimeDep) -> Response:
    locale = _lang(request, rt.settings.DEFAULT_LOCALE)
    return _signin_form(request, rt, locale)


def _signin_form(
    request: Request,
    rt: RuntimeDep,
    locale: str,
    error: str | None = None,
    status_code: int = 200,
    username: str = "",
) -> Response:
    presign = request.cookies.get(PRESIGN_COOKIE) or secrets.token_urlsafe(24)
    response = render(
        "signin.html",
        pick(locale),
        status_code,
        me=None,
        csrf=auth.csrf_token(rt.settings.SECRET_KEY, presign),
        error=error,
        username=username,
        next=_safe_next(request.query_params.get("next")) or "",
    )
    response.set_cookie(
        PRESIGN_COOKIE, presign, httponly=True, samesite="strict", secure=_secure(rt)
    )
    return response


@router.post("/signin")
async def signin_submit(
    request: Request,
    rt: RuntimeDep,
    session: DbSession,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=300)] = "",
    lang: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    locale = pick(lang or rt.settings.DEFAULT_LOCALE)
    if not auth.csrf_ok(rt.settings.SECRET_KEY, request.cookies.get(PRESIGN_COOKIE), csrf_token):
        return _signin_form(request, rt, locale, "csrf_failed", 403, username)
    result = await auth.authenticate(session, username, password, client_of(request))
    if result.user is None:
        code = 423 if result.outcome == "account_locked" else 401
        return _signin_form(request, rt, locale, result.outcome, code, username)
    user = result.user
    ttl = timedelta(hours=rt.settings.TOKEN_TTL_HOURS)
    token, _ = await auth.open_session(session, user, client_of(request), ttl)
    await session.commit()
    actor = Actor(user.role.value)
    target = _safe_next(next)
    if target is None or not any(
        target.startswith(p) and actor in roles for p, roles in PAGES.items()
    ):
        target = HOME[actor]
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(ttl.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=_secure(rt),
        path="/",
    )
    response.delete_cookie(PRESIGN_COOKIE)
    return response


@router.post("/signout")
async def signout(
    request: Request,
    rt: RuntimeDep,
    session: DbSession,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token and not auth.csrf_ok(rt.settings.SECRET_KEY, token, csrf_token):
        # A forged sign-out from another site: keep the agent on their call.
        return RedirectResponse("/", status_code=303)
    if token:
        me = await principal_for_token(rt, token)
        user_id = await auth.close_session(session, token)
        if user_id is not None:
            name = me.name if me else str(user_id)
            await auth.audit(session, "sign_out", name, client_of(request), user_id)
        await session.commit()
        forget_session(token)
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# ------------------------------------------------------------------ pages


class SignInFirst(Exception):
    def __init__(self, target: str) -> None:
        self.target = target


async def page_principal(request: Request, rt: RuntimeDep) -> Principal:
    principal = await principal_for_token(rt, request.cookies.get(SESSION_COOKIE))
    if principal is None:
        raise SignInFirst(request.url.path)
    return principal


Me = Annotated[Principal, Depends(page_principal)]


def signin_redirect(target: str) -> Response:
    return RedirectResponse(f"/signin?next={quote(target)}", status_code=303)


def _page(
    request: Request, rt: Runtime, me: Principal, path: str, template: str, **extra: Any
) -> Response:
    locale = pick(me.locale)
    if me.actor not in PAGES[path]:
        return render("forbidden.html", locale, 403, me=me, csrf=_csrf(request, rt), home=HOME)
    return render(template, locale, me=me, csrf=_csrf(request, rt), page=path, **extra)


def _csrf(request: Request, rt: Runtime) -> str:
    return auth.csrf_token(rt.settings.SECRET_KEY, request.cookies.get(SESSION_COOKIE, ""))


@router.get("/")
async def root(request: Request, rt: RuntimeDep) -> Response:
    me = await principal_for_token(rt, request.cookies.get(SESSION_COOKIE))
    return RedirectResponse(HOME[me.actor] if me else "/signin", status_code=303)


@router.get("/console/")
async def console(request: Request, rt: RuntimeDep, me: Me) -> Response:
    return _page(request, rt, me, "/console/", "console.html")


@router.get("/dept/")
async def workbench(request: Request, rt: RuntimeDep, me: Me) -> Response:
    return _page(request, rt, me, "/dept/", "dept.html")


@router.get("/supervisor/")
async def supervisor(request: Request, rt: RuntimeDep, me: Me) -> Response:
    return _page(request, rt, me, "/supervisor/", "supervisor.html")


@router.get("/supervisor/stats")
async def statistics(request: Request, rt: RuntimeDep, me: Me) -> Response:
    return _page(request, rt, me, "/supervisor/stats", "stats.html")


@router.get("/admin/")
async def admin(request: Request, rt: RuntimeDep, me: Me, session: DbSession) -> Response:
    if me.actor not in PAGES["/admin/"]:  # refused before anything is read
        return _page(request, rt, me, "/admin/", "admin.html")
    # The tabs load their lists from /api/v1/admin/...; the audit is in the page itself.
    audit_rows = (
        (await session.execute(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(100)))
        .scalars()
        .all()
    )
    return _page(request, rt, me, "/admin/", "admin.html", audit_rows=audit_rows)
