"""Callers waiting for agents, taking the next one, and calls we make (survey, updates)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from contact.settings import Settings
from tests.conftest import login, wait_for
from tests.ivr_helpers import BASE, Phone, parse, post_signed
from tests.test_ivr import _client, db, report_by_speech

CALLER = "+8613800138000"
SECOND = "+8613911112222"


@pytest.fixture
def voice(settings: Settings) -> Any:
    with _client(settings, AGENT_HOURS="always") as c:
        yield c


def queue_up(client: TestClient, caller: str) -> Phone:
    phone = Phone(client, caller)
    phone.dial()
    phone.press("1")
    assert phone.press("0").enqueue is not None
    return phone


def voice_out(client: TestClient, **match: str) -> list[dict[str, Any]]:
    rows = client.get("/dev/outbox.json").json()
    return [r for r in rows if r["channel"] == "voice" and all(r[k] == v for k, v in match.items())]


class TestQueue:
    def test_queue_figures_for_agents_and_not_for_departments(self, voice: TestClient) -> None:
        queue_up(voice, CALLER)
        queue_up(voice, SECOND)
        agent = login(voice, "agent1")
        stats = voice.get("/api/v1/calls/queue", headers=agent).json()
        assert stats["waiting"] == 2 and stats["longest_wait_seconds"] >= 0
        assert all(c["caller"] and "0138000" not in c["caller"] for c in stats["calls"])
        clerk = login(voice, "cgj-clerk")
        assert voice.get("/api/v1/calls/queue", headers=clerk).status_code == 403

    def test_take_next_connects_the_longest_waiting_caller_with_their_history(
        self, voice: TestClient
    ) -> None:
        reference = report_by_speech(voice, CALLER, "小区门口垃圾三天没人清运")
        first = queue_up(voice, CALLER)
        second = queue_up(voice, SECOND)
        agent = login(voice, "agent1")
        r = voice.post("/api/v1/calls/next", headers=agent)
        assert r.status_code == 200, r.text
        taken = r.json()
        assert [t["reference"] for t in taken["history"]["tickets"]] == [reference]
        assert taken["call"]["path"][:3] == ["welcome", "main", "agent"]
        # The gateway moved the caller's call to /connect for this agent.
        me = voice.get("/api/v1/me", headers=agent).json()
        moved = voice_out(voice, to=first.sid, template="redirect")
        assert moved and moved[0]["body"].endswith(f"/ivr/twilio/connect?agent={me['id']}")
        # Twilio fetches it: the caller is bridged to the agent's client.
        status, body = post_signed(voice, moved[0]["body"], first.form())
        assert status == 200 and "<Client>agent1</Client>" in body
        connected = db(voice, "SELECT count(*) FROM bus_events WHERE type = 'call.connected'")
        assert connected[0][0] == 1
        stats = voice.get("/api/v1/calls/queue", headers=agent).json()
        assert stats["waiting"] == 1 and stats["agents_on_calls"] == 1
        agent2 = login(voice, "agent2")
        nxt = voice.post("/api/v1/calls/next", headers=agent2).json()
        assert nxt["call"]["caller"] == second.caller
        empty = voice.post("/api/v1/calls/next", headers=agent2)
        assert empty.status_code == 404 and empty.json()["error"] == "queue_empty"
        assert first.status("completed", CallDuration="61") == 200
        ended = db(voice, "SELECT count(*) FROM bus_events WHERE type = 'call.ended'")
        assert ended[0][0] == 1


def resolve(client: TestClient, reference: str, reply: str) -> None:
    agent = login(client, "agent1")
    t = client.get(f"/api/v1/tickets/{reference}", headers=agent).json()
    dept = t["routing"]["department"]
    r = client.post(f"/api/v1/tickets/{reference}/actions/dispatch", headers=agent, json={})
    assert r.status_code == 200, r.text
    clerk = login(client, f"{dept}-clerk")
    assert client.post(f"/api/v1/tickets/{reference}/actions/accept", headers=clerk).is_success
    r = client.post(
        f"/api/v1/tickets/{reference}/actions/resolve", headers=clerk, json={"reply": reply}
    )
    assert r.status_code == 200, r.text


def ask_for_a_call_back(client: TestClient, caller: str, words: str) -> str:
    """Report by speech and ask to hear the outcome by phone call."""
    phone = Phone(client, caller)
    phone.dial()
    phone.press("1")
    phone.press("2")
    phone.press("1")
    phone.say(words)
    heard = phone.press("1")
    reference = "".join(ch for ch in heard.text.split("。")[0] if ch.isdigit())[-14:]
    heard = phone.press("1")  # the outcome by phone call, please
    assert "电话回访" in heard.text
    rows = db(client, "SELECT reference FROM tickets WHERE notify_channel = 'voice'")
    assert [r[0] for r in rows] == [reference]
    return reference


class TestSurveyCall:
    # 3: not satisfied, so reopened and sent back to the department
    @pytest.mark.parametrize(("key", "status"), [("1", "closed"), ("3", "dispatched")])
    def test_a_resolved_ticket_gets_a_survey_call_whose_key_rates_it(
        self, voice: TestClient, key: str, status: str
    ) -> None:
        reference = ask_for_a_call_back(voice, CALLER, "人民路的路灯不亮了")
        resolve(voice, reference, "路灯已于今日修复。")
        survey = wait_for(lambda: voice_out(voice, to=CALLER, template="ticket_resolved"))
        assert len(survey) == 1 and "路灯已于今日修复" in survey[0]["body"]
        # No resolution SMS for this one: the citizen asked for a call.
        texts = [
            r
            for r in voice.get("/dev/outbox.json").json()
            if r["channel"] == "sms" and r["template"] == "ticket_resolved"
        ]
        assert texts == []
        sid = db(voice, "SELECT call_sid FROM calls WHERE purpose = 'survey'")[0][0]
        form = {"CallSid": sid, "From": "+8612345", "To": CALLER, "CallStatus": "in-progress"}
        status_code, body = post_signed(voice, BASE + "/ivr/twilio/survey", form)
        heard = parse(body)
        assert status_code == 200 and heard.gather is not None and "满意请按1" in heard.text
        status_code, body = post_signed(voice, heard.action or "", {**form, "Digits": key})
        assert status_code == 200 and parse(body).hangup
        agent = login(voice, "agent1")
        t = voice.get(f"/api/v1/tickets/{reference}", headers=agent).json()
        assert t["status"] == status
        # A retried answer changes nothing more.
        post_signed(voice, heard.action or "", {**form, "Digits": "1"})
        assert voice.get(f"/api/v1/tickets/{reference}", headers=agent).json()["status"] == status

    def test_a_wrong_key_asks_again(self, voice: TestClient) -> None:
        reference = ask_for_a_call_back(voice, CALLER, "人民路的路灯不亮了")
        resolve(voice, reference, "已修复。")
        wait_for(lambda: voice_out(voice, to=CALLER, template="ticket_resolved"))
        sid = db(voice, "SELECT call_sid FROM calls WHERE purpose = 'survey'")[0][0]
        form = {"CallSid": sid, "From": "+8612345", "To": CALLER, "CallStatus": "in-progress"}
        _, body = post_signed(
            voice, BASE + "/ivr/twilio/survey?step=answer", {**form, "Digits": "7"}
        )
        assert "请按1、2或3" in parse(body).text
