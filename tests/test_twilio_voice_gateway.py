"""Calls we make and move through Twilio's Calls API, against a fake at the HTTP boundary."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from typing import Any

import pytest
from sqlalchemy import select
from twilio.http import HttpClient
from twilio.http.response import Response as TwilioResponse

from contact.channels import DeliveryError, OutboundMessage
from contact.db import Database
from contact.models import Call, Channel
from contact.settings import Settings
from ivr.gateway import TwilioVoiceGateway
from tests.test_twilio_gateway import ACCOUNT, FROM, TOKEN, _error

BASE = "http://testserver"


class FakeCalls(HttpClient):
    """Twilio's Calls API: keeps each request; ``script`` fails them in order."""

    def __init__(self) -> None:
        super().__init__(logging.getLogger("fake-twilio-calls"), is_async=False)
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.script: list[str] = []

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
        assert f"/2010-04-01/Accounts/{ACCOUNT}/Calls" in uri, uri
        assert auth == (ACCOUNT, TOKEN)
        self.requests.append((uri, dict(data or {})))
        step = self.script.pop(0) if self.script else "ok"
        if step != "ok":
            return _error(step)
        sid = uri.rsplit("/", 1)[-1].removesuffix(".json")
        sid = sid if sid.startswith("CA") else "CA" + secrets.token_hex(16)
        return TwilioResponse(
            201,
            json.dumps({"sid": sid, "account_sid": ACCOUNT, "status": "queued", "to": "x"}),
        )


def _gateway(settings: Settings, fake: FakeCalls) -> tuple[TwilioVoiceGateway, Database]:
    db = Database(settings.DATABASE_URL, pool_size=2)
    return TwilioVoiceGateway(ACCOUNT, TOKEN, FROM, BASE, db, http_client=fake), db


def test_a_survey_call_fetches_its_twiml_and_is_recorded(settings: Settings) -> None:
    fake = FakeCalls()

    async def run() -> tuple[str, list[Any]]:
        gateway, db = _gateway(settings, fake)
        try:
            receipt = await gateway.send(
                OutboundMessage(
                    "resolved:1:1:voice:+86",
                    Channel.voice,
                    "+8613800138000",
                    "满意请按1",
                    template="ticket_resolved",
                )
            )
            async with db.session() as s:
                calls = list((await s.execute(select(Call))).scalars())
            return receipt.provider_id, calls
        finally:
            await db.dispose()

    sid, calls = asyncio.run(run())
    _, data = fake.requests[0]
    assert data["Url"] == BASE + "/ivr/twilio/survey" and data["From"] == FROM
    assert data["StatusCallback"] == BASE + "/ivr/twilio/status"
    assert "Twiml" not in data and "13800138000" not in data["Url"]
    assert [(c.call_sid, c.purpose, c.direction.value) for c in calls] == [(sid, "survey", "out")]


def test_a_status_update_speaks_inline_twiml(settings: Settings) -> None:
    fake = FakeCalls()

    async def run() -> None:
        gateway, db = _gateway(settings, fake)
        try:
            await gateway.send(
                OutboundMessage(
                    "closed:1:1:voice:+86",
                    Channel.voice,
                    "+8613800138000",
                    "您的诉求不予受理",
                    template="ticket_closed",
                )
            )
        finally:
            await db.dispose()

    asyncio.run(run())
    _, data = fake.requests[0]
    assert "Url" not in data and "您的诉求不予受理" in str(data["Twiml"])
    assert 'language="cmn-CN"' in str(data["Twiml"])


@pytest.mark.parametrize(("step", "permanent"), [("500", False), ("400:21211", True)])
def test_failures_are_retryable_or_not(settings: Settings, step: str, permanent: bool) -> None:
    fake = FakeCalls()
    fake.script = [step]

    async def run() -> DeliveryError:
        gateway, db = _gateway(settings, fake)
        try:
            with pytest.raises(DeliveryError) as err:
                await gateway.send(
                    OutboundMessage("k", Channel.voice, "+8613800138000", "x", template="x")
                )
            return err.value
        finally:
            await db.dispose()

    assert asyncio.run(run()).permanent is permanent


def test_redirect_moves_the_live_call(settings: Settings) -> None:
    fake = FakeCalls()

    async def run() -> None:
        gateway, db = _gateway(settings, fake)
        try:
            await gateway.redirect("CA" + "1" * 32, BASE + "/ivr/twilio/connect?agent=3")
        finally:
            await db.dispose()

    asyncio.run(run())
    uri, data = fake.requests[0]
    assert uri.endswith("/Calls/CA" + "1" * 32 + ".json")
    assert data["Url"] == BASE + "/ivr/twilio/connect?agent=3" and data["Method"] == "POST"
