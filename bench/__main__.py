"""``make bench``: the INSERT+COMMIT limit, ticket intake, signed SMS and voice webhooks.

1. limit: a bare ASGI app (``bench.limit_app``, uvicorn, 2 workers) doing one
   ``INSERT ... RETURNING`` + ``COMMIT`` per POST on the local PostgreSQL;
2. intake: ``contact serve --workers 2`` plus one ``contact worker`` against a fresh,
   migrated, demo-seeded database, POST /api/v1/tickets as ``agent1``;
3. webhook: signed Twilio inbound-SMS webhooks (``POST /channels/sms/twilio/inbound``)
   on a new ``contact serve --workers 2`` + ``contact worker`` with a Twilio auth token
   (the SMS gateway stays ``dev``), same database: closed loop for the peak, then an
   open loop at half the peak rate for the latency a steady load sees (three runs, the
   median by p99 reported beside each);
4. ivr: signed Twilio Voice webhooks answered with TwiML (:mod:`bench.voice`) on a
   new server and worker (``AGENT_HOURS=always``) over the database made afresh (the
   texts of phase 3 would keep the worker busy): a key at the main menu and a ticket
   reference looked up from its own phone, each measured like the webhook (closed
   loop for the peak, three half-peak open loops), every request on a call of its own;
5. console: the bench database made afresh with 1,000,000 generated tickets
   (:mod:`bench.generate`), a new ``contact serve --workers 2`` + ``contact worker``:
   the staff console's list requests (the agents' queue, a clerk's inbox, a caller's
   history, a call with it) timed one at a time, p50/p95/p99; then 200 websocket
   consoles on ``/ws`` and tickets opened at 20/s for 10 s, three times: from just
   before each POST to its ``ticket.created`` at each console, p50/p99 (the median run
   by p99), beside a bare Redis pub/sub fan-out to 200 subscribers timed the same way
   (:mod:`bench.console`);
6. peak RSS of every server and worker process during the intake, webhook, IVR and
   console phases.

``--only console`` runs phase 5 alone and updates its part of var/bench.json.

The same load client (wrk when installed) drives every closed loop at the same
concurrency; the open loop is the asyncio client (wrk cannot pace requests).
Everything runs on 127.0.0.1; every process started here is stopped on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg

try:
    import psutil
except ImportError:  # pragma: no cover
    raise SystemExit("bench: psutil is missing; .venv/bin/python -m pip install psutil") from None

from bench.bodies import ServiceRow, make_bodies, make_texts
from bench.console import (
    Fanout,
    HostCpu,
    QueryRun,
    console_queries,
    median_by_p99,
    redis_fanout,
    sample_callers,
    time_queries,
    websocket_fanout,
)
from bench.console import as_dict as console_dict
from bench.cpu import CpuMeter
from bench.generate import Report as GenerateReport
from bench.generate import generate
from bench.limit_app import SCRATCH_DDL
from bench.load import Load, LoadResult
from bench.memory import MemorySampler
from bench.procs import Group, free_port, wait_http
from bench.voice import STEPS, Step, VoiceForms, asks, copy_calls, open_tickets, walk_calls
from bench.webhook import MARKER as WEBHOOK_MARKER
from bench.webhook import PATH as WEBHOOK_PATH
from bench.webhook import OpenLoopResult, SignedForms, run_closed_python, run_open
from bench.webhook import run_wrk as run_webhook_wrk

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
WEBHOOK_LIMIT_GOAL = 0.40  # signed webhooks per second as a share of the limit
WEBHOOK_P99_GOAL_MS = 50.0  # at half the peak rate (open loop)
IVR_P99_GOAL_MS = 20.0  # at half the peak rate: a caller must never hear silence
IVR_CALLERS = 200  # callers with a ticket each; every measured call is from one of them
CONSOLE_QUERY_P95_GOAL_MS = 100.0  # the console's list requests over a million tickets
DELIVERY_P99_GOAL_MS = 100.0  # a new ticket on every open console
CONSOLE_CLERK = "cgj-dh-clerk"  # a district office with street offices below it
CONSOLE_VIEWERS = ("agent1", "agent2", "supervisor1")  # the websocket consoles' users


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


def setup_database() -> None:
    fresh_database()
    flush_redis()
    migrate_and_seed()


def catalogue_services() -> list[ServiceRow]:
    with psycopg.connect(DB_URL) as conn:
        rows = conn.execute(
            "SELECT code, keywords FROM services WHERE active ORDER BY code"
        ).fetchall()
    return [ServiceRow(code, tuple(kw or ())) for code, kw in rows]


def checkpoint() -> None:
    """Start each measured run with clean shared buffers and fresh statistics: what the
    preparation wrote is vacuumed and analysed now, not by autovacuum mid-run, and no
    checkpoint falls in the middle."""
    with psycopg.connect(DB_URL, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")


def intake_counts() -> dict[str, Any]:
    with psycopg.connect(DB_URL) as conn:
        tickets = conn.execute("SELECT count(*) FROM tickets").fetchone()
        outbox = conn.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall()
    return {"tickets": tickets[0] if tickets else 0, "outbox": {s: n for s, n in outbox}}


# ------------------------------------------------------------------ phases


def sign_in(port: int, username: str = "agent1") -> str:
    data = urllib.parse.urlencode({"username": username, "password": PASSWORD}).encode()
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
    meter = cpu_meter(roots)
    meter.start()
    result = load.run(HOST, port, path, token, args.duration)
    per_request(result, meter.stop())
    return result


def cpu_meter(roots: dict[str, int]) -> CpuMeter:
    """CPU of each root's process tree, of the bench database's PostgreSQL and of Redis."""
    groups = {name: CpuMeter.tree(pid) for name, pid in roots.items()}
    groups["postgres"] = CpuMeter.postgres(DB_NAME)
    groups["redis"] = CpuMeter.named("redis-server")
    return CpuMeter(groups)


def per_request(result: LoadResult, spent: dict[str, float]) -> None:
    spent["client"] = result.client_cpu_s
    if result.requests:
        result.cpu_ms_per_request = {
            k: round(1000 * v / result.requests, 3) for k, v in spent.items()
        }


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


@dataclass
class StepRun:
    """One kind of signed webhook: its peak (closed loop), then open loops at half of it."""

    closed: LoadResult
    open: OpenLoopResult | None  # the median of the open-loop runs by p99
    open_runs: list[OpenLoopResult]
    worker_cores: list[float]  # CPU cores used by each server worker in the closed loop
    stalled: int  # PostgreSQL sessions idle in transaction > 5 s after a load run


@dataclass
class WebhookRun:
    step: StepRun
    sampler: MemorySampler
    counts: dict[str, Any]
    signed: int
    signing_s: float
    exceptions: tuple[int, str | None]  # unhandled in the server log: count, first


@dataclass
class IvrRun:
    steps: dict[str, StepRun]
    sampler: MemorySampler
    tickets: int  # opened through the API to be looked up
    walked: int  # calls brought to their node by the webhooks
    copied: int  # copies of those calls, one per measured request
    signed: int
    signing_s: float
    exceptions: tuple[int, str | None]


def stalled_sessions(older_than_s: float = 5.0) -> int:
    """PostgreSQL sessions of the bench database idle in a transaction for a while:
    requests that hold a pooled connection and wait for something else."""
    with psycopg.connect(DB_URL, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
            " AND state = 'idle in transaction'"
            " AND now() - state_change > make_interval(secs => %s)",
            (DB_NAME, older_than_s),
        ).fetchone()
    return int(row[0]) if row else 0


def webhook_counts() -> dict[str, int]:
    with psycopg.connect(DB_URL) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE provider = 'twilio' AND direction = 'in'),"
            " count(*) FILTER (WHERE provider = 'twilio' AND direction = 'in'"
            " AND status <> 'received') FROM messages"
        ).fetchone()
        tickets = conn.execute("SELECT count(*) FROM tickets").fetchone()
        outbox = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE status <> 'sent') FROM outbox"
        ).fetchone()
    assert row and tickets and outbox
    return {
        "texts": row[0],
        "replies": row[1],
        "tickets": tickets[0],
        "outbox": outbox[0],
        "outbox_unsent": outbox[1],
    }


def closed_webhooks(
    load: Load,
    port: int,
    reqs: list[bytes],
    duration: float,
    args: argparse.Namespace,
    marker: bytes,
) -> LoadResult:
    if load.kind == "wrk":
        return run_webhook_wrk(
            HOST,
            port,
            reqs,
            load.workdir,
            connections=args.connections,
            threads=args.threads,
            duration=duration,
            procs=load.procs,
            marker=marker,
        )
    return run_closed_python(
        HOST, port, reqs, connections=args.connections, duration=duration, marker=marker
    )


def server_workers(server: int) -> list[psutil.Process]:
    """The uvicorn worker processes of ``contact serve --workers N`` (not the resource tracker)."""
    try:
        kids = psutil.Process(server).children()
        return [p for p in kids if "spawn_main" in " ".join(p.cmdline())]
    except psutil.Error:
        return []


def cpu_seconds(procs: list[psutil.Process]) -> list[float]:
    out = []
    for p in procs:
        try:
            t = p.cpu_times()
            out.append(t.user + t.system)
        except psutil.Error:
            out.append(0.0)
    return out


def server_exceptions(group: Group, name: str) -> tuple[int, str | None]:
    """Unhandled exceptions in a server's log: how many, and the first one's last line."""
    path = group.logdir / f"{name}.log"
    if not path.exists():
        return 0, None
    lines = path.read_text("utf-8", "replace").splitlines()
    count, first = 0, None
    for i, line in enumerate(lines):
        if "Exception in ASGI application" not in line:
            continue
        count += 1
        if first is None:
            tail = [x for x in lines[i + 1 :] if x and not x.startswith((" ", "Traceback"))]
            first = tail[0] if tail else line
    return count, first


def py_spy(group: Group, workers: list[psutil.Process], seconds: float, tag: str) -> list[str]:
    """``py-spy record`` each server worker for ``seconds`` (raw collapsed stacks in
    var/bench-<tag>-worker<n>.txt)."""
    names = []
    for n, proc in enumerate(workers, 1):
        out = OUT.parent / f"bench-{tag}-worker{n}.txt"
        name = f"py-spy-{tag}-{n}"
        group.start(
            name,
            [
                str(BIN / "py-spy"),
                "record",
                "--pid",
                str(proc.pid),
                "--duration",
                str(max(1, round(seconds))),
                "--rate",
                "100",
                "--format",
                "raw",
                "--output",
                str(out),
            ],
            dict(os.environ),
            ROOT,
        )
        names.append(name)
    return names


def ceiling_for(limit_rps: float) -> float:
    """The most requests per second a phase is expected to serve: a little over the limit."""
    return max(limit_rps, 100.0) * 1.1


def run_step(
    group: Group,
    load: Load,
    args: argparse.Namespace,
    port: int,
    make: Callable[[int], list[bytes]],
    *,
    ceiling: float,
    roots: dict[str, int],
    marker: bytes,
    tag: str,
    warm_reqs: list[bytes] | None = None,
) -> tuple[StepRun, list[str]]:
    """Warm up, then the closed loop (CPU per process group and per server worker), then
    the half-peak open loops. ``make(n)`` gives ``n`` new requests, each sent once; at
    most ``ceiling`` requests per second are expected. Also returns the profilers started."""
    if warm_reqs is None:
        warm_reqs = make(math.ceil(ceiling * args.warmup) + args.connections)
    warm = closed_webhooks(load, port, warm_reqs, args.warmup, args, marker)
    if warm.errors:
        say(f"  warm-up: {warm.errors} errors, first: {warm.first_error}")
    # Enough unique requests for the measured run at up to 3x the warm-up's rate.
    rate = min(ceiling, max(3 * warm.rps, 300.0))
    reqs = make(math.ceil(rate * args.duration) + args.connections)
    checkpoint()
    meter = cpu_meter(roots)
    workers = server_workers(roots["server"])
    spies = py_spy(group, workers, args.duration - 1, tag) if args.profile else []
    meter.start()
    cpu0, t0 = cpu_seconds(workers), time.monotonic()
    closed = closed_webhooks(load, port, reqs, args.duration, args, marker)
    cpu1, t1 = cpu_seconds(workers), time.monotonic()
    per_request(closed, meter.stop())
    cores = [round((b - a) / (t1 - t0), 2) for a, b in zip(cpu0, cpu1, strict=True)]
    stalled = stalled_sessions()
    say(f"  closed loop: {closed.rps:.0f} req/s")
    runs: list[OpenLoopResult] = []
    if closed.rps > 0:
        half = closed.rps / 2
        for n in range(1, args.open_runs + 1):
            open_reqs = make(math.ceil(half * args.open_duration))
            checkpoint()
            say(
                f"  open loop {n}/{args.open_runs} at {half:.0f} req/s "
                f"for {args.open_duration:.0f} s ..."
            )
            runs.append(
                run_open(
                    HOST, port, open_reqs, rate=half, connections=args.connections, marker=marker
                )
            )
            stalled = max(stalled, stalled_sessions())
    opened = sorted(runs, key=lambda r: r.p99_ms)[len(runs) // 2] if runs else None
    return StepRun(closed, opened, runs, cores, stalled), spies


def twilio_server(group: Group, name: str, extra: dict[str, str]) -> tuple[int, str, str, int, int]:
    """``contact serve --workers 2`` + ``contact worker`` answering signed Twilio webhooks
    (a new auth token, PUBLIC_BASE_URL = where it listens): port, base URL, token, pids."""
    port = free_port()
    base = f"http://{HOST}:{port}"
    token = secrets.token_hex(16)
    env = contact_env()
    env.update(CONTACT_TWILIO_AUTH_TOKEN=token, CONTACT_PUBLIC_BASE_URL=base, **extra)
    server = group.start(
        f"{name}-server",
        [str(BIN / "contact"), "serve", "--host", HOST, "--port", str(port), "--workers", "2"],
        env,
        ROOT,
    )
    worker = group.start(f"{name}-worker", [str(BIN / "contact"), "worker"], env, ROOT)
    return port, base, token, server, worker


def server_errors(group: Group, name: str) -> tuple[int, str | None]:
    """Stop a phase's server (then its log holds what stuck requests ended in): the
    unhandled exceptions in that log; says so if the server or its worker died."""
    for proc in (f"{name}-server", f"{name}-worker"):
        if not group.alive(proc):
            say(f"  {proc} died during the run:\n{group.log_tail(proc)}")
    group.stop(f"{name}-server")
    return server_exceptions(group, f"{name}-server")


def stop_phase(group: Group, name: str, spies: list[str]) -> None:
    for spy in spies:
        group.wait(spy, 15)
    group.stop(f"{name}-server")
    group.stop(f"{name}-worker")


def webhook_phase(
    group: Group, load: Load, args: argparse.Namespace, limit_rps: float, texts: list[str]
) -> WebhookRun:
    before = webhook_counts()
    port, base, token, server, worker = twilio_server(group, "webhook", {})
    forms = SignedForms(token, base, f"{HOST}:{port}", texts)
    sampler = MemorySampler({"server": server, "worker": worker})
    sampler.start()
    spies: list[str] = []
    try:
        # Signed while the server boots: enough for the warm-up even at the limit's rate.
        ceiling = ceiling_for(limit_rps)
        warm_reqs = forms.batch(math.ceil(ceiling * args.warmup) + args.connections)
        wait_http(f"{base}/readyz", group, "webhook-server")
        step, spies = run_step(
            group,
            load,
            args,
            port,
            forms.batch,
            ceiling=ceiling,
            roots={"server": server, "worker": worker},
            marker=WEBHOOK_MARKER,
            tag="webhook",
            warm_reqs=warm_reqs,
        )
        sampler.sample()
        after = webhook_counts()
        counts = {k: after[k] - before[k] for k in after if k != "outbox_unsent"}
        counts["outbox_unsent_at_end"] = after["outbox_unsent"]
        errors = server_errors(group, "webhook")
        return WebhookRun(step, sampler, counts, forms.made, forms.seconds, errors)
    finally:
        sampler.stop()
        stop_phase(group, "webhook", spies)


def ivr_phase(group: Group, load: Load, args: argparse.Namespace, limit_rps: float) -> IvrRun:
    # The texts the webhook phase left to answer would keep the worker busy for minutes.
    setup_database()
    port, base, token, server, worker = twilio_server(
        group, "ivr", {"CONTACT_AGENT_HOURS": "always"}
    )
    forms = VoiceForms(token, base, f"{HOST}:{port}")
    sampler = MemorySampler({"server": server, "worker": worker})
    sampler.start()
    spies: list[str] = []
    try:
        wait_http(f"{base}/readyz", group, "ivr-server")
        references = open_tickets(HOST, port, sign_in(port), load.bodies, IVR_CALLERS)
        callers = list(references)
        walked = {step.name: walk_calls(HOST, port, forms, callers, step) for step in STEPS}
        copied = 0
        steps: dict[str, StepRun] = {}
        for step in STEPS:
            say(f"  {step.name} step: {step.title} ...")

            def make(n: int, step: Step = step) -> list[bytes]:
                nonlocal copied
                calls = copy_calls(DB_URL, walked[step.name], n, f"{step.name}-{copied}")
                copied += len(calls)
                return forms.gathers(calls, step.node, lambda c: step.keys or references[c])

            steps[step.name], started = run_step(
                group,
                load,
                args,
                port,
                make,
                ceiling=ceiling_for(limit_rps),
                roots={"server": server, "worker": worker},
                marker=asks(step.expect),
                tag=f"ivr-{step.name}",
            )
            spies += started
        sampler.sample()
        errors = server_errors(group, "ivr")
        return IvrRun(
            steps,
            sampler,
            len(references),
            sum(map(len, walked.values())),
            copied,
            forms.made,
            forms.seconds,
            errors,
        )
    finally:
        sampler.stop()
        stop_phase(group, "ivr", spies)


@dataclass
class ConsoleRun:
    generated: GenerateReport
    queries: list[QueryRun]
    websocket: list[Fanout]  # one per run
    redis: list[Fanout]
    sampler: MemorySampler
    exceptions: tuple[int, str | None]
    cpu: dict[str, dict[str, float]]  # per window: cores busy per process group and others


def console_phase(group: Group, args: argparse.Namespace, bodies: list[str]) -> ConsoleRun:
    setup_database()
    say(f"  generating {args.console_tickets:,} tickets in {DB_NAME} ...")
    generated = generate(DB_URL, tickets=args.console_tickets, say=say)
    say(f"  {generated.line()}")
    phones, calls = sample_callers(DB_URL, 100)
    checkpoint()
    port = free_port()
    env = contact_env()
    server = group.start(
        "console-server",
        [str(BIN / "contact"), "serve", "--host", HOST, "--port", str(port), "--workers", "2"],
        env,
        ROOT,
    )
    worker = group.start("console-worker", [str(BIN / "contact"), "worker"], env, ROOT)
    sampler = MemorySampler({"server": server, "worker": worker})
    sampler.start()
    try:
        wait_http(f"http://{HOST}:{port}/readyz", group, "console-server")
        tokens = {u: sign_in(port, u) for u in (*CONSOLE_VIEWERS, CONSOLE_CLERK)}
        cpu: dict[str, dict[str, float]] = {}

        def host_cpu() -> HostCpu:
            meter = cpu_meter({"server": server, "worker": worker})
            meter.groups["client"] = lambda: [psutil.Process()]
            return HostCpu(meter)

        window = host_cpu()
        window.start()
        say(
            f"  list requests, {args.console_samples} of each after "
            f"{args.console_warmup} to warm up, one at a time ..."
        )
        queries = time_queries(
            port,
            console_queries(tokens, CONSOLE_CLERK, phones, calls),
            args.console_samples,
            args.console_warmup,
        )
        cpu["queries"] = window.stop()
        say(f"  {args.consoles} websocket consoles ...")
        window = host_cpu()
        window.start()
        ws = asyncio.run(
            websocket_fanout(
                port,
                [tokens[u] for u in CONSOLE_VIEWERS],
                tokens["agent1"],
                bodies,
                clients=args.consoles,
                rate=args.console_rate,
                seconds=args.console_seconds,
                runs=args.console_runs,
                say=say,
            )
        )
        size = max((r.message_bytes for r in ws), default=0)
        cpu["websocket"] = window.stop()
        say(f"  bare Redis pub/sub: {args.consoles} subscribers ...")
        window = host_cpu()
        window.start()
        baseline = asyncio.run(
            redis_fanout(
                REDIS_URL,
                clients=args.consoles,
                count=round(args.console_rate * args.console_seconds),
                rate=args.console_rate,
                size=size or 300,
                runs=args.console_runs,
            )
        )
        cpu["redis"] = window.stop()
        sampler.sample()
        errors = server_errors(group, "console")
        return ConsoleRun(generated, queries, ws, baseline, sampler, errors, cpu)
    finally:
        sampler.stop()
        stop_phase(group, "console", [])


# ------------------------------------------------------------------ report


def mb(n: int) -> float:
    return n / (1024 * 1024)


def memory_report(title: str, sampler: MemorySampler) -> dict[str, Any]:
    peaks = sampler.labelled()
    worst = max((p.rss for _, p in peaks), default=0)
    parts = ", ".join(f"{label} {mb(p.rss):.0f} MB" for label, p in peaks)
    mem_ok = mb(worst) < RSS_GOAL_MB
    say(
        f"{title}: {parts} (goal < {RSS_GOAL_MB:.0f} MB each"
        f"{'' if mem_ok else ', MISSED'}; {sampler.samples} samples)"
    )
    return {
        "goal_mb": RSS_GOAL_MB,
        "samples": sampler.samples,
        "goal_met": mem_ok,
        "processes": [
            {"label": label, "pid": p.pid, "peak_rss_mb": round(mb(p.rss), 1), "cmd": p.cmd}
            for label, p in peaks
        ],
    }


def cpu_line(name: str, res: LoadResult) -> None:
    cpu = res.cpu_ms_per_request
    if cpu:
        parts = ", ".join(f"{k} {v:.2f}" for k, v in cpu.items())
        say(
            f"  cpu per request ({name}): {parts} = {sum(cpu.values()):.2f} ms "
            f"(2 cores give 2000 ms per second)"
        )


def goal(ok: bool) -> str:
    return "" if ok else ", MISSED"


def step_report(
    name: str,
    title: str,
    limit: LoadResult,
    run: StepRun,
    *,
    p99_goal: float,
    ratio_goal: float | None = None,
) -> dict[str, Any]:
    """The lines for one kind of webhook: its peak beside the limit, then at half the peak."""
    closed, opened = run.closed, run.open
    ratio = closed.rps / limit.rps if limit.rps else 0.0
    rps_ok = ratio_goal is None or ratio >= ratio_goal
    aim = "" if ratio_goal is None else f" (goal >= {ratio_goal:.0%}{goal(rps_ok)})"
    say(
        f"{name} {title}: {closed.rps:.0f} req/s = {ratio:.0%} of limit{aim}, "
        f"p50 {closed.p50_ms:.1f} ms, p99 {closed.p99_ms:.1f} ms (closed loop), "
        f"errors {closed.errors}"
    )
    if closed.first_error:
        say(f"  first {name} error: {closed.first_error}")
    if closed.socket_errors:
        say(f"  {name} socket errors: {closed.socket_errors}")
    p99_ok = False
    if opened is not None:
        p99_ok = opened.p99_ms < p99_goal and not opened.errors
        say(
            f"  at half the peak ({opened.target_rps:.0f} req/s open loop, "
            f"{opened.duration_s:.0f} s, {opened.achieved_rps:.0f} req/s served; the median "
            f"of {len(run.open_runs)} runs by p99): "
            f"p50 {opened.p50_ms:.1f} ms, p90 {opened.p90_ms:.1f} ms, "
            f"p99 {opened.p99_ms:.1f} ms (goal < {p99_goal:.0f} ms{goal(p99_ok)}; "
            f"runs: {', '.join(f'{r.p99_ms:.1f}' for r in run.open_runs)} ms), "
            f"max {opened.max_ms:.0f} ms, errors {opened.errors}"
            + (f" (p99 of the answered {opened.p99_answered_ms:.1f} ms)" if opened.errors else "")
            + "; "
            f"{opened.waited_for_connection} found all {opened.connections} connections busy"
        )
        if opened.first_error:
            say(f"  first open-loop error: {opened.first_error}")
    cpu_line(name, closed)
    say(
        "  server workers in the closed loop: "
        + ", ".join(f"worker {n} {c:.2f} cores" for n, c in enumerate(run.worker_cores, 1))
    )
    if run.stalled:
        say(
            f"  stalled: {run.stalled} PostgreSQL sessions idle in transaction for > 5 s "
            "after a load run (requests holding a pooled connection, waiting on something else)"
        )
    out: dict[str, Any] = {"name": title, **closed.as_dict(), "ratio_to_limit": round(ratio, 4)}
    if ratio_goal is not None:
        out["goal_ratio"] = ratio_goal
    out.update(
        half_peak=opened.as_dict() if opened else None,
        half_peak_runs=[r.as_dict() for r in run.open_runs],
        goal_p99_ms_at_half_peak=p99_goal,
        goal_met=rps_ok and p99_ok,
        server_worker_cores=run.worker_cores,
        stalled_pg_sessions=run.stalled,
    )
    return out


def exceptions_line(exceptions: tuple[int, str | None]) -> dict[str, Any]:
    count, first = exceptions
    if count:
        say(f"  server log: {count} unhandled exceptions, first: {first}")
    return {"count": count, "first": first}


def webhook_report(limit: LoadResult, run: WebhookRun) -> dict[str, Any]:
    out = step_report(
        "webhook",
        f"POST {WEBHOOK_PATH} (signed, PostgreSQL + Redis, 2 workers)",
        limit,
        run.step,
        p99_goal=WEBHOOK_P99_GOAL_MS,
        ratio_goal=WEBHOOK_LIMIT_GOAL,
    )
    out["name"] = f"POST {WEBHOOK_PATH} (signed Twilio inbound SMS, PostgreSQL + Redis, 2 workers)"
    out["server_exceptions"] = exceptions_line(run.exceptions)
    memory = memory_report("memory peak RSS (webhook phase)", run.sampler)
    c = run.counts
    replayed = run.step.closed.counts.get("replayed", 0)
    say(
        f"  check: {c['texts']} texts stored, {c['replies']} answered by the worker by the end "
        f"of the run (the rest wait in the queue), {c['tickets']} tickets opened; "
        f"{run.signed} requests signed in {run.signing_s:.1f} s"
        + (f"; {replayed} sent twice (ran out of signed requests)" if replayed else "")
    )
    out.update(signed_requests=run.signed, database=run.counts, memory=memory)
    return out


def ivr_report(limit: LoadResult, run: IvrRun) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for step in STEPS:
        res = run.steps[step.name]
        out[step.name] = one = step_report(
            f"ivr {step.name} step",
            f"{step.title} (signed TwiML, PostgreSQL + Redis, 2 workers)",
            limit,
            res,
            p99_goal=IVR_P99_GOAL_MS,
        )
        # An answer that does not ask the next question was not the step measured.
        off = {
            "closed_loop": res.closed.counts.get("unmarked", 0),
            "half_peak_runs": sum(r.unmarked for r in res.open_runs),
        }
        replayed = res.closed.counts.get("replayed", 0)
        say(
            f"  check: answers not asking '{step.expect}': {off['closed_loop']} in the closed "
            f"loop, {off['half_peak_runs']} at half the peak"
            + (f"; {replayed} sent twice (ran out of prepared calls)" if replayed else "")
        )
        one.update(off_step_answers=off, goal_met=one["goal_met"] and not any(off.values()))
    out["server_exceptions"] = exceptions_line(run.exceptions)
    out["memory"] = memory_report("memory peak RSS (ivr phase)", run.sampler)
    say(
        f"  check: {run.tickets} tickets opened through the API to look up; {run.walked} calls "
        f"brought to their node by the voice webhooks, {run.copied} copies of them, one per "
        f"measured request; {run.signed} requests signed in {run.signing_s:.1f} s"
    )
    out.update(tickets=run.tickets, calls_walked=run.walked, calls_copied=run.copied)
    return out


def console_report(run: ConsoleRun) -> dict[str, Any]:
    gen = run.generated
    open_ = sum(
        v
        for k, v in gen.by_status.items()
        if k in ("received", "returned", "reopened", "dispatched", "accepted")
    )
    say(
        f"console list requests over {gen.tickets:,} tickets ({open_:,} open, "
        f"{gen.citizens:,} callers; generated in {gen.seconds.get('total', 0):.0f} s): the time "
        "a client on 127.0.0.1 waits, one request at a time on a keep-alive connection "
        "(server time + a loopback round trip)"
    )
    queries: dict[str, Any] = {}
    worst = 0.0
    for q in run.queries:
        st = q.stats
        worst = max(worst, st.p95_ms)
        ok = st.p95_ms < CONSOLE_QUERY_P95_GOAL_MS and not q.errors
        varied = f" ({q.distinct_paths} different)" if q.distinct_paths > 1 else ""
        items = "-".join(str(n) for n in sorted(set(q.items))) or "0"
        total = f" of {q.total}" if q.total is not None and q.distinct_paths == 1 else ""
        say(
            f"  {q.name:8} {q.path}{varied} as {q.user}: p50 {st.p50_ms:.1f} ms, "
            f"p95 {st.p95_ms:.1f} ms (goal < {CONSOLE_QUERY_P95_GOAL_MS:.0f} ms{goal(ok)}), "
            f"p99 {st.p99_ms:.1f} ms, max {st.max_ms:.0f} ms; {st.count} samples, "
            f"{items} items{total}, errors {q.errors}"
        )
        if q.first_error:
            say(f"    first error: {q.first_error}")
        queries[q.name] = {
            **console_dict(q),
            "goal_p95_ms": CONSOLE_QUERY_P95_GOAL_MS,
            "goal_met": ok,
        }
    if not run.websocket or not run.redis:
        raise RuntimeError("the console phase made no delivery measurement")
    ws, rd = median_by_p99(run.websocket), median_by_p99(run.redis)
    ws_ok = ws.stats.p99_ms < DELIVERY_P99_GOAL_MS and not ws.missing and not ws.send_errors
    ratio50 = ws.stats.p50_ms / rd.stats.p50_ms if rd.stats.p50_ms else 0.0
    ratio99 = ws.stats.p99_ms / rd.stats.p99_ms if rd.stats.p99_ms else 0.0

    def runs(fs: list[Fanout]) -> str:
        return ", ".join(f"{f.stats.p50_ms:.1f}/{f.stats.p99_ms:.1f}" for f in fs)

    say(
        f"delivery: {ws.connected} consoles on /ws; {len(run.websocket)} runs of {ws.sent} "
        f"tickets POSTed at {ws.rate:.0f}/s (after {ws.warmup} to warm up), "
        f"{ws.received:,} of {ws.expected:,} ticket.created arrivals in the run shown "
        f"({ws.message_bytes} bytes); from just before the POST to each console; "
        "the median run by p99"
    )
    say(
        f"  websocket  p50 {ws.stats.p50_ms:6.1f} ms  p99 {ws.stats.p99_ms:6.1f} ms  "
        f"max {ws.stats.max_ms:6.1f} ms (goal p99 < {DELIVERY_P99_GOAL_MS:.0f} ms{goal(ws_ok)}; "
        f"runs p50/p99: {runs(run.websocket)} ms)"
    )
    say(
        f"  bare Redis p50 {rd.stats.p50_ms:6.1f} ms  p99 {rd.stats.p99_ms:6.1f} ms  "
        f"max {rd.stats.max_ms:6.1f} ms (redis-py publish to {rd.connected} subscribers, "
        f"{rd.sent} messages at {rd.rate:.0f}/s; runs p50/p99: {runs(run.redis)} ms)"
    )
    say(f"  websocket / bare Redis: p50 x{ratio50:.1f}, p99 x{ratio99:.1f}")
    if ws.from_event is not None and ws.from_event.count:
        say(
            f"  of which after the event's row was written (commit, publish, fan-out): "
            f"p50 {ws.from_event.p50_ms:.1f} ms, p99 {ws.from_event.p99_ms:.1f} ms"
        )
    if ws.send_stats is not None:
        say(
            f"  the POSTs themselves: p50 {ws.send_stats.p50_ms:.1f} ms, "
            f"p99 {ws.send_stats.p99_ms:.1f} ms, errors {ws.send_errors}"
        )
    if ws.missing or rd.missing or ws.other_events:
        say(
            f"  check: {ws.missing} websocket and {rd.missing} Redis arrivals missing; "
            f"{ws.other_events} other events on the consoles"
            + (
                " (" + ", ".join(f"{k} {v}" for k, v in sorted(ws.other_types.items())) + ")"
                if ws.other_types
                else ""
            )
        )
    for name, f in (("websocket", ws), ("redis", rd)):
        if f.first_error:
            say(f"  first {name} error: {f.first_error}")
    out: dict[str, Any] = {
        "generated": {
            "tickets": gen.tickets,
            "citizens": gen.citizens,
            "messages": gen.messages,
            "calls": gen.calls,
            "by_status": gen.by_status,
            "seconds": {k: round(v, 1) for k, v in gen.seconds.items()},
        },
        "queries": {
            "measured_as": "client latency on 127.0.0.1, sequential, keep-alive connection",
            **queries,
        },
        "queries_goal_met": worst < CONSOLE_QUERY_P95_GOAL_MS
        and all(v["goal_met"] for v in queries.values()),
        "delivery": {
            "measured_as": "from just before each POST (each publish) to each arrival; "
            f"the median of {len(run.websocket)} runs by p99, and each",
            "websocket": console_dict(ws),
            "redis_baseline": console_dict(rd),
            "websocket_runs": [console_dict(r) for r in run.websocket],
            "redis_baseline_runs": [console_dict(r) for r in run.redis],
            "ratio_p50": round(ratio50, 2),
            "ratio_p99": round(ratio99, 2),
            "goal_p99_ms": DELIVERY_P99_GOAL_MS,
            "goal_met": ws_ok,
        },
    }
    for name, title in (
        ("queries", "list requests"),
        ("websocket", "websocket run"),
        ("redis", "bare Redis run"),
    ):
        use = run.cpu.get(name)
        if use:
            parts = ", ".join(
                f"{k} {v:.2f}" for k, v in use.items() if k not in ("host", "cores", "others")
            )
            say(
                f"  cores busy in the {title}: {use['host']:.2f} of {use['cores']:.0f} "
                f"({parts}; other processes on the host {use['others']:.2f})"
            )
    out["cpu_cores_busy"] = run.cpu
    out["server_exceptions"] = exceptions_line(run.exceptions)
    out["memory"] = memory_report("memory peak RSS (console phase)", run.sampler)
    return out


def report(
    client: str,
    limit: LoadResult,
    intake: LoadResult,
    sampler: MemorySampler,
    counts: Any,
    webhook: WebhookRun | None,
    ivr: IvrRun | None,
    console: ConsoleRun | None = None,
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
        f"{ratio:.0%} of limit (goal >= {LIMIT_GOAL:.0%}{goal(rps_ok)}), "
        f"p50 {intake.p50_ms:.1f} ms, p99 {intake.p99_ms:.1f} ms "
        f"(goal < {P99_GOAL_MS:.0f} ms{goal(p99_ok)}), errors {intake.errors}"
    )
    for name, res in (("limit", limit), ("intake", intake)):
        if res.first_error:
            say(f"  first {name} error: {res.first_error}")
        if res.socket_errors:
            say(f"  {name} socket errors: {res.socket_errors}")
    for name, res in (("limit", limit), ("intake", intake)):
        cpu_line(name, res)
    memory = memory_report("memory peak RSS", sampler)
    outbox = counts.get("outbox", {})
    say(
        f"  check: {counts.get('tickets', 0)} tickets in the database; SMS acknowledgements "
        f"at the end of the run: " + ", ".join(f"{k} {v}" for k, v in sorted(outbox.items()))
    )
    result: dict[str, Any] = {
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
        "memory": memory,
    }
    if webhook is not None:
        result["webhook"] = webhook_report(limit, webhook)
    if ivr is not None:
        result["ivr"] = ivr_report(limit, ivr)
    if console is not None:
        result["console"] = console_report(console)
    return result


def write_result(result: dict[str, Any]) -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    say(f"figures written to {OUT.relative_to(ROOT)} ({result['elapsed_s']:.0f} s)")


def console_only(group: Group, args: argparse.Namespace, bodies: list[str], started: float) -> int:
    """Phase 5 alone: its figures replace the ``console`` part of var/bench.json."""
    say(
        f"the staff console over {args.console_tickets:,} tickets "
        "(contact serve --workers 2 + worker) ..."
    )
    run = console_phase(group, args, bodies)
    say("")
    part = console_report(run)
    part["elapsed_s"] = round(time.monotonic() - started, 1)
    try:
        result = json.loads(OUT.read_text()) if OUT.exists() else {}
    except ValueError:
        result = {}
    result["console"] = part
    result["elapsed_s"] = part["elapsed_s"]
    write_result(result)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=15.0, help="seconds measured per phase")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per phase")
    p.add_argument("--connections", type=int, default=32, help="concurrent connections")
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    p.add_argument(
        "--open-duration", type=float, default=10.0, help="seconds of each half-peak open loop"
    )
    p.add_argument(
        "--open-runs",
        type=int,
        default=3,
        help="half-peak open loops (a noisy host: the median by p99 is reported, and each)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="py-spy each server worker during the webhook and IVR closed loops "
        "(var/bench-webhook-*, var/bench-ivr-*)",
    )
    p.add_argument(
        "--only",
        choices=["console"],
        help="run this phase alone (its part of var/bench.json is replaced, the rest kept)",
    )
    p.add_argument(
        "--console-tickets", type=int, default=1_000_000, help="tickets generated (console)"
    )
    p.add_argument("--consoles", type=int, default=200, help="websocket consoles")
    p.add_argument("--console-rate", type=float, default=20.0, help="tickets POSTed per second")
    p.add_argument(
        "--console-seconds", type=float, default=10.0, help="seconds of POSTs in each run"
    )
    p.add_argument(
        "--console-runs",
        type=int,
        default=3,
        help="delivery runs, websocket and bare Redis alike (the median by p99 is reported)",
    )
    p.add_argument(
        "--console-samples", type=int, default=400, help="timed requests of each console query"
    )
    p.add_argument("--console-warmup", type=int, default=20, help="untimed ones before")
    args = p.parse_args(argv)

    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="contact-bench-") as tmp:
        group = Group(Path(tmp))
        load: Load | None = None
        try:
            say(f"setting up {DB_NAME} (migrate, seed the demo catalogue) and Redis db 14 ...")
            setup_database()
            services = catalogue_services()
            bodies = make_bodies(services)
            if args.only == "console":
                return console_only(group, args, bodies, started)
            texts = make_texts(services)
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
            say("phase 3: signed Twilio SMS webhooks (contact serve --workers 2 + worker) ...")
            webhook = webhook_phase(group, load, args, limit.rps, texts)
            say("phase 4: the voice IVR's TwiML steps (contact serve --workers 2 + worker) ...")
            ivr = ivr_phase(group, load, args, limit.rps)
            say(
                f"phase 5: the staff console over {args.console_tickets:,} tickets "
                "(contact serve --workers 2 + worker) ..."
            )
            console = console_phase(group, args, bodies)
            result = report(load.name, limit, intake, sampler, counts, webhook, ivr, console)
            result["elapsed_s"] = round(time.monotonic() - started, 1)
            write_result(result)
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
