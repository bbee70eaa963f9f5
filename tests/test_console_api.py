"""What the staff pages ask beyond the ticket API: routing suggestions, the knowledge base,
the wallboard, lists by deadline, and notes that do or do not reach the citizen."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import login, wait_for

PHONE = "+8613900138555"


def ticket(c: TestClient, headers: dict[str, str], text: str, **extra: Any) -> str:
    body = {"description": text, "kind": "complaint", "channel": "agent", "phone": PHONE, **extra}
    r = c.post("/api/v1/tickets", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["reference"])


def texts_to(c: TestClient, phone: str, template: str) -> list[dict[str, Any]]:
    rows = c.get("/dev/outbox.json").json()
    return [m for m in rows if m["to"] == phone and m["template"] == template]


class TestSuggestions:
    def test_three_departments_with_reasons_best_first(self, client: TestClient) -> None:
        agent = login(client, "agent1")
        r = client.get(
            "/api/v1/routing/suggest",
            params={"text": "路灯不亮，晚上很黑，还有井盖丢了", "address": "东湖区解放路"},
            headers=agent,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["district"] == "dh"
        got = body["suggestions"]
        assert 2 <= len(got) <= 3
        assert got[0]["department"] == "cgj-dh-jf"  # the street office of 解放路
        assert got[0]["confidence"] >= got[-1]["confidence"]
        assert all(s["reason"] and s["name"] for s in got)
        assert len({s["department"] for s in got}) == len(got)

    def test_departments_may_not_ask(self, client: TestClient) -> None:
        clerk = login(client, "cgj-clerk")
        r = client.get("/api/v1/routing/suggest", params={"text": "路灯"}, headers=clerk)
        assert r.status_code == 403


class TestKnowledgeBase:
    def test_search_finds_answers_in_the_users_language(self, client: TestClient) -> None:
        zh = client.get("/api/v1/kb", params={"q": "社保"}, headers=login(client, "agent1"))
        assert zh.status_code == 200 and zh.json()
        assert any("社保" in a["title"] + a["body"] for a in zh.json())
        en = client.get("/api/v1/kb", params={"q": "social"}, headers=login(client, "agent2"))
        assert en.status_code == 200 and en.json()
        assert all(a["title"].isascii() for a in en.json())

    def test_an_empty_question_is_422(self, client: TestClient) -> None:
        r = client.get("/api/v1/kb", params={"q": ""}, headers=login(client, "agent1"))
        assert r.status_code == 422


class TestWallboard:
    def test_supervisors_see_open_work_and_todays_contacts(self, client: TestClient) -> None:
        agent = login(client, "agent1")
        ref = ticket(client, agent, "东湖区路灯不亮")
        ticket(client, agent, "噪音扰民")
        client.post(f"/api/v1/tickets/{ref}/actions/dispatch", json={}, headers=agent)
        r = client.get("/api/v1/wallboard", headers=login(client, "supervisor1"))
        assert r.status_code == 200, r.text
        w = r.json()
        assert w["today_by_channel"]["agent"] == 2
        assert w["open_by_state"]["received"] == 1 and w["open_by_state"]["dispatched"] == 1
        assert w["calls_waiting"] == 0 and w["overdue"] == 0

    def test_agents_do_not_get_the_wallboard(self, client: TestClient) -> None:
        assert client.get("/api/v1/wallboard", headers=login(client, "agent1")).status_code == 403


class TestInboxOrder:
    def test_by_deadline_and_by_deadline_state(self, client: TestClient) -> None:
        agent = login(client, "agent1")
        urgent = ticket(client, agent, "东湖区路灯不亮", priority="urgent")
        normal = ticket(client, agent, "东湖区路灯又不亮了")
        for ref in (normal, urgent):
            r = client.post(f"/api/v1/tickets/{ref}/actions/dispatch", json={}, headers=agent)
            assert r.status_code == 200, r.text
        clerk = login(client, "cgj-dh-clerk")
        page = client.get("/api/v1/tickets", params={"order": "due"}, headers=clerk).json()
        dues = [t["due_at"] for t in page["items"]]
        assert dues == sorted(dues)
        assert (
            client.get("/api/v1/tickets", params={"sla": "overdue"}, headers=clerk).json()["total"]
            == 0
        )
        bad = client.get("/api/v1/tickets", params={"order": "sideways"}, headers=clerk)
        assert bad.status_code == 422


class TestNotes:
    def test_a_reply_reaches_the_citizen_an_internal_note_does_not(
        self, client: TestClient
    ) -> None:
        agent = login(client, "agent1")
        ref = ticket(client, agent, "东湖区路灯不亮")
        url = f"/api/v1/tickets/{ref}/actions/note"
        r = client.post(url, json={"text": "已电话核实，系统内记录"}, headers=agent)
        assert r.status_code == 200
        r = client.post(
            url, json={"text": "您反映的问题已转交，请耐心等待。", "public": True}, headers=agent
        )
        assert r.status_code == 200
        (reply,) = wait_for(lambda: texts_to(client, PHONE, "reply"))
        assert "请耐心等待" in reply["body"] and "系统内记录" not in reply["body"]
        events = client.get(f"/api/v1/tickets/{ref}", headers=agent).json()["events"]
        notes = [e for e in events if e["kind"] == "note"]
        assert len(notes) == 2
