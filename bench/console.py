"""The staff console at scale: its list requests over a million tickets, and how fast a
new ticket reaches 200 open consoles.

* queries: the requests a console makes most, each timed sequentially on one
  keep-alive connection from 127.0.0.1 (the time a client waits: the server's time
  plus a loopback round trip), round robin so a noisy moment hits all of them alike:
  the agents' queue, a department clerk's inbox, a caller's ticket history by phone,
  and a call popped with its caller's history;
* delivery: 200 websocket consoles on ``GET /ws`` (bearer tokens), then tickets opened
  through ``POST /api/v1/tickets`` at a steady rate; each sample is the time from just
  before a POST is sent to the arrival of its ``ticket.created`` (matched by reference)
  at one console: every console, every ticket;
* baseline: the same fan-out on bare Redis pub/sub (redis-py asyncio: one publisher,
  200 subscribers on connections of their own), messages of the size the consoles
  received, published at the same rate and timed the same way (stamped on arrival,
  then parsed as JSON) in the same client process.

Both fan-outs are timed in one asyncio client process: its own work on 200 arrivals
at once is part of both figures, so their ratio shows what the server's path (intake,
commit, publish, per-socket send) adds. Each runs a few times on the same connections,
after a warm-up; the run with the median p99 is the one reported (a noisy host moves
single runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import random
import time
import urllib.parse
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import psutil

from bench.cpu import CpuMeter

HOST = "127.0.0.1"


# ------------------------------------------------------------------ figures


@dataclass
class Percentiles:
    count: int = 0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    mean_ms: float = 0.0

    @classmethod
    def of(cls, seconds: list[float]) -> Percentiles:
        if not seconds:
            return cls()
        s = sorted(seconds)

        def pct(p: float) -> float:
            return round(s[min(len(s) - 1, int(p * len(s)))] * 1000, 2)

        return cls(
            count=len(s),
            p50_ms=pct(0.50),
            p95_ms=pct(0.95),
            p99_ms=pct(0.99),
            max_ms=round(s[-1] * 1000, 2),
            mean_ms=round(sum(s) / len(s) * 1000, 2),
        )


@dataclass
class QueryRun:
    name: str
    user: str
    path: str  # one of the paths requested (phones and call ids vary)
    distinct_paths: int
    stats: Percentiles
    errors: int = 0
    first_error: str | None = None
    items: list[int] = field(default_factory=list)  # items per answer (min, max)
    total: int | None = None  # the list's total (the count) of the last answer


@dataclass
class Fanout:
    """Delivery of each message to each of ``clients`` receivers."""

    clients: int
    connected: int
    sent: int  # messages (tickets) sent
    send_errors: int
    expected: int  # sent * connected
    received: int  # matched arrivals
    stats: Percentiles
    rate: float
    message_bytes: int
    send_stats: Percentiles | None = None  # POST latency (the websocket run)
    # From the event's row being written in the POST's transaction (its created_at) to
    # the arrival: the commit, the publish and the fan-out (wall clocks of one host).
    from_event: Percentiles | None = None
    warmup: int = 0  # messages sent first, not measured
    first_error: str | None = None
    other_events: int = 0  # events of other kinds (or other tickets) the consoles got
    other_types: dict[str, int] = field(default_factory=dict)

    @property
    def missing(self) -> int:
        return self.expected - self.received


# ------------------------------------------------------------------ HTTP


def sign_in(port: int, username: str, password: str) -> str:
    data = urllib.parse.urlencode({"username": username, "password": password}).encode()
    req = urllib.request.Request(f"http://{HOST}:{port}/api/v1/auth/token", data=data)
    with urllib.request.urlopen(req, timeout=10) as r:
        return str(json.loads(r.read())["access_token"])


class KeepAlive:
    """One HTTP/1.1 connection, reopened if the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection(HOST, port, timeout=30)

    def get(self, path: str, token: str) -> tuple[int, bytes, float]:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        for attempt in (1, 2):
            t0 = time.perf_counter()
            try:
                self.conn.request("GET", path, headers=headers)
                resp = self.conn.getresponse()
                body = resp.read()
                return resp.status, body, time.perf_counter() - t0
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


@dataclass
class Query:
    name: str
    user: str
    token: str
    paths: list[str]


def time_queries(port: int, queries: list[Query], samples: int, warmup: int) -> list[QueryRun]:
    """``warmup`` then ``samples`` requests of each query, round robin, one at a time."""
    client = KeepAlive(port)
    runs = {
        q.name: QueryRun(q.name, q.user, q.paths[0], len(set(q.paths)), Percentiles())
        for q in queries
    }
    seconds: dict[str, list[float]] = defaultdict(list)
    counts: dict[str, list[int]] = defaultdict(list)
    try:
        for i in range(warmup + samples):
            for q in queries:
                path = q.paths[i % len(q.paths)]
                status, body, took = client.get(path, q.token)
                run = runs[q.name]
                if status != 200:
                    run.errors += 1
                    if run.first_error is None:
                        run.first_error = f"{status} {path} {body[:300].decode('utf-8', 'replace')}"
                    continue
                if i < warmup:
                    continue
                seconds[q.name].append(took)
                data = json.loads(body)
                if isinstance(data, dict) and "items" in data:
                    counts[q.name].append(len(data["items"]))
                    run.total = data.get("total")
                elif isinstance(data, dict) and "history" in data:
                    counts[q.name].append(len(data["history"].get("tickets", [])))
    finally:
        client.close()
    for name, run in runs.items():
        run.stats = Percentiles.of(seconds[name])
        got = counts[name]
        run.items = [min(got), max(got)] if got else []
    return list(runs.values())


# ------------------------------------------------------------------ websocket fan-out


async def _paced(count: int, rate: float, fire: Callable[[int], Any]) -> None:
    """Start ``fire(k)`` at ``k / rate`` seconds (an open loop: a slow one delays no other)."""
    start = time.perf_counter()
    tasks = []
    for k in range(count):
        delay = start + k / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(fire(k)))
    await asyncio.gather(*tasks)


async def _settle(expected: int, got: Callable[[], int], timeout: float) -> None:
    """Wait until ``got()`` reaches ``expected`` (or ``timeout`` seconds have passed)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:  # polled: the counts grow in many places
        if got() >= expected:
            return
        await asyncio.sleep(0.05)


@dataclass
class _Tally:
    connected: int = 0
    failed: int = 0
    other: int = 0
    types: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    first_error: str | None = None

    def error(self, text: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or text


async def websocket_fanout(
    port: int,
    tokens: list[str],
    post_token: str,
    bodies: list[str],
    *,
    clients: int = 200,
    rate: float = 20.0,
    seconds: float = 10.0,
    warmup: float = 2.0,
    runs: int = 3,
    say: Callable[[str], None] = print,
) -> list[Fanout]:
    """``clients`` consoles on /ws; tickets POSTed at ``rate`` per second for ``warmup``
    seconds (not measured), then ``runs`` times for ``seconds``: one result per run."""
    import httpx
    from websockets.asyncio.client import ClientConnection, connect

    from bench.bodies import fill_phone

    url = f"ws://{HOST}:{port}/ws"
    arrivals: dict[str, list[float]] = defaultdict(list)
    after_event: dict[str, list[float]] = defaultdict(list)
    sizes: list[int] = []
    ws_tally = _Tally()
    opening = asyncio.Semaphore(20)  # open the sockets 20 at a time
    stop = asyncio.Event()

    async def read(ws: ClientConnection) -> None:
        async for raw in ws:
            t, wall = time.perf_counter(), time.time()  # stamped before any work of ours
            data = json.loads(raw)
            kind = str(data.get("type"))
            if kind != "ticket.created":
                ws_tally.other += 1
                ws_tally.types[kind] = ws_tally.types.get(kind, 0) + 1
                continue
            arrivals[data["reference"]].append(t)
            with contextlib.suppress(KeyError, ValueError):
                written = datetime.fromisoformat(data["created_at"]).timestamp()
                after_event[data["reference"]].append(wall - written)
            if len(sizes) < 1000:
                sizes.append(len(raw.encode() if isinstance(raw, str) else raw))

    async def console(i: int) -> None:
        headers = {"Authorization": f"Bearer {tokens[i % len(tokens)]}"}
        try:
            async with opening:
                ws = await connect(
                    url, additional_headers=headers, proxy=None, open_timeout=30, max_queue=None
                )
                first = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if first.get("type") != "hello":
                    raise RuntimeError(f"the first message is not hello: {first}")
        except Exception as exc:  # a console that cannot connect is counted; the rest go on
            ws_tally.failed += 1
            ws_tally.error(f"console {i}: {type(exc).__name__}: {exc}")
            return
        ws_tally.connected += 1
        async with ws:
            reader = asyncio.create_task(read(ws))
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait([reader, stopper], return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if reader.done() and reader.exception() is not None:
                ws_tally.error(f"console {i}: {reader.exception()!r}")
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    consoles = [asyncio.create_task(console(i)) for i in range(clients)]
    await _settle(clients, lambda: ws_tally.connected + ws_tally.failed, 120)
    connected = ws_tally.connected
    say(f"  {connected} of {clients} consoles connected; opening tickets at {rate:.0f}/s ...")

    rng = random.Random(4242)
    headers = {"Authorization": f"Bearer {post_token}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    results: list[Fanout] = []
    seen: set[str] = set()
    try:
        async with httpx.AsyncClient(
            base_url=f"http://{HOST}:{port}", limits=limits, timeout=30, trust_env=False
        ) as http:

            async def burst(n: int) -> tuple[list[tuple[str, float]], list[float], _Tally]:
                """``n`` POSTs at ``rate``; then wait for their events on every console."""
                payloads = [fill_phone(bodies[rng.randrange(len(bodies))], rng) for _ in range(n)]
                sends: list[tuple[str, float]] = []
                took: list[float] = []
                tally = _Tally()

                async def post(k: int) -> None:
                    body = payloads[k].encode()
                    t0 = time.perf_counter()  # just before the POST is sent
                    try:
                        r = await http.post("/api/v1/tickets", content=body, headers=headers)
                    except httpx.HTTPError as exc:
                        tally.error(f"{type(exc).__name__}: {exc}")
                        return
                    took.append(time.perf_counter() - t0)
                    if r.status_code != 201:
                        tally.error(f"{r.status_code} {r.text[:300]}")
                        return
                    sends.append((r.json()["reference"], t0))

                await _paced(n, rate, post)
                seen.update(ref for ref, _ in sends)
                want = len(sends) * connected
                await _settle(want, lambda: sum(len(arrivals[ref]) for ref, _ in sends), 10)
                return sends, took, tally

            warmed, _, _ = await burst(round(rate * warmup))
            for _ in range(runs):
                sends, took, tally = await burst(round(rate * seconds))
                samples = [t - t0 for ref, t0 in sends for t in arrivals.get(ref, [])]
                results.append(
                    Fanout(
                        clients=clients,
                        connected=connected,
                        sent=len(sends),
                        send_errors=tally.errors,
                        expected=len(sends) * connected,
                        received=len(samples),
                        stats=Percentiles.of(samples),
                        rate=rate,
                        message_bytes=sorted(sizes)[len(sizes) // 2] if sizes else 0,
                        send_stats=Percentiles.of(took),
                        from_event=Percentiles.of(
                            [x for ref, _ in sends for x in after_event.get(ref, [])]
                        ),
                        warmup=len(warmed),
                        first_error=ws_tally.first_error or tally.first_error,
                    )
                )
    finally:
        stop.set()
        await asyncio.gather(*consoles, return_exceptions=True)
    other = ws_tally.other + sum(len(v) for ref, v in arrivals.items() if ref not in seen)
    for r in results:
        r.other_events = other
        r.other_types = dict(ws_tally.types)
    return results


# ------------------------------------------------------------------ bare Redis


async def redis_fanout(
    redis_url: str,
    *,
    clients: int = 200,
    count: int = 200,
    rate: float = 20.0,
    size: int = 300,
    warmup: float = 2.0,
    runs: int = 3,
) -> list[Fanout]:
    """``count`` messages of ``size`` bytes published at ``rate``/s to ``clients``
    subscribers, each on a connection of its own, ``runs`` times after ``warmup``
    seconds of them: one result per run."""
    import redis.asyncio as aioredis

    channel = f"bench:fanout:{uuid.uuid4().hex}"  # pub/sub is server-wide: a channel of our own
    arrivals: dict[int, list[float]] = defaultdict(list)
    subscribers = [aioredis.Redis.from_url(redis_url) for _ in range(clients)]
    publisher = aioredis.Redis.from_url(redis_url)
    pubsubs = [r.pubsub() for r in subscribers]
    readers: list[asyncio.Task[None]] = []
    results: list[Fanout] = []
    seq = 0

    async def read(ps: Any) -> None:
        async for m in ps.listen():
            t = time.perf_counter()  # stamped before any work of ours
            if m.get("type") != "message":
                continue
            arrivals[json.loads(m["data"])["seq"]].append(t)

    def message(k: int) -> bytes:
        head = json.dumps({"type": "bench", "seq": k, "pad": ""})
        return json.dumps({"type": "bench", "seq": k, "pad": "x" * (size - len(head))}).encode()

    async def burst(n: int, subscribed: int) -> tuple[dict[int, float], _Tally]:
        nonlocal seq
        first, seq = seq, seq + n
        messages = [message(first + k) for k in range(n)]
        sends: dict[int, float] = {}
        tally = _Tally()

        async def publish(k: int) -> None:
            t0 = time.perf_counter()
            try:
                await publisher.publish(channel, messages[k])
            except Exception as exc:
                tally.error(f"{type(exc).__name__}: {exc}")
                return
            sends[first + k] = t0

        await _paced(n, rate, publish)
        await _settle(len(sends) * subscribed, lambda: sum(len(arrivals[k]) for k in sends), 10)
        return sends, tally

    try:
        for ps in pubsubs:
            await ps.subscribe(channel)
        readers = [asyncio.create_task(read(ps)) for ps in pubsubs]
        deadline = time.perf_counter() + 30
        while True:
            subscribed = int((await publisher.pubsub_numsub(channel))[0][1])
            if subscribed >= clients or time.perf_counter() > deadline:
                break
            await asyncio.sleep(0.05)
        warmed, _ = await burst(round(rate * warmup), subscribed)
        for _ in range(runs):
            sends, tally = await burst(count, subscribed)
            samples = [t - sends[k] for k in sends for t in arrivals.get(k, [])]
            results.append(
                Fanout(
                    clients=clients,
                    connected=subscribed,
                    sent=len(sends),
                    send_errors=tally.errors,
                    warmup=len(warmed),
                    expected=len(sends) * subscribed,
                    received=len(samples),
                    stats=Percentiles.of(samples),
                    rate=rate,
                    message_bytes=size,
                    first_error=tally.first_error,
                )
            )
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        for ps in pubsubs:
            with contextlib.suppress(Exception):
                await ps.aclose()
        for r in [*subscribers, publisher]:
            with contextlib.suppress(Exception):
                await r.aclose()
    return results


def median_by_p99(runs: list[Fanout]) -> Fanout:
    """The run whose p99 is the median of the runs' (a noisy host moves single runs)."""
    return sorted(runs, key=lambda r: r.stats.p99_ms)[len(runs) // 2]


def as_dict(obj: Any) -> dict[str, Any]:
    out = asdict(obj)
    if isinstance(obj, Fanout):
        out["missing"] = obj.missing
    return out


# ------------------------------------------------------------------ what to ask for


def sample_callers(db_url: str, n: int, seed: int = 777) -> tuple[list[str], list[int]]:
    """Phones of the callers of ``n`` random tickets (a frequent caller comes up as often
    as callers do), and ``n`` random generated calls."""
    import psycopg

    from bench.generate import CALL_SID_PREFIX

    rng = random.Random(seed)
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT min(id), max(id) FROM tickets").fetchone()
        lo, hi = (row[0], row[1]) if row and row[0] is not None else (0, 0)
        ids = [rng.randint(lo, hi) for _ in range(4 * n)]
        phones = [
            p
            for (p,) in conn.execute(
                "SELECT c.phone FROM tickets t JOIN citizens c ON c.id = t.citizen_id"
                " WHERE t.id = ANY(%s) AND c.phone IS NOT NULL",
                (ids,),
            ).fetchall()
        ]
        calls = [
            i
            for (i,) in conn.execute(
                "SELECT id FROM calls WHERE call_sid LIKE %s ORDER BY id",
                (CALL_SID_PREFIX + "%",),
            ).fetchall()
        ]
    rng.shuffle(phones)
    return phones[:n], rng.sample(calls, min(n, len(calls)))


def console_queries(
    tokens: dict[str, str], clerk: str, phones: list[str], calls: list[int]
) -> list[Query]:
    """What a console asks for most: the agents' queue, a clerk's inbox, caller history."""
    agent = "agent1"
    return [
        Query(
            "queue",
            agent,
            tokens[agent],
            [
                "/api/v1/tickets?status=received&status=returned&status=reopened&order=oldest&limit=100"
            ],
        ),
        Query(
            "inbox",
            clerk,
            tokens[clerk],
            [
                "/api/v1/tickets?status=dispatched&status=accepted&status=reopened&order=due&limit=200"
            ],
        ),
        Query(
            "history",
            agent,
            tokens[agent],
            [
                f"/api/v1/tickets?{urllib.parse.urlencode({'phone': p, 'limit': 50})}"
                for p in phones
            ],
        ),
        Query("call", agent, tokens[agent], [f"/api/v1/calls/{i}" for i in calls]),
    ]


# ------------------------------------------------------------------ the host


class HostCpu:
    """CPU of the whole host over a window, and how much of it went to ``meter``'s
    groups: on a shared host, what others used is part of the figures' context."""

    def __init__(self, meter: CpuMeter) -> None:
        self.meter = meter
        self.t0 = 0.0
        self.busy0 = 0.0

    @staticmethod
    def _busy() -> float:
        t = psutil.cpu_times()
        return float(sum(t)) - t.idle - getattr(t, "iowait", 0.0)

    def start(self) -> None:
        self.meter.start()
        self.t0, self.busy0 = time.monotonic(), self._busy()

    def stop(self) -> dict[str, float]:
        """Cores busy on average: ``host``, each group's, and ``others`` (the rest)."""
        spent = self.meter.stop()
        wall = max(1e-6, time.monotonic() - self.t0)
        host = (self._busy() - self.busy0) / wall
        out = {name: round(v / wall, 2) for name, v in spent.items()}
        out["others"] = round(max(0.0, host - sum(spent.values()) / wall), 2)
        out["host"] = round(host, 2)
        out["cores"] = float(psutil.cpu_count() or 1)
        return out
