"""Supervision beyond urging in the event log: the department hears of it on its duty
mobile, escalation makes a ticket urgent and tells the bureau above, a return the
contact centre does not accept goes back; routing reasons in the agent's language."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from contact.models import Department
from contact.settings import Settings
from tests.conftest import login, wait_for, with_runtime

DUTY = {"cgj-dh-jf": "+8613900001001", "cgj-dh": "+8613900001002", "cgj": "+8613900001003"}


def _set_phones(settings: Settings, phones: dict[str, str | None]) -> None:
    async def go(rt: Any) -> None:
        async with rt.db.session() as s:
            for code, phone in phones.items():
                await s.execute(
                    update(Department).where(Department.code == code).values(phone=phone)
                )
            await s.commit()

    with_runtime(settings, go)


@pytest.fixture
def duty_phones(settings: Settings, client: TestClient) -> Iterator[None]:
    rt = client.app.state.runtime  # type: ignore[attr-defined]
    _set_phones(settings, dict(DUTY))
    rt._catalogue = None  # the next request loads the catalogue afresh
    try:
        yield
    finally:
        _set_phones(settings, dict.fromkeys(DUTY))
        rt._catalogue = None


def dispatched(client: TestClient) -> tuple[str, dict[str, str], dict[str, str]]:
    agent = login(client, "agent1")
    r = client.post(
        "/api/v1/tickets",
        headers=agent,
        json={
            "description": "解放路88号路灯不亮",
            "address": "东湖区解放路88号",
            "phone": "13800138777",
        },
    )
    assert r.status_code == 201, r.text
    ref = r.json()["reference"]
    r = client.post(f"/api/v1/tickets/{ref}/actions/dispatch", headers=agent, json={})
    assert r.json()["department"] == "cgj-dh-jf", r.text
    return ref, agent, login(client, "supervisor1")


def texts(client: TestClient, template: str) -> dict[str, str]:
    return {
        m["to"]: m["body"]
        for m in client.get("/dev/outbox.json").json()
        if m["template"] == template
    }


class TestUrge:
    def test_the_department_hears_on_its_duty_mobile(
        self, client: TestClient, duty_phones: None
    ) -> None:
        ref, _agent, sup = dispatched(client)
        r = client.post(
            f"/api/v1/tickets/{ref}/actions/urge", headers=sup, json={"reason": "群众多次来电"}
        )
        assert r.status_code == 200, r.text
        assert r.json()["urge_count"] == 1
        got = wait_for(lambda: texts(client, "dept_urged"))
        assert set(got) == {DUTY["cgj-dh-jf"]}
        assert "群众多次来电" in got[DUTY["cgj-dh-jf"]] and "第1次督办" in got[DUTY["cgj-dh-jf"]]

    def test_without_a_duty_mobile_only_the_event(self, client: TestClient) -> None:
        ref, _agent, sup = dispatched(client)
        r = client.post(
            f"/api/v1/tickets/{ref}/actions/urge", headers=sup, json={"reason": "请尽快"}
        )
        assert r.status_code == 200, r.text
        t = client.get(f"/api/v1/tickets/{ref}", headers=sup).json()
        assert t["events"][-1]["kind"] == "urged" and t["events"][-1]["public"] is False
        assert not texts(client, "dept_urged")


class TestEscalate:
    def test_urgent_and_the_bureaus_above_are_told(
        self, client: TestClient, duty_phones: None
    ) -> None:
        ref, _agent, sup = dispatched(client)
        r = client.post(
            f"/api/v1/tickets/{ref}/actions/escalate", headers=sup, json={"reason": "超期未办"}
        )
        assert r.status_code == 200, r.text
        assert r.json()["priority"] == "urgent"
        got = wait_for(
            lambda: len(texts(client, "dept_escalated")) == 3 and texts(client, "dept_escalated")
        )
        assert set(got) == set(DUTY.values())
        event = client.get(f"/api/v1/tickets/{ref}", headers=sup).json()["events"][-1]
        assert event["kind"] == "escalated" and event["data"]["told"] == [
            "cgj-dh-jf",
            "cgj-dh",
            "cgj",
        ]

    def test_needs_a_reason_and_a_supervisor(self, client: TestClient) -> None:
        ref, agent, sup = dispatched(client)
        r = client.post(f"/api/v1/tickets/{ref}/actions/escalate", headers=sup, json={})
        assert r.status_code == 422 and "reason" in r.json()["fields"]
        r = client.post(
            f"/api/v1/tickets/{ref}/actions/escalate", headers=agent, json={"reason": "x"}
        )
        assert r.status_code == 403
        assert client.get(f"/api/v1/tickets/{ref}", headers=sup).json()["priority"] == "normal"


class TestDenyReturn:
    def test_goes_back_to_the_department_that_returned_it(self, client: TestClient) -> None:
        ref, agent, sup = dispatched(client)
        clerk = login(client, "cgj-dh-jf-clerk")
        r = client.post(
            f"/api/v1/tickets/{ref}/actions/return", headers=clerk, json={"reason": "不属于本单位"}
        )
        assert r.status_code == 200, r.text
        r = client.post(
            f"/api/v1/tickets/{ref}/actions/deny-return", headers=agent, json={"reason": "x"}
        )
        assert r.status_code == 403  # supervisors decide on returns
        r = client.post(
            f"/api/v1/tickets/{ref}/actions/deny-return",
            headers=sup,
            json={"reason": "解放路属于该中队辖区"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "dispatched" and r.json()["department"] == "cgj-dh-jf"
        back = client.get(f"/api/v1/tickets/{ref}", headers=clerk)
        assert back.status_code == 200 and back.json()["events"][-1]["kind"] == "return_denied"


class TestReasonsInTheAgentsLanguage:
    def test_suggestions_name_services_and_departments(self, client: TestClient) -> None:
        params = {"text": "路灯不亮", "address": "东湖区解放路"}
        zh = client.get("/api/v1/routing/suggest", params=params, headers=login(client, "agent1"))
        en = client.get("/api/v1/routing/suggest", params=params, headers=login(client, "agent2"))
        zh_reason, en_reason = (
            zh.json()["suggestions"][0]["reason"],
            en.json()["suggestions"][0]["reason"],
        )
        assert "路灯故障" in zh_reason and "解放城管中队" in zh_reason and "关键词" in zh_reason
        assert "Street light out" in en_reason and "keywords" in en_reason
        assert "cgj" not in zh_reason and "cgj" not in en_reason
