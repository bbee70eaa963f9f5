"""Signed Twilio Voice webhooks for the IVR: tickets to ask about, calls at a node, keys.

Twilio posts a form to ``/ivr/twilio/voice`` when a call comes in and to
``/ivr/twilio/gather?node=<node>`` with the keys pressed at that node. A call's place
in the flow is kept per CallSid, and a call answers a node once: a request measures
the step it means only if its call stands at that node. So calls are brought there
by the real webhooks (:func:`walk_calls`, one call per caller), then copied in the
database under CallSids of their own (:func:`copy_calls`): every measured request
has a call of its own, at the right node, from a caller with a ticket.

Two steps of the demo flow (``ivr/flows/demo.yaml``) are measured:

* menu: a key at the main menu (``1``: the question for a reference number);
* lookup: a reference typed from the phone its ticket was opened with: the ticket,
  its citizen's phone and its last public event are looked up and read out.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import psycopg
from psycopg import sql
from twilio.request_validator import RequestValidator

from bench.load import _Conn
from bench.webhook import ACCOUNT_SID, TIMEOUT_S, TO_NUMBER, _runner, twilio_request

VOICE = "/ivr/twilio/voice"
GATHER = "/ivr/twilio/gather"


def asks(node: str) -> bytes:
    """What a TwiML answer holds when its question is ``node`` (the Gather's action)."""
    return f'{GATHER}?node={quote(node)}"'.encode()


@dataclass(frozen=True)
class Step:
    name: str
    route: tuple[tuple[str, str], ...]  # (node, keys) from the start to ``node``
    node: str  # where the measured key is pressed
    keys: str | None  # None: the caller's ticket reference
    expect: str  # the question the answer asks next
    title: str


MENU = Step(
    "menu",
    (("welcome", "1"),),
    "main",
    "1",
    "track",
    f"POST {GATHER}?node=main, Digits=1 -> the reference question",
)
LOOKUP = Step(
    "lookup",
    (("welcome", "1"), ("main", "1")),
    "track",
    None,
    "after_track",
    f"POST {GATHER}?node=track, Digits=<reference> -> the status read out",
)
STEPS = (MENU, LOOKUP)


class VoiceForms:
    """Raw voice webhooks as Twilio posts them, signed for ``public_base_url``."""

    def __init__(self, token: str, public_base_url: str, host: str, seed: int = 11) -> None:
        self.validator = RequestValidator(token)
        self.base = public_base_url.rstrip("/")
        self.host = host  # the Host header
        self.rng = random.Random(seed)
        self.made = 0
        self.seconds = 0.0

    def sid(self) -> str:
        return f"CA{self.rng.getrandbits(128):032x}"

    @staticmethod
    def params(sid: str, caller: str, status: str) -> dict[str, str]:
        """The fields of every voice webhook, in the order Twilio posts them."""
        return {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "CallSid": sid,
            "CallStatus": status,
            "Called": TO_NUMBER,
            "CalledCity": "SAN FRANCISCO",
            "CalledCountry": "US",
            "CalledState": "CA",
            "CalledZip": "94105",
            "Caller": caller,
            "CallerCity": "",
            "CallerCountry": "CN",
            "CallerState": "",
            "CallerZip": "",
            "Direction": "inbound",
            "From": caller,
            "FromCity": "",
            "FromCountry": "CN",
            "FromState": "",
            "FromZip": "",
            "To": TO_NUMBER,
            "ToCity": "SAN FRANCISCO",
            "ToCountry": "US",
            "ToState": "CA",
            "ToZip": "94105",
        }

    def _raw(self, target: str, params: dict[str, str]) -> bytes:
        signature = self.validator.compute_signature(self.base + target, params)
        self.made += 1
        return twilio_request(target, self.host, signature, urlencode(params).encode(), self.rng)

    def voice(self, sid: str, caller: str) -> bytes:
        return self._raw(VOICE, self.params(sid, caller, "ringing"))

    def gather(self, sid: str, caller: str, node: str, digits: str) -> bytes:
        params = self.params(sid, caller, "in-progress")
        params.update(Digits=digits, FinishedOnKey="", msg="Gather End")
        return self._raw(f"{GATHER}?node={quote(node)}", params)

    def gathers(
        self, calls: list[tuple[str, str]], node: str, digits: Callable[[str], str]
    ) -> list[bytes]:
        """One key press at ``node`` per (CallSid, caller)."""
        t0 = time.perf_counter()
        out = [self.gather(sid, caller, node, digits(caller)) for sid, caller in calls]
        self.seconds += time.perf_counter() - t0
        return out


# ------------------------------------------------------------------ preparation


def open_tickets(host: str, port: int, token: str, bodies: list[str], n: int) -> dict[str, str]:
    """``n`` tickets through POST /api/v1/tickets, each from a new caller: phone -> reference."""
    rng = random.Random(139)
    phones: dict[str, None] = {}
    while len(phones) < n:
        phones[f"+86139{rng.randrange(10**8):08d}"] = None

    def post(k: int, phone: str) -> tuple[str, str]:
        body = {**json.loads(bodies[k % len(bodies)]), "phone": phone}
        req = urllib.request.Request(
            f"http://{host}:{port}/api/v1/tickets",
            data=json.dumps(body, ensure_ascii=False).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as r:
            return phone, str(json.loads(r.read())["reference"])

    with ThreadPoolExecutor(8) as pool:
        return dict(pool.map(post, range(n), phones))


async def _exchange(
    host: str, port: int, reqs: list[bytes], connections: int
) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = [(0, b"")] * len(reqs)
    todo = iter(enumerate(reqs))  # shared: each request is sent once

    async def one() -> None:
        conn = _Conn(host, port)
        try:
            for k, raw in todo:
                try:
                    out[k] = await asyncio.wait_for(conn.request(raw), TIMEOUT_S)
                except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
                    conn.close()
                    out[k] = (0, repr(exc).encode())
        finally:
            conn.close()

    await asyncio.gather(*(one() for _ in range(connections)))
    return out


def exchange(host: str, port: int, reqs: list[bytes], connections: int = 8) -> list[bytes]:
    """Send each request once; every answer must be TwiML asking something."""
    answers: list[tuple[int, bytes]] = _runner()(_exchange(host, port, reqs, connections))
    for status, body in answers:
        if status != 200 or b"<Response" not in body:
            text = body[:400].decode("utf-8", "replace")
            raise RuntimeError(f"voice webhook answered {status}: {text}")
    return [body for _, body in answers]


def walk_calls(
    host: str, port: int, forms: VoiceForms, callers: list[str], step: Step
) -> list[str]:
    """One call from each caller, brought by the webhooks to ``step.node``: the CallSids."""
    sids = [forms.sid() for _ in callers]
    calls = list(zip(sids, callers, strict=True))
    reqs = [forms.voice(sid, caller) for sid, caller in calls]
    for node, keys in (*step.route, (step.node, "")):
        for body in exchange(host, port, reqs):
            if asks(node) not in body:
                text = body[:400].decode("utf-8", "replace")
                raise RuntimeError(f"a call to bring to '{step.node}' is not at '{node}': {text}")
        reqs = [forms.gather(sid, caller, node, keys) for sid, caller in calls] if keys else []
    return sids


def copy_calls(dsn: str, sids: list[str], n: int, tag: str) -> list[tuple[str, str]]:
    """``n`` new calls, copies of the calls ``sids`` in turn, each under a CallSid of its
    own (made from ``tag``, new for every batch): (CallSid, caller) each."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        columns = [
            row[0]
            for row in conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND table_name = 'calls'"
                " AND column_name NOT IN ('id', 'call_sid')"
                " AND is_identity = 'NO' AND is_generated = 'NEVER' ORDER BY ordinal_position"
            ).fetchall()
        ]
        query = sql.SQL(
            "INSERT INTO calls (call_sid, {cols})"
            " SELECT 'CA' || md5(%s || ':' || t.id || ':' || g), {t_cols}"
            " FROM calls t CROSS JOIN generate_series(1, %s) g"
            " WHERE t.provider = 'twilio' AND t.call_sid = ANY(%s)"
            " ORDER BY g, t.id LIMIT %s RETURNING call_sid, from_addr"
        ).format(
            cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
            t_cols=sql.SQL(", ").join(sql.Identifier("t", c) for c in columns),
        )
        rows = conn.execute(query, (tag, -(-n // len(sids)), sids, n)).fetchall()
        conn.execute("ANALYZE calls")
    return [(sid, caller) for sid, caller in rows]
