"""The closed loop through HTTP only: a text → ticket → dispatch → accept → resolve →
exactly one status SMS, in the citizen's language."""

from __future__ import annotations

from fastapi.testclient import TestClient

from contact.reference import is_valid
from tests.conftest import login, wait_for


def status_texts(client: TestClient, to: str) -> list[dict]:  # type: ignore[type-arg]
    rows = client.get("/dev/outbox.json").json()
    return [r for r in rows if r["to"] == to and r["template"] == "ticket_resolved"]


class TestSmsToResolution:
    def test_chinese_text_gets_one_chinese_status_sms(self, client: TestClient) -> None:
        phone = "+8613800138001"
        r = client.post("/dev/sms", data={"From": phone, "Body": "解放路的路灯坏了，晚上一片漆黑"})
        assert r.status_code == 200, r.text
        out = r.json()
        ref = out["ticket_reference"]
        assert is_valid(ref)
        assert ref[:4] in out["reply"].replace(" ", "")
        assert "编号" in out["reply"]

        agent = login(client, "agent1")
        t = client.get(f"/api/v1/tickets/{ref}", headers=agent).json()
        assert t["status"] == "received"
        assert t["channel"] == "sms"
        assert t["routing"]["department"] and t["routing"]["reason"]
        dept = t["routing"]["department"]

        r = client.post(f"/api/v1/tickets/{ref}/actions/dispatch", headers=agent, json={})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "dispatched" and r.json()["department"] == dept
        assert r.json()["accept_due_at"]

        clerk = login(client, f"{dept}-clerk")
        r = client.post(f"/api/v1/tickets/{ref}/actions/accept", headers=clerk)
        assert r.status_code == 200, r.text
        r = client.post(
            f"/api/v1/tickets/{ref}/actions/resolve",
            headers=clerk,
            json={"reply": "路灯已于今日修复，感谢您的反映。"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "resolved"

        texts = wait_for(lambda: status_texts(client, phone))
        assert len(texts) == 1
        assert "路灯已于今日修复" in texts[0]["body"]
        assert "满意" in texts[0]["body"]
        # Later sweeps send nothing more.
        client.post("/dev/sms", data={"From": "+8613800138999", "Body": "另一件事：噪音扰民"})
        wait_for(lambda: len(client.get("/dev/outbox.json").json()) >= 3)
        assert len(status_texts(client, phone)) == 1

        history = client.get(f"/api/v1/tickets/{ref}", headers=agent).json()
        kinds = [e["kind"] for e in history["events"]]
        assert kinds == ["created", "dispatched", "accepted", "resolved"]
        thread = [(m["direction"], m["template"]) for m in history["messages"]]
        assert thread == [("in", None), ("out", "reply"), ("out", "ticket_resolved")]

    def test_english_text_gets_english_status_sms(self, client: TestClient) -> None:
        phone = "+14155550123"
        r = client.post(
            "/dev/sms", data={"From": phone, "Body": "Big pothole on Harbor Road near the school"}
        )
        ref = r.json()["ticket_reference"]
        assert "reference" in r.json()["reply"]
        agent = login(client, "agent1")
        t = client.post(f"/api/v1/tickets/{ref}/actions/dispatch", headers=agent, json={}).json()
        clerk = login(client, f"{t['department']}-clerk")
        client.post(f"/api/v1/tickets/{ref}/actions/accept", headers=clerk)
        client.post(
            f"/api/v1/tickets/{ref}/actions/resolve",
            headers=clerk,
            json={"reply": "The pothole was filled this morning."},
        )
        texts = wait_for(lambda: status_texts(client, phone))
        assert len(texts) == 1
        assert texts[0]["body"].startswith("Jiangcheng 311")
        assert "filled this morning" in texts[0]["body"]

    def test_a_second_text_soon_after_joins_the_ticket(self, client: TestClient) -> None:
        phone = "+8613800138002"
        first = client.post("/dev/sms", data={"From": phone, "Body": "小区门口垃圾堆积"}).json()
        second = client.post("/dev/sms", data={"From": phone, "Body": "已经三天没人清理了"}).json()
        assert second["ticket_reference"] == first["ticket_reference"]
        assert "已并入" in second["reply"]

    def test_the_same_message_sid_twice_is_one_message(self, client: TestClient) -> None:
        form = {"From": "+8613800138003", "Body": "噪音扰民", "MessageSid": "SM" + "a" * 32}
        a = client.post("/dev/sms", data=form).json()
        b = client.post("/dev/sms", data=form).json()
        assert a["message_id"] == b["message_id"]
        assert a["ticket_reference"] == b["ticket_reference"]
        agent = login(client, "agent1")
        found = client.get("/api/v1/tickets", headers=agent, params={"phone": form["From"]}).json()
        assert found["total"] == 1
