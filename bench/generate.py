"""A city's ticket history at scale: N tickets (1,000,000 by default) in PostgreSQL.

``python -m bench.generate --url postgresql://... --tickets 1000000`` adds to a
migrated, demo-seeded database (the catalogue gives services, departments and
districts):

* citizens: about 0.3 per ticket, distinct ``+86139…`` phones; a few call often, most
  once or twice (92 % of tickets have a caller, the rest came without a phone);
* tickets over the last two years, ids rising with ``created_at``: nearly all closed
  (some resolved or merged), a few thousand still open, the youngest the most often
  (received, returned, reopened, dispatched, accepted), with deadlines, SLA states,
  replies and ratings as the lifecycle leaves them; channels mixed; each service routed
  to its bureau, or for a territorial one to the office of the address's district or
  street; references are 14 digits (the ticket's local date, 7 digits numbering the
  rows from the table's last id, the Damm check digit): unique, and valid as the IVR
  checks them;
* one inbound text per SMS ticket, and a few thousand ended calls of callers who have
  tickets (the console pops a call with its caller's history);

then VACUUM (ANALYZE), so the planner sees the data as production would. Everything is
generated inside PostgreSQL (``INSERT ... SELECT generate_series``, the tickets by two
sessions side by side); a million tickets take one to two minutes on two cores.
"""

from __future__ import annotations

import argparse
import random
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg

from bench.bodies import ASKS, IMPACTS, OPENINGS, SITUATIONS
from contact.seed.places import DISTRICTS

PHONE_PREFIX = "+86139"  # intake bodies use +86138: the two never meet
CALL_SID_PREFIX = "CAbench"
LOCAL_TZ = "Asia/Shanghai"
COMBOS = 4096  # (service, department, district, text) rows the tickets draw from
WORKING_TO_CALENDAR = 3.0  # minutes of working time are about three calendar minutes


def damm_sql(body: str, length: int) -> str:
    """The Damm check digit (contact.reference) of the ``length`` digits of the SQL bigint
    ``body``, as one SQL expression: a lookup in the operation table per digit."""
    from contact.reference import _DAMM

    table = "ARRAY[" + ",".join(str(v) for row in _DAMM for v in row) + "]::int[]"
    state = "0"
    for i in range(1, length + 1):
        digit = f"mod({body} / {10 ** (length - i)}::bigint, 10)"
        state = f"({table})[{state} * 10 + {digit} + 1]"
    return f"({state})::text"


# Status by age (u: a uniform draw): the young tickets are the open ones.
STATUS_SQL = """
CASE
  WHEN age < interval '1 day' THEN CASE
    WHEN u < 0.30 THEN 'received' WHEN u < 0.33 THEN 'returned'
    WHEN u < 0.63 THEN 'dispatched' WHEN u < 0.83 THEN 'accepted'
    WHEN u < 0.93 THEN 'resolved' ELSE 'closed' END
  WHEN age < interval '7 days' THEN CASE
    WHEN u < 0.010 THEN 'received' WHEN u < 0.020 THEN 'returned'
    WHEN u < 0.030 THEN 'reopened' WHEN u < 0.090 THEN 'dispatched'
    WHEN u < 0.190 THEN 'accepted' WHEN u < 0.490 THEN 'resolved'
    WHEN u < 0.500 THEN 'merged' ELSE 'closed' END
  WHEN age < interval '30 days' THEN CASE
    WHEN u < 0.010 THEN 'reopened' WHEN u < 0.015 THEN 'dispatched'
    WHEN u < 0.035 THEN 'accepted' WHEN u < 0.135 THEN 'resolved'
    WHEN u < 0.145 THEN 'merged' ELSE 'closed' END
  ELSE CASE WHEN u < 0.015 THEN 'merged' WHEN u < 0.020 THEN 'resolved' ELSE 'closed' END
END
"""

CHANNEL_SQL = """
CASE WHEN uc < 0.55 THEN 'voice' WHEN uc < 0.70 THEN 'sms' WHEN uc < 0.82 THEN 'web'
     WHEN uc < 0.90 THEN 'agent' WHEN uc < 0.95 THEN 'kiosk' ELSE 'open311' END
"""

# One row per ticket, in three layers: draws; status and channel; the lifecycle's times.
TICKETS_SQL = f"""
INSERT INTO tickets (
    reference, status, kind, priority, channel, locale, service_id, department_id,
    citizen_id, anonymous, title, description, address, district_id, fields,
    routing_department_id, routing_reason, routing_confidence, routing_rule,
    accept_due_at, due_at, sla_state, extension, dispatched_at, accepted_at,
    resolved_at, closed_at, reply, satisfaction, solved, reopen_count, dispatch_count,
    urge_count, version, created_at, updated_at)
SELECT
    lpad(body::text, 13, '0') || {damm_sql("body", 13)},
    status, kind, CASE WHEN urgent THEN 'urgent' ELSE 'normal' END, channel,
    CASE WHEN ul < 0.03 THEN 'en' ELSE 'zh-CN' END, service_id,
    CASE WHEN dispatched_at IS NOT NULL THEN department_id END,
    citizen_id, citizen_id IS NOT NULL AND ul > 0.95, title, description, address,
    district_id, '{{}}'::jsonb, department_id, routing_reason, 0.85, 'keyword',
    CASE WHEN dispatched_at IS NOT NULL THEN dispatched_at + accept_for END,
    due_at,
    CASE
        WHEN status IN ('resolved', 'closed') THEN
            CASE WHEN resolved_at <= due_at THEN 'met' ELSE 'missed' END
        WHEN status = 'merged' THEN 'ok'
        WHEN due_at < :now THEN 'overdue'
        WHEN due_at < :now + (due_at - created_at) * 0.2 THEN 'due_soon'
        ELSE 'ok'
    END,
    'none', dispatched_at, accepted_at, resolved_at, closed_at,
    CASE WHEN resolved_at IS NOT NULL THEN reply END,
    CASE WHEN status = 'closed' AND us < 0.7 THEN 1 + floor(5 * power(us / 0.7, 0.4))::int END,
    CASE WHEN status = 'closed' AND us < 0.7 THEN us > 0.1 END,
    CASE WHEN status = 'reopened' THEN 1 ELSE 0 END,
    CASE WHEN dispatched_at IS NOT NULL OR status = 'returned' THEN 1 ELSE 0 END,
    CASE WHEN status IN ('dispatched', 'accepted') AND due_at < :now THEN 1 ELSE 0 END,
    1 + (dispatched_at IS NOT NULL)::int + (accepted_at IS NOT NULL)::int
      + (resolved_at IS NOT NULL)::int + (closed_at IS NOT NULL)::int,
    created_at,
    greatest(created_at, dispatched_at, accepted_at, resolved_at, closed_at)
FROM (
    SELECT l.*,
        CASE WHEN status IN ('resolved', 'closed') THEN least(:now, greatest(accepted_at,
            created_at + (due_at - created_at) * (0.1 + ut)))
        END AS resolved_at,
        CASE WHEN status = 'closed' THEN least(:now, greatest(accepted_at,
            created_at + (due_at - created_at) * (0.1 + ut)) + interval '1 hour' * (2 + 70 * us))
        END AS closed_at
    FROM (
        SELECT k.*,
            CASE WHEN status NOT IN ('received', 'returned', 'merged') THEN least(:now,
                created_at + interval '1 minute' * (3 + 90 * ut * ut)) END AS dispatched_at,
            CASE WHEN status IN ('accepted', 'reopened', 'resolved', 'closed') THEN least(:now,
                created_at + interval '1 minute' * (3 + 90 * ut * ut)
                + accept_for * (0.05 + 0.9 * us)) END AS accepted_at,
            created_at + CASE WHEN urgent THEN urgent_resolve_for ELSE resolve_for END AS due_at
        FROM (
            SELECT d.*, c.*, z.id AS citizen_id, {STATUS_SQL} AS status, {CHANNEL_SQL} AS channel,
                to_char(d.created_at AT TIME ZONE '{LOCAL_TZ}', 'YYMMDD')::bigint * 10000000
                    + mod(:first + d.g, 10000000) AS body,
                d.ul < 0.05 AS urgent
            FROM (
                SELECT g, created_at, :now - created_at AS age, u, uc, ul, us, ut,
                    floor(ucombo * {COMBOS})::int AS combo,
                    CASE WHEN uz < 0.92 THEN floor(:citizens * power(ucit, 1.6))::int END
                        AS citizen_n
                FROM (
                    SELECT g,
                        :start + (:span / :n) * (g - 1 + random()) AS created_at,
                        random() AS u, random() AS uc, random() AS ul, random() AS us,
                        random() AS ut, random() AS ucombo, random() AS ucit, random() AS uz
                    FROM generate_series(:lo::bigint, :n::bigint, :step::bigint) AS g
                ) AS r
            ) AS d
            JOIN pg_temp.bench_combo AS c ON c.n = d.combo
            LEFT JOIN pg_temp.bench_citizen AS z ON z.n = d.citizen_n
        ) AS k
    ) AS l
) AS m
ON CONFLICT (reference) DO NOTHING
"""


@dataclass
class Combo:
    service_id: int
    department_id: int
    district_id: int | None
    kind: str
    title: str
    description: str
    address: str
    routing_reason: str
    reply: str
    accept_for: float  # calendar minutes
    resolve_for: float
    urgent_resolve_for: float


@dataclass
class Report:
    tickets: int = 0
    citizens: int = 0
    messages: int = 0
    calls: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())
        return (
            f"{self.tickets} tickets, {self.citizens} citizens, {self.messages} texts, "
            f"{self.calls} calls ({steps})"
        )


def _calendar_minutes(minutes: int, working_time: bool) -> float:
    return minutes * WORKING_TO_CALENDAR if working_time else float(minutes)


def _places() -> list[tuple[str, str | None, str]]:
    """(district code, street code or None, place) for every road and landmark."""
    out: list[tuple[str, str | None, str]] = []
    for d in DISTRICTS:
        for zh, _ in list(d.get("roads", [])) + list(d.get("landmarks", [])):
            out.append((d["code"], None, zh))
        for s in d.get("streets", []):
            for zh, _ in list(s.get("roads", [])) + list(s.get("landmarks", [])):
                out.append((d["code"], s["code"], zh))
    return out


def make_combos(conn: psycopg.Connection[Any], rng: random.Random, n: int) -> list[Combo]:
    """``n`` draws of a service (some far more asked for than others), where it happened,
    who it went to and what the caller said."""
    depts = {
        code: (did, parent, district)
        for did, code, parent, district in conn.execute(
            "SELECT id, code, parent_id, district_id FROM departments WHERE active"
        ).fetchall()
    }
    by_id = {did: code for code, (did, _, _) in depts.items()}
    districts = dict(conn.execute("SELECT code, id FROM districts").fetchall())
    names = {d["code"]: d["name_zh"] for d in DISTRICTS}
    weights = [float(d.get("weight", 10)) for d in DISTRICTS]
    places = _places()
    services = conn.execute(
        "SELECT s.id, s.kind, s.name_zh, s.keywords, s.territorial, s.default_department_id,"
        " p.accept_minutes, p.resolve_minutes, p.urgent_resolve_minutes, p.working_time"
        " FROM services s JOIN deadline_policies p ON p.id = s.deadline_policy_id"
        " WHERE s.active ORDER BY s.id"
    ).fetchall()
    if not services or not districts:
        raise SystemExit("bench.generate: no catalogue here; migrate and seed the demo first")
    popularity = [rng.paretovariate(1.2) for _ in services]
    combos: list[Combo] = []
    for _ in range(n):
        sid, kind, name, keywords, territorial, bureau_id, acc, res, urg, working = rng.choices(
            services, popularity
        )[0]
        district = rng.choices(DISTRICTS, weights)[0]["code"]
        _, street, place = rng.choice([p for p in places if p[0] == district])
        dept_id = bureau_id
        reason = "关键词匹配：服务目录默认部门"
        if territorial:
            bureau = by_id[bureau_id]
            office = f"{bureau}-{district}"
            if street and f"{office}-{street}" in depts:
                dept_id, reason = depts[f"{office}-{street}"][0], "属地：地址所在街道"
            elif office in depts:
                dept_id, reason = depts[office][0], "属地：地址所在区"
        zh = [k for k in (keywords or []) if not k.isascii()] or [name]
        kw = rng.choice(zh)
        text = rng.choice(OPENINGS) + rng.choice(SITUATIONS).format(place=place, kw=kw)
        while len(text) < rng.randint(40, 110):
            text += rng.choice(IMPACTS)
        text += rng.choice(ASKS)
        number = f"{rng.randint(1, 399)}号" if place.endswith(("路", "大道", "街")) else ""
        combos.append(
            Combo(
                service_id=sid,
                department_id=dept_id,
                district_id=districts.get(district),
                kind=kind,
                title=name,
                description=text[:160],
                address=f"江城市{names[district]}{place}{number}",
                routing_reason=reason,
                reply=f"经核实，{place}{kw}问题已安排处理，感谢您的反映。",
                accept_for=_calendar_minutes(acc, working),
                resolve_for=_calendar_minutes(res, working),
                urgent_resolve_for=_calendar_minutes(urg, working),
            )
        )
    return combos


def _load_combos(conn: psycopg.Connection[Any], combos: list[Combo]) -> None:
    conn.execute(
        "CREATE TEMP TABLE bench_combo (n int PRIMARY KEY, service_id int, department_id int,"
        " district_id int, kind text, title text, description text, address text,"
        " routing_reason text, reply text, accept_for interval, resolve_for interval,"
        " urgent_resolve_for interval) ON COMMIT DROP"
    )
    with conn.cursor().copy(
        "COPY bench_combo FROM STDIN WITH (FORMAT text)"  # minutes as '<n> minutes'
    ) as copy:
        for n, c in enumerate(combos):
            copy.write_row(
                (
                    n,
                    c.service_id,
                    c.department_id,
                    c.district_id,
                    c.kind,
                    c.title,
                    c.description,
                    c.address,
                    c.routing_reason,
                    c.reply,
                    f"{c.accept_for} minutes",
                    f"{c.resolve_for} minutes",
                    f"{c.urgent_resolve_for} minutes",
                )
            )


def _run(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any]) -> int:
    """Execute with ``:name`` placeholders (``::type`` casts stay as they are)."""
    sql = re.sub(r"(?<![:\w]):([a-z_]+)\b", r"%(\1)s", sql)
    return conn.execute(sql, params).rowcount  # type: ignore[call-overload]


def _session(conn: psycopg.Connection[Any], seed: float) -> None:
    conn.execute("SET synchronous_commit = off")
    conn.execute("SET work_mem = '64MB'")
    conn.execute("SET jit = off")  # compiling the long expressions would cost seconds
    conn.execute("SELECT setseed(%s)", (seed,))


def _citizen_map(conn: psycopg.Connection[Any], n_citizens: int) -> None:
    """bench_citizen: n → id of the citizen with the n-th phone (low n: frequent callers)."""
    start = len(PHONE_PREFIX) + 1
    conn.execute(
        "CREATE TEMP TABLE bench_citizen ON COMMIT DROP AS"
        " SELECT substr(phone, %s)::int - 1 AS n, id FROM citizens"
        " WHERE phone LIKE %s AND length(phone) = %s AND substr(phone, %s)::int <= %s",
        (start, PHONE_PREFIX + "%", start + 7, start, n_citizens),
    )
    conn.execute("ALTER TABLE bench_citizen ADD PRIMARY KEY (n)")
    conn.execute("ANALYZE bench_citizen")


def _insert_tickets(
    url: str, combos: list[Combo], seed: float, n_citizens: int, params: dict[str, Any]
) -> int:
    """One share of the tickets (every ``step``-th from ``lo``), in a transaction of its own."""
    with psycopg.connect(url) as conn:
        _session(conn, seed)
        _load_combos(conn, combos)
        _citizen_map(conn, n_citizens)
        return _run(conn, TICKETS_SQL, params)


def generate(
    url: str,
    *,
    tickets: int = 1_000_000,
    citizens: int | None = None,
    calls: int = 2000,
    days: float = 730.0,
    seed: int = 12345,
    parallel: int = 2,
    say: Any = print,
) -> Report:
    """Add ``tickets`` tickets (and their citizens, texts and calls) to the database at
    ``url``; returns what was made. The tickets are inserted by ``parallel`` sessions side
    by side (each takes every ``parallel``-th row, so ids and the heap still follow
    ``created_at``); then texts and calls, then VACUUM (ANALYZE)."""
    if not 0 < tickets < 10**7:
        raise ValueError("between 1 and 9,999,999 tickets (7 digits of the reference)")
    n_citizens = citizens if citizens is not None else max(1, int(tickets * 0.3))
    parallel = max(1, min(parallel, tickets))
    rng = random.Random(seed)
    report = Report()
    t0 = time.monotonic()
    with psycopg.connect(url) as conn:
        _session(conn, rng.random() * 2 - 1)
        combos = make_combos(conn, rng, COMBOS)
        row = conn.execute(
            "SELECT now() - interval '1 minute', coalesce(max(id), 0) FROM tickets"
        ).fetchone()
        assert row is not None
        now, first_ticket = row
        report.citizens = _run(
            conn,
            "INSERT INTO citizens (phone, locale, opt_outs, blocked, created_at)"
            f" SELECT '{PHONE_PREFIX}' || lpad(g::text, 8, '0'),"
            " CASE WHEN random() < 0.03 THEN 'en' ELSE 'zh-CN' END, '[]'::jsonb, false,"
            " :now - :span * random() FROM generate_series(1, :citizens::int) AS g"
            " ON CONFLICT (phone) DO NOTHING",
            {"now": now, "span": timedelta(days=days), "citizens": n_citizens},
        )
        conn.commit()
    report.seconds["citizens"] = time.monotonic() - t0
    say(f"  {report.citizens} citizens ({report.seconds['citizens']:.1f} s)")

    t1 = time.monotonic()
    common = {
        "now": now,
        "start": now - timedelta(days=days),
        "span": timedelta(days=days),
        "n": tickets,
        "step": parallel,
        "citizens": n_citizens,
        "first": first_ticket,
    }
    with ThreadPoolExecutor(parallel) as pool:
        shares = [
            pool.submit(
                _insert_tickets,
                url,
                combos,
                rng.random() * 2 - 1,
                n_citizens,
                {**common, "lo": 1 + i},
            )
            for i in range(parallel)
        ]
        report.tickets = sum(f.result() for f in shares)
    report.seconds["tickets"] = time.monotonic() - t1
    say(f"  {report.tickets} tickets ({report.seconds['tickets']:.1f} s)")

    t2 = time.monotonic()
    with psycopg.connect(url) as conn:
        _session(conn, rng.random() * 2 - 1)
        report.messages = _run(
            conn,
            "INSERT INTO messages (ticket_id, citizen_id, channel, direction, provider,"
            " provider_id, from_addr, to_addr, body, segments, status, created_at, updated_at)"
            " SELECT t.id, t.citizen_id, 'sms', 'in', 'twilio', 'SMbench' || md5(t.reference),"
            " c.phone, '12345', t.description, 1, 'read', t.created_at, t.created_at"
            " FROM tickets t JOIN citizens c ON c.id = t.citizen_id"
            " WHERE t.id > :first AND t.channel = 'sms'"
            " ORDER BY t.id ON CONFLICT DO NOTHING",
            {"first": first_ticket},
        )
        row = conn.execute("SELECT coalesce(max(id), 0) FROM tickets").fetchone()
        span_ids = max(1, (row[0] if row else 0) - first_ticket)
        # Ended calls from the callers of tickets spread over the whole range.
        report.calls = _run(
            conn,
            "INSERT INTO calls (provider, call_sid, direction, purpose, from_addr, to_addr,"
            " citizen_id, ticket_id, locale, status, flow, state, started_at, ended_at,"
            " duration_seconds, updated_at)"
            " SELECT 'twilio', :sid || k || '-' || t.id, 'in', 'ivr', c.phone, '+8612345',"
            " t.citizen_id, CASE WHEN mod(k, 3) > 0 THEN t.id END, t.locale, 'completed',"
            ' \'main\', \'{"path": ["menu", "agent"]}\'::jsonb,'
            " t.created_at - interval '3 minutes',"
            " t.created_at + interval '1 minute' * (1 + mod(k, 9)),"
            " 60 * (4 + mod(k, 9)), t.created_at + interval '1 minute' * (1 + mod(k, 9))"
            " FROM generate_series(1, :calls::int) AS k"
            " JOIN tickets t ON t.id = :first + 1 + mod(k::bigint * 2654435761, :span_ids)"
            " JOIN citizens c ON c.id = t.citizen_id"
            " ORDER BY t.created_at ON CONFLICT DO NOTHING",
            {"sid": CALL_SID_PREFIX, "calls": calls, "first": first_ticket, "span_ids": span_ids},
        )
        report.by_status = dict(
            conn.execute(
                "SELECT status, count(*) FROM tickets WHERE id > %s GROUP BY status ORDER BY 2",
                (first_ticket,),
            ).fetchall()
        )
        conn.commit()
    report.seconds["texts_calls"] = time.monotonic() - t2
    t3 = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("tickets", "citizens", "messages", "calls"):
            conn.execute(f"VACUUM (ANALYZE) {table}")
    report.seconds["vacuum_analyze"] = time.monotonic() - t3
    report.seconds["total"] = time.monotonic() - t0
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__.split("\n")[0])
    p.add_argument("--url", required=True, help="postgresql://... of a migrated, seeded database")
    p.add_argument("--tickets", type=int, default=1_000_000)
    p.add_argument("--citizens", type=int, default=None, help="default: 0.3 per ticket")
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--days", type=float, default=730.0, help="how far back tickets go")
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--parallel", type=int, default=2, help="sessions inserting tickets")
    args = p.parse_args(argv)
    url = args.url.replace("postgresql+psycopg://", "postgresql://")
    report = generate(
        url,
        tickets=args.tickets,
        citizens=args.citizens,
        calls=args.calls,
        days=args.days,
        seed=args.seed,
        parallel=args.parallel,
    )
    print(report.line())
    print("  by status: " + ", ".join(f"{k} {v}" for k, v in report.by_status.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
