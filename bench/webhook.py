"""Signed Twilio inbound-SMS webhooks: request generation and the two load shapes.

wrk's Lua has no HMAC, so every request is built and signed here beforehand
(``RequestValidator(token).compute_signature(url, params)``, as Twilio signs) and
written, complete with its headers, to one file per wrk thread; the Lua script
sends them in order, each once. A request is a real inbound SMS form (the fields
Twilio posts) with its own MessageSid, a Chinese complaint text and a sender from
a large pool of ``+86138`` numbers (a few send a follow-up later, at most
:data:`MAX_TEXTS_PER_NUMBER` texts per number, far under the per-number rate limit).

* closed loop: wrk (or the asyncio client) on the same connections as the other phases;
* open loop: the asyncio client sends on a fixed schedule and measures each latency
  from the *scheduled* send time, so waiting for a busy server or a free connection
  counts (no coordinated omission).

Anything but ``200`` with a TwiML ``<Response`` is an error. Each client also counts
the answers without a given marker (here ``<Message``: stored and deliberately not
answered), and :func:`twilio_request` writes any signed Twilio webhook as raw HTTP.
"""

from __future__ import annotations

import asyncio
import gc
import random
import resource
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote_plus

from twilio.request_validator import RequestValidator

from bench.load import LoadResult, _Conn, _lua_string, parse_wrk, wrk_output

PATH = "/channels/sms/twilio/inbound"
MARKER = b"<Message"  # an answered text; without it the text is stored, not answered
ACCOUNT_SID = "AC" + "5f" * 16
TO_NUMBER = "+15558675310"
ADD_ONS = '{ "status": "successful", "message": null, "code": null, "results": { } }'
FOLLOW_UP = 0.10  # share of texts from a number that texted a little earlier
FOLLOW_UP_GAP = 200  # ... at least this many requests earlier
MAX_TEXTS_PER_NUMBER = 3
TIMEOUT_S = 10.0
IDLE_REOPEN_S = 4.0  # uvicorn closes a keep-alive connection idle for 5 s


def segments(text: str) -> int:
    """Twilio's NumSegments for a text (UCS-2 for Chinese: 70 alone, 67 per part)."""
    if all(ord(ch) < 128 for ch in text):
        return 1 if len(text) <= 160 else -(-len(text) // 153)
    return 1 if len(text) <= 70 else -(-len(text) // 67)


def twilio_request(
    target: str, host: str, signature: str, body: bytes, rng: random.Random
) -> bytes:
    """A webhook POST to ``target`` (path and query) with the headers Twilio sends."""
    head = (
        f"POST {target} HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        "User-Agent: TwilioProxy/1.1\r\n"
        "Accept: */*\r\n"
        f"I-Twilio-Idempotency-Token: {uuid.UUID(int=rng.getrandbits(128))}\r\n"
        "X-Home-Region: us1\r\n"
        f"X-Twilio-Signature: {signature}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class SignedForms:
    """Builds raw HTTP requests: unique MessageSids, varied senders, signed forms."""

    def __init__(
        self, token: str, public_base_url: str, host: str, texts: list[str], seed: int = 7
    ) -> None:
        self.validator = RequestValidator(token)
        self.url = public_base_url.rstrip("/") + PATH
        self.host = host  # the Host header (wrk would send host:port)
        self.texts = texts
        self.rng = random.Random(seed)
        self.history: list[str] = []  # senders in the order they were used
        self.uses: dict[str, int] = {}
        self.made = 0
        self.seconds = 0.0
        self._quoted: dict[str, str] = {}

    def _phone(self) -> str:
        # A follow-up comes from a number earlier in the same batch: a run sends a
        # prefix of its batch, so that number has most likely texted already.
        rng = self.rng
        if len(self.history) > FOLLOW_UP_GAP and rng.random() < FOLLOW_UP:
            lo = max(0, len(self.history) - 10 * FOLLOW_UP_GAP)
            phone = self.history[rng.randrange(lo, len(self.history) - FOLLOW_UP_GAP)]
            if self.uses[phone] < MAX_TEXTS_PER_NUMBER:
                self.uses[phone] += 1
                self.history.append(phone)
                return phone
        while True:
            phone = f"+86138{rng.randrange(10**8):08d}"
            if phone not in self.uses:
                break
        self.uses[phone] = 1
        self.history.append(phone)
        return phone

    def params(self) -> dict[str, str]:
        """One inbound SMS form, in the order Twilio posts its fields."""
        sid = f"SM{self.rng.getrandbits(128):032x}"
        text = self.texts[self.made % len(self.texts)]
        return {
            "ToCountry": "US",
            "ToState": "CA",
            "SmsMessageSid": sid,
            "NumMedia": "0",
            "ToCity": "SAN FRANCISCO",
            "FromZip": "",
            "SmsSid": sid,
            "FromState": "",
            "SmsStatus": "received",
            "FromCity": "",
            "Body": text,
            "FromCountry": "CN",
            "To": TO_NUMBER,
            "ToZip": "94105",
            "AddOns": ADD_ONS,
            "NumSegments": str(segments(text)),
            "ReferralNumMedia": "0",
            "MessageSid": sid,
            "AccountSid": ACCOUNT_SID,
            "From": self._phone(),
            "ApiVersion": "2010-04-01",
        }

    def _quote(self, value: str) -> str:
        q = self._quoted.get(value)
        if q is None:
            q = self._quoted[value] = quote_plus(value, safe="")
        return q

    def raw(self) -> bytes:
        params = self.params()
        signature = self.validator.compute_signature(self.url, params)
        body = "&".join(
            f"{k}={self._quote(v) if k in ('Body', 'AddOns') else quote_plus(v)}"
            for k, v in params.items()
        ).encode()
        self.made += 1
        return twilio_request(PATH, self.host, signature, body, self.rng)

    def batch(self, n: int) -> list[bytes]:
        t0 = time.perf_counter()
        self.history = []
        out = [self.raw() for _ in range(n)]
        self.seconds += time.perf_counter() - t0
        return out


# ------------------------------------------------------------------ wrk (closed loop)

LUA = r"""
local prefix = %(prefix)s
local marker = %(marker)s
reqs, n, i, sent = {}, 0, 0, 0
ok, bad, unmarked, first = 0, 0, 0, ""
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(prefix .. tid, "rb"))
  local data = f:read("*a")
  f:close()
  local pos, len = 1, #data
  while pos <= len do
    local nl = string.find(data, "\n", pos, true)
    local size = tonumber(string.sub(data, pos, nl - 1))
    n = n + 1
    reqs[n] = string.sub(data, nl + 1, nl + size)
    pos = nl + size + 1
  end
end

function request()
  sent = sent + 1
  i = i %% n + 1
  return reqs[i]
end

function response(status, headers, body)
  if status == 200 and body and string.find(body, "<Response", 1, true) then
    ok = ok + 1
    if not string.find(body, marker, 1, true) then unmarked = unmarked + 1 end
  else
    bad = bad + 1
    if first == "" then
      first = status .. " " .. string.gsub(string.sub(body or "", 1, 400), "%%s+", " ")
    end
  end
end

function done(summary, latency, requests)
  local tok, tbad, tunmarked, replayed, tfirst = 0, 0, 0, 0, ""
  for _, t in ipairs(threads) do
    tok = tok + t:get("ok")
    tbad = tbad + t:get("bad")
    tunmarked = tunmarked + t:get("unmarked")
    replayed = replayed + math.max(0, t:get("sent") - t:get("n"))
    local f = t:get("first")
    if tfirst == "" and f ~= "" then tfirst = f end
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH %%d %%d %%d %%d %%.1f %%.1f %%d %%d %%d %%d %%d %%d %%d\n",
    summary.requests, summary.duration, tok, tbad,
    latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout, tunmarked, replayed))
  io.write("BENCHFIRST " .. tfirst .. "\n")
end
"""


def write_streams(reqs: list[bytes], threads: int, prefix: Path) -> list[Path]:
    """Deal the requests round-robin into one file per wrk thread (``prefix1`` ...)."""
    paths = []
    for t in range(threads):
        path = Path(f"{prefix}{t + 1}")
        with open(path, "wb") as f:
            for raw in reqs[t::threads]:
                f.write(b"%d\n" % len(raw))
                f.write(raw)
        paths.append(path)
    return paths


def run_wrk(
    host: str,
    port: int,
    reqs: list[bytes],
    workdir: Path,
    *,
    connections: int,
    threads: int,
    duration: float,
    procs: list[subprocess.Popen[bytes]],
    marker: bytes = MARKER,
) -> LoadResult:
    prefix = workdir / "webhook-stream-"
    streams = write_streams(reqs, threads, prefix)
    script = workdir / "webhook.lua"
    lua = LUA % {"prefix": f'"{prefix}"', "marker": _lua_string(marker.decode())}
    script.write_text(lua, encoding="utf-8")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        out = wrk_output(
            f"http://{host}:{port}{PATH}",
            script,
            connections=connections,
            duration=duration,
            threads=threads,
            procs=procs,
            timeout_s=TIMEOUT_S,
        )
    finally:
        script.unlink(missing_ok=True)
        for path in streams:
            path.unlink(missing_ok=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result, extra = parse_wrk(out, connections)
    result.client_cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result.counts = {"unmarked": int(extra[0]), "replayed": int(extra[1])}
    return result


# ------------------------------------------------------------------ asyncio clients


@dataclass
class _Tally:
    marker: bytes
    ok: int = 0
    bad: int = 0
    unmarked: int = 0  # TwiML without the marker
    sent: int = 0
    waited: int = 0
    first: str = ""

    def answer(self, status: int, body: bytes) -> bool:
        """Count one answer: anything but 200 with TwiML is an error."""
        if status == 200 and b"<Response" in body:
            self.ok += 1
            self.unmarked += self.marker not in body
            return True
        else:
            self.bad += 1
            if not self.first:
                text = body[:400].decode("utf-8", "replace")
                self.first = f"{status} {text}" if status else f"no answer: {text}"
            return False


def _pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] * 1000


def _runner():  # type: ignore[no-untyped-def]
    try:
        import uvloop

        return uvloop.run
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        return asyncio.run


async def _closed_loop(
    host: str, port: int, reqs: list[bytes], connections: int, duration: float, marker: bytes
) -> LoadResult:
    latencies: list[float] = []
    state = _Tally(marker)
    stop_at = time.monotonic() + duration

    async def one(c: int) -> None:
        conn = _Conn(host, port)
        mine = reqs[c::connections] or reqs
        k = 0
        try:
            while time.monotonic() < stop_at:
                raw = mine[k % len(mine)]
                k += 1
                state.sent += 1
                t0 = time.perf_counter()
                try:
                    status, body = await asyncio.wait_for(conn.request(raw), TIMEOUT_S)
                except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
                    conn.close()
                    status, body = 0, repr(exc).encode()
                latencies.append(time.perf_counter() - t0)
                state.answer(status, body)
        finally:
            conn.close()

    start = time.monotonic()
    await asyncio.gather(*(one(c) for c in range(connections)))
    seconds = time.monotonic() - start
    return LoadResult(
        client="python-asyncio",
        connections=connections,
        duration_s=round(seconds, 2),
        requests=len(latencies),
        rps=state.ok / seconds,
        p50_ms=_pct(latencies, 0.50),
        p99_ms=_pct(latencies, 0.99),
        errors=state.bad,
        first_error=state.first or None,
        counts={
            "unmarked": state.unmarked,
            "replayed": max(0, state.sent - len(reqs)),
        },
    )


def run_closed_python(
    host: str,
    port: int,
    reqs: list[bytes],
    *,
    connections: int,
    duration: float,
    marker: bytes = MARKER,
) -> LoadResult:
    before = resource.getrusage(resource.RUSAGE_SELF)
    result: LoadResult = _runner()(_closed_loop(host, port, reqs, connections, duration, marker))
    after = resource.getrusage(resource.RUSAGE_SELF)
    result.client_cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result


@dataclass
class OpenLoopResult:
    """A fixed-rate run: latency from each request's scheduled send time."""

    target_rps: float
    achieved_rps: float
    connections: int
    duration_s: float
    requests: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    p99_answered_ms: float  # p99 of the requests answered with TwiML only
    errors: int
    first_error: str | None = None
    waited_for_connection: int = 0  # requests that found every connection busy
    unmarked: int = 0  # answers without the marker

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        rounded = ("target_rps", "achieved_rps", "p50_ms", "p90_ms", "p99_ms", "max_ms")
        for key in (*rounded, "p99_answered_ms"):
            d[key] = round(d[key], 2)
        return d


async def _open_loop(
    host: str, port: int, reqs: list[bytes], rate: float, connections: int, marker: bytes
) -> OpenLoopResult:
    loop = asyncio.get_running_loop()
    idle: asyncio.Queue[tuple[_Conn, float]] = asyncio.Queue()  # (connection, last used)
    for _ in range(connections):
        conn = _Conn(host, port)
        conn.reader, conn.writer = await asyncio.open_connection(host, port)
        idle.put_nowait((conn, loop.time()))
    latencies: list[float] = []
    answered: list[float] = []
    state = _Tally(marker)

    async def send(conn: _Conn, raw: bytes, scheduled: float, used: float) -> None:
        if loop.time() - used > IDLE_REOPEN_S:
            conn.close()  # the server may close it any moment: a new one, as Twilio would
        try:
            status, body = await asyncio.wait_for(conn.request(raw), TIMEOUT_S)
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
            conn.close()
            status, body = 0, repr(exc).encode()
        now = loop.time()
        latencies.append(now - scheduled)
        idle.put_nowait((conn, now))
        if state.answer(status, body):
            answered.append(now - scheduled)

    tasks = []
    start = loop.time() + 0.05
    for k, raw in enumerate(reqs):
        scheduled = start + k / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if idle.empty():
            state.waited += 1
        conn, used = await idle.get()
        tasks.append(asyncio.create_task(send(conn, raw, scheduled, used)))
    await asyncio.gather(*tasks)
    seconds = loop.time() - start
    while not idle.empty():
        idle.get_nowait()[0].close()
    return OpenLoopResult(
        target_rps=rate,
        achieved_rps=state.ok / seconds if seconds else 0.0,
        connections=connections,
        duration_s=round(seconds, 2),
        requests=len(latencies),
        p50_ms=_pct(latencies, 0.50),
        p90_ms=_pct(latencies, 0.90),
        p99_ms=_pct(latencies, 0.99),
        max_ms=max(latencies, default=0.0) * 1000,
        p99_answered_ms=_pct(answered, 0.99),
        errors=state.bad,
        first_error=state.first or None,
        waited_for_connection=state.waited,
        unmarked=state.unmarked,
    )


def run_open(
    host: str,
    port: int,
    reqs: list[bytes],
    *,
    rate: float,
    connections: int,
    marker: bytes = MARKER,
) -> OpenLoopResult:
    # The client's own pauses would count as the server's latency: its heap (every
    # pre-signed request) is kept out of the collector while it measures.
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        result: OpenLoopResult = _runner()(_open_loop(host, port, reqs, rate, connections, marker))
    finally:
        gc.enable()
        gc.unfreeze()
    return result
