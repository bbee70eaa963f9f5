"""A kiosk keeps working while the central server is down, and nothing is lost or doubled.

Two real processes: ``contact serve`` (the central server) and ``contact kiosk run``
(the kiosk, printing to a file). The central server is stopped, twenty citizens report
at the kiosk and take receipts with provisional references; the central server comes
back and receives exactly twenty tickets — also when the kiosk is killed mid-sync and
started again — and every provisional reference tracks to its ticket.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from kiosk.hardware.escpos_text import decode
from tests.conftest import (
    ROOT,
    base_env,
    wait_for,
)
from tests.test_crash import Server, database, free_port, sign_in  # noqa: F401 - fixture

pytestmark = pytest.mark.slow
COUNT = 20
PROVISIONAL = re.compile(r"K[0-9]{13}")


class KioskProcess:
    """``contact kiosk run`` in its own process group, printing into ``receipts``."""

    def __init__(self, server: str, token: str, data_dir: Path, receipts: Path, pace: float):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [
            sys.executable,
            "-m",
            "contact.cli",
            "kiosk",
            "run",
            "--server",
            server,
            "--printer",
            "file",
            "--printer-option",
            f"devfile={receipts}",
            "--port",
            str(self.port),
            "--data-dir",
            str(data_dir),
            "--heartbeat",
            "1",
            "--sync-pace",
            str(pace),
        ]
        self.env = {**os.environ, "CONTACT_KIOSK_DEVICE_TOKEN": token}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.args,
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(lambda: self.health() is not None, timeout=30)

    def health(self) -> dict[str, Any] | None:
        try:
            r = httpx.get(f"{self.url}/healthz", timeout=2)
        except httpx.HTTPError:
            return None
        return r.json() if r.status_code == 200 else None  # type: ignore[no-any-return]

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=20)


def register(database_url: str, name: str) -> str:
    """``contact kiosk register``: the token alone on the last line."""
    out = subprocess.run(
        [sys.executable, "-m", "contact.cli", "kiosk", "register", "--name", name],
        env={**os.environ, **base_env(database_url, None)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def a_simple_service(server: str, token: str) -> str:
    """A service whose form has no required fields (the catalogue as the kiosk gets it)."""
    r = httpx.get(f"{server}/api/v1/kiosk/catalogue", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    for s in r.json()["services"]:
        if not any(f.get("required") for f in s["fields"]):
            return str(s["code"])
    raise AssertionError("no service without required fields")


def kiosk_tickets(server: str) -> list[dict[str, Any]]:
    agent = sign_in(server, "agent1")
    r = httpx.get(
        f"{server}/api/v1/tickets",
        headers=agent,
        params={"channel": "kiosk", "limit": 200},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("kill_mid_sync", [False, True], ids=["steady", "killed-mid-sync"])
def test_twenty_reports_while_central_is_down_arrive_once_each(
    database: str,  # noqa: F811 - the fixture of tests.test_crash
    tmp_path: Path,
    kill_mid_sync: bool,
) -> None:
    token = register(database, "service-hall-1")
    central = Server(base_env(database, None))
    receipts = tmp_path / "receipts.bin"
    kiosk = KioskProcess(
        central.url, token, tmp_path / "kiosk", receipts, 0.3 if kill_mid_sync else 0.0
    )
    central.start()
    try:
        service = a_simple_service(central.url, token)
        kiosk.start()
        wait_for(lambda: (kiosk.health() or {}).get("catalogue"), timeout=30)
        central.kill()

        phones = [f"+861390000{n:04d}" for n in range(COUNT)]
        shown: list[str] = []
        with httpx.Client(base_url=kiosk.url, timeout=30) as screen:
            for n, phone in enumerate(phones):
                r = screen.post(
                    f"/kiosk/report/{service}",
                    data={
                        "lang": "zh-CN",
                        "sid": str(uuid.uuid4()),
                        "action": "submit",
                        "description": f"自助终端反映第{n}号问题：路灯不亮",
                        "phone": phone,
                    },
                )
                assert r.status_code == 200, r.text
                found = re.search(r'data-reference="(K[0-9]+)"', r.text)
                assert found, "a provisional reference on the screen while offline"
                shown.append(found.group(1))
        assert len(set(shown)) == COUNT

        # The receipts as printed: decoded back, one provisional reference and one QR each.
        printed = decode(receipts.read_bytes())
        on_paper = PROVISIONAL.findall(printed.text)
        assert sorted(set(on_paper)) == sorted(shown)
        assert "临时编号" in printed.text or "临时" in printed.text
        assert len(printed.qr) == COUNT
        assert sorted(q.rsplit("ref=", 1)[1] for q in printed.qr) == sorted(shown)
        assert all(q.startswith("http://testserver/m/track?ref=") for q in printed.qr)
        assert (kiosk.health() or {})["queue"]["pending"] == COUNT

        central.start()
        if kill_mid_sync:
            wait_for(lambda: len(kiosk_tickets(central.url)) >= 3, timeout=60, interval=0.05)
            kiosk.kill()
            assert len(kiosk_tickets(central.url)) < COUNT, "killed before the sync finished"
            kiosk.start()
        wait_for(lambda: (kiosk.health() or {}).get("queue", {}).get("pending") == 0, timeout=90)

        tickets = kiosk_tickets(central.url)
        assert len(tickets) == COUNT
        assert len({t["reference"] for t in tickets}) == COUNT
        assert all(t["source"] == "service-hall-1" for t in tickets)

        device = {"Authorization": f"Bearer {token}"}
        references = set()
        for provisional, phone in zip(shown, phones, strict=True):
            r = httpx.get(
                f"{central.url}/api/v1/kiosk/track",
                params={"reference": provisional, "last4": phone[-4:], "locale": "zh-CN"},
                headers=device,
                timeout=10,
            )
            assert r.status_code == 200, r.text
            references.add(r.json()["reference"])
        assert references == {t["reference"] for t in tickets}
    finally:
        kiosk.kill()
        central.kill()
