"""The kiosk's local queue: once per tap, provisional references, backoff."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kiosk.runtime.store import (
    BACKOFF_MAX,
    PENDING,
    REFUSED,
    SENT,
    Store,
    is_provisional,
    provisional_reference,
)
from kiosk.ui.routes import clean_reference

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "kiosk.db")


def test_a_second_tap_keeps_one_submission(store: Store) -> None:
    sid = str(uuid.uuid4())
    first, new = store.add(sid, {"service": "road", "description": "路灯不亮"}, 7, TZ)
    again, new_again = store.add(sid, {"service": "road", "description": "changed"}, 7, TZ)
    assert new and not new_again
    assert again.provisional == first.provisional
    assert again.payload["description"] == "路灯不亮"
    assert store.counts()[PENDING] == 1


def test_provisional_references_are_unique_checked_and_survive_a_restart(tmp_path: Path) -> None:
    store = Store(tmp_path / "kiosk.db")
    refs = [store.add(str(uuid.uuid4()), {}, 42, TZ)[0].provisional for _ in range(5)]
    reopened = Store(tmp_path / "kiosk.db")
    refs += [reopened.add(str(uuid.uuid4()), {}, 42, TZ)[0].provisional for _ in range(5)]
    assert len(set(refs)) == 10
    assert all(is_provisional(r) for r in refs)
    today = datetime.now(UTC).astimezone(TZ).strftime("%y%m%d")
    assert all(r.startswith(f"K{today}042") for r in refs)
    typo = refs[0][:-2] + str((int(refs[0][-2]) + 1) % 10) + refs[0][-1]
    assert not is_provisional(typo)
    assert reopened.by_provisional(refs[0]) is not None
    assert reopened.counts()[PENDING] == 10


def test_the_provisional_reference_is_in_what_is_sent(store: Store) -> None:
    queued, _ = store.add(str(uuid.uuid4()), {"service": "road"}, 3, TZ)
    assert queued.payload["provisional_reference"] == queued.provisional


def test_backoff_doubles_and_is_capped_and_a_reconnect_retries_at_once(store: Store) -> None:
    sid = str(uuid.uuid4())
    store.add(sid, {}, 1, TZ)
    now = datetime.now(UTC)
    delays = [store.retry_later(sid, "ConnectError", now) for _ in range(12)]
    assert delays[:4] == [2.0, 4.0, 8.0, 16.0]
    assert max(delays) == BACKOFF_MAX
    assert store.due(now=now) == []
    assert [q.id for q in store.due(now=now + timedelta(seconds=BACKOFF_MAX + 1))] == [sid]
    store.retry_all_now()
    assert [q.id for q in store.due()] == [sid]


def test_sent_and_refused_leave_the_queue(store: Store) -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    store.add(a, {}, 1, TZ)
    store.add(b, {}, 1, TZ)
    store.mark_sent(a, "26112237216205")
    store.mark_refused(b, "HTTP 422 validation_failed")
    counts = store.counts()
    assert (counts[PENDING], counts[SENT], counts[REFUSED]) == (0, 1, 1)
    assert store.due() == []
    assert store.get(a) is not None and store.get(a).reference == "26112237216205"  # type: ignore[union-attr]


def test_a_submission_id_must_be_a_uuid(store: Store) -> None:
    with pytest.raises(ValueError):
        store.add("1; DROP TABLE submissions", {}, 1, TZ)


def test_a_format_that_is_not_ours_is_not_provisional() -> None:
    assert is_provisional(provisional_reference(datetime(2026, 11, 22, tzinfo=TZ), 5, 1))
    assert not is_provisional("K123")
    assert not is_provisional("26112237216205")


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("2611 2237 2162 05", "26112237216205"),
        ("k2611-2200-7001-1", "K2611220070011"),
        ("https://city.example/m/track?ref=K2611220070011", "K2611220070011"),
        ("http://testserver/m/track?lang=en&ref=26112237216205", "26112237216205"),
    ],
)
def test_typed_or_scanned_references_are_read(typed: str, expected: str) -> None:
    assert clean_reference(typed) == expected
