"""``python -m bench.roundtrips``: what one POST /api/v1/tickets costs, request by request.

Serves ``contact serve --workers 1`` and one ``contact worker``, each with its own
counting proxies in front of PostgreSQL and Redis (:mod:`bench.wiretap`), sends
requests one at a time, then lets the worker deliver the SMS acknowledgements.
Prints per request (server) and per delivered acknowledgement (worker): the
PostgreSQL round trips by statement, the Redis commands and round trips, and CPU.
Uses (and recreates) the same scratch database as ``python -m bench``.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

import psutil
import psycopg

from bench.__main__ import (
    BIN,
    DB_NAME,
    DB_URL,
    HOST,
    ROOT,
    catalogue_services,
    contact_env,
    flush_redis,
    fresh_database,
    migrate_and_seed,
    say,
    sign_in,
)
from bench.bodies import fill_phone, make_bodies
from bench.procs import Group, free_port, wait_http
from bench.wiretap import Wiretap


def post(port: int, token: str, body: str) -> tuple[int, float]:
    req = urllib.request.Request(
        f"http://{HOST}:{port}/api/v1/tickets",
        data=body.encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()
        return r.status, time.perf_counter() - t0


def cpu_seconds(pid: int) -> float:
    root = psutil.Process(pid)
    total = 0.0
    for p in [root, *root.children(recursive=True)]:
        t = p.cpu_times()
        total += t.user + t.system
    return total


def sent_count() -> int:
    with psycopg.connect(DB_URL) as conn:
        row = conn.execute("SELECT count(*) FROM outbox WHERE status = 'sent'").fetchone()
    return int(row[0]) if row else 0


def pending_count() -> int:
    with psycopg.connect(DB_URL) as conn:
        row = conn.execute("SELECT count(*) FROM outbox WHERE status <> 'sent'").fetchone()
    return int(row[0]) if row else 0


def proxied_env(tap: Wiretap, tag: str) -> dict[str, str]:
    env = contact_env()
    pg = tap.add(tag, "pg", 5432)
    redis = tap.add(tag, "redis", 6379)
    env["CONTACT_DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:{pg}/{DB_NAME}"
    env["CONTACT_REDIS_URL"] = f"redis://127.0.0.1:{redis}/14"
    return env


def show(diff: Counter[tuple[str, str, str]], tag: str, n: int, unit: str) -> None:
    for kind, title in (("pg", "PostgreSQL round trips"), ("redis", "Redis commands")):
        rows = [(lbl, c) for (t, k, lbl), c in diff.items() if t == tag and k == kind]
        rows.sort(key=lambda r: -r[1])
        say(f"  {title} per {unit}: {sum(c for _, c in rows) / n:.2f}")
        for label, c in rows:
            say(f"    {c / n:5.2f}  {label}")
    rt = sum(c for (t, k, _), c in diff.items() if t == tag and k == "redis-rt")
    say(f"  Redis round trips per {unit}: {rt / n:.2f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.roundtrips", description=__doc__)
    p.add_argument("-n", type=int, default=200, help="requests measured (one at a time)")
    args = p.parse_args(argv)
    n = args.n

    fresh_database()
    flush_redis()
    migrate_and_seed()
    bodies = make_bodies(catalogue_services())
    rng = random.Random(7)
    tap = Wiretap()
    server_env = proxied_env(tap, "server")
    worker_env = proxied_env(tap, "worker")
    port = free_port()
    latencies: list[float] = []
    with tempfile.TemporaryDirectory(prefix="contact-roundtrips-") as tmp:
        group = Group(Path(tmp))
        try:
            server = group.start(
                "server",
                [str(BIN / "contact"), "serve", "--host", HOST, "--port", str(port)],
                server_env,
                ROOT,
            )
            worker = group.start("worker", [str(BIN / "contact"), "worker"], worker_env, ROOT)
            wait_http(f"http://{HOST}:{port}/healthz", group, "server")
            token = sign_in(port)
            for i in range(50):  # warm: pools, statement caches, catalogue caches
                post(port, token, fill_phone(bodies[i % len(bodies)], rng))
            deadline = time.monotonic() + 30
            while pending_count() and time.monotonic() < deadline:
                time.sleep(0.2)
            before, sent0 = tap.snapshot(), sent_count()
            cpu_s0, cpu_w0 = cpu_seconds(server), cpu_seconds(worker)
            for i in range(n):
                status, seconds = post(port, token, fill_phone(bodies[i % len(bodies)], rng))
                if status != 201:
                    say(f"request {i}: status {status}")
                latencies.append(seconds)
            cpu_s1 = cpu_seconds(server)
            deadline = time.monotonic() + 60
            while pending_count() and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(0.3)
            after, sent = tap.snapshot(), sent_count() - sent0
            cpu_w1 = cpu_seconds(worker)
        finally:
            group.stop_all()
            tap.close()
    diff = after - before
    latencies.sort()
    say(f"POST /api/v1/tickets, {n} requests one at a time (contact serve, 1 worker):")
    say(
        f"  server CPU {1000 * (cpu_s1 - cpu_s0) / n:.2f} ms/request; latency p50 "
        f"{1000 * latencies[n // 2]:.1f} ms, p99 {1000 * latencies[int(n * 0.99)]:.1f} ms"
    )
    show(diff, "server", n, "request")
    say(f"contact worker: {sent} SMS acknowledgements delivered for those {n} tickets")
    if sent:
        say(f"  worker CPU {1000 * (cpu_w1 - cpu_w0) / sent:.2f} ms/acknowledgement")
        show(diff, "worker", sent, "acknowledgement")
    return 0


if __name__ == "__main__":
    sys.exit(main())
