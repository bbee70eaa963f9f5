"""A service's custom form fields: one definition, checked the same on every channel."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from contact.fields import FieldProblem, check_definition, clean_values
from contact.seed.catalogue import SERVICES
from tests.conftest import login

PROBLEM = {
    "code": "problem",
    "datatype": "singlevaluelist",
    "required": True,
    "label_zh": "故障情况",
    "label_en": "Problem",
    "values": [
        {"key": "out", "name_zh": "不亮", "name_en": "Out"},
        {"key": "day", "name_zh": "白天常亮", "name_en": "On during the day"},
    ],
}


class TestDefinition:
    def test_every_demo_service_definition_is_valid(self) -> None:
        for svc in SERVICES:
            assert check_definition(svc["fields"]) is not None, svc["code"]

    def test_sorted_by_order_and_normalised(self) -> None:
        out = check_definition(
            [
                {**PROBLEM, "order": 2},
                {
                    "code": "pole",
                    "datatype": "string",
                    "order": 1,
                    "label_zh": "杆号",
                    "label_en": " Pole ",
                },
            ]
        )
        assert [f["code"] for f in out] == ["pole", "problem"]
        assert out[0]["label_en"] == "Pole" and out[0]["required"] is False

    @pytest.mark.parametrize(
        ("fields", "where"),
        [
            ([{**PROBLEM, "code": "Bad Code"}], "fields[0].code"),
            ([PROBLEM, PROBLEM], "fields[1].code"),
            ([{**PROBLEM, "datatype": "colour"}], "fields[0].datatype"),
            ([{**PROBLEM, "values": []}], "fields[0].values"),
            ([{**PROBLEM, "label_zh": " "}], "fields[0].label_zh"),
            ([{**PROBLEM, "values": [PROBLEM["values"][0]] * 2}], "fields[0].values[1].key"),
            (["text"], "fields[0]"),
        ],
    )
    def test_a_bad_definition_names_the_place(self, fields: list[Any], where: str) -> None:
        with pytest.raises(FieldProblem) as caught:
            check_definition(fields)
        assert caught.value.where == where


class TestValues:
    definition = check_definition(
        [
            PROBLEM,
            {"code": "floor", "datatype": "number", "label_zh": "楼层", "label_en": "Floor"},
            {
                "code": "seen",
                "datatype": "datetime",
                "label_zh": "发现时间",
                "label_en": "Seen at",
            },
            {
                "code": "kinds",
                "datatype": "multivaluelist",
                "label_zh": "类型",
                "label_en": "Kinds",
                "values": PROBLEM["values"],
            },
        ]
    )

    def test_good_values_are_normalised(self) -> None:
        got = clean_values(
            self.definition,
            {"problem": "out", "floor": "3", "seen": "2026-11-20T08:00:00Z", "kinds": "day"},
            enforce_required=True,
        )
        assert got == {
            "problem": "out",
            "floor": 3,
            "seen": "2026-11-20T08:00:00Z",
            "kinds": ["day"],
        }

    @pytest.mark.parametrize(
        ("values", "where"),
        [
            ({}, "fields.problem"),
            ({"problem": "broken"}, "fields.problem"),
            ({"problem": "out", "floor": "three"}, "fields.floor"),
            ({"problem": "out", "floor": "nan"}, "fields.floor"),
            ({"problem": "out", "seen": "yesterday"}, "fields.seen"),
            ({"problem": "out", "kinds": ["out", "nope"]}, "fields.kinds"),
            ({"problem": "out", "colour": "red"}, "fields.colour"),
        ],
    )
    def test_bad_values_name_the_field(self, values: dict[str, Any], where: str) -> None:
        with pytest.raises(FieldProblem) as caught:
            clean_values(self.definition, values, enforce_required=True)
        assert caught.value.where == where

    def test_required_is_not_enforced_on_a_text_or_a_call(self) -> None:
        assert clean_values(self.definition, {}, enforce_required=False) == {}


def _count(client: TestClient) -> int:
    return int(client.get("/api/v1/tickets", headers=login(client, "agent1")).json()["total"])


class TestIntake:
    def test_a_form_channel_must_fill_required_fields(self, client: TestClient) -> None:
        agent = login(client, "agent1")
        body = {"description": "路灯不亮", "service": "street-light", "channel": "web"}
        r = client.post("/api/v1/tickets", headers=agent, json=body)
        assert r.status_code == 422 and "fields.problem" in r.json()["fields"], r.text
        assert _count(client) == 0
        r = client.post(
            "/api/v1/tickets", headers=agent, json={**body, "fields": {"problem": "flickering"}}
        )
        assert r.status_code == 201, r.text
        assert r.json()["fields"] == {"problem": "flickering"}

    def test_a_wrong_value_is_refused_on_any_channel(self, client: TestClient) -> None:
        agent = login(client, "agent1")
        r = client.post(
            "/api/v1/tickets",
            headers=agent,
            json={"description": "路灯不亮", "service": "street-light", "fields": {"problem": "x"}},
        )
        assert r.status_code == 422 and "fields.problem" in r.json()["fields"], r.text
        r = client.post(
            "/api/v1/tickets",
            headers=agent,
            json={"description": "路灯不亮", "service": "street-light", "fields": {"ghost": "1"}},
        )
        assert r.status_code == 422 and "fields.ghost" in r.json()["fields"], r.text
        assert _count(client) == 0

    def test_an_agent_on_a_call_may_leave_required_fields_open(self, client: TestClient) -> None:
        agent = login(client, "agent1")
        r = client.post(
            "/api/v1/tickets",
            headers=agent,
            json={"description": "路灯不亮", "service": "street-light", "channel": "voice"},
        )
        assert r.status_code == 201, r.text
