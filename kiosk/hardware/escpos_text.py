"""Read back the ESC/POS bytes the kiosk sends to its receipt printer.

The kiosk's receipts and service-guide slips are byte streams for a thermal printer
(:mod:`kiosk.hardware.receipt`). This decoder turns such a stream back into what the
paper would show — the text, the QR codes' contents and whether the paper is cut —
so tests can check a receipt without a printer and a technician can look at a
``file`` printer's output (``python -m kiosk.hardware.escpos_text receipts.bin``).

It understands exactly the subset of ESC/POS the kiosk emits, and refuses anything
else with a :class:`ValueError` naming the byte offset, so an encoder change that
emits a new command is noticed rather than silently misread:

- ``LF`` (and ``CR``, which changes nothing on paper);
- ``ESC @`` initialise, ``ESC ! n`` print mode, ``ESC E n`` bold, ``ESC - n`` underline,
  ``ESC a n`` alignment, ``ESC d n`` print and feed ``n`` lines, ``ESC t 0`` code page
  PC437;
- ``GS ! n`` character size, ``GS V m [n]`` cut, ``GS ( k`` QR code (model, module
  size, error correction, store data, print);
- ``FS &`` / ``FS .`` enter / leave Chinese character mode;
- ``DLE EOT n`` real-time status queries (they print nothing).

Text outside Chinese mode is PC437 (plain ASCII for the kiosk's English receipts);
inside Chinese mode it is GB18030, where ASCII stays one byte and a Chinese
character takes two (or, rarely, four).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

LF = 0x0A
CR = 0x0D
DLE = 0x10
EOT = 0x04
ESC = 0x1B
FS = 0x1C
GS = 0x1D
DEL = 0x7F

# ESC commands taking one parameter byte, and the values each accepts.
_ESC_ONE_PARAM: dict[int, range | tuple[int, ...]] = {
    ord("!"): range(256),
    ord("E"): range(256),
    ord("-"): (0, 1, 2, 48, 49, 50),
    ord("a"): (0, 1, 2, 48, 49, 50),
    ord("d"): range(256),
    ord("t"): (0,),
}
# GS V: function A (no feed parameter) and function B (one feed parameter).
_CUT_PLAIN = (0, 1, 48, 49)
_CUT_FEED = (65, 66)
# GS ( k with cn = 49 (QR code): fn → number of parameter bytes after fn.
_QR_MODEL, _QR_SIZE, _QR_ERROR, _QR_STORE, _QR_PRINT = 65, 67, 69, 80, 81
_QR_FIXED_PARAMS = {_QR_MODEL: 2, _QR_SIZE: 1, _QR_ERROR: 1, _QR_PRINT: 1}


@dataclass(frozen=True)
class Decoded:
    """What a stream puts on paper.

    ``text``: every printed line, joined by ``"\\n"`` (blank lines fed before the cut
    are dropped); ``qr``: the payload of every QR "store data" command, in order;
    ``cut``: whether the stream cuts the paper.
    """

    text: str
    qr: list[str] = field(default_factory=list)
    cut: bool = False

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.chinese = False
        self.lines: list[str] = []
        self.current: list[str] = []
        self.qr: list[str] = []
        self.cut = False

    def fail(self, offset: int, what: str) -> ValueError:
        return ValueError(f"{what} at offset {offset}")

    def take(self, count: int, start: int, what: str) -> bytes:
        end = self.pos + count
        if end > len(self.data):
            raise self.fail(start, f"truncated {what}")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def newline(self) -> None:
        self.lines.append("".join(self.current))
        self.current = []

    def finish_line(self) -> None:
        if self.current:
            self.newline()

    def run(self) -> Decoded:
        while self.pos < len(self.data):
            start = self.pos
            byte = self.data[start]
            if byte >= 0x20 and byte != DEL:
                self.text()
                continue
            self.pos += 1
            if byte == LF:
                self.newline()
            elif byte == CR:
                pass
            elif byte == ESC:
                self.esc(start)
            elif byte == GS:
                self.gs(start)
            elif byte == FS:
                self.fs(start)
            elif byte == DLE:
                self.dle(start)
            else:
                raise self.fail(start, f"unknown control byte 0x{byte:02x}")
        self.finish_line()
        while self.lines and not self.lines[-1]:
            self.lines.pop()
        return Decoded(text="\n".join(self.lines), qr=self.qr, cut=self.cut)

    def text(self) -> None:
        start = self.pos
        end = start
        while end < len(self.data) and self.data[end] >= 0x20 and self.data[end] != DEL:
            end += 1
        chunk = self.data[start:end]
        if self.chinese:
            try:
                decoded = chunk.decode("gb18030")
            except UnicodeDecodeError as exc:
                raise self.fail(start + exc.start, "invalid GB18030 text") from exc
        else:
            decoded = chunk.decode("cp437")
        self.current.append(decoded)
        self.pos = end

    def esc(self, start: int) -> None:
        command = self.take(1, start, "ESC command")[0]
        if command == ord("@"):
            return
        allowed = _ESC_ONE_PARAM.get(command)
        if allowed is None:
            raise self.fail(start, f"unknown command ESC 0x{command:02x}")
        param = self.take(1, start, f"ESC {chr(command)}")[0]
        if param not in allowed:
            raise self.fail(start, f"unsupported ESC {chr(command)} {param}")
        if command == ord("d"):
            for _ in range(param):
                self.newline()

    def gs(self, start: int) -> None:
        command = self.take(1, start, "GS command")[0]
        if command == ord("!"):
            self.take(1, start, "GS !")
        elif command == ord("V"):
            mode = self.take(1, start, "GS V")[0]
            if mode in _CUT_FEED:
                self.take(1, start, "GS V")
            elif mode not in _CUT_PLAIN:
                raise self.fail(start, f"unsupported cut mode {mode}")
            self.finish_line()
            self.cut = True
        elif command == ord("("):
            if self.take(1, start, "GS (")[0] != ord("k"):
                raise self.fail(start, "unknown command GS (")
            self.two_d_code(start)
        else:
            raise self.fail(start, f"unknown command GS 0x{command:02x}")

    def two_d_code(self, start: int) -> None:
        low, high = self.take(2, start, "GS ( k")
        body = self.take(low + high * 256, start, "GS ( k")
        if len(body) < 2:
            raise self.fail(start, "GS ( k without cn and fn")
        cn, fn, params = body[0], body[1], body[2:]
        if cn != 49:
            raise self.fail(start, f"unsupported 2D code type cn={cn}")
        if fn == _QR_STORE:
            if not params or params[0] != 48:
                raise self.fail(start, "QR store data without m=48")
            try:
                self.qr.append(params[1:].decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise self.fail(start, "QR payload is not UTF-8") from exc
            return
        expected = _QR_FIXED_PARAMS.get(fn)
        if expected is None:
            raise self.fail(start, f"unsupported QR function fn={fn}")
        if len(params) != expected:
            raise self.fail(start, f"QR function fn={fn} with {len(params)} parameter bytes")
        if fn == _QR_PRINT:
            self.finish_line()

    def fs(self, start: int) -> None:
        command = self.take(1, start, "FS command")[0]
        if command == ord("&"):
            self.chinese = True
        elif command == ord("."):
            self.chinese = False
        else:
            raise self.fail(start, f"unknown command FS 0x{command:02x}")

    def dle(self, start: int) -> None:
        command, param = self.take(2, start, "DLE command")
        if command != EOT or param not in (1, 2, 3, 4):
            raise self.fail(start, f"unknown command DLE 0x{command:02x} 0x{param:02x}")


def decode(data: bytes) -> Decoded:
    """Decode a stream the kiosk produced; :class:`ValueError` (with the byte offset) on
    anything outside the supported subset or on malformed text."""
    return _Reader(bytes(data)).run()


def main(argv: list[str] | None = None) -> int:
    """Print a captured stream (e.g. a ``file`` printer's output) as text."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m kiosk.hardware.escpos_text FILE", file=sys.stderr)
        return 2
    with open(args[0], "rb") as stream:
        decoded = decode(stream.read())
    print(decoded.text)
    for payload in decoded.qr:
        print(f"[QR] {payload}")
    if decoded.cut:
        print("[cut]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
