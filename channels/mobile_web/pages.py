"""Rendering the citizens' pages: one jinja environment, the language, the headers.

Every page carries its CSS inline under a per-response CSP nonce and loads nothing
else (the report form adds one small inline script, also under the nonce). The
language comes from ``?lang=`` (or the form's ``lang``), else the city's locale, and
every link and form carries it on.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request

from channels.mobile_web import guard
from channels.mobile_web.i18n import LOCALES, other, pick, status_name, words
from contact.runtime import Runtime

HERE = Path(__file__).parent
env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def headers(nonce: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
            "img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
        ),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Permissions-Policy": "geolocation=(self), camera=(), microphone=()",
        "Cache-Control": "no-store",
    }


def language(rt: Runtime, request: Request, form_lang: object = None) -> str:
    asked = form_lang if isinstance(form_lang, str) and form_lang else None
    return pick(asked or request.query_params.get("lang"), rt.settings.DEFAULT_LOCALE)


def url(path: str, **params: object) -> str:
    query = {k: str(v) for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(query)}" if query else path


def secure(rt: Runtime) -> bool:
    return rt.settings.PUBLIC_BASE_URL.startswith("https://")


@lru_cache(maxsize=len(LOCALES))
def _words(locale: str) -> dict[str, str]:
    return words(locale)


def render(
    request: Request,
    rt: Runtime,
    template: str,
    locale: str,
    *,
    here: tuple[str, dict[str, object]] | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page; ``here`` is the GET address of what is shown (path, query) for the
    language switch, by default the request's own."""
    nonce = secrets.token_urlsafe(12)
    cookie, new_cookie = guard.csrf_cookie(request)
    if here is None:
        path = request.url.path
        query: dict[str, object] = dict(request.query_params)
    else:
        path, query = here
    query = {k: v for k, v in query.items() if k != "lang"}

    def link(to: str, **params: object) -> str:
        return url(to, lang=locale, **params)

    html = env.get_template(template).render(
        t=_words(locale),
        lang=locale,
        other_lang=other(locale),
        switch=url(path, **query, lang=other(locale)),
        link=link,
        nonce=nonce,
        csrf=guard.csrf_token(rt.settings.SECRET_KEY, cookie),
        status_name=lambda s: status_name(locale, s),
        **context,
    )
    response = HTMLResponse(html, status_code=status_code, headers=headers(nonce))
    if new_cookie:
        response.set_cookie(
            guard.CSRF_COOKIE,
            cookie,
            httponly=True,
            samesite="lax",
            secure=secure(rt),
            path="/m",
        )
    return response
