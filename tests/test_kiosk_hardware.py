"""Kiosk hardware: receipts as ESC/POS bytes, printer backends and status, scanners.

No database and no device: the network printer is a fake on 127.0.0.1 that records
every byte and answers real-time status queries; the serial reader runs on pyserial's
``loop://`` port.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import select
import socket
import threading
import time
import tty
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import serial

from contact.reference import damm_digit
from kiosk.hardware.escpos_text import decode
from kiosk.hardware.printer import (
    DummyPrinter,
    FilePrinter,
    NetworkPrinter,
    PrintError,
    PrinterStatus,
    UsbPrinter,
    make_printer,
)
from kiosk.hardware.reader import Scanned, SerialReader, card_digest, classify, mask_card
from kiosk.hardware.receipt import (
    Receipt,
    TextSlip,
    chinese_columns,
    encode_receipt,
    encode_slip,
    qr_module_size,
)

REF = "2611223721620" + damm_digit("2611223721620")
REF_GROUPED = f"{REF[0:4]} {REF[4:8]} {REF[8:12]} {REF[12:]}"
PROVISIONAL = "K2611220070011"
WHEN = datetime(2026, 11, 22, 1, 41, tzinfo=UTC)  # 09:41 in Shanghai
TRACK = f"https://city.example/m/track?ref={REF}"

FS_CHINESE_ON = b"\x1c&"
FS_CHINESE_OFF = b"\x1c."
QR_STORE = b"\x1d(k"


def chinese_receipt(**changes: object) -> Receipt:
    fields: dict[str, object] = {
        "locale": "zh-CN",
        "title": "江城12345 市民服务热线",
        "reference": REF,
        "provisional": False,
        "service": "噪声扰民（夜间施工）",
        "submitted_at": WHEN,
        "track_url": TRACK,
        "next_steps": ["凭编号和手机号后4位查询进度", "工作人员将在5个工作日内答复"],
        "phone_masked": "138****8000",
        "kiosk_name": "市民中心一楼1号机",
    }
    fields.update(changes)
    return Receipt(**fields)  # type: ignore[arg-type]


def english_receipt(**changes: object) -> Receipt:
    fields: dict[str, object] = {
        "locale": "en",
        "title": "Jiangcheng 12345 Citizen Hotline",
        "reference": PROVISIONAL,
        "provisional": True,
        "service": "Noise complaint",
        "submitted_at": WHEN,
        "track_url": f"https://city.example/m/track?ref={PROVISIONAL}",
        "next_steps": ["We will answer within 5 working days"],
        "phone_masked": None,
        "kiosk_name": "City Hall lobby",
    }
    fields.update(changes)
    return Receipt(**fields)  # type: ignore[arg-type]


# ---------------------------------------------------------------- receipts


class TestReceiptBytes:
    def test_chinese_receipt_reads_back_in_gb18030(self) -> None:
        data = encode_receipt(chinese_receipt())
        decoded = decode(data)
        lines = decoded.lines
        assert lines[0] == "江城12345 市民服务热线"
        assert "受理回执" in lines
        assert REF_GROUPED in lines
        assert "服务事项：噪声扰民（夜间施工）" in lines
        assert "提交时间：2026-11-22 09:41" in lines
        assert "联系电话：138****8000" in lines
        assert "1. 凭编号和手机号后4位查询进度" in lines
        assert "2. 工作人员将在5个工作日内答复" in lines
        assert "扫码查询办理进度" in lines
        assert "受理终端：市民中心一楼1号机" in lines
        assert "临时编号" not in decoded.text
        assert decoded.qr == [TRACK]
        assert decoded.cut
        # Chinese mode around GB18030 text, never UTF-8.
        assert data.startswith(b"\x1b@" + FS_CHINESE_ON)
        assert "市民服务热线".encode("gb18030") in data
        assert "市民服务热线".encode() not in data
        assert data.rindex(FS_CHINESE_OFF) > data.rindex("受理终端".encode("gb18030"))
        assert data.endswith(b"\x1dV\x00")

    def test_qr_store_command_carries_exactly_the_url(self) -> None:
        data = encode_receipt(chinese_receipt())
        payload = TRACK.encode()
        store = QR_STORE + (len(payload) + 3).to_bytes(2, "little") + b"1P0" + payload
        assert data.count(store) == 1
        assert data.count(QR_STORE + b"\x03\x001Q0") == 1  # and printed

    def test_english_receipt_is_plain_text_with_provisional_note(self) -> None:
        data = encode_receipt(english_receipt())
        decoded = decode(data)
        lines = decoded.lines
        assert lines[0] == "Jiangcheng 12345 Citizen Hotline"
        assert "Receipt" in lines
        assert PROVISIONAL in lines  # provisional numbers are not grouped
        assert "Provisional number" in decoded.text
        assert "Service: Noise complaint" in lines
        assert "Submitted: 2026-11-22 09:41" in lines
        assert "1. We will answer within 5 working days" in lines
        assert "Scan to track" in lines
        assert "Kiosk: City Hall lobby" in lines
        assert "Phone" not in decoded.text
        assert decoded.qr == [f"https://city.example/m/track?ref={PROVISIONAL}"]
        assert decoded.cut
        assert data.startswith(b"\x1b@" + FS_CHINESE_OFF)
        assert FS_CHINESE_ON not in data
        assert all(b < 0x80 for b in data.replace(QR_STORE, b""))

    def test_time_is_printed_in_the_receipts_zone(self) -> None:
        receipt = english_receipt(tz=ZoneInfo("America/New_York"))
        assert "Submitted: 2026-11-21 20:41" in decode(encode_receipt(receipt)).lines

    def test_a_naive_time_is_refused(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            english_receipt(submitted_at=datetime(2026, 11, 22, 9, 41))

    def test_english_text_outside_pc437_is_replaced_not_switched(self) -> None:
        data = encode_receipt(english_receipt(service="Café “Élan” — 江城"))
        assert 'Service: Café "Élan" - ??' in decode(data).lines
        assert b"\x1bt" not in data

    def test_control_characters_never_reach_the_printer(self) -> None:
        data = encode_receipt(
            chinese_receipt(service="噪声\x1dV\x00扰民\x1b@\n", kiosk_name="\x1c.")
        )
        assert data.count(b"\x1dV") == 1
        assert data.count(b"\x1b@") == 1
        assert "服务事项：噪声 V 扰民 @" in decode(data).lines

    @pytest.mark.parametrize("width", [32, 48])
    def test_lines_wrap_to_the_paper_width(self, width: int) -> None:
        long_zh = (
            "请携带身份证原件、户口簿及近期一寸免冠照片两张，"
            "到服务大厅二号窗口办理，工作日9:00-17:00。"
        )
        long_en = "Bring your identity card, household register and two recent photos to window 2."
        slip = TextSlip(locale="zh-CN", title="居住证办理指南", lines=[long_zh, "", long_en])
        lines = decode(encode_slip(slip, width=width)).lines
        body = lines[lines.index("-" * width) + 1 :]
        assert all(chinese_columns(line) <= width for line in body)
        assert max(chinese_columns(line) for line in body) >= width - 2
        assert not any(line.startswith(("，", "。", "、")) for line in body)
        zh_part = body[: body.index("")]
        en_part = body[body.index("") + 1 :]
        assert "".join(zh_part) == long_zh
        assert " ".join(en_part) == long_en

    def test_receipt_fields_wrap_with_a_hanging_indent(self) -> None:
        service = "城市管理类：占道经营、噪声扰民、违规停车及其他需要现场核实的事项"
        lines = decode(encode_receipt(chinese_receipt(service=service), width=32)).lines
        start = next(i for i, line in enumerate(lines) if line.startswith("服务事项："))
        continued = lines[start + 1]
        assert continued.startswith(" " * 10) and not continued.startswith(" " * 11)
        assert all(chinese_columns(line) <= 32 for line in lines[start : start + 3])

    def test_qr_module_size_fits_the_paper(self) -> None:
        assert qr_module_size(TRACK, 48) == 6
        assert 3 <= qr_module_size("https://city.example/" + "x" * 900, 32) < 6
        with pytest.raises(ValueError, match="too long for the paper"):
            qr_module_size("x" * 2000, 32)
        with pytest.raises(ValueError, match="too long for a QR code"):
            qr_module_size("x" * 3000, 48)

    def test_slip_has_title_lines_and_cut(self) -> None:
        slip = TextSlip(locale="en", title="Residence permit", lines=["Bring your ID card."])
        decoded = decode(encode_slip(slip))
        assert decoded.lines[0] == "Residence permit"
        assert "Bring your ID card." in decoded.lines
        assert decoded.cut and decoded.qr == []


class TestDecoder:
    def test_unknown_command_names_its_offset(self) -> None:
        with pytest.raises(ValueError, match="offset 2"):
            decode(b"ab\x1bZ")
        with pytest.raises(ValueError, match="offset 1"):
            decode(b"a\x07")

    def test_truncated_and_malformed_input(self) -> None:
        with pytest.raises(ValueError, match="truncated GS \\( k at offset 0"):
            decode(b"\x1d(k\x09\x001P0abc")
        with pytest.raises(ValueError, match="invalid GB18030 text at offset 3"):
            decode(b"\x1c&a\x81")
        with pytest.raises(ValueError, match="unsupported 2D code"):
            decode(b"\x1d(k\x03\x000A\x00")

    def test_text_modes_feeds_and_status_queries(self) -> None:
        data = (
            b"\x10\x04\x01abc\n"
            + FS_CHINESE_ON
            + "中文".encode("gb18030")
            + FS_CHINESE_OFF
            + b"\x82\x1bd\x02x\x1dV\x41\x03"
        )
        decoded = decode(data)
        assert decoded.text == "abc\n中文é\n\nx"
        assert decoded.cut and decoded.qr == []


# ---------------------------------------------------------------- dummy and file printers


class TestDummyAndFile:
    def test_dummy_captures_every_byte(self) -> None:
        printer = make_printer("dummy")
        assert isinstance(printer, DummyPrinter) and printer.kind == "dummy"
        assert printer.status() == PrinterStatus(online=None, paper="unknown")
        first = printer.print_receipt(chinese_receipt())
        second = printer.print_slip(TextSlip(locale="en", title="Guide", lines=["line"]))
        assert first == encode_receipt(chinese_receipt())
        assert printer.output == first + second

    def test_dummy_simulates_paper_and_offline(self) -> None:
        printer = make_printer("dummy", {"paper": "low", "online": "true"})
        assert printer.status() == PrinterStatus(online=True, paper="low", detail="paper low")
        assert printer.status().ready()
        assert isinstance(printer, DummyPrinter)
        printer.simulate(online=True, paper="out")
        with pytest.raises(PrintError) as caught:
            printer.print_receipt(chinese_receipt())
        assert caught.value.status.paper == "out" and caught.value.status.detail == "no paper"
        assert printer.output == b""
        offline = make_printer("dummy", {"online": "false", "paper": "ok"})
        assert offline.status() == PrinterStatus(online=False, paper="ok", detail="offline")
        with pytest.raises(PrintError):
            offline.print_slip(TextSlip(locale="en", title="Guide", lines=[]))

    def test_width_option_reaches_the_layout(self) -> None:
        printer = make_printer("dummy", {"width": "32"})
        assert isinstance(printer, DummyPrinter)
        printer.print_receipt(chinese_receipt())
        assert "-" * 32 in decode(printer.output).lines
        assert "-" * 33 not in decode(printer.output).text

    def test_file_printer_appends(self, tmp_path: Path) -> None:
        target = tmp_path / "receipts.bin"
        target.write_bytes(b"before")
        printer = make_printer("file", {"devfile": str(target)})
        assert isinstance(printer, FilePrinter)
        assert printer.status() == PrinterStatus(online=None, paper="unknown")
        first = printer.print_receipt(chinese_receipt())
        second = printer.print_receipt(english_receipt())
        assert target.read_bytes() == b"before" + first + second
        assert decode(first + second).qr == [TRACK, english_receipt().track_url]

    def test_file_printer_that_cannot_write(self, tmp_path: Path) -> None:
        printer = make_printer("file", {"devfile": str(tmp_path / "missing" / "lp0")})
        status = printer.status()
        assert status.online is False and not status.ready()
        with pytest.raises(PrintError):
            printer.print_receipt(chinese_receipt())

    def test_configuration_errors(self) -> None:
        with pytest.raises(ValueError, match="unknown printer kind"):
            make_printer("laser")
        with pytest.raises(ValueError, match="needs option"):
            make_printer("network")
        with pytest.raises(ValueError, match="does not take"):
            make_printer("network", {"host": "10.0.0.9", "devfile": "/dev/lp0"})
        with pytest.raises(ValueError, match="paper must be"):
            make_printer("dummy", {"paper": "plenty"})
        with pytest.raises(ValueError, match="integer"):
            make_printer("network", {"host": "10.0.0.9", "port": "ninety"})

    def test_usb_ids_are_hex_and_a_missing_device_is_offline(self) -> None:
        printer = make_printer(
            "usb", {"idVendor": "0x0416", "idProduct": "5011", "out_ep": "0x03", "timeout": "1"}
        )
        assert isinstance(printer, UsbPrinter)
        assert (printer.id_vendor, printer.id_product, printer.out_ep) == (0x0416, 0x5011, 3)
        assert printer.in_ep is None
        status = printer.status()
        assert status.online is False and status.detail
        with pytest.raises(PrintError):
            printer.print_receipt(chinese_receipt())
        printer.close()


class TestStatus:
    @pytest.mark.parametrize(
        ("status", "ready"),
        [
            (PrinterStatus(True, "ok"), True),
            (PrinterStatus(True, "low"), True),
            (PrinterStatus(None, "unknown"), True),
            (PrinterStatus(True, "out"), False),
            (PrinterStatus(False, "ok"), False),
            (PrinterStatus(None, "out"), False),
        ],
    )
    def test_ready(self, status: PrinterStatus, ready: bool) -> None:
        assert status.ready() is ready


# ---------------------------------------------------------------- network printer

ONLINE, OFFLINE = 0x12, 0x1A  # DLE EOT 1: bit 3 = offline
NO_CAUSE, COVER_OPEN, STOPPED_AT_PAPER_END = 0x12, 0x16, 0x32  # DLE EOT 2
PAPER_OK, PAPER_LOW, PAPER_OUT = 0x12, 0x1E, 0x7E  # DLE EOT 4
QUERY = {n: b"\x10\x04" + bytes([n]) for n in (1, 2, 3, 4)}


class FakePrinter:
    """A raw-port (9100) receipt printer: records every byte, answers ``DLE EOT n``
    from :attr:`answers`; options to stay silent, to hang up when a print job starts,
    or to change its answers once it has received a cut."""

    def __init__(
        self,
        answers: dict[int, int] | None = None,
        *,
        silent: bool = False,
        hang_up_on_print: bool = False,
        after_cut: dict[int, int] | None = None,
    ) -> None:
        self.answers = {1: ONLINE, 2: NO_CAUSE, 3: NO_CAUSE, 4: PAPER_OK} | (answers or {})
        self.silent = silent
        self.hang_up_on_print = hang_up_on_print
        self.after_cut = after_cut or {}
        self.received = bytearray()
        self.connections = 0
        self.open_connections = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.05)
        self.port = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(2)
        self._server.close()
        assert not self._thread.is_alive()

    def wait_idle(self, timeout: float = 2.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self.open_connections == 0:
                    return True
            time.sleep(0.01)
        return False

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            with self._lock:
                self.connections += 1
                self.open_connections += 1
            try:
                with conn:
                    conn.settimeout(0.05)
                    self._talk(conn)
            finally:
                with self._lock:
                    self.open_connections -= 1

    def _talk(self, conn: socket.socket) -> None:
        pending = b""
        while not self._stopping.is_set():
            try:
                chunk = conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            with self._lock:
                self.received += chunk
            data, pending = pending + chunk, b""
            i = 0
            while i < len(data):
                if data[i] in (0x10, 0x1D, 0x1B) and i + 2 >= len(data):
                    pending = data[i:]
                    break
                if data[i : i + 2] == b"\x10\x04":
                    if not self.silent:
                        conn.sendall(bytes([self.answers[data[i + 2]]]))
                    i += 3
                    continue
                if data[i : i + 2] == b"\x1b@" and self.hang_up_on_print:
                    return
                if data[i : i + 2] == b"\x1dV":
                    self.answers.update(self.after_cut)
                i += 1


@pytest.fixture
def fake_printer() -> Iterator[Callable[..., FakePrinter]]:
    started: list[FakePrinter] = []

    def start(*args: object, **kwargs: object) -> FakePrinter:
        fake = FakePrinter(*args, **kwargs)  # type: ignore[arg-type]
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.close()


def network(fake: FakePrinter, timeout: str = "1") -> NetworkPrinter:
    printer = make_printer(
        "network", {"host": "127.0.0.1", "port": str(fake.port), "timeout": timeout}
    )
    assert isinstance(printer, NetworkPrinter)
    return printer


class TestNetworkPrinter:
    def test_prints_when_ready_and_confirms_with_a_status_query(
        self, fake_printer: Callable[..., FakePrinter]
    ) -> None:
        fake = fake_printer()
        with network(fake) as printer:
            assert printer.status() == PrinterStatus(online=True, paper="ok", detail="")
            sent = printer.print_receipt(chinese_receipt())
        assert fake.wait_idle()
        status_poll = QUERY[1] + QUERY[4]
        assert bytes(fake.received) == status_poll + status_poll + sent + status_poll
        assert sent == encode_receipt(chinese_receipt())
        assert fake.connections == 2  # one connection per operation, each closed
        assert decode(bytes(fake.received)).qr == [TRACK]

    def test_paper_near_end_still_prints(self, fake_printer: Callable[..., FakePrinter]) -> None:
        fake = fake_printer({4: PAPER_LOW})
        printer = network(fake)
        assert printer.status() == PrinterStatus(online=True, paper="low", detail="paper low")
        sent = printer.print_slip(TextSlip(locale="zh-CN", title="指南", lines=["第一行"]))
        assert fake.wait_idle()
        assert sent in bytes(fake.received)

    def test_paper_out_refuses_and_sends_nothing_but_queries(
        self, fake_printer: Callable[..., FakePrinter]
    ) -> None:
        fake = fake_printer({1: OFFLINE, 2: STOPPED_AT_PAPER_END, 4: PAPER_OUT})
        printer = network(fake)
        status = printer.status()
        assert status == PrinterStatus(online=False, paper="out", detail="no paper")
        with pytest.raises(PrintError) as caught:
            printer.print_receipt(chinese_receipt())
        assert caught.value.status.paper == "out"
        assert fake.wait_idle()
        received = bytes(fake.received)
        assert received == (QUERY[1] + QUERY[2] + QUERY[4]) * 2
        assert decode(received) == decode(b"")

    def test_offline_with_cover_open(self, fake_printer: Callable[..., FakePrinter]) -> None:
        fake = fake_printer({1: OFFLINE, 2: COVER_OPEN})
        printer = network(fake)
        assert printer.status() == PrinterStatus(online=False, paper="ok", detail="cover open")
        with pytest.raises(PrintError, match="cover open"):
            printer.print_receipt(english_receipt())

    def test_paper_running_out_while_printing_is_a_failure(
        self, fake_printer: Callable[..., FakePrinter]
    ) -> None:
        fake = fake_printer(after_cut={1: OFFLINE, 2: STOPPED_AT_PAPER_END, 4: PAPER_OUT})
        printer = network(fake)
        with pytest.raises(PrintError, match="interrupted") as caught:
            printer.print_receipt(chinese_receipt())
        assert caught.value.status.paper == "out"
        assert caught.value.status.online is False

    def test_connection_lost_midway_is_a_failure(
        self, fake_printer: Callable[..., FakePrinter]
    ) -> None:
        fake = fake_printer(hang_up_on_print=True)
        printer = network(fake)
        with pytest.raises(PrintError) as caught:
            printer.print_receipt(chinese_receipt())
        assert caught.value.status.online is False
        assert caught.value.status.detail
        assert printer.status().online is True  # the next operation reconnects

    def test_a_printer_that_does_not_answer(self, fake_printer: Callable[..., FakePrinter]) -> None:
        fake = fake_printer(silent=True)
        printer = network(fake, timeout="0.3")
        started = time.monotonic()
        assert printer.status() == PrinterStatus(
            online=None, paper="unknown", detail="no status reply"
        )
        assert time.monotonic() - started < 1.5
        sent = printer.print_slip(TextSlip(locale="en", title="Guide", lines=["x"]))
        assert fake.wait_idle()
        assert sent in bytes(fake.received)

    def test_connection_refused_is_offline(self) -> None:
        with socket.create_server(("127.0.0.1", 0)) as probe:
            port = probe.getsockname()[1]
        printer = make_printer("network", {"host": "127.0.0.1", "port": str(port), "timeout": "1"})
        assert printer.status() == PrinterStatus(
            online=False, paper="unknown", detail="connection refused"
        )
        with pytest.raises(PrintError) as caught:
            printer.print_receipt(chinese_receipt())
        assert caught.value.status.online is False
        assert caught.value.status.detail == "connection refused"


class FakeSerialPrinter:
    """A printer at the far end of a pseudo-terminal: records the bytes, answers
    ``DLE EOT n`` from :attr:`answers`."""

    def __init__(self, answers: dict[int, int] | None = None) -> None:
        self.answers = {1: ONLINE, 2: NO_CAUSE, 3: NO_CAUSE, 4: PAPER_OK} | (answers or {})
        self.received = bytearray()
        self._master, self._slave = os.openpty()
        tty.setraw(self._master)
        self.devfile = os.ttyname(self._slave)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(2)
        os.close(self._master)
        os.close(self._slave)

    def _serve(self) -> None:
        while not self._stopping.is_set():
            readable, _, _ = select.select([self._master], [], [], 0.05)
            if not readable:
                continue
            chunk = os.read(self._master, 4096)
            self.received += chunk
            at = chunk.find(b"\x10\x04")
            while at >= 0 and at + 2 < len(chunk):
                os.write(self._master, bytes([self.answers[chunk[at + 2]]]))
                at = chunk.find(b"\x10\x04", at + 3)


@pytest.fixture
def serial_printer() -> Iterator[FakeSerialPrinter]:
    fake = FakeSerialPrinter()
    yield fake
    fake.close()


class TestSerialPrinter:
    def test_status_and_print_over_a_serial_line(self, serial_printer: FakeSerialPrinter) -> None:
        printer = make_printer(
            "serial", {"devfile": serial_printer.devfile, "baudrate": "115200", "timeout": "1"}
        )
        try:
            assert printer.status() == PrinterStatus(online=True, paper="ok", detail="")
            sent = printer.print_receipt(english_receipt())
            serial_printer.answers[4] = PAPER_LOW
            assert printer.status().paper == "low"
            serial_printer.answers.update({1: OFFLINE, 2: STOPPED_AT_PAPER_END, 4: PAPER_OUT})
            with pytest.raises(PrintError, match="no paper"):
                printer.print_receipt(english_receipt())
        finally:
            printer.close()
        assert wait_for(lambda: sent in bytes(serial_printer.received))
        assert bytes(serial_printer.received).count(sent) == 1

    def test_a_missing_serial_device_is_offline(self, tmp_path: Path) -> None:
        printer = make_printer("serial", {"devfile": str(tmp_path / "ttyUSB7")})
        status = printer.status()
        assert status.online is False and status.detail
        with pytest.raises(PrintError):
            printer.print_slip(TextSlip(locale="en", title="Guide", lines=["x"]))


# ---------------------------------------------------------------- serial reader


def wait_for(predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


class TestSerialReader:
    def test_loop_port_delivers_clean_codes(self) -> None:
        codes: list[str] = []
        reader = SerialReader("loop://", codes.append, timeout=0.1)
        reader.start()
        try:
            assert reader.port is not None
            reader.port.write(b"\x02" + REF_GROUPED.encode() + b"\x03\r\n\r\n")
            reader.port.write(b"K2611220070011\n   \n")
            assert wait_for(lambda: len(codes) == 2)
            reader.port.write(b"6222021234567890")  # no suffix: ends with silence
            assert wait_for(lambda: len(codes) == 3)
        finally:
            reader.stop()
        assert codes == [REF_GROUPED, "K2611220070011", "6222021234567890"]
        assert not reader.running and reader.port is None

    def test_a_failing_handler_neither_stops_the_reader_nor_logs_the_code(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        seen: list[str] = []

        def handler(code: str) -> None:
            seen.append(code)
            if len(seen) == 1:
                raise RuntimeError(f"cannot handle {code}")

        caplog.set_level(logging.DEBUG, logger="kiosk.hardware.reader")
        with SerialReader("loop://", handler, timeout=0.1) as reader:
            assert reader.port is not None
            reader.port.write(b"6222021234567890\r")
            reader.port.write(b"2611\r")
            assert wait_for(lambda: len(seen) == 2)
        assert seen == ["6222021234567890", "2611"]
        assert "RuntimeError" in caplog.text
        assert "6222021234567890" not in caplog.text

    def test_a_missing_port_fails_at_start(self, tmp_path: Path) -> None:
        reader = SerialReader(str(tmp_path / "ttyUSB9"), lambda code: None)
        with pytest.raises(serial.SerialException):
            reader.start()
        assert not reader.running


# ---------------------------------------------------------------- classification and cards


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (REF, Scanned("track", REF)),
        (REF_GROUPED, Scanned("track", REF)),
        (f" {REF[:4]}-{REF[4:8]}-{REF[8:]}\r\n", Scanned("track", REF)),
        ("k2611220070011", Scanned("track", PROVISIONAL)),
        (TRACK, Scanned("track", REF)),
        (
            f"https://city.example/m/track?lang=en&ref={REF_GROUPED.replace(' ', '+')}",
            Scanned("track", REF),
        ),
        (f"https://city.example/m/track?ref={PROVISIONAL}", Scanned("track", PROVISIONAL)),
        ("https://city.example/m/track", Scanned("unknown", "")),
        ("https://city.example/m/track?ref=12345", Scanned("unknown", "")),
        (
            REF[:-1] + str((int(REF[-1]) + 1) % 10),
            Scanned("card", REF[:-1] + str((int(REF[-1]) + 1) % 10)),
        ),
        ("6222021234567890", Scanned("card", "6222021234567890")),
        ("6222 0212 3456 7890", Scanned("card", "6222021234567890")),
        ("12345678", Scanned("card", "12345678")),
        (";6222021234567890=25121010000000000000?", Scanned("card", "6222021234567890")),
        ("%B6222021234567890^ZHANG/SAN^2512101000000?", Scanned("card", "6222021234567890")),
        ("1234567", Scanned("unknown", "")),
        ("12345678901234567890", Scanned("unknown", "")),
        ("K12", Scanned("unknown", "")),
        ("hello", Scanned("unknown", "")),
        ("\x1b\r\n", Scanned("unknown", "")),
    ],
)
def test_classify(code: str, expected: Scanned) -> None:
    assert classify(code) == expected


def test_a_scanned_card_is_masked_in_its_repr() -> None:
    scanned = classify("6222021234567890")
    assert "6222021234567890" not in repr(scanned)
    assert "************7890" in repr(scanned)
    assert repr(classify(REF)) == f"Scanned(kind='track', value='{REF}')"


def test_card_digest_is_a_keyed_hmac_of_the_digits() -> None:
    key = b"k" * 32
    expected = hmac.new(key, b"6222021234567890", hashlib.sha256).hexdigest()
    assert card_digest("6222021234567890", key) == expected
    assert card_digest("6222 0212-3456 7890", key) == expected
    assert card_digest("6222021234567890", b"x" * 32) != expected
    assert hashlib.sha256(b"6222021234567890").hexdigest() != expected
    with pytest.raises(ValueError, match="key"):
        card_digest("6222021234567890", b"")
    with pytest.raises(ValueError, match="8 to 19 digits"):
        card_digest("not a card", key)


def test_mask_card_shows_the_last_four_digits() -> None:
    assert mask_card("6222021234567890") == "************7890"
    assert mask_card("6222 0212 3456 7890") == "************7890"
    assert mask_card("12345678") == "****5678"
    assert mask_card("123") == "***"
