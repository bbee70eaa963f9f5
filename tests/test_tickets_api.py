"""The REST API as agents, departments and supervisors use it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import login


def new_ticket(client: TestClient, headers: dict[str, str], **over: Any) -> dict[str, Any]:
    body = {
        "description": "解放路88号门前路灯不亮已经一周",
        "kind": "report",
        "phone": "13800138010",
        "address": "东湖区解放路88号",
        "channel": "voice",
        **over,
    }
    r = client.post("/api/v1/tickets", headers=headers, json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def count_tickets(client: TestClient) -> int:
    return int(client.get("/api/v1/tickets", headers=login(client, "agent1")).json()["total"])


class TestCreate:
    def test_created_ticket_reads_back_with_routing_and_deadline(self, client: TestClient) -> None:
        agent = login(client, "agent1")
        t = new_ticket(client, agent)
        assert t["status"] == "received"
        assert t["phone"] == "+8613800138010"
        assert t["routing"]["reason"] and t["routing"]["department"]
        assert t["due_at"]
        got = client.get(f"/api/v1/tickets/{t['reference_grouped']}", headers=agent).json()
        assert got["reference"] == t["reference"]
        assert got["events"][0]["kind"] == "created"

    def test_the_caller_gets_the_reference_by_sms(self, client: TestClient) -> None:
        from tests.conftest import wait_for

        t = new_ticket(client, login(client, "agent1"))
        sms = wait_for(
            lambda: [
                r for r in client.get("/dev/outbox.json").json() if r["to"] == "+8613800138010"
            ]
        )
        assert len(sms) == 1 and t["reference"] in sms[0]["body"]

    def test_idempotency_key_returns_the_same_ticket(self, client: TestClient) -> None:
        agent = login(client, "agent1")
        headers = {**agent, "Idempotency-Key": "call-42"}
        a = client.post("/api/v1/tickets", headers=headers, json={"description": "噪音"})
        b = client.post("/api/v1/tickets", headers=headers, json={"description": "噪音"})
        assert (a.status_code, b.status_code) == (201, 200)
        assert a.json()["reference"] == b.json()["reference"]
        assert count_tickets(client) == 1

    def test_list_filters_and_paginates(self, client: TestClient) -> None:
        agent = login(client, "agent1")
        for i in range(3):
            new_ticket(client, agent, phone=f"1380013802{i}", description=f"噪音扰民 {i}")
        page = client.get("/api/v1/tickets", headers=agent, params={"limit": 2}).json()
        assert page["total"] == 3 and len(page["items"]) == 2
        one = client.get("/api/v1/tickets", headers=agent, params={"phone": "13800138021"}).json()
        assert one["total"] == 1
        none = client.get("/api/v1/tickets", headers=agent, params={"status": "closed"}).json()
        assert none["total"] == 0


class TestBadInput:
    @pytest.mark.parametrize(
        ("body", "status", "field"),
        [
            ({"description": 42}, 422, "description"),
            ({"description": "x", "service": "no-such-service"}, 422, "service"),
            ({"description": "x" * 4001}, 422, "description"),
            ({"description": "x", "phone": "12345"}, 422, "phone"),
            ({"description": "   "}, 422, "description"),
            ({"description": "x", "kind": "rumour"}, 422, "kind"),
            ({"description": "x", "unknown": 1}, 422, "unknown"),
        ],
    )
    def test_rejected_with_the_field_named_and_nothing_written(
        self, client: TestClient, body: dict[str, Any], status: int, field: str
    ) -> None:
        agent = login(client, "agent1")
        r = client.post("/api/v1/tickets", headers=agent, json=body)
        assert r.status_code == status, r.text
        err = r.json()
        assert err["error"] == "invalid_input"
        assert field in err["fields"], err
        assert count_tickets(client) == 0

    def test_malformed_json_is_400(self, client: TestClient) -> None:
        agent = login(client, "agent1")
        r = client.post(
            "/api/v1/tickets",
            headers={**agent, "Content-Type": "application/json"},
            content=b'{"description": ',
        )
        assert r.status_code == 400
        assert r.json()["error"] == "malformed_json"
        assert count_tickets(client) == 0

    def test_dev_sms_with_a_bad_number_is_422(self, client: TestClient) -> None:
        r = client.post("/dev/sms", data={"From": "abc", "Body": "hello"})
        assert r.status_code == 422 and r.json()["fields"]["From"]
        assert count_tickets(client) == 0

    def test_without_sign_in_401(self, client: TestClient) -> None:
        r = client.get("/api/v1/tickets")
        assert r.status_code == 401 and r.json()["error"] == "not_authenticated"


class TestScoping:
    def test_other_department_gets_404_agent_gets_it(self, client: TestClient) -> None:
        agent = login(client, "agent1")
        t = new_ticket(client, agent)
        ref = t["reference"]
        t = client.post(f"/api/v1/tickets/{ref}/actions/dispatch", headers=agent, json={}).json()
        owner = t["department"]
        other = "jyj" if not owner.startswith("jyj") else "wjw"
        stranger = login(client, f"{other}-clerk")
        assert client.get(f"/api/v1/tickets/{ref}", headers=stranger).status_code == 404
        r = client.post(f"/api/v1/tickets/{ref}/actions/accept", headers=stranger)
        assert r.status_code == 404 and r.json()["error"] == "ticket_not_found"
        listed = client.get("/api/v1/tickets", headers=stranger).json()
        assert ref not in [i["reference"] for i in listed["items"]]

        assert client.get(f"/api/v1/tickets/{ref}", headers=agent).status_code == 200
        mine = login(client, f"{owner}-clerk")
        assert client.get(f"/api/v1/tickets/{ref}", headers=mine).status_code == 200

    def test_department_cannot_see_received_tickets(self, client: TestClient) -> None:
        t = new_ticket(client, login(client, "agent1"))
        clerk = login(client, "cgj-clerk")
        assert client.get(f"/api/v1/tickets/{t['reference']}", headers=clerk).status_code == 404


class TestLifecycleOverHttp:
    def dispatched(self, client: TestClient) -> tuple[str, dict[str, str], dict[str, str]]:
        agent = login(client, "agent1")
        ref = new_ticket(client, agent)["reference"]
        t = client.post(f"/api/v1/tickets/{ref}/actions/dispatch", headers=agent, json={}).json()
        return ref, agent, login(client, f"{t['department']}-clerk")

    def test_illegal_move_is_409_with_state_and_allowed(self, client: TestClient) -> None:
        ref, _agent, clerk = self.dispatched(client)
        r = client.post(
            f"/api/v1/tickets/{ref}/actions/resolve", headers=clerk, json={"reply": "x"}
        )
        assert r.status_code == 409
        body = r.json()
        assert body["error"] == "illegal_transition"
        assert body["status"] == "dispatched"
        assert body["allowed"] == ["accept", "note", "return"]

    def test_return_needs_a_reason_and_goes_back_to_the_agents(self, client: TestClient) -> None:
        ref, agent, clerk = self.dispatched(client)
        r = client.post(f"/api/v1/tickets/{ref}/actions/return", headers=clerk, json={})
        assert r.status_code == 422 and "reason" in r.json()["fields"]
        r = client.post(
            f"/api/v1/tickets/{ref}/actions/return",
            headers=clerk,
            json={"reason": "不属于本单位职责"},
        )
        assert r.status_code == 200 and r.json()["status"] == "returned"
        assert client.get(f"/api/v1/tickets/{ref}", headers=clerk).status_code == 404
        r = client.post(
            f"/api/v1/tickets/{ref}/actions/dispatch", headers=agent, json={"department": "zjj"}
        )
        assert r.json()["status"] == "dispatched" and r.json()["department"] == "zjj"

    def test_the_dispatcher_corrects_the_service_and_the_deadline_follows(
        self, client: TestClient
    ) -> None:
        agent = login(client, "agent1")
        t = new_ticket(client, agent)  # a street light: five working days
        assert t["service"] == "street-light" and t["service_confirmed_at"] is None
        ref = t["reference"]
        r = client.post(
            f"/api/v1/tickets/{ref}/actions/dispatch", headers=agent, json={"service": "nope"}
        )
        assert r.status_code == 422 and "service" in r.json()["fields"]
        unchanged = client.get(f"/api/v1/tickets/{ref}", headers=agent).json()
        assert unchanged["status"] == "received" and unchanged["service"] == "street-light"
        # The whole street is dark: the agent files it as a power cut (two hours).
        r = client.post(
            f"/api/v1/tickets/{ref}/actions/dispatch",
            headers=agent,
            json={"service": "power-outage"},
        )
        assert r.status_code == 200, r.text
        d = r.json()
        # Without a department named it goes where the rules send the new service.
        assert t["routing"]["department"].startswith("cgj")
        assert d["status"] == "dispatched" and d["department"].startswith("gdj")
        assert d["service"] == "power-outage" and d["service_confirmed_at"]
        # How intake routed it stays as it was.
        assert d["routing"]["service"] == "street-light" and d["routing"]["version"] is None
        assert d["due_at"] < t["due_at"]
        events = client.get(f"/api/v1/tickets/{ref}", headers=agent).json()["events"]
        assert events[-1]["data"]["service"] == "power-outage"
        assert events[-1]["data"]["previous_service"] == "street-light"

    def test_a_dispatch_that_confirms_the_service_keeps_its_deadline(
        self, client: TestClient
    ) -> None:
        agent = login(client, "agent1")
        t = new_ticket(client, agent)
        r = client.post(
            f"/api/v1/tickets/{t['reference']}/actions/dispatch",
            headers=agent,
            json={"service": t["service"]},
        )
        d = r.json()
        assert d["service_confirmed_at"] and d["due_at"] == t["due_at"]
        events = client.get(f"/api/v1/tickets/{t['reference']}", headers=agent).json()["events"]
        assert events[-1]["kind"] == "dispatched" and "service" not in events[-1]["data"]
        ref2 = new_ticket(client, agent, phone="13800138012")["reference"]
        plain = client.post(f"/api/v1/tickets/{ref2}/actions/dispatch", headers=agent, json={})
        assert plain.json()["service_confirmed_at"] is None

    def test_a_granted_extension_keeps_its_date_when_the_service_changes(
        self, client: TestClient
    ) -> None:
        ref, _agent, clerk = self.dispatched(client)
        client.post(f"/api/v1/tickets/{ref}/actions/accept", headers=clerk)
        client.post(
            f"/api/v1/tickets/{ref}/actions/request-extension",
            headers=clerk,
            json={"reason": "需协调供电公司", "until": "2027-03-01T17:00:00+08:00"},
        )
        sup = login(client, "supervisor1")
        granted = client.post(f"/api/v1/tickets/{ref}/actions/grant-extension", headers=sup)
        r = client.post(
            f"/api/v1/tickets/{ref}/actions/dispatch",
            headers=sup,
            json={"department": "gdj", "service": "power-outage"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["service"] == "power-outage" and r.json()["department"] == "gdj"
        assert r.json()["due_at"] == granted.json()["due_at"]

    def test_extension_moves_the_deadline_and_tells_the_citizen(self, client: TestClient) -> None:
        from tests.conftest import wait_for

        ref, _agent, clerk = self.dispatched(client)
        client.post(f"/api/v1/tickets/{ref}/actions/accept", headers=clerk)
        before = client.get(f"/api/v1/tickets/{ref}", headers=clerk).json()["due_at"]
        r = client.post(
            f"/api/v1/tickets/{ref}/actions/request-extension",
            headers=clerk,
            json={"reason": "需协调供电公司", "until": "2027-03-01T17:00:00+08:00"},
        )
        assert r.status_code == 200 and r.json()["extension"] == "requested"
        sup = login(client, "supervisor1")
        r = client.post(f"/api/v1/tickets/{ref}/actions/grant-extension", headers=sup)
        assert r.status_code == 200, r.text
        assert r.json()["due_at"] > before
        sms = wait_for(
            lambda: [
                r
                for r in client.get("/dev/outbox.json").json()
                if r["template"] == "extension_granted"
            ]
        )
        assert "需协调供电公司" in sms[0]["body"]

    def test_urge_by_supervisor_is_an_event(self, client: TestClient) -> None:
        ref, agent, _clerk = self.dispatched(client)
        assert client.post(f"/api/v1/tickets/{ref}/actions/urge", headers=agent).status_code == 403
        sup = login(client, "supervisor1")
        r = client.post(f"/api/v1/tickets/{ref}/actions/urge", headers=sup, json={"reason": "逾期"})
        assert r.status_code == 200 and r.json()["status"] == "dispatched"
        assert r.json()["events"][-1]["kind"] == "urged"

    def test_unsatisfied_reopen_goes_back_to_the_department(self, client: TestClient) -> None:
        ref, agent, clerk = self.dispatched(client)
        client.post(f"/api/v1/tickets/{ref}/actions/accept", headers=clerk)
        client.post(
            f"/api/v1/tickets/{ref}/actions/resolve", headers=clerk, json={"reply": "已处理"}
        )
        r = client.post(
            f"/api/v1/tickets/{ref}/actions/reopen", headers=agent, json={"reason": "路灯仍不亮"}
        )
        assert r.status_code == 200
        t = r.json()
        assert t["status"] == "dispatched"
        assert [e["kind"] for e in t["events"]][-2:] == ["reopened", "dispatched"]
        assert client.get(f"/api/v1/tickets/{ref}", headers=clerk).status_code == 200

    def test_inquiry_answered_at_once(self, client: TestClient) -> None:
        agent = login(client, "agent1")
        ref = new_ticket(client, agent, kind="inquiry", description="社保卡怎么补办？")["reference"]
        r = client.post(
            f"/api/v1/tickets/{ref}/actions/resolve",
            headers=agent,
            json={"reply": "携带身份证到任一社保服务网点办理。"},
        )
        assert r.status_code == 200 and r.json()["status"] == "resolved"

    def test_merge_and_every_reporter_hears_the_outcome(self, client: TestClient) -> None:
        from tests.conftest import wait_for

        agent = login(client, "agent1")
        a = new_ticket(client, agent, phone="13800138031")["reference"]
        b = new_ticket(client, agent, phone="13800138032")["reference"]
        r = client.post(f"/api/v1/tickets/{b}/actions/merge", headers=agent, json={"into": a})
        assert r.status_code == 200 and r.json()["status"] == "merged"
        assert r.json()["merged_into"] == a
        t = client.post(f"/api/v1/tickets/{a}/actions/dispatch", headers=agent, json={}).json()
        clerk = login(client, f"{t['department']}-clerk")
        client.post(f"/api/v1/tickets/{a}/actions/accept", headers=clerk)
        client.post(f"/api/v1/tickets/{a}/actions/resolve", headers=clerk, json={"reply": "已修复"})

        def resolved_to() -> set[str]:
            rows = client.get("/dev/outbox.json").json()
            return {r["to"] for r in rows if r["template"] == "ticket_resolved"}

        assert wait_for(lambda: resolved_to() == {"+8613800138031", "+8613800138032"})
