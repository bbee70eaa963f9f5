"""Twilio status callbacks: forward-only delivery status, retries and dead letters driven by
reported failures, and no second text when a retry races a late success.

Texts go out through the real gateway to the fake Twilio of ``test_twilio_gateway``;
the fake signs the callbacks the way Twilio does and they are posted to the app.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from contact.app import build_runtime, create_app
from contact.models import DeliveryStatus, Message, OutboxStatus
from contact.settings import Settings
from tests.conftest import login
from tests.test_twilio_gateway import (
    PHONE,
    FakeMessage,
    FakeTwilio,
    deliver,
    queue,
    snapshot,
    twilio_settings,
)

Report = tuple[str, dict[str, str], dict[str, str]]


@pytest.fixture
def s(isolated_settings: Settings) -> Settings:
    # A long backoff and sweep interval: the app's own sweeper (which would send through
    # the dev gateway) never picks a row up while a test looks.
    return twilio_settings(
        isolated_settings,
        OUTBOX_BACKOFF_SECONDS=300,
        OUTBOX_MAX_ATTEMPTS=2,
        SWEEP_INTERVAL_SECONDS=3600,
    )


@contextmanager
def twilio_app(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def post(c: TestClient, report: Report) -> Any:
    url, form, headers = report
    return c.post(url, data=form, headers=headers)


def callbacks(settings: Settings, *reports: Report) -> list[int]:
    with twilio_app(settings) as c:
        return [post(c, r).status_code for r in reports]


def sent_one(settings: Settings, fake: FakeTwilio) -> tuple[int, str]:
    oid = queue(settings)
    assert deliver(settings, fake, oid) == "sent"
    return oid, fake.messages[-1].sid


def dead_ids(settings: Settings) -> list[int]:
    with twilio_app(settings) as c:
        r = c.get("/api/v1/outbox", params={"status": "dead"}, headers=login(c, "supervisor1"))
        return [row["id"] for row in r.json()]


def count_messages(settings: Settings) -> int:
    async def go() -> int:
        rt = build_runtime(settings)
        try:
            async with rt.db.session() as session:
                return int((await session.execute(select(func.count(Message.id)))).scalar_one())
        finally:
            await rt.db.dispose()

    return asyncio.run(go())


class TestForwardOnly:
    def test_reports_move_the_status_forward(self, s: Settings) -> None:
        fake = FakeTwilio()
        oid, sid = sent_one(s, fake)
        r = callbacks(s, fake.report(sid, "sent"), fake.report(sid, "delivered"))
        assert r == [200, 200]
        _, msg = snapshot(s, oid)
        assert msg is not None and msg.status == DeliveryStatus.delivered

    def test_out_of_order_delivered_then_sent_stays_delivered(self, s: Settings) -> None:
        fake = FakeTwilio()
        oid, sid = sent_one(s, fake)
        callbacks(s, fake.report(sid, "delivered"), fake.report(sid, "sent"))
        row, msg = snapshot(s, oid)
        assert msg is not None and msg.status == DeliveryStatus.delivered
        assert row.status == OutboxStatus.sent

    def test_a_failure_never_overrides_delivered(self, s: Settings) -> None:
        fake = FakeTwilio()
        oid, sid = sent_one(s, fake)
        callbacks(s, fake.report(sid, "delivered"), fake.report(sid, "undelivered", "30008"))
        row, msg = snapshot(s, oid)
        assert msg is not None and msg.status == DeliveryStatus.delivered
        assert msg.error_code is None
        assert row.status == OutboxStatus.sent  # no retry of a delivered text

    def test_unknown_message_sid_is_200_and_nothing_is_stored(self, s: Settings) -> None:
        fake = FakeTwilio()
        oid, _ = sent_one(s, fake)
        stranger = FakeMessage("SM" + "f" * 32, PHONE, "+15005550006", "hi", None)
        fake.messages.append(stranger)
        before = count_messages(s)
        with twilio_app(s) as c:
            r = post(c, fake.report(stranger.sid, "failed", "30008"))
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("application/xml")
        assert count_messages(s) == before
        row, msg = snapshot(s, oid)
        assert row.status == OutboxStatus.sent and msg is not None
        assert msg.status == DeliveryStatus.queued


class TestSignature:
    @pytest.mark.parametrize("tamper", ["wrong token", "altered status", "other mid", "none"])
    def test_bad_signature_is_403_and_nothing_changes(self, s: Settings, tamper: str) -> None:
        fake = FakeTwilio()
        oid, sid = sent_one(s, fake)
        url, form, headers = fake.report(sid, "failed", "30008")
        if tamper == "wrong token":
            url, form, headers = fake.report(sid, "failed", "30008", token="0" * 32)
        elif tamper == "altered status":
            form = {**form, "MessageStatus": "undelivered", "SmsStatus": "undelivered"}
        elif tamper == "other mid":
            url = url.rsplit("=", 1)[0] + "=999"
        else:
            headers = {}
        with twilio_app(s) as c:
            r = c.post(url, data=form, headers=headers)
        assert r.status_code == 403 and r.json()["error"] == "bad_signature"
        row, msg = snapshot(s, oid)
        assert row.status == OutboxStatus.sent and row.attempts == 1
        assert msg is not None and msg.status == DeliveryStatus.queued and msg.error_code is None


class TestReportedFailures:
    def test_a_retryable_failure_schedules_a_retry_then_a_dead_letter(self, s: Settings) -> None:
        fake = FakeTwilio()
        oid, sid = sent_one(s, fake)
        sent_row, _ = snapshot(s, oid)
        assert callbacks(s, fake.report(sid, "failed", "30008")) == [200]
        row, msg = snapshot(s, oid)
        assert row.status == OutboxStatus.pending and row.attempts == 1
        assert row.next_attempt_at > sent_row.next_attempt_at
        assert "30008" in (row.last_error or "")
        assert msg is not None and msg.status == DeliveryStatus.failed
        assert msg.error_code == "30008"
        assert dead_ids(s) == []

        # The same report again (Twilio retried it) changes nothing.
        callbacks(s, fake.report(sid, "failed", "30008"))
        again, _ = snapshot(s, oid)
        assert (again.status, again.attempts, again.next_attempt_at) == (
            row.status,
            row.attempts,
            row.next_attempt_at,
        )

        # The retry sends a new text (the failed one is not adopted) ...
        assert deliver(s, fake, oid) == "sent"
        second = fake.messages[-1].sid
        assert second != sid and fake.creates == 2
        _, msg = snapshot(s, oid)
        assert msg is not None and msg.provider_id == second
        # ... which fails too: attempts are used up (OUTBOX_MAX_ATTEMPTS=2).
        callbacks(s, fake.report(second, "undelivered", "30001"))
        row, _ = snapshot(s, oid)
        assert row.status == OutboxStatus.dead and row.attempts == 2
        assert dead_ids(s) == [oid]

    @pytest.mark.parametrize("code", ["21610", "30005", "30006", "21211"])
    def test_a_permanent_failure_is_dead_at_once(self, s: Settings, code: str) -> None:
        fake = FakeTwilio()
        oid, sid = sent_one(s, fake)
        callbacks(s, fake.report(sid, "failed", code))
        row, msg = snapshot(s, oid)
        assert row.status == OutboxStatus.dead and row.attempts == 1
        assert msg is not None and msg.error_code == code
        assert dead_ids(s) == [oid]

    def test_a_stale_failure_of_an_earlier_attempt_does_not_resend(self, s: Settings) -> None:
        fake = FakeTwilio()
        oid, first = sent_one(s, fake)
        callbacks(s, fake.report(first, "failed", "30008"))
        assert deliver(s, fake, oid) == "sent"
        second = fake.messages[-1].sid
        callbacks(
            s,
            fake.report(first, "undelivered", "30008"),  # late, about the first attempt
            fake.report(second, "delivered"),
            fake.report(first, "failed", "30001"),
        )
        row, msg = snapshot(s, oid)
        assert row.status == OutboxStatus.sent
        assert msg is not None and msg.provider_id == second
        assert msg.status == DeliveryStatus.delivered
        assert fake.creates == 2

    def test_a_failure_reported_before_the_send_is_recorded_still_retries(
        self, s: Settings
    ) -> None:
        """Twilio's callback overtakes the REST answer: the handler waits for the attempt."""
        fake = FakeTwilio()
        results: list[int] = []
        # Queued not yet due, so the app's own sweeper leaves it to this test's delivery.
        oid = queue(s, due_in=3600)
        with twilio_app(s) as c:

            def report_failure(msg: FakeMessage) -> None:
                def go() -> None:
                    results.append(post(c, fake.report(msg.sid, "failed", "30008")).status_code)

                t = threading.Thread(target=go)
                t.start()
                threads.append(t)

            threads: list[threading.Thread] = []
            fake.on_accept = report_failure
            fake.accept_delay = 0.5  # the REST answer comes after the callback
            assert deliver(s, fake, oid) == "sent"
            for t in threads:
                t.join(timeout=20)
        assert results == [200]
        row, msg = snapshot(s, oid)
        assert row.status == OutboxStatus.pending and row.attempts == 1
        assert msg is not None and msg.status == DeliveryStatus.failed
        assert msg.provider_id == fake.messages[0].sid and msg.error_code == "30008"


class TestLateSuccess:
    def test_a_late_success_stops_the_retry_no_second_text(self, s: Settings) -> None:
        fake = FakeTwilio()
        fake.script = ["timeout"]  # Twilio accepted; its answer was lost
        oid = queue(s)
        assert deliver(s, fake, oid) == "retry"
        (first,) = fake.messages
        callbacks(s, fake.report(first.sid, "sent"), fake.report(first.sid, "delivered"))
        row, msg = snapshot(s, oid)
        assert row.status == OutboxStatus.sent and row.last_error is None
        assert msg is not None and msg.provider == "twilio" and msg.provider_id == first.sid
        assert msg.status == DeliveryStatus.delivered and msg.error_code is None
        assert deliver(s, fake, oid) == "not-due"  # the scheduled retry is moot
        assert fake.creates == 1 and fake.received_by(PHONE) == 1

    def test_a_late_success_after_the_retry_adopted_it_changes_only_the_status(
        self, s: Settings
    ) -> None:
        fake = FakeTwilio()
        fake.script = ["timeout"]
        oid = queue(s)
        assert deliver(s, fake, oid) == "retry"
        assert deliver(s, fake, oid) == "sent"  # the retry found it at Twilio
        sid = fake.messages[0].sid
        callbacks(s, fake.report(sid, "delivered"), fake.report(sid, "delivered"))
        row, msg = snapshot(s, oid)
        assert row.status == OutboxStatus.sent
        assert msg is not None and msg.provider_id == sid
        assert msg.status == DeliveryStatus.delivered
        assert fake.creates == 1 and fake.received_by(PHONE) == 1

    def test_a_dead_letter_that_was_delivered_after_all_leaves_the_dead_letters(
        self, s: Settings
    ) -> None:
        fake = FakeTwilio()
        fake.script = ["timeout"]
        fake.list_script = ["503"]  # and the retry could not ask Twilio
        oid = queue(s)
        assert deliver(s, fake, oid) == "retry"
        assert deliver(s, fake, oid) == "dead"
        assert dead_ids(s) == [oid]
        (first,) = fake.messages
        callbacks(s, fake.report(first.sid, "delivered"))
        row, msg = snapshot(s, oid)
        assert row.status == OutboxStatus.sent
        assert msg is not None and msg.status == DeliveryStatus.delivered
        assert dead_ids(s) == []
        assert fake.received_by(PHONE) == 1

    def test_an_unrecorded_attempt_that_failed_keeps_its_retry(self, s: Settings) -> None:
        fake = FakeTwilio()
        fake.script = ["timeout"]
        oid = queue(s)
        assert deliver(s, fake, oid) == "retry"
        (first,) = fake.messages
        # Out of order: failed, then the stale "sent"; the retry stays scheduled.
        callbacks(s, fake.report(first.sid, "failed", "30008"), fake.report(first.sid, "sent"))
        row, msg = snapshot(s, oid)
        assert row.status == OutboxStatus.pending
        assert msg is not None and msg.status == DeliveryStatus.failed
        first.status = "failed"
        assert deliver(s, fake, oid) == "sent"  # the lookup skips the failed one
        assert fake.creates == 2 and fake.received_by(PHONE) == 1


def test_callbacks_without_a_message_id_still_find_the_message_by_sid(s: Settings) -> None:
    fake = FakeTwilio()
    oid, sid = sent_one(s, fake)
    fake.messages[-1].status_callback = None  # e.g. a callback URL set on the number
    callbacks(s, fake.report(sid, "delivered"))
    _, msg = snapshot(s, oid)
    assert msg is not None and msg.status == DeliveryStatus.delivered
