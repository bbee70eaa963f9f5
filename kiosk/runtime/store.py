"""The kiosk's own store: submissions waiting to be forwarded, and what it keeps to
work offline (the last catalogue, its identity).

A citizen's submission is committed here before the screen says "submitted", so a
dropped network, a central server that is down or a kiosk that loses power loses
nothing: the forwarder sends every pending row with its own ``Idempotency-Key`` (the
row's id) until the central server has answered with a ticket reference.

SQLite in WAL mode, one file under the kiosk's data directory; every call opens its
own short transaction (the store is used from worker threads).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from contact.reference import damm_digit

SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
    id TEXT PRIMARY KEY,                 -- the Idempotency-Key sent to the central server
    provisional TEXT NOT NULL UNIQUE,    -- K + digits, printed while offline
    payload TEXT NOT NULL,               -- JSON body of POST /api/v1/kiosk/submissions
    created_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',   -- pending | sent | refused
    reference TEXT,                      -- the ticket's reference once sent
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try_at TEXT NOT NULL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS ix_submissions_due ON submissions (status, next_try_at);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (day TEXT PRIMARY KEY, last INTEGER NOT NULL);
"""

PENDING, SENT, REFUSED = "pending", "sent", "refused"
# Retry delays while the central server cannot be reached: doubling, at most 5 minutes.
BACKOFF_FIRST = 2.0
BACKOFF_MAX = 300.0


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()


@dataclass(frozen=True)
class Queued:
    id: str
    provisional: str
    payload: dict[str, Any]
    created_at: datetime
    status: str
    reference: str | None
    attempts: int
    last_error: str | None


def provisional_reference(day: datetime, kiosk_id: int, number: int) -> str:
    """``K`` + local date (YYMMDD) + kiosk (3 digits) + the day's number (3 digits) + a
    Damm check digit: unique across kiosks, and a mistyped digit is caught."""
    body = f"{day:%y%m%d}{kiosk_id % 1000:03d}{number % 1000:03d}"
    return "K" + body + damm_digit(body)


def is_provisional(text: str) -> bool:
    body = text[1:]
    return (
        len(text) == 14
        and text[0] == "K"
        and body.isascii()
        and body.isdigit()
        and damm_digit(body) == "0"
    )


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            db.execute("PRAGMA synchronous=FULL")  # acknowledged means on disk
            db.row_factory = sqlite3.Row
            yield db
        finally:
            db.close()

    # ------------------------------------------------------------ state

    def get_state(self, key: str) -> Any:
        with self._connect() as db:
            row = db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row["value"])

    def set_state(self, key: str, value: Any) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT INTO state (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value, ensure_ascii=False)),
            )

    # ------------------------------------------------------------ submissions

    def add(
        self, submission_id: str, payload: dict[str, Any], kiosk_id: int, tz: ZoneInfo
    ) -> tuple[Queued, bool]:
        """Keep a citizen's submission (once per ``submission_id``: a second tap on
        "submit" gets the first one back) and give it its provisional reference;
        True when it is new."""
        try:
            uuid.UUID(submission_id)
        except ValueError as exc:
            raise ValueError("submission id must be a UUID") from exc
        now = _now()
        day = now.astimezone(tz)
        with self._lock, self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                existing = db.execute(
                    "SELECT * FROM submissions WHERE id = ?", (submission_id,)
                ).fetchone()
                created = existing is None
                if existing is None:
                    key = f"{day:%Y-%m-%d}"
                    db.execute(
                        "INSERT INTO counters (day, last) VALUES (?, 1) "
                        "ON CONFLICT (day) DO UPDATE SET last = last + 1",
                        (key,),
                    )
                    number = db.execute(
                        "SELECT last FROM counters WHERE day = ?", (key,)
                    ).fetchone()["last"]
                    provisional = provisional_reference(day, kiosk_id, number)
                    body = {**payload, "provisional_reference": provisional}
                    db.execute(
                        "INSERT INTO submissions (id, provisional, payload, created_at, "
                        "next_try_at) VALUES (?, ?, ?, ?, ?)",
                        (
                            submission_id,
                            provisional,
                            json.dumps(body, ensure_ascii=False),
                            _iso(now),
                            _iso(now),
                        ),
                    )
                    existing = db.execute(
                        "SELECT * FROM submissions WHERE id = ?", (submission_id,)
                    ).fetchone()
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return _queued(existing), created

    def get(self, submission_id: str) -> Queued | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM submissions WHERE id = ?", (submission_id,)).fetchone()
        return None if row is None else _queued(row)

    def by_provisional(self, provisional: str) -> Queued | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT * FROM submissions WHERE provisional = ?", (provisional,)
            ).fetchone()
        return None if row is None else _queued(row)

    def due(self, limit: int = 20, now: datetime | None = None) -> list[Queued]:
        """Pending submissions whose next try has come, oldest first."""
        when = _iso(now or _now())
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM submissions WHERE status = ? AND next_try_at <= ? "
                "ORDER BY created_at, id LIMIT ?",
                (PENDING, when, limit),
            ).fetchall()
        return [_queued(r) for r in rows]

    def mark_sent(self, submission_id: str, reference: str) -> None:
        with self._connect() as db:
            db.execute(
                "UPDATE submissions SET status = ?, reference = ?, last_error = NULL, "
                "attempts = attempts + 1 WHERE id = ?",
                (SENT, reference, submission_id),
            )

    def mark_refused(self, submission_id: str, error: str) -> None:
        """The central server refused the submission for good (it will never take it as
        it is): kept for staff to look at, not retried."""
        with self._connect() as db:
            db.execute(
                "UPDATE submissions SET status = ?, last_error = ?, attempts = attempts + 1 "
                "WHERE id = ?",
                (REFUSED, error[:500], submission_id),
            )

    def retry_later(self, submission_id: str, error: str, now: datetime | None = None) -> float:
        """Count a failed try and put the next one off (doubling); returns the delay."""
        with self._connect() as db:
            row = db.execute(
                "SELECT attempts FROM submissions WHERE id = ?", (submission_id,)
            ).fetchone()
            attempts = (row["attempts"] if row else 0) + 1
            delay = min(BACKOFF_FIRST * 2 ** (attempts - 1), BACKOFF_MAX)
            db.execute(
                "UPDATE submissions SET attempts = ?, next_try_at = ?, last_error = ? WHERE id = ?",
                (
                    attempts,
                    _iso((now or _now()) + timedelta(seconds=delay)),
                    error[:500],
                    submission_id,
                ),
            )
        return delay

    def retry_all_now(self) -> None:
        """The central server answered again: try every pending row at once."""
        with self._connect() as db:
            db.execute(
                "UPDATE submissions SET next_try_at = ? WHERE status = ?", (_iso(_now()), PENDING)
            )

    def counts(self) -> dict[str, Any]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT status, count(*) AS n, min(created_at) AS oldest FROM submissions "
                "GROUP BY status"
            ).fetchall()
        out: dict[str, Any] = {PENDING: 0, SENT: 0, REFUSED: 0, "oldest_pending": None}
        for r in rows:
            out[r["status"]] = r["n"]
            if r["status"] == PENDING:
                out["oldest_pending"] = r["oldest"]
        return out


def _queued(row: sqlite3.Row) -> Queued:
    return Queued(
        id=row["id"],
        provisional=row["provisional"],
        payload=json.loads(row["payload"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        status=row["status"],
        reference=row["reference"],
        attempts=row["attempts"],
        last_error=row["last_error"],
    )
