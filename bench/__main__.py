"""``make bench``: the INSERT+COMMIT limit, ticket intake through the API, and peak memory.

1. limit: a bare ASGI app (``bench.limit_app``, uvicorn, 2 workers) doing one
   ``INSERT ... RETURNING`` + ``COMMIT`` per POST on the local PostgreSQL;
2. intake: ``contact serve --workers 2`` plus one ``contact worker`` against a fresh,
   migrated, demo-seeded database, POST /api/v1/tickets as ``agent1``;
3. peak RSS of every server and worker process during the intake phase.

The same load client (wrk when installed) drives both phases at the same concurrency.
Everything runs on 127.0.0.1; every process started here is stopped on exit.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg

try:
    import psutil  # noqa: F401 - checked here for a clear message
except ImportError:  # pragma: no cover
    raise SystemExit("bench: psutil is missing; .venv/bin/python -m pip install psutil") from None

from bench.bodies import ServiceRow, make_bodies
from bench.cpu import CpuMeter
from bench.limit_app import SCRATCH_DDL
from bench.load import Load, LoadResult
from bench.memory import MemorySampler
from bench.procs import Group, free_port, wait_http

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
DB_NAME = "contact_bench"
DB_URL = f"postgresql://postgres@127.0.0.1:5432/{DB_NAME}"
REDIS_URL = "redis://127.0.0.1:6379/14"
PASSWORD = "bench-password-123"
SECRET = "bench-secret-key-0123456789abcdef"
OUT = ROOT / "var" / "bench.json"

LIMIT_GOAL = 0.50  # intake throughput as a share of the limit
P99_GOAL_MS = 100.0
RSS_GOAL_MB = 300.0


def say(msg: str) -> None:
    print(msg, flush=True)


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# ------------------------------------------------------------------ the database


def fresh_database() -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def flush_redis() -> None:
    from redis import Redis

    r = Redis.from_url(REDIS_URL)
    try:
        r.flushdb()
    finally:
        r.close()


def contact_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTACT_")}
    env.update(
        CONTACT_DATABASE_URL=DB_URL,
        CONTACT_REDIS_URL=REDIS_URL,
        CONTACT_SECRET_KEY=SECRET,
        CONTACT_LOG_LEVEL="WARNING",
    )
    return env


def migrate_and_seed() -> None:
    subprocess.run(
        [str(BIN / "contact"), "db", "upgrade"],
        env=contact_env(),
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )

    from contact.seed import seed_url

    seed_url(DB_URL, password=PASSWORD, tickets=0)
    with psycopg.connect(DB_URL, autocommit=True) as conn:
        conn.execute(SCRATCH_DDL)


def catalogue_services() -> list[ServiceRow]:
    with psycopg.connect(DB_URL) as conn:
        rows = conn.execute(
            "SELECT code, keywords FROM services WHERE active ORDER BY code"
        ).fetchall()
    return [ServiceRow(code, tuple(kw or ())) for code, kw in rows]


def checkpoint() -> None:
    """Start each measured phase with clean shared buffers (no checkpoint in the middle)."""
    with psycopg.connect(DB_URL, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def intake_counts() -> dict[str, Any]:
    with psycopg.connect(DB_URL) as conn:
        tickets = conn.execute("SELECT count(*) FROM tickets").fetchone()
        outbox = conn.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall()
    return {"tickets": tickets[0] if tickets else 0, "outbox": {s: n for s, n in outbox}}


# ------------------------------------------------------------------ phases


def sign_in(port: int) -> str:
    data = urllib.parse.urlencode({"username": "agent1", "password": PASSWORD}).encode()
    req = urllib.request.Request(f"http://{HOST}:{port}/api/v1/auth/token", data=data)
    with urllib.request.urlopen(req, timeout=10) as r:
        return str(json.loads(r.read())["access_token"])


def measure(
    load: Load,
    port: int,
    path: str,
    token: str | None,
    args: argparse.Namespace,
    roots: dict[str, int],
) -> LoadResult:
    """Warm up, checkpoint, then one measured run with CPU accounted per process group."""
    warm = load.run(HOST, port, path, token, args.warmup)
    if warm.errors:
        say(f"  warm-up: {warm.errors} errors, first: {warm.first_error}")
    checkpoint()
    groups = {name: CpuMeter.tree(pid) for name, pid in roots.items()}
    groups["postgres"] = CpuMeter.postgres(DB_NAME)
    groups["redis"] = CpuMeter.named("redis-server")
    meter = CpuMeter(groups)
    meter.start()
    result = load.run(HOST, port, path, token, args.duration)
    spent = meter.stop()
    spent["client"] = result.client_cpu_s
    if result.requests:
        result.cpu_ms_per_request = {
            k: round(1000 * v / result.requests, 3) for k, v in spent.items()
        }
    return result


def limit_phase(group: Group, load: Load, args: argparse.Namespace) -> LoadResult:
    port = free_port()
    env = {**os.environ, "BENCH_LIMIT_DSN": DB_URL}
    pid = group.start(
        "limit",
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.limit_app:app",
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            "2",
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env,
        ROOT,
    )
    try:
        wait_http(f"http://{HOST}:{port}/", group, "limit")
        return measure(load, port, "/", None, args, {"server": pid})
    finally:
        group.stop("limit")


def intake_phase(
    group: Group, load: Load, args: argparse.Namespace
) -> tuple[LoadResult, MemorySampler, dict[str, Any]]:
    port = free_port()
    env = contact_env()
    server = group.start(
        "server",
        [str(BIN / "contact"), "serve", "--host", HOST, "--port", str(port), "--workers", "2"],
        env,
        ROOT,
    )
    worker = group.start("worker", [str(BIN / "contact"), "worker"], env, ROOT)
    sampler = MemorySampler({"server": server, "worker": worker})
    sampler.start()
    try:
        wait_http(f"http://{HOST}:{port}/readyz", group, "server")
        token = sign_in(port)
        result = measure(
            load, port, "/api/v1/tickets", token, args, {"server": server, "worker": worker}
        )
        sampler.sample()
        for name in ("server", "worker"):
            if not group.alive(name):
                say(f"  {name} died during the run:\n{group.log_tail(name)}")
        counts = intake_counts()
        return result, sampler, counts
    finally:
        sampler.stop()
        group.stop("server")
        group.stop("worker")


# ------------------------------------------------------------------ report


def mb(n: int) -> float:
    return n / (1024 * 1024)


def report(
    client: str, limit: LoadResult, intake: LoadResult, sampler: MemorySampler, counts: Any
) -> dict[str, Any]:
    ratio = intake.rps / limit.rps if limit.rps else 0.0
    rps_ok = ratio >= LIMIT_GOAL
    p99_ok = intake.p99_ms < P99_GOAL_MS
    say("")
    say(f"client {client}")
    say(
        f"limit  bare ASGI INSERT+COMMIT (2 workers): {limit.rps:.0f} req/s, "
        f"p50 {limit.p50_ms:.1f} ms, p99 {limit.p99_ms:.1f} ms, errors {limit.errors}"
    )
    say(
        f"intake POST /api/v1/tickets (PostgreSQL, 2 workers): {intake.rps:.0f} req/s = "
        f"{ratio:.0%} of limit (goal >= {LIMIT_GOAL:.0%}{'' if rps_ok else ', MISSED'}), "
        f"p50 {intake.p50_ms:.1f} ms, p99 {intake.p99_ms:.1f} ms "
        f"(goal < {P99_GOAL_MS:.0f} ms{'' if p99_ok else ', MISSED'}), errors {intake.errors}"
    )
    for name, res in (("limit", limit), ("intake", intake)):
        if res.first_error:
            say(f"  first {name} error: {res.first_error}")
        if res.socket_errors:
            say(f"  {name} socket errors: {res.socket_errors}")
    for name, res in (("limit", limit), ("intake", intake)):
        cpu = res.cpu_ms_per_request
        if cpu:
            parts = ", ".join(f"{k} {v:.2f}" for k, v in cpu.items())
            say(
                f"  cpu per request ({name}): {parts} = {sum(cpu.values()):.2f} ms "
                f"(2 cores give 2000 ms per second)"
            )
    peaks = sampler.labelled()
    worst = max((p.rss for _, p in peaks), default=0)
    parts = ", ".join(f"{label} {mb(p.rss):.0f} MB" for label, p in peaks)
    mem_ok = mb(worst) < RSS_GOAL_MB
    say(
        f"memory peak RSS: {parts} (goal < {RSS_GOAL_MB:.0f} MB each"
        f"{'' if mem_ok else ', MISSED'}; {sampler.samples} samples)"
    )
    outbox = counts.get("outbox", {})
    say(
        f"  check: {counts.get('tickets', 0)} tickets in the database; SMS acknowledgements "
        f"at the end of the run: " + ", ".join(f"{k} {v}" for k, v in sorted(outbox.items()))
    )
    return {
        "client": client,
        "limit": {"name": "bare ASGI INSERT+COMMIT (2 workers)", **limit.as_dict()},
        "intake": {
            "name": "POST /api/v1/tickets (PostgreSQL, 2 workers)",
            **intake.as_dict(),
            "ratio_to_limit": round(ratio, 4),
            "goal_ratio": LIMIT_GOAL,
            "goal_p99_ms": P99_GOAL_MS,
            "goal_met": rps_ok and p99_ok,
            "database": counts,
        },
        "memory": {
            "goal_mb": RSS_GOAL_MB,
            "samples": sampler.samples,
            "goal_met": mem_ok,
            "processes": [
                {"label": label, "pid": p.pid, "peak_rss_mb": round(mb(p.rss), 1), "cmd": p.cmd}
                for label, p in peaks
            ],
        },
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=15.0, help="seconds measured per phase")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per phase")
    p.add_argument("--connections", type=int, default=32, help="concurrent connections")
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    args = p.parse_args(argv)

    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="contact-bench-") as tmp:
        group = Group(Path(tmp))
        load: Load | None = None
        try:
            say(f"setting up {DB_NAME} (migrate, seed the demo catalogue) and Redis db 14 ...")
            fresh_database()
            flush_redis()
            migrate_and_seed()
            bodies = make_bodies(catalogue_services())
            load = Load(
                args.client,
                bodies,
                connections=args.connections,
                threads=args.threads,
                workdir=Path(tmp),
            )
            say(f"client: {load.name}; {args.warmup:.0f} s warm-up + {args.duration:.0f} s each")
            say("phase 1: the limit (bench.limit_app under uvicorn, 2 workers) ...")
            limit = limit_phase(group, load, args)
            say(f"  {limit.rps:.0f} req/s")
            say("phase 2: intake (contact serve --workers 2 + contact worker) ...")
            intake, sampler, counts = intake_phase(group, load, args)
            say(f"  {intake.rps:.0f} req/s")
            result = report(load.name, limit, intake, sampler, counts)
            result["elapsed_s"] = round(time.monotonic() - started, 1)
            OUT.parent.mkdir(parents=True, exist_ok=True)
            OUT.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
            say(f"figures written to {OUT.relative_to(ROOT)} ({result['elapsed_s']:.0f} s)")
            return 0
        except KeyboardInterrupt:
            say("bench: interrupted; stopping what it started")
            return 130
        finally:
            if load is not None:
                load.kill()
            group.stop_all()
            if group.leftovers:
                say(f"bench: processes of {group.leftovers} did not go away")


if __name__ == "__main__":
    raise SystemExit(main())
