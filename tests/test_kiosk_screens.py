"""The kiosk screens over HTTP, as the central server serves them for trying out."""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi.testclient import TestClient

from contact.app import create_app
from contact.settings import Settings
from tests.conftest import login


def simple_service(client: TestClient) -> str:
    page = client.get("/kiosk/report")
    assert page.status_code == 200
    group = re.findall(r'data-testid="group-([^"]+)"', page.text)[0]
    services = re.findall(
        r'data-testid="service-([^"]+)"', client.get(f"/kiosk/report/group/{group}").text
    )
    for code in services:
        if "<em>" not in client.get(f"/kiosk/report/{code}").text.split("问题描述")[0]:
            return code
    raise AssertionError("no service without required fields")


def report(client: TestClient, code: str, **form: str) -> Any:
    data = {"lang": "zh-CN", "sid": str(uuid.uuid4()), "action": "submit", **form}
    return client.post(f"/kiosk/report/{code}", data=data)


def test_a_report_at_the_screen_becomes_a_kiosk_ticket_once(client: TestClient) -> None:
    code = simple_service(client)
    sid = str(uuid.uuid4())
    form = {"description": "自助终端：小区门口路灯不亮", "phone": "13800138000", "sid": sid}
    first = report(client, code, **form)
    again = report(client, code, **form)
    assert first.status_code == 200 and again.status_code == 200
    ref = re.search(r'data-reference="([0-9]{14})"', first.text)
    assert ref and ref.group(1) in again.text
    agent = login(client, "agent1")
    found = client.get("/api/v1/tickets", headers=agent, params={"channel": "kiosk"}).json()
    assert [t["reference"] for t in found["items"]] == [ref.group(1)]
    assert found["items"][0]["source"] == "kiosk preview"
    assert "13800138000" not in first.text and "138****8000" in first.text

    track = client.post(
        "/kiosk/track", data={"lang": "zh-CN", "ref": ref.group(1), "last4": "8000"}
    )
    assert track.status_code == 200 and 'data-testid="tracked-reference"' in track.text
    assert "13800138000" not in track.text
    wrong = client.post(
        "/kiosk/track", data={"lang": "zh-CN", "ref": ref.group(1), "last4": "1111"}
    )
    assert wrong.status_code == 404 and "不正确" in wrong.text


def test_what_the_citizen_must_fix_is_said_and_nothing_is_stored(client: TestClient) -> None:
    code = simple_service(client)
    short = report(client, code, description="坏", action="review")
    assert short.status_code == 422 and "至少 5 个字" in short.text
    bad_phone = report(client, code, description="路灯坏了很多天", phone="12", lang="en")
    assert bad_phone.status_code == 422 and "not a valid mobile number" in bad_phone.text
    unknown = report(client, code, description="路灯坏了很多天", **{"f.nonexistent": "x"})
    assert unknown.status_code == 200  # fields the service does not have are not read
    agent = login(client, "agent1")
    found = client.get("/api/v1/tickets", headers=agent, params={"channel": "kiosk"}).json()
    assert found["total"] == 1  # only the last, valid one


def test_citizen_text_is_inert_on_the_review_screen(client: TestClient) -> None:
    code = simple_service(client)
    page = report(client, code, description="<script>alert(1)</script> =1+2", action="review")
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_references_and_last_digits_are_checked_before_any_look_up(client: TestClient) -> None:
    r = client.post("/kiosk/track", data={"lang": "en", "ref": "123", "last4": "8000"})
    assert r.status_code == 422 and "14-digit reference" in r.text
    r = client.post("/kiosk/track", data={"lang": "en", "ref": "K2611220070011", "last4": "80"})
    assert r.status_code == 422 and "last 4 digits" in r.text
    scanned = client.get("/kiosk/track", params={"ref": "http://x/m/track?ref=k2611220070011"})
    assert 'value="K2611220070011"' in scanned.text


def test_a_card_number_comes_back_only_as_its_digest(client: TestClient) -> None:
    r = client.post("/kiosk/card", data={"number": "6217000012345678"})
    assert r.status_code == 200
    body = r.json()
    assert re.fullmatch(r"[0-9a-f]{64}", body["digest"]) and body["last4"] == "5678"
    assert "6217000012345678" not in r.text
    assert client.post("/kiosk/card", data={"number": "12ab"}).status_code == 422


def test_guides_print_and_the_screens_switch_language(client: TestClient) -> None:
    code = simple_service(client)
    guide = client.get(f"/kiosk/guides/{code}", params={"lang": "en"})
    assert guide.status_code == 200 and 'lang="en"' in guide.text
    printed = client.post(f"/kiosk/guides/{code}/print", data={"lang": "en"})
    assert printed.status_code == 200 and "take your printout" in printed.text


def test_without_the_development_gateway_there_is_no_preview(settings: Settings) -> None:
    live = settings.model_copy(
        update={
            "SMS_GATEWAY": "twilio",
            "VOICE_GATEWAY": "twilio",
            "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
            "TWILIO_AUTH_TOKEN": "x" * 32,
            "TWILIO_FROM_NUMBER": "+15005550006",
        }
    )
    with TestClient(create_app(live)) as c:
        assert c.get("/kiosk/").status_code == 404
