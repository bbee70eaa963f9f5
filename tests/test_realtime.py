"""The real-time bus over /ws: what each user may see, live and on catch-up."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests.conftest import login


def create_and_dispatch(
    client: TestClient, agent: dict[str, str], department: str, text: str
) -> str:
    r = client.post("/api/v1/tickets", headers=agent, json={"description": text})
    ref = r.json()["reference"]
    r = client.post(
        f"/api/v1/tickets/{ref}/actions/dispatch", headers=agent, json={"department": department}
    )
    assert r.status_code == 200, r.text
    return str(ref)


def next_of(ws: Any, type_: str) -> dict[str, Any]:
    while True:
        msg = ws.receive_json()
        if msg["type"] == type_:
            return msg  # type: ignore[no-any-return]


class TestWebsocket:
    def test_unauthenticated_is_refused(self, client: TestClient) -> None:
        try:
            with client.websocket_connect("/ws") as ws:
                ws.receive_json()
        except WebSocketDisconnect as exc:
            assert exc.code == 4401
        else:  # pragma: no cover
            raise AssertionError("connected without signing in")

    def test_departments_see_only_their_own_tickets(self, client: TestClient) -> None:
        agent = login(client, "agent1")
        jyj = login(client, "jyj-clerk")
        with (
            client.websocket_connect("/ws", headers=jyj) as dept_ws,
            client.websocket_connect("/ws", headers=agent) as agent_ws,
        ):
            other = create_and_dispatch(client, agent, "wjw", "医院排队太久")
            mine = create_and_dispatch(client, agent, "jyj", "学校门口交通拥堵")
            created = next_of(agent_ws, "ticket.created")
            assert created["reference"] == other and "id" in created
            assigned = next_of(dept_ws, "ticket.assigned")
            # The first thing the education clerk hears of is its own ticket.
            assert assigned["reference"] == mine and assigned["department"] == "jyj"
            assert "phone" not in assigned and "description" not in assigned

    def test_catch_up_since_an_id_replays_only_what_may_be_seen(self, client: TestClient) -> None:
        agent = login(client, "agent1")
        jyj = login(client, "jyj-clerk")
        with client.websocket_connect("/ws", headers=agent) as ws:
            first = create_and_dispatch(client, agent, "jyj", "学校食堂卫生问题")
            start = next_of(ws, "ticket.created")["id"]
        # The clerk's laptop was asleep while two more tickets arrived.
        create_and_dispatch(client, agent, "wjw", "社区医院缺药")
        second = create_and_dispatch(client, agent, "jyj", "校车超载")
        with client.websocket_connect(f"/ws?since={start}", headers=jyj) as ws:
            got = [next_of(ws, "ticket.assigned"), next_of(ws, "ticket.assigned")]
        assert [m["reference"] for m in got] == [first, second]
        assert got[0]["id"] < got[1]["id"]
