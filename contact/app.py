"""The composition root: builds the runtime, registers the channel adapters, makes the app.

The only module in ``contact`` that imports the adapters (``channels``, ``ivr``,
``kiosk``, ``agent_ui``): every other import arrow points inward.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from contact.bus import Bus
from contact.channels import AdapterRegistry
from contact.db import Database
from contact.errors import ContactError
from contact.jobs import InProcessJobs, RqJobs
from contact.models import Channel
from contact.notify import Renderer
from contact.routing import RuleRouter
from contact.runtime import Jobs, Lane, Runtime
from contact.settings import Gateway, Settings, get_settings
from contact.webhooks import ProviderWebhooks

log = logging.getLogger("contact")


def build_runtime(settings: Settings, *, pool_size: int | None = None) -> Runtime:
    from channels.sms.gateway import DevSmsGateway, TwilioSmsGateway
    from channels.sms.segments import segments
    from ivr.gateway import DevVoiceGateway, TwilioVoiceGateway

    db = Database(settings.DATABASE_URL, pool_size=pool_size or settings.DATABASE_POOL_SIZE)
    registry = AdapterRegistry()
    sms = (
        TwilioSmsGateway(*_twilio_account(settings), settings.PUBLIC_BASE_URL, db=db)
        if Gateway.twilio == settings.SMS_GATEWAY
        else DevSmsGateway(db, settings.DEV_GATEWAY_LATENCY_MS)
    )
    voice = (
        TwilioVoiceGateway(*_twilio_account(settings), settings.PUBLIC_BASE_URL, db=db)
        if Gateway.twilio == settings.VOICE_GATEWAY
        else DevVoiceGateway(db)
    )
    registry.register(sms)
    registry.register(voice)
    registry.register_measure(Channel.sms, segments)
    jobs: Jobs = RqJobs(settings.REDIS_URL) if settings.REDIS_URL else InProcessJobs()
    for lane in lanes():
        jobs.add_lane(lane)
    boundaries = settings.district_boundaries  # read once, checked by the settings
    return Runtime(
        settings=settings,
        db=db,
        bus=Bus(settings.REDIS_URL),
        registry=registry,
        jobs=jobs,
        renderer=Renderer(settings.DEFAULT_LOCALE),
        router=RuleRouter(boundaries),
        boundaries=boundaries,
    )


def _twilio_account(settings: Settings) -> tuple[str, str, str]:
    """Account SID, auth token and sending number (settings refuse a twilio gateway
    without them)."""
    assert settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN
    assert settings.TWILIO_FROM_NUMBER
    return settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, settings.TWILIO_FROM_NUMBER


def lanes() -> list[Lane]:
    """The adapters' durable work, run by the in-process loop or ``contact worker``."""
    from channels.sms.jobs import INBOUND_LANE

    return [INBOUND_LANE]


def _error_response(exc: ContactError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.http_status)


def _validation_response(exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return JSONResponse(
            {"error": "malformed_json", "detail": "the request body is not valid JSON"},
            status_code=400,
        )
    fields: dict[str, str] = {}
    for e in errors:
        loc = [str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path", "header")]
        fields[".".join(loc) or "body"] = e.get("msg", "invalid").removeprefix("Value error, ")
    detail = "; ".join(f"{k}: {v}" for k, v in fields.items())
    return JSONResponse(
        {"error": "invalid_input", "detail": detail, "fields": fields}, status_code=422
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    from channels.open311.routes import router as open311_router
    from channels.sms.routes import INBOUND_PATH, dev_router, twilio_inbound, twilio_router
    from channels.sms.status import STATUS_PATH, status_router, twilio_status_callback
    from ivr.api import router as calls_api
    from ivr.routes import FAST_PATHS as VOICE_PATHS
    from ivr.routes import check_flow
    from ivr.routes import router as voice_router

    check_flow(settings)  # a flow that cannot run stops start-up, naming the fault
    from agent_ui import admin_api
    from agent_ui import api as staff_api
    from agent_ui import web as staff_pages
    from agent_ui.web import SignInFirst, signin_redirect
    from channels.mobile_web import routes as mobile_pages
    from contact import (
        api,
        attachments,
        devgateway,
        duplicates_api,
        model_router,
        routing_api,
        stats_api,
    )
    from contact.auth import CsrfGuard
    from contact.deps import SESSION_COOKIE
    from kiosk import central as kiosk_central

    kiosk_central.register()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = build_runtime(settings)
        app.state.runtime = rt
        await rt.bus.start()
        await rt.warm()
        await model_router.warm(rt)
        await rt.jobs.start(rt)
        # What start-up built (modules, routes, the catalogue) lives as long as the
        # process: keep it out of the collector's full passes, which would otherwise
        # stop every request for ~75 ms now and then.
        gc.freeze()
        try:
            yield
        finally:
            await rt.close()

    app = FastAPI(
        title="Citizen contact center",
        version="0.1.0",
        description="One number for citizens: the ticket core's REST API. "
        'Errors share one body: `{"error": code, "detail": text, ...}`.',
        lifespan=lifespan,
    )

    @app.exception_handler(ContactError)
    async def contact_error(_: Request, exc: ContactError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            {"error": code, "detail": str(exc.detail)},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(SignInFirst)
    async def sign_in_first(_: Request, exc: SignInFirst) -> Response:
        return signin_redirect(exc.target)

    app.include_router(api.health)
    app.include_router(api.api)
    app.include_router(api.realtime)
    app.include_router(twilio_router)
    app.include_router(status_router)
    app.include_router(voice_router)
    app.include_router(calls_api)
    app.include_router(stats_api.router)
    app.include_router(open311_router)
    app.include_router(attachments.router)
    app.include_router(duplicates_api.router)
    app.include_router(routing_api.router)
    app.include_router(mobile_pages.router)
    app.include_router(staff_pages.router)
    app.include_router(staff_api.router)
    app.include_router(admin_api.router)
    app.include_router(kiosk_central.router)
    app.mount(staff_pages.STATIC_PREFIX, staff_pages.static_files(), name="staff-static")
    if settings.dev_gateway:
        app.include_router(dev_router)
        from kiosk import preview as kiosk_preview

        kiosk_preview.mount(app, settings.DEFAULT_LOCALE, settings.DEFAULT_REGION, settings.tz)
        app.include_router(devgateway.router)
    app.add_middleware(
        CsrfGuard,
        secret_key=settings.SECRET_KEY,
        cookie=SESSION_COOKIE,
        form_paths=staff_pages.FORM_PATHS | mobile_pages.FORM_PATHS,
    )
    app.add_middleware(
        ProviderWebhooks,
        routes={INBOUND_PATH: twilio_inbound, STATUS_PATH: twilio_status_callback, **VOICE_PATHS},
    )
    return app


def asgi() -> Any:
    """``uvicorn --factory contact.app:asgi``: settings from the environment."""
    from contact.settings import settings_or_exit

    return create_app(settings_or_exit())
