"""``contact kiosk run``: the kiosk's own server.

It serves the screens on the kiosk (the kiosk's browser opens
``http://127.0.0.1:8600/kiosk/``), prints receipts, reads the card reader or scanner,
keeps every submission in its local store before saying "submitted", and forwards the
store to the central server whenever it can: with the device token, one
``Idempotency-Key`` per submission (so a retry after a lost answer, or after the kiosk
was switched off mid-sync, never makes a second ticket), doubling the wait between
tries while the central server cannot be reached. A heartbeat every 30 s tells the
central server the printer's state and the queue's length.

While the network is down the citizen gets a provisional reference (``K`` + digits)
on the receipt; the central server maps it to the ticket when the submission
arrives, and both ``/m/track`` and the kiosk accept it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from kiosk.hardware.printer import PrintError, PrinterStatus, ReceiptPrinter, make_printer
from kiosk.hardware.reader import SerialReader, classify
from kiosk.hardware.receipt import Receipt, TextSlip
from kiosk.runtime.store import PENDING, SENT, Queued, Store
from kiosk.ui import i18n
from kiosk.ui.model import Catalogue, Outcome, Step, TrackAnswer, pick
from kiosk.ui.routes import Options, make_router, mask_phone

log = logging.getLogger("kiosk")
VERSION = "1.0"
CATALOGUE_EVERY = 300.0  # seconds between catalogue refreshes while online
SUBMIT_WAIT = 3.0  # how long a citizen waits for the central server before a provisional
# The central server's answers that will never change on a retry: keep, do not resend.
FINAL_REFUSALS = frozenset({400, 404, 409, 413, 422})


@dataclass
class KioskConfig:
    server: str
    token: str = field(repr=False)
    data_dir: Path = Path("var/kiosk")
    printer: str = "dummy"
    printer_options: dict[str, str] = field(default_factory=dict)
    reader: str | None = None  # a serial card reader / scanner (pyserial URL)
    idle_seconds: int = 90
    heartbeat_seconds: float = 30.0
    sync_pace: float = 0.0  # seconds between two forwarded submissions (slow uplinks)
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    default_locale: str = "zh-CN"
    region: str = "CN"


class Kiosk:
    """The kiosk's backend for the screens, and its link to the central server."""

    def __init__(self, config: KioskConfig, printer: ReceiptPrinter | None = None) -> None:
        self.config = config
        self.store = Store(config.data_dir / "kiosk.db")
        self.printer = printer or make_printer(config.printer, config.printer_options)
        self.http = httpx.AsyncClient(
            base_url=config.server.rstrip("/"),
            headers={"Authorization": f"Bearer {config.token}", "User-Agent": f"kiosk/{VERSION}"},
            timeout=httpx.Timeout(10.0, connect=3.0),
        )
        self._catalogue: Catalogue | None = None
        self._catalogue_at = 0.0
        raw = self.store.get_state("catalogue")
        if raw:
            self._catalogue = Catalogue.from_json(raw)
        self._inputs: asyncio.Queue[dict[str, str]] = asyncio.Queue(maxsize=20)
        self._wake = asyncio.Event()
        self._sending: set[str] = set()
        self._online = False
        self.token_refused = False
        self._tasks: list[asyncio.Task[None]] = []
        self._reader: SerialReader | None = None

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._sync_loop(), name="kiosk-sync"),
            asyncio.create_task(self._heartbeat_loop(), name="kiosk-heartbeat"),
        ]
        if self.config.reader:
            loop = asyncio.get_running_loop()
            self._reader = SerialReader(
                self.config.reader, lambda code: loop.call_soon_threadsafe(self._scanned, code)
            )
            self._reader.start()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._reader is not None:
            self._reader.stop()
        await self.http.aclose()
        await asyncio.to_thread(self.printer.close)

    # ------------------------------------------------------------ the screens' backend

    async def catalogue(self) -> Catalogue | None:
        if self._catalogue is None or time.monotonic() - self._catalogue_at > CATALOGUE_EVERY:
            await self._refresh_catalogue()
        return self._catalogue

    async def submit(self, submission_id: str, payload: dict[str, Any], locale: str) -> Outcome:
        cat = await self.catalogue()
        assert cat is not None  # the screens offer no report form without one
        body = {**payload, "submitted_at": datetime.now(UTC).isoformat()}
        queued, new = await asyncio.to_thread(
            self.store.add, submission_id, body, cat.kiosk_id, self.config.tz
        )
        if queued.status == PENDING:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._forward(queued), SUBMIT_WAIT)
            latest = await asyncio.to_thread(self.store.get, submission_id)
            queued = latest or queued
        sent = queued.status == SENT and queued.reference is not None
        reference = queued.reference if sent and queued.reference else queued.provisional
        printed, problem = True, None
        if new:
            receipt = self._receipt(cat, queued, reference, not sent, locale)
            problem = await self._print(lambda: self.printer.print_receipt(receipt))
            printed = problem is None
        else:
            printed, problem = False, "skip"
        return Outcome(reference, not sent, queued.created_at, printed, problem)

    def _receipt(
        self, cat: Catalogue, queued: Queued, reference: str, provisional: bool, locale: str
    ) -> Receipt:
        t = i18n.words(locale)
        service = cat.services.get(str(queued.payload.get("service")))
        phone = queued.payload.get("phone")
        steps = [t["next_answer"], t["provisional_note"] if provisional else t["next_track"]]
        if not phone:
            steps.append(t["no_phone"])
        return Receipt(
            locale=locale,
            title=t["hotline"],
            reference=reference,
            provisional=provisional,
            service=service.name(locale) if service else str(queued.payload.get("service")),
            submitted_at=queued.created_at,
            track_url=cat.track_link(reference),
            next_steps=steps,
            phone_masked=mask_phone(phone) if phone else None,
            kiosk_name=cat.kiosk_name,
            tz=self.config.tz,
        )

    async def _print(self, job: Any) -> str | None:
        try:
            await asyncio.to_thread(job)
        except PrintError as exc:
            status = exc.status
            log.warning("printer: %s", status.detail or "cannot print")
            if status.paper == "out":
                return "out"
            return "offline" if status.online is False else "error"
        except Exception:
            log.exception("printer failed")
            return "error"
        return None

    async def track(self, reference: str, last4: str, locale: str) -> TrackAnswer:
        if reference.startswith("K"):
            mine = await asyncio.to_thread(self.store.by_provisional, reference)
            if mine is not None and mine.status != SENT:
                phone = str(mine.payload.get("phone") or "")
                if phone and phone[-4:] == last4:
                    return TrackAnswer("waiting", reference)
                return TrackAnswer("not_found", reference)
            if mine is not None and mine.reference:
                reference = mine.reference
        try:
            r = await self.http.get(
                "/api/v1/kiosk/track",
                params={"reference": reference, "last4": last4, "locale": locale},
            )
        except httpx.HTTPError:
            return TrackAnswer("offline", reference)
        if r.status_code == 200:
            data = r.json()
            service = data.get("service")
            return TrackAnswer(
                "found",
                str(data.get("reference") or reference),
                service if isinstance(service, str) else pick(service, locale),
                str(data.get("status_text") or data.get("status") or ""),
                tuple(
                    Step(
                        self._local(s.get("at")),
                        str(s.get("text") or ""),
                        str(s.get("detail") or ""),
                    )
                    for s in data.get("steps") or ()
                ),
            )
        error = _error_code(r)
        if r.status_code == 429:
            return TrackAnswer("locked", reference)
        if error == "provisional_pending":
            return TrackAnswer("waiting", reference)
        if r.status_code >= 500 or r.status_code == 401:
            return TrackAnswer("offline", reference)
        return TrackAnswer("not_found", reference)

    def _local(self, at: Any) -> str:
        try:
            when = datetime.fromisoformat(str(at).replace("Z", "+00:00"))
        except ValueError:
            return ""
        return when.astimezone(self.config.tz).strftime("%Y-%m-%d %H:%M")

    async def print_slip(self, slip: TextSlip) -> str | None:
        return await self._print(lambda: self.printer.print_slip(slip))

    async def printer_status(self) -> PrinterStatus:
        return await asyncio.to_thread(self.printer.status)

    async def next_input(self, timeout: float) -> dict[str, str] | None:
        try:
            return await asyncio.wait_for(self._inputs.get(), timeout)
        except TimeoutError:
            return None

    def _scanned(self, code: str) -> None:
        """A code from the serial reader: a track reference goes to the screen as it is;
        a card number only as its digest and last 4 digits."""
        scanned = classify(code)
        item: dict[str, str] | None = None
        if scanned.kind == "track":
            item = {"kind": "track", "value": scanned.value}
        elif scanned.kind == "card" and self._catalogue is not None:
            item = {"kind": "card", **self._catalogue.card(scanned.value)}
        if item is not None:
            with contextlib.suppress(asyncio.QueueFull):
                self._inputs.put_nowait(item)

    # ------------------------------------------------------------ the central server

    async def _refresh_catalogue(self) -> bool:
        try:
            r = await self.http.get("/api/v1/kiosk/catalogue")
        except httpx.HTTPError as exc:
            log.info("central server unreachable for the catalogue: %s", type(exc).__name__)
            return False
        if r.status_code == 401:
            self.token_refused = True
            log.error("the central server refuses this kiosk's device token")
            return False
        if r.status_code != 200:
            log.warning("catalogue: HTTP %s", r.status_code)
            return False
        raw = r.json()
        self._catalogue = Catalogue.from_json(raw)
        self._catalogue_at = time.monotonic()
        self.token_refused = False
        await asyncio.to_thread(self.store.set_state, "catalogue", raw)
        return True

    async def _forward(self, queued: Queued) -> bool | None:
        """Send one submission. True: the central server has it; False: refused for good;
        None: try again later (network, server down, token refused)."""
        if queued.id in self._sending:
            return None
        self._sending.add(queued.id)
        try:
            try:
                r = await self.http.post(
                    "/api/v1/kiosk/submissions",
                    json=queued.payload,
                    headers={"Idempotency-Key": queued.id},
                )
            except httpx.HTTPError as exc:
                self._online = False
                delay = await asyncio.to_thread(
                    self.store.retry_later, queued.id, type(exc).__name__
                )
                log.info(
                    "submission %s not sent (%s); next try in %.0f s",
                    queued.provisional,
                    type(exc).__name__,
                    delay,
                )
                return None
            self._online = True
            if r.status_code in (200, 201):
                reference = str(r.json()["reference"])
                await asyncio.to_thread(self.store.mark_sent, queued.id, reference)
                log.info("submission %s is ticket %s", queued.provisional, reference)
                return True
            if r.status_code in FINAL_REFUSALS:
                await asyncio.to_thread(
                    self.store.mark_refused, queued.id, f"HTTP {r.status_code} {_error_code(r)}"
                )
                log.error(
                    "submission %s refused: HTTP %s %s",
                    queued.provisional,
                    r.status_code,
                    _error_code(r),
                )
                return False
            if r.status_code == 401:
                self.token_refused = True
            await asyncio.to_thread(self.store.retry_later, queued.id, f"HTTP {r.status_code}")
            return None
        finally:
            self._sending.discard(queued.id)

    async def sync_once(self) -> int:
        """Forward what is due; stops at the first sign the central server is away.
        Returns how many were delivered."""
        delivered = 0
        for queued in await asyncio.to_thread(self.store.due, 20):
            outcome = await self._forward(queued)
            if outcome is None:
                break
            delivered += bool(outcome)
            if self.config.sync_pace:
                await asyncio.sleep(self.config.sync_pace)
        return delivered

    async def _sync_loop(self) -> None:
        while True:
            try:
                was_online = self._online
                if (
                    (
                        self._catalogue is None
                        or time.monotonic() - self._catalogue_at > CATALOGUE_EVERY
                    )
                    and await self._refresh_catalogue()
                    and not was_online
                ):
                    self._online = True
                    await asyncio.to_thread(self.store.retry_all_now)
                await self.sync_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sync failed; trying again")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0)

    async def heartbeat(self) -> bool:
        counts = await asyncio.to_thread(self.store.counts)
        status = await self.printer_status()
        body = {
            "version": VERSION,
            "queue": counts[PENDING],
            "oldest_queued_at": counts["oldest_pending"],
            "printer": {"online": status.online, "paper": status.paper, "detail": status.detail},
        }
        try:
            r = await self.http.post("/api/v1/kiosk/heartbeat", json=body)
        except httpx.HTTPError:
            self._online = False
            return False
        if r.status_code == 401:
            self.token_refused = True
        if r.status_code == 200 and not self._online:
            self._online = True
            await asyncio.to_thread(self.store.retry_all_now)
            self._wake.set()
        return r.status_code == 200

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                await self.heartbeat()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("heartbeat failed")
            await asyncio.sleep(self.config.heartbeat_seconds)

    async def health(self) -> dict[str, Any]:
        counts = await asyncio.to_thread(self.store.counts)
        status = await self.printer_status()
        return {
            "ok": True,
            "online": self._online,
            "token_refused": self.token_refused,
            "catalogue": self._catalogue is not None,
            "queue": counts,
            "printer": {"online": status.online, "paper": status.paper},
        }


def _error_code(r: httpx.Response) -> str:
    try:
        data = r.json()
    except ValueError:
        return ""
    return str(data.get("error") or "") if isinstance(data, dict) else ""


def create_kiosk_app(config: KioskConfig, printer: ReceiptPrinter | None = None) -> FastAPI:
    kiosk_box: dict[str, Kiosk] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        kiosk = Kiosk(config, printer)
        kiosk_box["k"] = kiosk
        app.state.kiosk = kiosk
        await kiosk.start()
        try:
            yield
        finally:
            await kiosk.stop()

    app = FastAPI(title="Kiosk", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    class Proxy:
        """The screens' backend, bound once the kiosk has started."""

        def __getattr__(self, name: str) -> Any:
            return getattr(kiosk_box["k"], name)

    app.include_router(
        make_router(
            Proxy(),  # type: ignore[arg-type]
            Options(
                idle_seconds=config.idle_seconds,
                default_locale=config.default_locale,
                region=config.region,
                tz=config.tz,
                input_poll=bool(config.reader),
            ),
        )
    )

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse(await kiosk_box["k"].health())

    @app.get("/")
    async def root() -> JSONResponse:
        return JSONResponse({"kiosk": "/kiosk/"}, 307, headers={"Location": "/kiosk/"})

    return app
