"""Closed-loop HTTP load: ``wrk`` with a Lua script, or a small asyncio fallback client.

Both POST the given JSON bodies in rotation (a fresh phone number in each one that
has a phone), count any status but 201 as an error and keep the first error body,
and report requests/s with p50/p99 latency.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.bodies import split_phone


@dataclass
class LoadResult:
    client: str
    connections: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    first_error: str | None = None
    socket_errors: dict[str, int] = field(default_factory=dict)
    cpu_ms_per_request: dict[str, float] = field(default_factory=dict)
    client_cpu_s: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)  # phase-specific tallies

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        if not d["counts"]:
            del d["counts"]
        for key in ("rps", "p50_ms", "p99_ms", "client_cpu_s"):
            d[key] = round(d[key], 2)
        return d


def wrk_path() -> str | None:
    return shutil.which("wrk")


# ------------------------------------------------------------------ wrk

LUA = r"""
local bodies = {
%(bodies)s
}
local n = #bodies
local i = 0
ok, bad, first = 0, 0, ""
local threads = {}

wrk.method = "POST"
wrk.path = %(path)s
wrk.headers["Content-Type"] = "application/json"
%(auth)s

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + tid)
  i = (tid * 97) %% n
end

function request()
  i = i %% n + 1
  local b = bodies[i]
  local body = b[1]
  if b[2] then
    body = body .. string.format("%%08d", math.random(0, 99999999)) .. b[2]
  end
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status == 201 then
    ok = ok + 1
  else
    bad = bad + 1
    if first == "" then first = status .. " " .. string.sub(body or "", 1, 400) end
  end
end

function done(summary, latency, requests)
  local tok, tbad, tfirst = 0, 0, ""
  for _, t in ipairs(threads) do
    tok = tok + t:get("ok")
    tbad = tbad + t:get("bad")
    local f = t:get("first")
    if tfirst == "" and f ~= "" then tfirst = f end
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH %%d %%d %%d %%d %%.1f %%.1f %%d %%d %%d %%d %%d\n",
    summary.requests, summary.duration, tok, tbad,
    latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
  io.write("BENCHFIRST " .. tfirst .. "\n")
end
"""


def _lua_string(s: str) -> str:
    level = "=="
    while f"]{level}]" in s:
        level += "="
    return f"[{level}[{s}]{level}]"


def write_lua(bodies: list[str], path: str, token: str | None, out: Path) -> Path:
    rows = []
    for body in bodies:
        before, after = split_phone(body)
        rows.append(
            "  {" + _lua_string(before) + (", " + _lua_string(after) if after else "") + "},"
        )
    auth = f'wrk.headers["Authorization"] = "Bearer {token}"' if token else ""
    out.write_text(
        LUA % {"bodies": "\n".join(rows), "path": json.dumps(path), "auth": auth},
        encoding="utf-8",
    )
    return out


def wrk_output(
    url: str,
    script: Path,
    *,
    connections: int,
    duration: float,
    threads: int,
    procs: list[subprocess.Popen[bytes]],
    timeout_s: float = 10.0,
) -> str:
    """Run wrk with a Lua script and return what it printed; a wrk that overruns is
    killed with its process group (``procs`` lists it while it runs, for the bench's
    own clean-up)."""
    cmd = [
        wrk_path() or "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        f"{timeout_s:.0f}s",
        "-s",
        str(script),
        url,
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    procs.append(proc)
    try:
        out, _ = proc.communicate(timeout=duration + 30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        procs.remove(proc)
    return out.decode("utf-8", "replace")


def run_wrk(
    url: str,
    script: Path,
    *,
    connections: int,
    duration: float,
    threads: int,
    procs: list[subprocess.Popen[bytes]],
) -> LoadResult:
    out = wrk_output(
        url, script, connections=connections, duration=duration, threads=threads, procs=procs
    )
    result, _ = parse_wrk(out, connections)
    return result


def parse_wrk(text: str, connections: int) -> tuple[LoadResult, list[str]]:
    """The result the Lua scripts print (a ``BENCH`` line), and that line's extra fields."""
    line = next((x for x in text.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{text}")
    f = line.split()[1:]
    requests, micros, ok, bad = int(f[0]), int(f[1]), int(f[2]), int(f[3])
    kinds = ("connect", "read", "write", "status", "timeout")
    sock = dict(zip(kinds, map(int, f[6:11]), strict=True))
    first = next((x[11:] for x in text.splitlines() if x.startswith("BENCHFIRST ")), "")
    seconds = micros / 1e6
    # Errors: every answered wrong status plus every request that got no answer at all.
    errors = bad + sock["connect"] + sock["read"] + sock["write"] + sock["timeout"]
    result = LoadResult(
        client="wrk",
        connections=connections,
        duration_s=round(seconds, 2),
        requests=requests,
        rps=ok / seconds if seconds else 0.0,
        p50_ms=float(f[4]) / 1000,
        p99_ms=float(f[5]) / 1000,
        errors=errors,
        first_error=first or None,
        socket_errors={k: v for k, v in sock.items() if v},
    )
    return result, f[11:]


# ------------------------------------------------------------------ asyncio fallback


class _Conn:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = 0
        close = False
        for h in lines[1:]:
            name, _, value = h.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        body = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _py_load(
    host: str,
    port: int,
    path: str,
    bodies: list[str],
    token: str | None,
    connections: int,
    duration: float,
) -> LoadResult:
    rng = random.Random()
    head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    parts = [split_phone(b) for b in bodies]
    latencies: list[float] = []
    state = {"ok": 0, "bad": 0, "first": ""}
    stop_at = 0.0

    def next_request(k: int) -> bytes:
        before, after = parts[k % len(parts)]
        text = before if after is None else f"{before}{rng.randrange(10**8):08d}{after}"
        data = text.encode()
        return f"{head}Content-Length: {len(data)}\r\n\r\n".encode() + data

    async def one(c: int) -> None:
        conn = _Conn(host, port)
        k = c * 97
        try:
            while time.monotonic() < stop_at:
                raw = next_request(k)
                k += 1
                t0 = time.perf_counter()
                try:
                    status, body = await asyncio.wait_for(conn.request(raw), 10)
                except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
                    conn.close()
                    status, body = 0, repr(exc).encode()
                latencies.append(time.perf_counter() - t0)
                if status == 201:
                    state["ok"] += 1
                else:
                    state["bad"] += 1
                    if not state["first"]:
                        state["first"] = f"{status} {body[:400].decode('utf-8', 'replace')}"
        finally:
            conn.close()

    start = time.monotonic()
    stop_at = start + duration
    await asyncio.gather(*(one(c) for c in range(connections)))
    seconds = time.monotonic() - start
    latencies.sort()

    def pct(p: float) -> float:
        if not latencies:
            return 0.0
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return LoadResult(
        client="python-asyncio",
        connections=connections,
        duration_s=round(seconds, 2),
        requests=len(latencies),
        rps=state["ok"] / seconds,
        p50_ms=pct(0.50),
        p99_ms=pct(0.99),
        errors=int(state["bad"]),
        first_error=str(state["first"]) or None,
    )


def run_python(
    host: str,
    port: int,
    path: str,
    bodies: list[str],
    token: str | None,
    *,
    connections: int,
    duration: float,
) -> LoadResult:
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        runner = asyncio.run
    return runner(_py_load(host, port, path, bodies, token, connections, duration))


# ------------------------------------------------------------------ one entry point


class Load:
    """The client for a whole bench run (the same one for every phase)."""

    def __init__(
        self, kind: str, bodies: list[str], *, connections: int, threads: int, workdir: Path
    ) -> None:
        if kind == "auto":
            kind = "wrk" if wrk_path() else "python"
        if kind == "wrk" and not wrk_path():
            raise SystemExit("bench: --client wrk but wrk is not installed (apt-get install wrk)")
        self.kind = kind
        self.bodies = bodies
        self.connections = connections
        self.threads = threads
        self.workdir = workdir
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def name(self) -> str:
        if self.kind == "wrk":
            return f"wrk ({self.threads} threads, {self.connections} connections, Lua script)"
        return f"python asyncio keep-alive client ({self.connections} connections)"

    def run(
        self, host: str, port: int, path: str, token: str | None, duration: float
    ) -> LoadResult:
        who = resource.RUSAGE_CHILDREN if self.kind == "wrk" else resource.RUSAGE_SELF
        before = resource.getrusage(who)
        result = self._run(host, port, path, token, duration)
        after = resource.getrusage(who)
        result.client_cpu_s = (after.ru_utime - before.ru_utime) + (
            after.ru_stime - before.ru_stime
        )
        return result

    def _run(
        self, host: str, port: int, path: str, token: str | None, duration: float
    ) -> LoadResult:
        if self.kind == "wrk":
            fd, name = tempfile.mkstemp(suffix=".lua", dir=self.workdir)
            os.close(fd)
            script = write_lua(self.bodies, path, token, Path(name))
            try:
                return run_wrk(
                    f"http://{host}:{port}{path}",
                    script,
                    connections=self.connections,
                    duration=duration,
                    threads=self.threads,
                    procs=self.procs,
                )
            finally:
                script.unlink(missing_ok=True)
        return run_python(
            host,
            port,
            path,
            self.bodies,
            token,
            connections=self.connections,
            duration=duration,
        )

    def kill(self) -> None:
        for p in list(self.procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
