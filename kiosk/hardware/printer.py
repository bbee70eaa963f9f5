"""The kiosk's receipt printer: ESC/POS over USB, a serial line, the network, a device
file, or memory.

A kiosk prints the receipt the citizen takes home, and service-guide slips. The
kiosk's configuration names the printer (``make_printer(kind, options)``); the rest of
the kiosk only sees a :class:`ReceiptPrinter`:

- :meth:`ReceiptPrinter.status` for the screen and the heartbeat ("printer out of
  paper" should reach the hall staff before a citizen finds out);
- :meth:`ReceiptPrinter.print_receipt` / :meth:`ReceiptPrinter.print_slip`, which return
  the exact bytes sent, or raise :class:`PrintError` when the receipt cannot have been
  printed — then the kiosk tells the citizen to note the reference from the screen.

Status on ``usb``, ``serial`` and ``network`` printers comes from ESC/POS real-time
status queries (``DLE EOT n``): ``n=1`` printer (offline bit), ``n=2`` offline cause
(cover open, stopped at paper end, error), ``n=3`` error cause (cutter, unrecoverable,
overheating), ``n=4`` roll paper sensor (near end, end). Replies are checked against
the fixed bits every status byte carries. A printer that does not answer at all is
reported as ``online=None`` ("cannot tell") and printing is still tried; a printer that
cannot be reached is ``online=False``.

Printing first asks for the status and refuses when the printer is offline or out of
paper; on these backends it then sends the whole receipt and asks again: the reply to
that last query proves the printer received every byte before it (the stream is
ordered), and a printer that went offline or ran out of paper meanwhile turns the
print into a :class:`PrintError` as well. Nothing is claimed as printed unless it got
that far. (A receipt the printer finished just as the roll ended is then reported as
failed: the safe side, since the reference is also on screen.)

Connections: a network printer gets a fresh TCP connection per operation (no stale
connection after the printer restarts, and port 9100 is left free in between); serial
and USB devices stay open and are reopened after an error. One lock serialises every
operation on a printer, so the heartbeat's status poll never interleaves with a print.

python-escpos provides the device classes; its ``is_online()`` / ``paper_status()`` are
not used because they report "paper adequate" when the printer does not answer, and
their 16-byte reads wait for the full timeout on a serial line.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import escpos.printer as escpos_printer
from escpos.exceptions import Error as EscposError

from kiosk.hardware.receipt import (
    DEFAULT_WIDTH,
    MIN_WIDTH,
    Receipt,
    TextSlip,
    encode_receipt,
    encode_slip,
)

KINDS = ("usb", "serial", "network", "file", "dummy")
PAPER_STATES = ("ok", "low", "out", "unknown")

DLE_EOT = b"\x10\x04"
# Every real-time status byte has bits 1 and 4 set and bits 0 and 7 clear.
_FIXED_MASK = 0x93
_FIXED_BITS = 0x12
_OFFLINE = 0x08  # n=1
_COVER_OPEN = 0x04  # n=2
_STOPPED_AT_PAPER_END = 0x20  # n=2
_ERROR = 0x40  # n=2
_CUTTER_ERROR = 0x08  # n=3
_UNRECOVERABLE_ERROR = 0x20  # n=3
_AUTO_RECOVERABLE_ERROR = 0x40  # n=3
_PAPER_NEAR_END = 0x0C  # n=4
_PAPER_END = 0x60  # n=4

NETWORK_PORT = 9100
NETWORK_TIMEOUT = 5.0
SERIAL_BAUDRATE = 9600
SERIAL_TIMEOUT = 1.0
SERIAL_WRITE_TIMEOUT = 10.0
USB_TIMEOUT = 5.0

_IO_ERRORS = (OSError, EscposError)


@dataclass(frozen=True)
class PrinterStatus:
    """``online``: None when the backend cannot tell; ``paper``: ok, low, out or unknown;
    ``detail``: a short English reason for logs and the heartbeat ("no paper",
    "cover open", "connection refused"), empty when all is well."""

    online: bool | None
    paper: str
    detail: str = ""

    def ready(self) -> bool:
        """Worth trying to print: not known to be offline, not known to be out of paper."""
        return self.online is not False and self.paper != "out"


class PrintError(Exception):
    """The receipt cannot have been printed; ``status`` says why."""

    def __init__(self, message: str, status: PrinterStatus) -> None:
        super().__init__(message)
        self.status = status


def describe(exc: BaseException) -> str:
    """A short English reason for an I/O failure."""
    cause: BaseException = exc
    while isinstance(cause, EscposError) and cause.__context__ is not None:
        cause = cause.__context__
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    if isinstance(cause, TimeoutError):
        return "timed out"
    if isinstance(cause, ConnectionResetError | ConnectionAbortedError | BrokenPipeError):
        return "connection lost"
    if isinstance(cause, socket.gaierror):
        return "unknown host"
    if isinstance(cause, EscposError):
        return "device not found"
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror.lower()
    return (str(cause) or type(cause).__name__)[:80]


def summarise(online: bool | None, paper: str, causes: Iterable[str] = ()) -> PrinterStatus:
    """A status whose detail names every known problem, most serious first."""
    found = list(causes)
    if paper == "out" and "no paper" not in found:
        found.insert(0, "no paper")
    if paper == "low":
        found.append("paper low")
    if online is False and not found:
        found.append("offline")
    return PrinterStatus(online=online, paper=paper, detail=", ".join(found))


def _require_ready(status: PrinterStatus, kind: str) -> None:
    if not status.ready():
        raise PrintError(f"{kind} printer not ready: {status.detail or 'offline'}", status)


class ReceiptPrinter:
    """A receipt printer of one ``kind``; thread-safe. Use :func:`make_printer`."""

    kind: str = ""

    def __init__(self, *, width: int = DEFAULT_WIDTH) -> None:
        if width < MIN_WIDTH:
            raise ValueError(f"paper width must be at least {MIN_WIDTH} columns")
        self.width = width
        self._lock = threading.Lock()

    def status(self) -> PrinterStatus:
        with self._lock:
            return self._status()

    def print_receipt(self, receipt: Receipt) -> bytes:
        """Print a receipt; the ESC/POS bytes sent, or :class:`PrintError`."""
        return self._print(encode_receipt(receipt, width=self.width))

    def print_slip(self, slip: TextSlip) -> bytes:
        """Print a service-guide slip; the ESC/POS bytes sent, or :class:`PrintError`."""
        return self._print(encode_slip(slip, width=self.width))

    def close(self) -> None:
        """Release the device; the printer can still be used (it reconnects)."""

    def __enter__(self) -> ReceiptPrinter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _print(self, data: bytes) -> bytes:
        with self._lock:
            self._print_locked(data)
        return data

    def _print_locked(self, data: bytes) -> None:
        before = self._status()
        _require_ready(before, self.kind)
        try:
            self._send(data)
        except _IO_ERRORS as exc:
            reason = describe(exc)
            failed = PrinterStatus(online=False, paper=before.paper, detail=reason)
            raise PrintError(f"printing failed: {reason}", failed) from exc

    def _status(self) -> PrinterStatus:
        raise NotImplementedError

    def _send(self, data: bytes) -> None:
        raise NotImplementedError


class DummyPrinter(ReceiptPrinter):
    """Prints into memory (:attr:`output`), for demos and tests; :meth:`simulate` sets
    the state it reports (by default it cannot tell, like a printer without status)."""

    kind = "dummy"

    def __init__(
        self, *, width: int = DEFAULT_WIDTH, online: bool | None = None, paper: str = "unknown"
    ) -> None:
        super().__init__(width=width)
        self._device = escpos_printer.Dummy()
        self._online = online
        self._paper = _paper_state(paper)

    @property
    def output(self) -> bytes:
        """Every byte printed so far."""
        with self._lock:
            return bytes(self._device.output)

    def simulate(self, *, online: bool | None = None, paper: str = "unknown") -> None:
        with self._lock:
            self._online = online
            self._paper = _paper_state(paper)

    def _status(self) -> PrinterStatus:
        return summarise(self._online, self._paper)

    def _send(self, data: bytes) -> None:
        self._device._raw(data)


class _AppendFile(escpos_printer.File):  # type: ignore[misc]
    """python-escpos's file printer truncates the file on open; this one appends."""

    def open(self, raise_not_found: bool = True) -> None:
        if self._device:
            self.close()
        self.device = open(self.devfile, "ab")  # noqa: SIM115 - closed by close()


class FilePrinter(ReceiptPrinter):
    """Appends the bytes to a file: a printer's device node (``/dev/usb/lp0``) or a
    capture file for debugging (read it back with :mod:`kiosk.hardware.escpos_text`).
    There is no status channel: ``online`` is None while the file is writable."""

    kind = "file"

    def __init__(self, devfile: str, *, width: int = DEFAULT_WIDTH) -> None:
        super().__init__(width=width)
        self.devfile = devfile

    def _status(self) -> PrinterStatus:
        path = self.devfile
        if os.path.exists(path):
            writable = os.access(path, os.W_OK)
        else:
            folder = os.path.dirname(os.path.abspath(path))
            writable = os.path.isdir(folder) and os.access(folder, os.W_OK)
        if writable:
            return PrinterStatus(online=None, paper="unknown")
        return PrinterStatus(online=False, paper="unknown", detail="cannot write")

    def _send(self, data: bytes) -> None:
        device = _AppendFile(devfile=self.devfile)
        device.open()
        try:
            device._raw(data)
        finally:
            device.close()


class _QueryingPrinter(ReceiptPrinter):
    """A printer behind a python-escpos device that answers real-time status queries."""

    persistent = True

    def __init__(self, *, width: int = DEFAULT_WIDTH) -> None:
        super().__init__(width=width)
        self._device: Any = None

    def close(self) -> None:
        with self._lock:
            self._disconnect()

    # -- backend specifics

    def _make(self) -> Any:
        raise NotImplementedError

    def _open(self, device: Any) -> None:
        device.open()

    def _opened(self, device: Any) -> None:
        """Adjust a freshly opened device."""

    def _before_query(self, device: Any) -> None:
        """Forget stale input before a query."""

    def _read_reply(self, device: Any) -> bytes:
        """The reply to a query; empty when the printer did not answer in time."""
        raise NotImplementedError

    def _sent(self, device: Any) -> None:
        """Wait until the bytes written have left the kiosk."""

    # -- connection

    def _connect(self) -> Any:
        if self._device is None:
            device = self._make()
            self._open(device)
            self._device = device
            self._opened(device)
        return self._device

    def _disconnect(self) -> None:
        device, self._device = self._device, None
        if device is not None:
            with contextlib.suppress(*_IO_ERRORS):
                device.close()

    def _done(self) -> None:
        if not self.persistent:
            self._disconnect()

    # -- status

    def _ask(self, device: Any, n: int) -> int | None:
        self._before_query(device)
        device._raw(DLE_EOT + bytes([n]))
        reply = self._read_reply(device)
        if not reply or reply[-1] & _FIXED_MASK != _FIXED_BITS:
            return None
        return reply[-1]

    def _query(self, device: Any) -> PrinterStatus:
        printer = self._ask(device, 1)
        if printer is None:
            return PrinterStatus(online=None, paper="unknown", detail="no status reply")
        online = not printer & _OFFLINE
        causes: list[str] = []
        if not online:
            offline = self._ask(device, 2)
            if offline is not None:
                if offline & _COVER_OPEN:
                    causes.append("cover open")
                if offline & _STOPPED_AT_PAPER_END:
                    causes.append("no paper")
                if offline & _ERROR:
                    causes.append(_error_cause(self._ask(device, 3)))
        return summarise(online, _roll_paper(self._ask(device, 4)), causes)

    def _status(self) -> PrinterStatus:
        try:
            return self._query(self._connect())
        except _IO_ERRORS as exc:
            self._disconnect()
            return PrinterStatus(online=False, paper="unknown", detail=describe(exc))
        finally:
            self._done()

    # -- printing

    def _print_locked(self, data: bytes) -> None:
        try:
            self._print_connected(data)
        finally:
            self._done()

    def _print_connected(self, data: bytes) -> None:
        try:
            device = self._connect()
            before = self._query(device)
        except _IO_ERRORS as exc:
            self._disconnect()
            unreachable = PrinterStatus(online=False, paper="unknown", detail=describe(exc))
            raise PrintError(
                f"{self.kind} printer unreachable: {unreachable.detail}", unreachable
            ) from exc
        _require_ready(before, self.kind)
        try:
            device._raw(data)
            self._sent(device)
            after = self._query(device)
        except _IO_ERRORS as exc:
            self._disconnect()
            reason = describe(exc)
            failed = PrinterStatus(online=False, paper=before.paper, detail=reason)
            raise PrintError(f"printing failed: {reason}", failed) from exc
        if before.online is not None and after.online is None:
            raise PrintError("printer did not confirm the receipt", after)
        if not after.ready():
            raise PrintError(f"printing interrupted: {after.detail}", after)


def _error_cause(error: int | None) -> str:
    if error is None:
        return "printer error"
    if error & _CUTTER_ERROR:
        return "cutter error"
    if error & _UNRECOVERABLE_ERROR:
        return "unrecoverable error"
    if error & _AUTO_RECOVERABLE_ERROR:
        return "print head overheated"
    return "printer error"


def _roll_paper(sensor: int | None) -> str:
    if sensor is None:
        return "unknown"
    if sensor & _PAPER_END:
        return "out"
    if sensor & _PAPER_NEAR_END:
        return "low"
    return "ok"


class _NetworkDevice(escpos_printer.Network):  # type: ignore[misc]
    """python-escpos's network printer leaves the socket open when the connection is
    refused; this one lets ``socket.create_connection`` clean up and raises the error."""

    def open(self, raise_not_found: bool = True) -> None:
        if self._device:
            self.close()
        connection = socket.create_connection((self.host, self.port), timeout=self.timeout)
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.device = connection


class NetworkPrinter(_QueryingPrinter):
    """An Ethernet / Wi-Fi printer on its raw port (9100), one connection per operation."""

    kind = "network"
    persistent = False

    def __init__(
        self,
        host: str,
        port: int = NETWORK_PORT,
        *,
        timeout: float = NETWORK_TIMEOUT,
        width: int = DEFAULT_WIDTH,
    ) -> None:
        super().__init__(width=width)
        self.host = host
        self.port = port
        self.timeout = timeout

    def _make(self) -> Any:
        return _NetworkDevice(host=self.host, port=self.port, timeout=self.timeout)

    def _read_reply(self, device: Any) -> bytes:
        try:
            reply = bytes(device._read())
        except TimeoutError:
            return b""
        if not reply:
            raise ConnectionResetError(errno.ECONNRESET, "connection closed by the printer")
        return reply


class SerialPrinter(_QueryingPrinter):
    """A printer on a serial line (RS-232 or a USB-serial adapter), kept open."""

    kind = "serial"

    def __init__(
        self,
        devfile: str,
        baudrate: int = SERIAL_BAUDRATE,
        *,
        timeout: float = SERIAL_TIMEOUT,
        write_timeout: float = SERIAL_WRITE_TIMEOUT,
        width: int = DEFAULT_WIDTH,
    ) -> None:
        super().__init__(width=width)
        self.devfile = devfile
        self.baudrate = baudrate
        self.timeout = timeout
        self.write_timeout = write_timeout

    def _make(self) -> Any:
        return escpos_printer.Serial(
            devfile=self.devfile, baudrate=self.baudrate, timeout=self.timeout
        )

    def _opened(self, device: Any) -> None:
        # With hardware flow control a stopped printer would block a write forever.
        device.device.write_timeout = self.write_timeout

    def _before_query(self, device: Any) -> None:
        device.device.reset_input_buffer()

    def _read_reply(self, device: Any) -> bytes:
        return bytes(device.device.read(1))

    def _sent(self, device: Any) -> None:
        # Bounded wait for the output queue to drain (tcdrain could block for ever while
        # flow control holds the line), so the confirming query is not timed out by
        # the receipt's own transmission time.
        port = device.device
        deadline = time.monotonic() + self.write_timeout
        while port.out_waiting:
            if time.monotonic() > deadline:
                raise TimeoutError(errno.ETIMEDOUT, "printer does not take the data")
            time.sleep(0.02)


class UsbPrinter(_QueryingPrinter):
    """A printer on USB (needs pyusb and libusb), found by vendor and product id."""

    kind = "usb"

    def __init__(
        self,
        id_vendor: int,
        id_product: int,
        *,
        in_ep: int | None = None,
        out_ep: int | None = None,
        timeout: float = USB_TIMEOUT,
        width: int = DEFAULT_WIDTH,
    ) -> None:
        super().__init__(width=width)
        self.id_vendor = id_vendor
        self.id_product = id_product
        self.in_ep = in_ep
        self.out_ep = out_ep
        self.timeout = timeout

    def _make(self) -> Any:
        if not escpos_printer.Usb.is_usable():
            raise OSError(errno.ENODEV, "pyusb is not installed")
        endpoints = {"in_ep": self.in_ep, "out_ep": self.out_ep}
        return escpos_printer.Usb(
            idVendor=self.id_vendor,
            idProduct=self.id_product,
            timeout=int(self.timeout * 1000),
            **{name: value for name, value in endpoints.items() if value is not None},
        )

    def _open(self, device: Any) -> None:
        try:
            device.open()
        except ValueError as exc:  # pyusb's NoBackendError: libusb is missing
            raise OSError(errno.ENODEV, "no USB backend (libusb)") from exc

    def _read_reply(self, device: Any) -> bytes:
        try:
            return bytes(device._read())
        except OSError as exc:
            if type(exc).__name__ == "USBTimeoutError" or exc.errno == errno.ETIMEDOUT:
                return b""
            raise


# ---------------------------------------------------------------- configuration

_OPTIONS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "usb": (frozenset({"idVendor", "idProduct"}), frozenset({"in_ep", "out_ep", "timeout"})),
    "serial": (frozenset({"devfile"}), frozenset({"baudrate", "timeout", "write_timeout"})),
    "network": (frozenset({"host"}), frozenset({"port", "timeout"})),
    "file": (frozenset({"devfile"}), frozenset()),
    "dummy": (frozenset(), frozenset({"paper", "online"})),
}
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _paper_state(value: str) -> str:
    if value not in PAPER_STATES:
        raise ValueError(f"paper must be one of {', '.join(PAPER_STATES)}")
    return value


def _number(options: Mapping[str, str], name: str, default: float) -> float:
    if name not in options:
        return default
    try:
        value = float(options[name])
    except ValueError:
        raise ValueError(f"printer option {name} must be a number") from None
    if value <= 0:
        raise ValueError(f"printer option {name} must be positive")
    return value


def _whole(options: Mapping[str, str], name: str, default: int, *, base: int = 10) -> int:
    if name not in options:
        return default
    try:
        return int(options[name], base)
    except ValueError:
        raise ValueError(f"printer option {name} must be an integer") from None


def make_printer(kind: str, options: Mapping[str, str] | None = None) -> ReceiptPrinter:
    """The printer the kiosk's configuration describes.

    ``usb``: ``idVendor``, ``idProduct`` (hex, ``"0x0416"`` or ``"0416"``), optional
    ``in_ep`` / ``out_ep`` (hex) and ``timeout`` (s). ``serial``: ``devfile``,
    ``baudrate`` (9600), ``timeout`` (s, for status replies), ``write_timeout`` (s).
    ``network``: ``host``, ``port`` (9100), ``timeout`` (s, 5). ``file``: ``devfile``,
    the path the bytes are appended to. ``dummy``: in memory (``.output``); ``paper``
    (ok | low | out) and ``online`` (true | false) simulate a state. Every kind takes
    ``width``, the paper's columns (48 for 80 mm, 32 for 58 mm). Unknown kinds, missing
    or unknown options raise :class:`ValueError`.
    """
    kind = kind.strip().lower()
    if kind not in _OPTIONS:
        raise ValueError(f"unknown printer kind {kind!r}: expected one of {', '.join(KINDS)}")
    opts = {key: str(value).strip() for key, value in (options or {}).items()}
    required, optional = _OPTIONS[kind]
    missing = sorted(required - opts.keys())
    if missing:
        raise ValueError(f"{kind} printer needs option(s) {', '.join(missing)}")
    unknown = sorted(opts.keys() - required - optional - {"width"})
    if unknown:
        raise ValueError(f"{kind} printer does not take option(s) {', '.join(unknown)}")
    width = _whole(opts, "width", DEFAULT_WIDTH)

    if kind == "usb":
        in_ep = _whole(opts, "in_ep", 0, base=16) or None
        out_ep = _whole(opts, "out_ep", 0, base=16) or None
        return UsbPrinter(
            _whole(opts, "idVendor", 0, base=16),
            _whole(opts, "idProduct", 0, base=16),
            in_ep=in_ep,
            out_ep=out_ep,
            timeout=_number(opts, "timeout", USB_TIMEOUT),
            width=width,
        )
    if kind == "serial":
        return SerialPrinter(
            opts["devfile"],
            _whole(opts, "baudrate", SERIAL_BAUDRATE),
            timeout=_number(opts, "timeout", SERIAL_TIMEOUT),
            write_timeout=_number(opts, "write_timeout", SERIAL_WRITE_TIMEOUT),
            width=width,
        )
    if kind == "network":
        return NetworkPrinter(
            opts["host"],
            _whole(opts, "port", NETWORK_PORT),
            timeout=_number(opts, "timeout", NETWORK_TIMEOUT),
            width=width,
        )
    if kind == "file":
        return FilePrinter(opts["devfile"], width=width)
    online: bool | None = None
    if "online" in opts:
        flag = opts["online"].lower()
        if flag not in _TRUE | _FALSE:
            raise ValueError("printer option online must be true or false")
        online = flag in _TRUE
    return DummyPrinter(width=width, online=online, paper=opts.get("paper", "unknown"))
