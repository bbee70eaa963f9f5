"""The real-time bus over /ws: what each user may see, live and on catch-up."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select
from starlette.websockets import WebSocketDisconnect

from contact.app import create_app
from contact.db import sync_url
from contact.models import BusEvent, utcnow
from contact.settings import Settings
from tests.conftest import login, with_runtime


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


class TestEventLogRetention:
    """The replay log keeps ``EVENT_RETENTION_DAYS`` of events, not every event ever."""

    @staticmethod
    def backdate(settings: Settings, days: float) -> int:
        """Make every event logged so far ``days`` old; return how many there are."""
        engine = create_engine(sync_url(settings.DATABASE_URL))
        try:
            with engine.begin() as conn:
                conn.execute(
                    BusEvent.__table__.update().values(created_at=utcnow() - timedelta(days=days))
                )
                return int(conn.execute(select(func.count()).select_from(BusEvent)).scalar_one())
        finally:
            engine.dispose()

    @staticmethod
    def prune(settings: Settings) -> int:
        from contact import tasks

        return int(with_runtime(settings, tasks.prune_events_async))

    def test_old_events_go_and_a_reconnecting_clerk_replays_what_is_kept(
        self, settings: Settings
    ) -> None:
        with TestClient(create_app(settings)) as client:
            agent = login(client, "agent1")
            create_and_dispatch(client, agent, "jyj", "学校食堂卫生问题")
            old = self.backdate(settings, 8)
            recent = create_and_dispatch(client, agent, "jyj", "校车超载")
        assert old >= 2
        assert self.prune(settings) == old
        assert self.prune(settings) == 0  # nothing more to do
        with TestClient(create_app(settings)) as client:
            jyj = login(client, "jyj-clerk")
            # A clerk back after two weeks: the replay starts with what is kept.
            with client.websocket_connect("/ws?since=0", headers=jyj) as ws:
                assert next_of(ws, "ticket.assigned")["reference"] == recent

    def test_the_newest_event_stays_so_ids_keep_increasing(self, settings: Settings) -> None:
        with TestClient(create_app(settings)) as client:
            agent = login(client, "agent1")
            with client.websocket_connect("/ws", headers=agent) as ws:
                create_and_dispatch(client, agent, "jyj", "学校食堂卫生问题")
                before = next_of(ws, "ticket.assigned")["id"]
        total = self.backdate(settings, 30)
        assert self.prune(settings) == total - 1
        with TestClient(create_app(settings)) as client:
            agent = login(client, "agent1")
            with client.websocket_connect(f"/ws?since={before}", headers=agent) as ws:
                create_and_dispatch(client, agent, "jyj", "校车超载")
                # A console whose cursor is the last id it saw still hears the next event.
                assert next_of(ws, "ticket.assigned")["id"] > before

    def test_the_retention_is_a_setting(self, settings: Settings) -> None:
        with TestClient(create_app(settings)) as client:
            create_and_dispatch(client, login(client, "agent1"), "jyj", "学校食堂卫生问题")
        total = self.backdate(settings, 8)
        kept_longer = settings.model_copy(update={"EVENT_RETENTION_DAYS": 10})
        assert self.prune(kept_longer) == 0
        assert self.prune(settings) == total - 1
