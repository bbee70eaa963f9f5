"""Card readers and barcode / QR scanners at the kiosk.

A citizen holds a receipt's QR code (or a photo of it) under the scanner to follow a
request, or swipes a card the hall's services accept. Two kinds of devices:

- devices on a serial line (RS-232, or USB presenting a serial port):
  :class:`SerialReader` reads what they send, one code per line, in a background
  thread and hands each code to a callback;
- keyboard-wedge devices type into the kiosk's browser like a keyboard; the page
  posts what was typed.

Either way :func:`classify` says what a code is: ``"track"`` — a ticket reference
(14 digits with a valid Damm check digit, grouped or not), a kiosk's provisional
``K…`` reference, or a tracking URL whose ``ref`` parameter is one; ``"card"`` — 8 to
19 digits that are not a reference, or the card number in a magnetic stripe's track 1
or track 2 data; ``"unknown"`` otherwise.

Card numbers are personal data: a card number must never be stored or logged in
clear. Keep :func:`card_digest` (a keyed HMAC-SHA256 — a plain hash of a 16-digit
number is undone by trying them all, so the key must be a secret of the installation)
to recognise a card again, and :func:`mask_card` to show one. ``repr()`` of a
:class:`Scanned` card masks the number, and :class:`SerialReader` never logs the codes
it reads, nor the messages of a callback's exceptions.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import re
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

import serial

from contact.reference import is_valid, normalize

log = logging.getLogger(__name__)

KINDS = ("track", "card", "unknown")
# Same shape as the tracking page accepts.
PROVISIONAL = re.compile(r"K[0-9]{4,20}")
CARD_DIGITS = re.compile(r"[0-9]{8,19}")
_TRACK1 = re.compile(r"%?B([0-9]{8,19})\^[^^]*\^.*")
_TRACK2 = re.compile(r";?([0-9]{8,19})=[0-9]*\??")
_LINE_END = re.compile(rb"[\r\n]")
MAX_CODE = 2048


@dataclass(frozen=True, repr=False)
class Scanned:
    """What a scanned or typed code is: ``kind`` (track, card, unknown) and ``value``
    (the reference without grouping, or the card's digits; empty when unknown)."""

    kind: str
    value: str

    def __repr__(self) -> str:
        shown = mask_card(self.value) if self.kind == "card" else self.value
        return f"Scanned(kind={self.kind!r}, value={shown!r})"


def clean_code(text: str) -> str:
    """The code without control characters and surrounding whitespace."""
    kept = "".join(
        ch for ch in text if not unicodedata.category(ch).startswith("C") and ch != "\ufffd"
    )
    return kept.strip()


def _reference(text: str) -> str | None:
    compact = normalize(text).upper()
    if is_valid(compact) or PROVISIONAL.fullmatch(compact):
        return compact
    return None


def _looks_like_url(text: str) -> bool:
    return "://" in text or text.lower().startswith("www.")


def classify(code: str) -> Scanned:
    """Decide what a scanned or typed code is (see the module's description)."""
    text = clean_code(code)
    if not text or len(text) > MAX_CODE:
        return Scanned("unknown", "")
    if _looks_like_url(text):
        refs = parse_qs(urlsplit(text).query).get("ref", [])
        found = _reference(refs[0]) if refs else None
        return Scanned("track", found) if found else Scanned("unknown", "")
    found = _reference(text)
    if found:
        return Scanned("track", found)
    stripe = _TRACK1.fullmatch(text) or _TRACK2.fullmatch(text)
    if stripe:
        return Scanned("card", stripe.group(1))
    digits = normalize(text)
    if CARD_DIGITS.fullmatch(digits):
        return Scanned("card", digits)
    return Scanned("unknown", "")


def _card_number(card: str) -> str:
    digits = normalize(card)
    if not CARD_DIGITS.fullmatch(digits):
        raise ValueError("a card number is 8 to 19 digits")
    return digits


def card_digest(card: str, key: bytes) -> str:
    """HMAC-SHA256 (hex) of the card's digits under the installation's secret ``key``
    (32 random bytes, say): stable for the same card, useless without the key."""
    if not key:
        raise ValueError("card_digest needs a secret key")
    return hmac.new(key, _card_number(card).encode("ascii"), hashlib.sha256).hexdigest()


def mask_card(card: str) -> str:
    """Only the last 4 digits shown: ``6222021234567890`` → ``************7890``."""
    digits = normalize(card)
    if len(digits) <= 4:
        return "*" * len(digits)
    return "*" * (len(digits) - 4) + digits[-4:]


class SerialReader:
    """Reads codes from a scanner or card reader on a serial line.

    ``url`` is anything ``serial.serial_for_url`` opens: ``/dev/ttyACM0``, ``COM3``,
    ``socket://host:port``, ``loop://``. A code ends at CR or LF, or after ``timeout``
    seconds of silence (for scanners configured without a suffix); control characters
    are dropped and empty codes ignored. ``on_code`` runs in the reader's thread; its
    exceptions are logged by type only. :meth:`start` opens the port (and raises if it
    cannot); when the device goes away later the thread reopens it every ``retry``
    seconds until :meth:`stop`.
    """

    def __init__(
        self,
        url: str,
        on_code: Callable[[str], object],
        *,
        baudrate: int = 9600,
        timeout: float = 0.2,
        retry: float = 5.0,
    ) -> None:
        self.url = url
        self.on_code = on_code
        self.baudrate = baudrate
        self.timeout = timeout
        self.retry = retry
        self.port: serial.SerialBase | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("reader already started")
        self.port = self._open()
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"serial-reader {self.url}", daemon=True
        )
        self._thread.start()

    def stop(self, wait: float = 2.0) -> None:
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(wait)
        self._close_port()

    def __enter__(self) -> SerialReader:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _open(self) -> serial.SerialBase:
        return serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=self.timeout)

    def _close_port(self) -> None:
        port, self.port = self.port, None
        if port is not None:
            with contextlib.suppress(OSError, serial.SerialException):
                port.close()

    def _run(self) -> None:
        pending = bytearray()
        while not self._stopping.is_set():
            port = self.port
            if port is None:
                try:
                    self.port = self._open()
                except (OSError, serial.SerialException, ValueError):
                    self._stopping.wait(self.retry)
                continue
            try:
                chunk = port.read(max(1, port.in_waiting))
            except (OSError, serial.SerialException, TypeError, AttributeError):
                if not self._stopping.is_set():
                    log.warning("reader %s: read failed, reopening", self.url)
                    self._close_port()
                pending.clear()
                continue
            if not chunk:
                if pending:
                    self._deliver(bytes(pending))
                    pending.clear()
                continue
            pending += chunk
            *lines, rest = _LINE_END.split(bytes(pending))
            pending = bytearray(rest if len(rest) <= MAX_CODE else b"")
            for line in lines:
                self._deliver(line)

    def _deliver(self, raw: bytes) -> None:
        code = clean_code(raw.decode("utf-8", errors="replace"))
        if not code:
            return
        try:
            self.on_code(code)
        except Exception as exc:
            log.error("reader %s: code handler failed (%s)", self.url, type(exc).__name__)
