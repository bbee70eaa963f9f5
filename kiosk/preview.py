"""The kiosk screens on the central server, for trying them out (dev and test setups).

Served at ``/kiosk/`` only when the development gateway is on (like ``/dev/sms``):
the screens open tickets directly (channel ``kiosk``, source ``kiosk preview``),
print into memory, and track through the same look-up the kiosks use. Real kiosks
run ``contact kiosk run`` and talk to ``/api/v1/kiosk/...`` with their device token.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from contact import service
from contact.errors import ContactError
from contact.lifecycle import Actor
from contact.models import Ticket
from contact.principal import Principal
from contact.runtime import Runtime
from kiosk import central_catalogue, central_intake, central_track
from kiosk.hardware.printer import DummyPrinter, PrinterStatus, make_printer
from kiosk.hardware.receipt import TextSlip
from kiosk.ui.model import Catalogue, Outcome, Step, TrackAnswer, pick
from kiosk.ui.routes import Options, make_router

SOURCE = "kiosk preview"
PREVIEW = central_intake.Device(id=0, name=SOURCE, location="")


class PreviewBackend:
    def __init__(self, app: FastAPI) -> None:
        self.app = app
        printer = make_printer("dummy")
        assert isinstance(printer, DummyPrinter)
        self.printer = printer

    @property
    def rt(self) -> Runtime:
        return self.app.state.runtime  # type: ignore[no-any-return]

    async def catalogue(self) -> Catalogue | None:
        read = await central_catalogue.catalogue(self.rt, PREVIEW)
        return Catalogue.from_json(read.model_dump(mode="json"))

    async def submit(self, submission_id: str, payload: dict[str, Any], locale: str) -> Outcome:
        rt = self.rt
        external = "kprev:" + submission_id
        async with rt.db.session() as session:
            found = (
                await session.execute(select(Ticket).where(Ticket.external_ref == external))
            ).scalar_one_or_none()
            if found is not None:
                return Outcome(found.reference, False, found.created_at, False, "skip")
            try:
                body = central_intake.SubmissionIn(**payload)
            except ValidationError as exc:
                raise ContactError(str(exc.errors()[0].get("msg", "invalid"))) from None
            checked = await central_intake.check(rt, body)
            try:
                ticket, _ = await service.open_ticket(
                    rt,
                    session,
                    checked.ticket,
                    Principal(Actor.citizen, SOURCE),
                    external_ref=external,
                    source=SOURCE,
                )
                await rt.commit(session)
            except IntegrityError:
                await session.rollback()
                rt.discard(session)
                again = (
                    await session.execute(select(Ticket).where(Ticket.external_ref == external))
                ).scalar_one()
                return Outcome(again.reference, False, again.created_at, False, "skip")
            return Outcome(ticket.reference, False, datetime.now(UTC), True)

    async def track(self, reference: str, last4: str, locale: str) -> TrackAnswer:
        rt = self.rt
        async with rt.db.session() as session:
            try:
                read = await central_track.look_up(rt, session, PREVIEW, reference, last4, locale)
            except central_track.TooMany:
                return TrackAnswer("locked", reference)
            except ContactError as exc:
                waiting = exc.code == "provisional_pending"
                return TrackAnswer("waiting" if waiting else "not_found", reference)
        tz = rt.settings.tz
        return TrackAnswer(
            "found",
            read.reference,
            pick(read.service, locale),
            read.status_text,
            tuple(
                Step(s.at.astimezone(tz).strftime("%Y-%m-%d %H:%M"), s.text, s.detail)
                for s in read.steps
            ),
        )

    async def print_slip(self, slip: TextSlip) -> str | None:
        self.printer.print_slip(slip)
        return None

    async def printer_status(self) -> PrinterStatus:
        return self.printer.status()

    async def next_input(self, timeout: float) -> dict[str, str] | None:
        return None


def mount(app: FastAPI, default_locale: str, region: str, tz: Any) -> None:
    app.include_router(
        make_router(
            PreviewBackend(app),
            Options(default_locale=default_locale, region=region, tz=tz),
        )
    )
