"""Test harness: the same tests on SQLite + in-process jobs, and on PostgreSQL + Redis + a
real rq worker when ``CONTACT_TEST_DATABASE_URL`` / ``CONTACT_TEST_REDIS_URL`` are set.

Migrations build every test database (never ``create_all``); the demo catalogue is
seeded once per session and each test starts from it with no tickets.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from contact.app import create_app
from contact.db import sync_url
from contact.deps import forget_principals
from contact.migrate import upgrade
from contact.seed import seed_url
from contact.settings import Settings, load_settings

# Under ``pytest -n N`` each worker process (gw0, gw1, …) gets a PostgreSQL database and
# a Redis database of its own, so workers never see each other's tickets or jobs.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")


def _own_database(url: str | None) -> str | None:
    if not url or not XDIST_WORKER:
        return url
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return u.set(database=f"{u.database}_{XDIST_WORKER}").render_as_string(hide_password=False)


def _own_redis(url: str | None) -> str | None:
    if not url or not XDIST_WORKER:
        return url
    base, _, db = url.rpartition("/")
    index = int(db) if db.isdigit() else 0
    return f"{base}/{index + 1 + int(XDIST_WORKER.removeprefix('gw'))}"


PG_ADMIN_URL = os.environ.get("CONTACT_TEST_DATABASE_URL") or None
PG_URL = _own_database(PG_ADMIN_URL)
REDIS_URL = _own_redis(os.environ.get("CONTACT_TEST_REDIS_URL") or None)
PASSWORD = "demo-password-123"
ROOT = Path(__file__).resolve().parent.parent
SECRET = "test-secret-key-0123456789abcdef"
TRANSACTIONAL = (
    "staff_sessions",
    "audit_log",
    "call_status_events",
    "calls",
    "ticket_events",
    "attachments",
    "outbox",
    "messages",
    "tickets",
    "citizens",
    "bus_events",
    "dev_messages",
    "web_drafts",
    "phone_codes",
    "web_limits",
    "kiosk_submissions",
    "kiosk_devices",
    "api_clients",
    "hotspot_alerts",
    "routing_models",
)
BACKENDS = ["sqlite"] + (["postgres"] if PG_URL else [])


def seed_catalogue(url: str) -> None:
    seed_url(url, password=PASSWORD, tickets=0)
    quick_passwords(url)


def quick_passwords(url: str) -> None:
    """Store the demo users' password as an argon2 hash with light parameters.

    Verification reads its parameters from the hash, so signing in still goes through
    argon2, in a millisecond instead of the production parameters' ~0.2 s — paid on
    nearly every test, several times. Passwords set during a test (admin resets, new
    users) use the production parameters."""
    from argon2 import PasswordHasher

    light = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    engine = create_engine(sync_url(url))
    with engine.begin() as conn:
        conn.execute(text("UPDATE users SET password_hash = :h"), {"h": light})
    engine.dispose()


def reset_schema(url: str) -> None:
    engine = create_engine(sync_url(url))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def truncate(url: str) -> None:
    """Empty the transactional tables; the real worker may still be finishing the previous
    test's jobs, so a deadlock with it is retried."""
    from sqlalchemy.exc import OperationalError

    engine = create_engine(sync_url(url))
    try:
        for attempt in range(10):
            try:
                with engine.begin() as conn:
                    conn.execute(text("SET LOCAL lock_timeout = '5s'"))
                    conn.execute(
                        text(f"TRUNCATE {', '.join(TRANSACTIONAL)} RESTART IDENTITY CASCADE")
                    )
                    conn.execute(
                        text(
                            "UPDATE users SET failed_logins = 0, locked_until = NULL, active = true"
                        )
                    )
                return
            except OperationalError:
                if attempt == 9:
                    raise
                time.sleep(0.3)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "contact.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    seed_catalogue(url)
    return path


@pytest.fixture(scope="session")
def postgres_ready() -> str:
    assert PG_URL and PG_ADMIN_URL
    if PG_URL != PG_ADMIN_URL:
        create_postgres(PG_URL)
    reset_schema(PG_URL)
    upgrade(PG_URL)
    seed_catalogue(PG_URL)
    return PG_URL


def base_env(db_url: str, redis_url: str | None) -> dict[str, str]:
    env = {
        "CONTACT_DATABASE_URL": db_url,
        "CONTACT_SECRET_KEY": SECRET,
        "CONTACT_PUBLIC_BASE_URL": "http://testserver",
        "CONTACT_SWEEP_INTERVAL_SECONDS": "1",
        "CONTACT_OUTBOX_BACKOFF_SECONDS": "0.2",
        "CONTACT_LOG_LEVEL": "WARNING",
        # Deliveries in tests are immediate; quiet hours have tests of their own.
        "CONTACT_QUIET_HOURS": "",
        # Routing versions are trained when a test asks: the schedule's check at a
        # worker's start must not train one from another test's tickets. The schedule
        # has a test of its own.
        "CONTACT_ROUTING_RETRAIN_HOURS": "0",
    }
    if redis_url:
        env["CONTACT_REDIS_URL"] = redis_url
    return env


class WorkerProcess:
    """A real ``contact worker`` subprocess (its output in ``log`` when one is given)."""

    def __init__(self, env: dict[str, str], log: Path | None = None) -> None:
        self.env = {**os.environ, **env}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = log

    def start(self) -> None:
        out: Any = subprocess.DEVNULL
        if self.log is not None:
            self.log.parent.mkdir(parents=True, exist_ok=True)
            out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "contact.cli", "worker"],
            env=self.env,
            cwd=ROOT,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
        if out is not subprocess.DEVNULL:
            out.close()  # the child has its own copy

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=20)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@pytest.fixture(scope="session")
def session_worker(postgres_ready: str) -> Iterator[WorkerProcess | None]:
    if not REDIS_URL:
        yield None
        return
    name = os.environ.get("PYTEST_XDIST_WORKER", "main")
    log = ROOT / "var" / "test-artifacts" / f"session-worker-{name}.log"
    worker = WorkerProcess(base_env(postgres_ready, REDIS_URL), log)
    worker.start()
    yield worker
    try:
        worker.kill(signal.SIGTERM)
    except subprocess.TimeoutExpired:
        # The suite's own worker, not a test of its shutdown: stop it hard and leave
        # its log where the run's artifacts are, rather than fail the finished run.
        worker.kill(signal.SIGKILL)
        print(f"session worker took over 20 s to stop on SIGTERM; log: {log}", file=sys.__stderr__)


def flush_redis(url: str) -> None:
    from redis import Redis

    r = Redis.from_url(url)
    r.flushdb()
    r.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    forget_principals()
    if backend == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        db = tmp_path / "contact.db"
        shutil.copy(template, db)
        env = base_env(f"sqlite:///{db}", None)
    else:
        url = request.getfixturevalue("postgres_ready")
        truncate(url)
        if REDIS_URL:
            request.getfixturevalue("session_worker")
        env = base_env(url, REDIS_URL)
    return load_settings(**{k.removeprefix("CONTACT_"): v for k, v in env.items()})


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        loop = c.portal.call(asyncio.get_running_loop) if c.portal else None
        yield c
        # Should the app's shutdown hang, say which of its tasks it is waiting for.
        watchdog = threading.Timer(60, _dump_tasks, (loop,))
        watchdog.daemon = True
        watchdog.start()
    watchdog.cancel()


def _dump_tasks(loop: Any) -> None:
    if loop is None:
        return
    for task in list(asyncio.all_tasks(loop)):
        print(f"--- task {task.get_name()} still running:", file=sys.stderr)
        task.print_stack(file=sys.stderr)


def with_runtime(settings: Settings, scenario: Any) -> Any:
    """Run ``await scenario(runtime)`` on a runtime of its own (jobs driven by the test)."""
    from contact.app import build_runtime

    async def go() -> Any:
        rt = build_runtime(settings)
        try:
            return await scenario(rt)
        finally:
            await rt.close()

    return asyncio.run(go())


def login(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def wait_for(predicate: Any, timeout: float = 15.0, interval: float = 0.1) -> Any:
    """Poll until ``predicate()`` is truthy; return its value (or fail with the last one)."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    assert value, "condition not met in time"
    return value


def scratch_postgres(suffix: str) -> str:
    """A fresh PostgreSQL database beside the test one (for tests that need their own)."""
    assert PG_URL
    from sqlalchemy.engine import make_url

    base = make_url(sync_url(PG_URL))
    name = f"{base.database}_{suffix}_{os.getpid()}"
    url = base.set(database=name, drivername="postgresql").render_as_string(hide_password=False)
    create_postgres(url)
    return url


def create_postgres(url: str) -> None:
    """(Re)create the database ``url`` names, from the configured test database."""
    from sqlalchemy.engine import make_url

    assert PG_ADMIN_URL
    name = make_url(url).database
    admin = create_engine(sync_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()


def drop_postgres(url: str) -> None:
    from sqlalchemy.engine import make_url

    u = make_url(sync_url(url))
    admin = create_engine(sync_url(PG_ADMIN_URL or url))
    with admin.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def isolated_settings(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Settings]:
    """A database of its own that no running worker looks at (jobs are driven by the test)."""
    forget_principals()
    if backend == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        shutil.copy(template, tmp_path / "contact.db")
        url = f"sqlite:///{tmp_path / 'contact.db'}"
    else:
        url = scratch_postgres("isolated")
        upgrade(url)
        seed_catalogue(url)
    env = base_env(url, None)
    yield load_settings(**{k.removeprefix("CONTACT_"): v for k, v in env.items()})
    if backend == "postgres":
        drop_postgres(url)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under ``pytest -n N --dist loadgroup`` the tests that drive a browser all run in
    one process, one at a time: two chromiums beside two test processes on two cores
    starve each other past their timeouts."""
    import inspect

    for item in items:
        function = getattr(item, "function", None)
        source = inspect.getsource(function) if function is not None else ""
        if "browser" in getattr(item, "fixturenames", ()) or "playwright" in source:
            item.add_marker(pytest.mark.xdist_group("browser"))
