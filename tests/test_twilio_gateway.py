"""Outbound SMS through Twilio's REST API, against a fake Twilio at the HTTP boundary.

The fake is an ``twilio.http.HttpClient``: the real SDK builds the requests and parses
the answers; the fake keeps what Twilio "accepted" (what a phone would receive), can
fail with HTTP errors or time out (before or after accepting), answers the message
list, and signs status callbacks the way Twilio does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import Any

import requests
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from twilio.http import HttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.request_validator import RequestValidator

from channels.sms.gateway import TwilioSmsGateway
from contact import outbox
from contact.app import build_runtime, create_app
from contact.models import Channel, DeliveryStatus, Message, Outbox, OutboxStatus, utcnow
from contact.runtime import Runtime
from contact.settings import Settings
from tests.conftest import login

ACCOUNT = "AC" + "0" * 32
TOKEN = "12345678901234567890123456789012"
FROM = "+15005550006"
PHONE = "+8613800138123"
BASE = "http://testserver"


# ------------------------------------------------------------------ the fake Twilio


@dataclass
class FakeMessage:
    sid: str
    to: str
    from_: str
    body: str
    status_callback: str | None
    status: str = "queued"
    created: datetime = field(default_factory=utcnow)


class FakeTwilio(HttpClient):
    """Twilio's Messages API at the HTTP boundary.

    ``script`` decides each create request, in order (then ``"ok"``):
    ``"ok"``, ``"500"``, ``"503"``, ``"429"``, ``"400:21211"`` (status:code),
    ``"timeout"`` (accepted, but the answer never arrives), ``"timeout-before"``
    (the request never reached Twilio). ``list_script`` does the same for lookups.
    """

    def __init__(self, token: str = TOKEN) -> None:
        super().__init__(logging.getLogger("fake-twilio"), is_async=False)
        self.token = token
        self.messages: list[FakeMessage] = []
        self.script: list[str] = []
        self.list_script: list[str] = []
        self.creates = 0
        self.lists = 0
        self.on_accept: Callable[[FakeMessage], None] | None = None
        self.accept_delay = 0.0
        self._lock = threading.Lock()

    # what a phone would have received
    def received_by(self, phone: str) -> int:
        return sum(1 for m in self.messages if m.to == phone and m.status not in ("failed",))

    def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> TwilioResponse:
        assert uri.endswith(f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"), uri
        assert auth == (ACCOUNT, self.token)
        if method.upper() == "POST":
            return self._create(data or {})
        return self._list(params or {})

    def _create(self, data: dict[str, object]) -> TwilioResponse:
        with self._lock:
            self.creates += 1
            step = self.script.pop(0) if self.script else "ok"
        if step == "timeout-before":
            raise requests.exceptions.ConnectTimeout("connect timed out")
        if step not in ("ok", "timeout"):
            return _error(step)
        msg = FakeMessage(
            sid="SM" + secrets.token_hex(16),
            to=str(data["To"]),
            from_=str(data["From"]),
            body=str(data["Body"]),
            status_callback=str(data["StatusCallback"]) if data.get("StatusCallback") else None,
        )
        with self._lock:
            self.messages.append(msg)
        answer = json.dumps(_resource(msg))  # as accepted, whatever is reported meanwhile
        if self.on_accept:
            self.on_accept(msg)
        if self.accept_delay:
            time.sleep(self.accept_delay)
        if step == "timeout":
            raise requests.exceptions.ReadTimeout("read timed out")
        return TwilioResponse(201, answer)

    def _list(self, params: dict[str, object]) -> TwilioResponse:
        with self._lock:
            self.lists += 1
            step = self.list_script.pop(0) if self.list_script else "ok"
        if step == "timeout":
            raise requests.exceptions.ReadTimeout("read timed out")
        if step != "ok":
            return _error(step)
        found = [
            _resource(m)
            for m in reversed(self.messages)  # newest first, like Twilio
            if m.to == params.get("To", m.to) and m.from_ == params.get("From", m.from_)
        ][: int(str(params.get("PageSize", 50)))]
        return TwilioResponse(
            200,
            json.dumps(
                {
                    "messages": found,
                    "end": len(found),
                    "first_page_uri": "/2010-04-01/Accounts/x/Messages.json?Page=0",
                    "next_page_uri": None,
                    "page": 0,
                    "page_size": 50,
                    "previous_page_uri": None,
                    "start": 0,
                    "uri": "/2010-04-01/Accounts/x/Messages.json",
                }
            ),
        )

    def report(
        self, sid: str, status: str, error_code: str | None = None, *, token: str | None = None
    ) -> tuple[str, dict[str, str], dict[str, str]]:
        """Twilio's status callback for ``sid``: (url, form, headers), signed."""
        msg = next(m for m in self.messages if m.sid == sid)
        msg.status = status
        form = {
            "AccountSid": ACCOUNT,
            "ApiVersion": "2010-04-01",
            "From": msg.from_,
            "To": msg.to,
            "MessageSid": sid,
            "SmsSid": sid,
            "MessageStatus": status,
            "SmsStatus": status,
        }
        if error_code:
            form["ErrorCode"] = error_code
        url = msg.status_callback or f"{BASE}/channels/sms/twilio/status"
        signature = RequestValidator(token or self.token).compute_signature(url, form)
        return url, form, {"X-Twilio-Signature": signature}


def _resource(m: FakeMessage) -> dict[str, Any]:
    date = format_datetime(m.created, usegmt=True)
    return {
        "sid": m.sid,
        "account_sid": ACCOUNT,
        "api_version": "2010-04-01",
        "body": m.body,
        "date_created": date,
        "date_updated": date,
        "date_sent": None,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": m.from_,
        "messaging_service_sid": None,
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "status": m.status,
        "subresource_uris": {},
        "to": m.to,
        "uri": f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{m.sid}.json",
    }


def _error(step: str) -> TwilioResponse:
    status, _, code = step.partition(":")
    body = {
        "code": int(code or {"500": 20500, "503": 20503, "429": 20429}.get(status, 0)),
        "message": "simulated failure",
        "more_info": "https://www.twilio.com/docs/errors",
        "status": int(status),
    }
    return TwilioResponse(int(status), json.dumps(body))


# ------------------------------------------------------------------ harness


def twilio_settings(settings: Settings, **extra: Any) -> Settings:
    return settings.model_copy(
        update={
            "TWILIO_ACCOUNT_SID": ACCOUNT,
            "TWILIO_AUTH_TOKEN": TOKEN,
            "TWILIO_FROM_NUMBER": FROM,
            **extra,
        }
    )


def run(settings: Settings, fake: FakeTwilio, scenario: Callable[[Runtime], Any]) -> Any:
    """Run ``scenario`` on a runtime whose SMS adapter is the Twilio gateway on ``fake``."""

    async def go() -> Any:
        rt = build_runtime(settings)
        rt.registry.register(
            TwilioSmsGateway(ACCOUNT, TOKEN, FROM, BASE, db=rt.db, http_client=fake)
        )
        try:
            return await scenario(rt)
        finally:
            await rt.db.dispose()

    return asyncio.run(go())


async def queue_one(rt: Runtime, key: str = "ticket.resolved:1:sms:+8613800138123") -> int:
    async with rt.db.session() as s:
        await outbox.queue(
            s,
            key=key,
            channel=Channel.sms,
            recipient=PHONE,
            template="help",
            locale="zh-CN",
            context={},
        )
        (oid,) = outbox.take_pending(s)
        await s.commit()
    return oid


async def make_due(rt: Runtime, oid: int) -> None:
    async with rt.db.session() as s:
        await s.execute(update(Outbox).where(Outbox.id == oid).values(next_attempt_at=utcnow()))
        await s.commit()


async def state(rt: Runtime, oid: int) -> tuple[Outbox, Message | None]:
    async with rt.db.session() as s:
        row = (await s.execute(select(Outbox).where(Outbox.id == oid))).scalar_one()
        msg = (
            await s.execute(select(Message).where(Message.idempotency_key == row.key))
        ).scalar_one_or_none()
    return row, msg


def snapshot(settings: Settings, oid: int) -> tuple[Outbox, Message | None]:
    async def go() -> tuple[Outbox, Message | None]:
        rt = build_runtime(settings)
        try:
            return await state(rt, oid)
        finally:
            await rt.db.dispose()

    return asyncio.run(go())


def deliver(settings: Settings, fake: FakeTwilio, oid: int, *, due: bool = True) -> str:
    async def go(rt: Runtime) -> str:
        if due:
            await make_due(rt, oid)
        return await rt.deliverer.deliver(oid)

    return str(run(settings, fake, go))


def queue(
    settings: Settings, key: str = "ticket.resolved:1:sms:+8613800138123", *, due_in: float = 0
) -> int:
    async def go(rt: Runtime) -> int:
        oid = await queue_one(rt, key)
        if due_in:
            async with rt.db.session() as s:
                later = utcnow() + timedelta(seconds=due_in)
                parked = update(Outbox).where(Outbox.id == oid).values(next_attempt_at=later)
                await s.execute(parked)
                await s.commit()
        return oid

    return int(run(settings, FakeTwilio(), go))


def dead_letters(settings: Settings) -> list[dict[str, Any]]:
    with TestClient(create_app(settings)) as c:
        r = c.get("/api/v1/outbox", params={"status": "dead"}, headers=login(c, "supervisor1"))
        assert r.status_code == 200, r.text
        return list(r.json())


# ------------------------------------------------------------------ tests


class TestSending:
    def test_a_message_goes_out_once_with_a_status_callback_for_it(
        self, isolated_settings: Settings
    ) -> None:
        s = twilio_settings(isolated_settings)
        fake = FakeTwilio()
        oid = queue(s)
        assert deliver(s, fake, oid) == "sent"
        row, msg = snapshot(s, oid)
        assert row.status == OutboxStatus.sent
        assert msg is not None and msg.provider == "twilio"
        (sent,) = fake.messages
        assert msg.provider_id == sent.sid and msg.status == DeliveryStatus.queued
        assert sent.to == PHONE and sent.from_ == FROM and sent.body == msg.body
        assert sent.status_callback == f"{BASE}/channels/sms/twilio/status?mid={msg.id}"
        assert fake.lists == 0  # a first attempt does not look first
        assert deliver(s, fake, oid) == "not-due"  # delivered keys are never sent again
        assert fake.received_by(PHONE) == 1

    def test_twilio_500_is_retried_with_backoff_then_a_dead_letter_in_the_api(
        self, isolated_settings: Settings
    ) -> None:
        s = twilio_settings(isolated_settings, OUTBOX_MAX_ATTEMPTS=3, OUTBOX_BACKOFF_SECONDS=30)
        fake = FakeTwilio()
        fake.script = ["500", "503", "500"]
        oid = queue(s)
        gaps = []
        for expected in ("retry", "retry"):
            before = utcnow()
            assert deliver(s, fake, oid) == expected
            row, _ = snapshot(s, oid)
            assert row.status == OutboxStatus.pending
            gaps.append(row.next_attempt_at - before)
            assert deliver(s, fake, oid, due=False) == "not-due"  # backing off
        assert timedelta(seconds=29) < gaps[0] < timedelta(seconds=31)
        assert timedelta(seconds=59) < gaps[1] < timedelta(seconds=61)  # doubled
        assert deliver(s, fake, oid) == "dead"
        row, msg = snapshot(s, oid)
        assert row.status == OutboxStatus.dead and row.attempts == 3
        assert msg is not None and msg.status == DeliveryStatus.failed
        assert fake.creates == 3 and fake.received_by(PHONE) == 0
        (letter,) = dead_letters(s)
        assert letter["id"] == oid and letter["attempts"] == 3
        assert "500" in letter["last_error"]
        assert PHONE not in json.dumps(letter)  # masked

    def test_a_500_then_success_sends_exactly_one_text(self, isolated_settings: Settings) -> None:
        s = twilio_settings(isolated_settings)
        fake = FakeTwilio()
        fake.script = ["500"]
        oid = queue(s)
        assert deliver(s, fake, oid) == "retry"
        assert deliver(s, fake, oid) == "sent"
        assert fake.creates == 2 and fake.lists == 1  # the retry looked first, found nothing
        assert fake.received_by(PHONE) == 1

    def test_a_refusal_is_a_dead_letter_at_once(self, isolated_settings: Settings) -> None:
        s = twilio_settings(isolated_settings)
        fake = FakeTwilio()
        fake.script = ["400:21211"]  # invalid 'To' number
        oid = queue(s)
        assert deliver(s, fake, oid) == "dead"
        row, msg = snapshot(s, oid)
        assert row.attempts == 1 and "21211" in (row.last_error or "")
        assert msg is not None and msg.error_code == "21211"
        assert [d["id"] for d in dead_letters(s)] == [oid]

    def test_rate_limiting_and_a_full_sender_queue_are_retried(
        self, isolated_settings: Settings
    ) -> None:
        s = twilio_settings(isolated_settings)
        fake = FakeTwilio()
        fake.script = ["429", "400:21611"]  # too many requests; 'From' queue full
        oid = queue(s)
        assert deliver(s, fake, oid) == "retry"
        assert deliver(s, fake, oid) == "retry"
        assert deliver(s, fake, oid) == "sent"
        assert fake.received_by(PHONE) == 1


class TestAmbiguousFailures:
    def test_a_timeout_after_twilio_accepted_does_not_send_twice(
        self, isolated_settings: Settings
    ) -> None:
        s = twilio_settings(isolated_settings)
        fake = FakeTwilio()
        fake.script = ["timeout"]
        oid = queue(s)
        assert deliver(s, fake, oid) == "retry"
        row, msg = snapshot(s, oid)
        assert row.status == OutboxStatus.pending and "timed out" in (row.last_error or "")
        assert msg is not None and msg.error_code == "timeout"
        assert deliver(s, fake, oid) == "sent"
        assert fake.creates == 1  # the retry found the first one at Twilio
        assert fake.received_by(PHONE) == 1
        _, msg = snapshot(s, oid)
        assert msg is not None and msg.provider_id == fake.messages[0].sid

    def test_a_timeout_before_reaching_twilio_is_sent_on_the_retry(
        self, isolated_settings: Settings
    ) -> None:
        s = twilio_settings(isolated_settings)
        fake = FakeTwilio()
        fake.script = ["timeout-before"]
        oid = queue(s)
        assert deliver(s, fake, oid) == "retry"
        assert deliver(s, fake, oid) == "sent"
        assert fake.creates == 2 and fake.received_by(PHONE) == 1

    def test_when_twilio_cannot_be_asked_the_retry_waits_instead_of_sending_blind(
        self, isolated_settings: Settings
    ) -> None:
        s = twilio_settings(isolated_settings)
        fake = FakeTwilio()
        fake.script = ["timeout"]
        fake.list_script = ["500", "timeout"]
        oid = queue(s)
        assert deliver(s, fake, oid) == "retry"
        assert deliver(s, fake, oid) == "retry"  # lookup failed: nothing sent
        row, _ = snapshot(s, oid)
        assert row.status == OutboxStatus.pending and "lookup" in (row.last_error or "")
        assert deliver(s, fake, oid) == "retry"  # lookup timed out: nothing sent
        assert fake.creates == 1
        assert deliver(s, fake, oid) == "sent"
        assert fake.creates == 1 and fake.received_by(PHONE) == 1

    def test_a_failed_first_attempt_is_not_mistaken_for_a_sent_one(
        self, isolated_settings: Settings
    ) -> None:
        """The lookup adopts only messages Twilio has not given up on."""
        s = twilio_settings(isolated_settings)
        fake = FakeTwilio()
        fake.script = ["timeout"]
        oid = queue(s)
        assert deliver(s, fake, oid) == "retry"
        fake.messages[0].status = "failed"
        assert deliver(s, fake, oid) == "sent"
        assert fake.creates == 2 and fake.received_by(PHONE) == 1

    def test_the_same_text_for_another_key_is_not_adopted(
        self, isolated_settings: Settings
    ) -> None:
        s = twilio_settings(isolated_settings)
        fake = FakeTwilio()
        first = queue(s, "help:1:sms:x")
        second = queue(s, "help:2:sms:x")
        assert deliver(s, fake, first) == "sent"
        fake.script = ["timeout-before"]
        assert deliver(s, fake, second) == "retry"
        assert deliver(s, fake, second) == "sent"  # found the first key's text: not its own
        assert fake.creates == 3
        _, m1 = snapshot(s, first)
        _, m2 = snapshot(s, second)
        assert m1 is not None and m2 is not None and m1.provider_id != m2.provider_id
