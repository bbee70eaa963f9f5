"""Nothing acknowledged is lost: real server and worker processes, killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from contact.migrate import upgrade
from tests.conftest import (
    PASSWORD,
    PG_URL,
    REDIS_URL,
    ROOT,
    WorkerProcess,
    base_env,
    drop_postgres,
    flush_redis,
    scratch_postgres,
    seed_catalogue,
    wait_for,
)

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``contact serve`` in its own process group."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.env = {**os.environ, **env}
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "contact.cli", "serve", "--port", str(self.port)],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

        def up() -> bool:
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=30)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=20)


@pytest.fixture(params=["sqlite"] + (["postgres"] if PG_URL else []))
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/crash.db"
    else:
        url = scratch_postgres("crash")
    upgrade(url)
    seed_catalogue(url)
    yield url
    if request.param == "postgres":
        drop_postgres(url)


def sign_in(url: str, username: str) -> dict[str, str]:
    r = httpx.post(f"{url}/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def post(url: str, path: str, headers: dict[str, str], body: Any = None) -> httpx.Response:
    return httpx.post(f"{url}{path}", headers=headers, json=body, timeout=10)


class TestServerCrash:
    def test_tickets_acknowledged_with_201_survive_kill_9(self, database: str) -> None:
        env = base_env(database, None)
        # An acknowledgement the killed server had claimed waits for its lease to run out.
        env["CONTACT_OUTBOX_LEASE_SECONDS"] = "5"
        server = Server(env)
        server.start()
        try:
            agent = sign_in(server.url, "agent1")
            refs = []
            for i in range(10):
                r = post(
                    server.url,
                    "/api/v1/tickets",
                    agent,
                    {"description": f"工地夜间施工噪音 {i}", "phone": f"1380013810{i}"},
                )
                assert r.status_code == 201
                refs.append(r.json()["reference"])
            server.kill()  # right after the last 201
            server.start()
            agent = sign_in(server.url, "agent1")
            for ref in refs:
                r = httpx.get(f"{server.url}/api/v1/tickets/{ref}", headers=agent)
                assert r.status_code == 200 and r.json()["status"] == "received"

            # The acknowledgement texts queued with them still go out after the restart.
            def acks() -> list[str]:
                rows = httpx.get(f"{server.url}/dev/outbox.json").json()
                return sorted(m["to"] for m in rows if m["template"] == "ticket_received")

            wait_for(lambda: len(acks()) == 10)
            time.sleep(1.5)  # later sweeps send nothing twice
            assert acks() == sorted(f"+861380013810{i}" for i in range(10))
        finally:
            server.kill()


@pytest.mark.skipif(not REDIS_URL, reason="needs CONTACT_TEST_REDIS_URL (a real rq worker)")
class TestWorkerCrash:
    def test_worker_killed_mid_delivery_sends_exactly_one_status_sms(self, database: str) -> None:
        redis_url = REDIS_URL.rsplit("/", 1)[0] + "/13"  # type: ignore[union-attr]
        flush_redis(redis_url)
        env = base_env(database, redis_url)
        env["CONTACT_OUTBOX_LEASE_SECONDS"] = "2"
        server = Server(env)
        slow = WorkerProcess({**env, "CONTACT_DEV_GATEWAY_LATENCY_MS": "60000"})
        fresh = WorkerProcess(env)
        server.start()
        slow.start()
        try:
            phone = "+8613800138555"
            r = httpx.post(f"{server.url}/dev/sms", data={"From": phone, "Body": "路灯不亮"})
            ref = r.json()["ticket_reference"]
            agent = sign_in(server.url, "agent1")
            dept = post(server.url, f"/api/v1/tickets/{ref}/actions/dispatch", agent, {}).json()[
                "department"
            ]
            clerk = sign_in(server.url, f"{dept}-clerk")
            post(server.url, f"/api/v1/tickets/{ref}/actions/accept", clerk)
            r = post(
                server.url, f"/api/v1/tickets/{ref}/actions/resolve", clerk, {"reply": "已修复"}
            )
            assert r.status_code == 200

            def status_sms() -> list[dict[str, Any]]:
                rows = httpx.get(f"{server.url}/dev/outbox.json").json()
                return [m for m in rows if m["template"] == "ticket_resolved" and m["to"] == phone]

            # The provider has taken the message; the worker waits for its answer: kill it now.
            wait_for(status_sms, timeout=30)
            assert slow.alive()
            slow.kill(signal.SIGKILL)
            supervisor = sign_in(server.url, "supervisor1")

            def outbox_state() -> str:
                rows = httpx.get(f"{server.url}/api/v1/outbox", headers=supervisor).json()
                return next(o["status"] for o in rows if o["template"] == "ticket_resolved")

            assert outbox_state() == "sending"
            fresh.start()
            wait_for(lambda: outbox_state() == "sent", timeout=45)
            assert len(status_sms()) == 1
            time.sleep(1.5)  # a few more sweeps change nothing
            assert len(status_sms()) == 1
        finally:
            slow.kill()
            fresh.kill()
            server.kill()
