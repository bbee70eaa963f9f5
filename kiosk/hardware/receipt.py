"""What the kiosk prints: the receipt for a submitted request, and service-guide slips.

A citizen who submits a request at a kiosk leaves with a paper receipt: the hotline's
name, the reference (grouped in fours so it can be read out on the phone), the
service, the time, the masked phone number, what happens next and a QR code that
opens the mobile tracking page. A receipt printed while the kiosk is offline carries a
provisional ``K…`` reference and says so. A service guide shown on screen can be
printed as a :class:`TextSlip`.

:func:`encode_receipt` and :func:`encode_slip` are pure: they return the ESC/POS byte
stream, built with python-escpos's command helpers (alignment, emphasis, character
size, native QR ``GS ( k``, cut). The printer drivers in :mod:`kiosk.hardware.printer`
send these bytes unchanged.

Chinese text: the city's printers take GB18030 double-byte text in Chinese character
mode. A Chinese receipt enters the mode with ``FS &`` right after initialising, writes
every line GB18030-encoded (ASCII stays single-byte, so digits and Latin letters print
as usual) and leaves it with ``FS .`` before the cut. An English receipt sends ``FS .``
first (many Chinese printers power up in Chinese mode) and then PC437 text; characters
PC437 lacks are printed as ``?``.

Layout: lines wrap to ``width`` columns (48 for 80 mm paper with font A, 32 for 58 mm);
a Chinese character occupies two columns. Text from the catalogue or the citizen never
reaches the printer with control characters in it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import qrcode
from escpos.constants import QR_ECLEVEL_M
from escpos.printer import Dummy

from contact.reference import LENGTH, grouped

DEFAULT_WIDTH = 48
MIN_WIDTH = 24
# Font A is 12 dots wide: 48 columns fill the 576 printable dots of 80 mm paper.
DOTS_PER_COLUMN = 12

CHINESE_ON = b"\x1c&"
CHINESE_OFF = b"\x1c."
# GS ! n: width multiplier in the high nibble, height in the low one. GS ! applies to
# Chinese characters too, unlike ESC ! which only sizes single-byte characters.
_SIZES = {"normal": (1, 1), "tall": (1, 2), "large": (2, 2)}
# QR module size in dots, and the quiet zone (modules) the code needs on each side.
QR_MAX_MODULE = 6
QR_MIN_MODULE = 3
QR_QUIET = 4

# Punctuation that must not start a line in Chinese typesetting.
_NO_LINE_START = frozenset("，。、；：？！）》」』】〕…—,.;:?!)]}%")
_TOKENS = re.compile(r"[!-~]+|\s+|.", re.DOTALL)
_TYPOGRAPHY = str.maketrans(
    {
        "‘": "'",
        "’": "'",
        "“": '"',
        "”": '"',
        "–": "-",
        "—": "-",
        "…": "...",
        "\u00a0": " ",
    }
)


@dataclass(frozen=True)
class Receipt:
    """A request's receipt. ``submitted_at`` must be timezone-aware; it is printed in
    ``tz`` as ``YYYY-MM-DD HH:MM``. ``provisional``: the kiosk was offline and
    ``reference`` is its own ``K…`` number, to be replaced by the ticket's reference
    once the submission reaches the centre (the tracking page knows both)."""

    locale: str
    title: str
    reference: str
    provisional: bool
    service: str
    submitted_at: datetime
    track_url: str
    next_steps: list[str]
    phone_masked: str | None = None
    kiosk_name: str = ""
    tz: ZoneInfo = ZoneInfo("Asia/Shanghai")  # noqa: RUF009 - immutable, cached by zoneinfo

    def __post_init__(self) -> None:
        if self.submitted_at.utcoffset() is None:
            raise ValueError("Receipt.submitted_at must be timezone-aware")


@dataclass(frozen=True)
class TextSlip:
    """A printed service guide: a title and its lines (an empty line prints as a gap)."""

    locale: str
    title: str
    lines: list[str]


@dataclass(frozen=True)
class _Words:
    heading: str
    reference: str
    provisional: str
    service: str
    submitted: str
    phone: str
    next_steps: str
    scan: str
    kiosk: str
    colon: str


_ZH = _Words(
    heading="受理回执",
    reference="受理编号",
    provisional=(
        "临时编号：本机暂时离线，您的诉求已保存，联网后将自动提交，届时可凭此编号查询办理进度。"
    ),
    service="服务事项",
    submitted="提交时间",
    phone="联系电话",
    next_steps="后续事项",
    scan="扫码查询办理进度",
    kiosk="受理终端",
    colon="：",
)
_EN = _Words(
    heading="Receipt",
    reference="Reference",
    provisional=(
        "Provisional number: this kiosk is offline. Your request is saved and will be"
        " sent automatically when the connection is back; you can then track it with"
        " this number."
    ),
    service="Service",
    submitted="Submitted",
    phone="Phone",
    next_steps="Next steps",
    scan="Scan to track",
    kiosk="Kiosk",
    colon=": ",
)


def is_chinese(locale: str) -> bool:
    """Receipts in ``zh…`` locales are printed in Chinese mode; every other in English."""
    return locale.lower().startswith("zh")


def clean(text: str) -> str:
    """One printable line: control and format characters become spaces, runs of
    whitespace collapse, so no input can smuggle a printer command onto the paper."""
    text = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in text)
    return " ".join(text.split())


def chinese_columns(text: str) -> int:
    """Columns in Chinese mode: ASCII takes one, every other character two."""
    return sum(1 if ord(ch) < 0x80 else 2 for ch in text)


def single_columns(text: str) -> int:
    """Columns in PC437 mode: one per character."""
    return len(text)


def wrap(text: str, width: int, columns: Callable[[str], int] = chinese_columns) -> list[str]:
    """Greedy line breaking at ``width`` columns.

    Latin words break at spaces, Chinese text between any two characters, except that
    closing punctuation never starts a line (the character before it moves down with
    it). A word longer than a line is split.
    """
    lines: list[str] = []
    current = ""
    used = 0
    for token in _TOKENS.findall(clean(text)):
        size = columns(token)
        if token.isspace():
            if current and used + 1 <= width:
                current += " "
                used += 1
            elif current:
                lines.append(current.rstrip())
                current, used = "", 0
            continue
        if used + size > width:
            carried = ""
            if current.strip():
                kept = current.rstrip()
                if token[0] in _NO_LINE_START and len(kept) > 1 and not kept[-1].isspace():
                    kept, carried = kept[:-1], kept[-1]
                lines.append(kept.rstrip())
            current, used = carried, columns(carried)
            while used + size > width and len(token) > 1:
                room = width - used
                cut = 1
                while cut < len(token) and columns(token[: cut + 1]) <= room:
                    cut += 1
                lines.append(current + token[:cut])
                current, used = "", 0
                token = token[cut:]
                size = columns(token)
        current += token
        used += size
    if current.strip():
        lines.append(current.rstrip())
    return lines


class _Layout:
    """Writes a document onto an in-memory python-escpos printer in one character mode."""

    def __init__(self, locale: str, width: int) -> None:
        if width < MIN_WIDTH:
            raise ValueError(f"paper width must be at least {MIN_WIDTH} columns")
        self.chinese = is_chinese(locale)
        self.width = width
        self.columns = chinese_columns if self.chinese else single_columns
        self.words = _ZH if self.chinese else _EN
        # PC437 only, no code-page switching: an unknown character prints as "?".
        self.out = Dummy(magic_encode_args={"encoding": "CP437", "disabled": True})
        self.out.hw("INIT")
        self.out._raw(CHINESE_ON if self.chinese else CHINESE_OFF)

    def emit(self, line: str) -> None:
        if self.chinese:
            self.out._raw(line.encode("gb18030") + b"\n")
        else:
            self.out.text(line.translate(_TYPOGRAPHY) + "\n")

    def size(self, name: str) -> None:
        width, height = _SIZES[name]
        self.out.set(custom_size=True, width=width, height=height)

    def align(self, where: str) -> None:
        self.out.set(align=where)

    def bold(self, on: bool) -> None:
        self.out.set(bold=on)

    def blank(self) -> None:
        self.emit("")

    def rule(self) -> None:
        self.emit("-" * self.width)

    def paragraph(self, text: str, *, indent: str = "", first: str = "") -> None:
        """``first`` + wrapped ``text``; continuation lines indented by ``indent``."""
        room = self.width - max(self.columns(first), self.columns(indent))
        for number, line in enumerate(wrap(text, room, self.columns) or [""]):
            self.emit((first if number == 0 else indent) + line)

    def headline(self, text: str) -> None:
        """Centred, bold and as large as fits: double size when the text fits on one
        line at double width, otherwise double height only."""
        text = clean(text)
        large = self.columns(text) * 2 <= self.width
        self.align("center")
        self.bold(True)
        self.size("large" if large else "tall")
        for line in wrap(text, self.width // 2 if large else self.width, self.columns):
            self.emit(line)
        self.size("normal")
        self.bold(False)

    def field(self, label: str, value: str) -> None:
        head = label + self.words.colon
        hang = self.columns(head)
        indent = " " * hang if hang <= self.width // 2 else ""
        self.paragraph(value, first=head, indent=indent)

    def qr(self, content: str) -> None:
        self.align("center")
        self.out.qr(content, native=True, size=qr_module_size(content, self.width), ec=QR_ECLEVEL_M)

    def finish(self) -> bytes:
        self.align("left")
        if self.chinese:
            self.out._raw(CHINESE_OFF)
        self.out.cut()
        return bytes(self.out.output)


def qr_module_size(content: str, width: int) -> int:
    """The largest module size (dots, at most :data:`QR_MAX_MODULE`) at which the QR
    code with its quiet zone fits the paper; the printer picks the same symbol version
    for the same data and error correction level."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    code.add_data(content)
    try:
        code.make(fit=True)
    except ValueError as exc:  # beyond symbol version 40
        raise ValueError("QR content too long for a QR code") from exc
    modules = 17 + 4 * int(code.version) + 2 * QR_QUIET
    fitting = (width * DOTS_PER_COLUMN) // modules
    if fitting < QR_MIN_MODULE:
        raise ValueError("QR content too long for the paper width")
    return min(QR_MAX_MODULE, fitting)


def printed_reference(reference: str) -> str:
    """A ticket reference grouped in fours; anything else (a provisional ``K…``) as is."""
    if len(reference) == LENGTH and reference.isascii() and reference.isdigit():
        return grouped(reference)
    return reference


def encode_receipt(receipt: Receipt, *, width: int = DEFAULT_WIDTH) -> bytes:
    """The receipt as an ESC/POS byte stream, ending with a cut."""
    page = _Layout(receipt.locale, width)
    words = page.words
    page.headline(receipt.title)
    page.bold(True)
    page.emit(words.heading)
    page.bold(False)
    page.rule()

    page.align("left")
    page.emit(words.reference + words.colon.rstrip())
    page.headline(printed_reference(clean(receipt.reference)))
    page.align("left")
    if receipt.provisional:
        page.paragraph(words.provisional)
    page.blank()
    page.field(words.service, receipt.service)
    local = receipt.submitted_at.astimezone(receipt.tz)
    page.field(words.submitted, local.strftime("%Y-%m-%d %H:%M"))
    if receipt.phone_masked:
        page.field(words.phone, receipt.phone_masked)

    steps = [clean(step) for step in receipt.next_steps if clean(step)]
    if steps:
        page.rule()
        page.bold(True)
        page.emit(words.next_steps)
        page.bold(False)
        for number, step in enumerate(steps, start=1):
            marker = f"{number}. "
            page.paragraph(step, first=marker, indent=" " * len(marker))

    if receipt.track_url:
        page.rule()
        page.qr(receipt.track_url)
        page.emit(words.scan)
    if clean(receipt.kiosk_name):
        page.rule()
        page.align("left")
        page.field(words.kiosk, receipt.kiosk_name)
    return page.finish()


def encode_slip(slip: TextSlip, *, width: int = DEFAULT_WIDTH) -> bytes:
    """A service guide as an ESC/POS byte stream, ending with a cut."""
    page = _Layout(slip.locale, width)
    page.headline(slip.title)
    page.align("left")
    page.rule()
    for line in slip.lines:
        if clean(line):
            page.paragraph(line)
        else:
            page.blank()
    return page.finish()
