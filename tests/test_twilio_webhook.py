"""Twilio's SMS webhook: signatures checked with twilio's own RequestValidator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from twilio.request_validator import RequestValidator

from contact.app import create_app
from contact.settings import Settings
from tests.conftest import login, wait_for

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "twilio"
TOKEN = "12345678901234567890123456789012"
URL = "http://testserver/channels/sms/twilio/inbound"


def payload() -> dict[str, str]:
    path = SHARED / "twilio-labs_plugin-webhook_sms.json"
    if not path.exists():
        pytest.skip(f"shared data not found: {path}")
    data: Any = json.loads(path.read_text())
    body = data.get("body", data) if isinstance(data, dict) else data
    form = {k: str(v) for k, v in body.items() if not isinstance(v, dict | list)}
    form["From"] = "+8613800138777"
    form["Body"] = "小区门口垃圾三天没人清运"
    return form


@pytest.fixture
def twilio_client(settings: Settings) -> Any:
    s = settings.model_copy(update={"TWILIO_AUTH_TOKEN": TOKEN})
    with TestClient(create_app(s)) as c:
        yield c


def signed(form: dict[str, str], token: str = TOKEN) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(URL, form)}


def tickets_from(client: TestClient, phone: str) -> int:
    agent = login(client, "agent1")
    return int(
        client.get("/api/v1/tickets", headers=agent, params={"phone": phone}).json()["total"]
    )


class TestSignature:
    def test_valid_signature_gets_twiml_then_a_ticket_and_its_reference(
        self, twilio_client: TestClient
    ) -> None:
        form = payload()
        r = twilio_client.post(URL, data=form, headers=signed(form))
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/xml")
        assert "<Response" in r.text  # answered at once; the rest happens in a job
        wait_for(lambda: tickets_from(twilio_client, form["From"]) == 1)
        replies = wait_for(
            lambda: [
                m
                for m in twilio_client.get("/dev/outbox.json").json()
                if m["to"] == form["From"] and m["template"] == "reply"
            ]
        )
        assert len(replies) == 1 and "编号" in replies[0]["body"]

    @pytest.mark.parametrize("tamper", ["wrong token", "altered body", "missing header"])
    def test_bad_signature_is_403_and_nothing_stored(
        self, twilio_client: TestClient, tamper: str
    ) -> None:
        form = payload()
        headers = signed(form, "0" * 32) if tamper == "wrong token" else signed(form)
        if tamper == "altered body":
            form = {**form, "Body": "something else"}
        if tamper == "missing header":
            headers = {}
        r = twilio_client.post(URL, data=form, headers=headers)
        assert r.status_code == 403 and r.json()["error"] == "bad_signature"
        assert tickets_from(twilio_client, form["From"]) == 0


class TestOddWebhooks:
    def test_a_malformed_from_is_stored_and_not_answered(self, twilio_client: TestClient) -> None:
        form = {**payload(), "From": "NOT-A-NUMBER", "MessageSid": "SM" + "d" * 32}
        r = twilio_client.post(URL, data=form, headers=signed(form))
        assert r.status_code == 200 and "<Message>" not in r.text
        again = twilio_client.post(URL, data=form, headers=signed(form))
        assert again.status_code == 200  # a retry is harmless too

    def test_missing_fields_are_a_clear_422_and_nothing_stored(
        self, twilio_client: TestClient
    ) -> None:
        form = payload()
        for field in ("MessageSid", "SmsSid", "SmsMessageSid"):
            form.pop(field, None)
        r = twilio_client.post(URL, data=form, headers=signed(form))
        assert r.status_code == 422 and "MessageSid" in r.json()["fields"]
        assert tickets_from(twilio_client, form["From"]) == 0


class TestSignatureVariants:
    def test_a_signature_over_the_url_with_its_default_port_is_accepted(
        self, twilio_client: TestClient
    ) -> None:
        # Twilio may sign https://host:443/... when the number's webhook names the port.
        form = {**payload(), "MessageSid": "SM" + "p" * 32, "From": "+8613800138778"}
        with_port = URL.replace("testserver", "testserver:80")
        sig = RequestValidator(TOKEN).compute_signature(with_port, form)
        r = twilio_client.post(URL, data=form, headers={"X-Twilio-Signature": sig})
        assert r.status_code == 200
        wait_for(lambda: tickets_from(twilio_client, form["From"]) == 1)

    def test_a_json_body_is_not_a_form_and_gets_403(self, twilio_client: TestClient) -> None:
        form = {**payload(), "From": "+8613800138779"}
        r = twilio_client.post(URL, json=form, headers=signed(form))
        assert r.status_code == 403 and r.json()["error"] == "bad_signature"
        assert tickets_from(twilio_client, form["From"]) == 0

    def test_too_many_fields_is_a_clear_400_and_nothing_stored(
        self, twilio_client: TestClient
    ) -> None:
        form = {**payload(), "From": "+8613800138780"}
        form.update({f"Extra{n}": "x" for n in range(120)})
        r = twilio_client.post(URL, data=form, headers=signed(form))
        assert r.status_code == 400 and r.json()["error"] == "too_many_fields"
        assert tickets_from(twilio_client, form["From"]) == 0

    def test_an_oversized_body_is_413_and_nothing_stored(self, twilio_client: TestClient) -> None:
        form = {**payload(), "From": "+8613800138781", "Body": "长" * 100_000}
        r = twilio_client.post(URL, data=form, headers=signed(form))
        assert r.status_code == 413 and r.json()["error"] == "body_too_large"
        assert tickets_from(twilio_client, form["From"]) == 0

    def test_other_methods_on_the_webhook_path_are_405(self, twilio_client: TestClient) -> None:
        r = twilio_client.get(URL)
        assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"
