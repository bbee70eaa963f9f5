"""The kiosks' central side, ``/api/v1/kiosk/``: as a kiosk runtime calls it (device token,
Idempotency-Key, offline retries), and what the supervisors' wallboard and the citizens'
track page make of it — on SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import shutil
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from contact import tasks
from contact.auth import new_kiosk_device
from contact.db import sync_url
from contact.models import (
    BusEvent,
    KioskDevice,
    KioskSubmission,
    Outbox,
    Ticket,
    TicketEvent,
    utcnow,
)
from contact.settings import Settings
from tests.conftest import PASSWORD, ROOT, SECRET, login, wait_for, with_runtime
from tests.live import LiveServer

BASE = "/api/v1/kiosk"
PHONE = "13800138021"
E164 = "+8613800138021"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
CARD_NUMBER = "3601021990010112345"  # what a card reader gives; never sent to the server
STREET_LIGHT: dict[str, Any] = {
    "service": "street-light",
    "description": "解放路88号门前路灯连续三晚不亮",
    "fields": {"problem": "out", "pole_number": "DH-0231"},
    "address": "东湖区解放路88号",
    "phone": PHONE,
    "locale": "zh-CN",
}


# ------------------------------------------------------------------ helpers


@pytest.fixture
def db(settings: Settings) -> Iterator[Engine]:
    engine = create_engine(sync_url(settings.DATABASE_URL))
    yield engine
    engine.dispose()


class Kiosk:
    """A registered kiosk as its runtime talks to the server."""

    def __init__(self, kiosk_id: int, name: str, token: str) -> None:
        self.id = kiosk_id
        self.name = name
        self.token = token

    def headers(self, key: str | None = None) -> dict[str, str]:
        out = {"Authorization": f"Bearer {self.token}"}
        if key is not None:
            out["Idempotency-Key"] = key
        return out

    def submit(self, client: Any, body: dict[str, Any], key: str | None = None) -> Any:
        return client.post(
            f"{BASE}/submissions", json=body, headers=self.headers(key or str(uuid.uuid4()))
        )

    def heartbeat(self, client: Any, **over: Any) -> Any:
        body = {
            "version": "1.4.0",
            "queue": 0,
            "oldest_queued_at": None,
            "printer": {"online": True, "paper": "ok", "detail": ""},
            **over,
        }
        return client.post(f"{BASE}/heartbeat", json=body, headers=self.headers())

    def track(self, client: Any, reference: str, last4: str, locale: str = "zh-CN") -> Any:
        params = {"reference": reference, "last4": last4, "locale": locale}
        return client.get(f"{BASE}/track", params=params, headers=self.headers())


def register(client: TestClient, name: str, location: str = "") -> Kiosk:
    """Through the admin page's API, as an administrator does it."""
    r = client.post(
        "/api/v1/admin/kiosks",
        json={"name": name, "location": location},
        headers=login(client, "admin"),
    )
    assert r.status_code == 201, r.text
    return Kiosk(r.json()["kiosk"]["id"], name, r.json()["token"])


def register_in_db(db: Engine, name: str) -> Kiosk:
    """As ``contact kiosk register`` does it."""
    with Session(db) as s:
        row, token = new_kiosk_device(name, "东湖区政务服务中心一楼")
        s.add(row)
        s.commit()
        return Kiosk(row.id, name, token)


@pytest.fixture
def kiosk(client: TestClient) -> Kiosk:
    return register(client, "东湖区政务大厅 1 号机", "东湖区政务服务中心一楼")


def count(db: Engine, model: Any) -> int:
    with db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def stored(db: Engine) -> dict[str, int]:
    return {
        "tickets": count(db, Ticket),
        "submissions": count(db, KioskSubmission),
        "events": count(db, TicketEvent),
        "outbox": count(db, Outbox),
    }


NOTHING = {"tickets": 0, "submissions": 0, "events": 0, "outbox": 0}


def agent_view(client: TestClient, reference: str) -> dict[str, Any]:
    r = client.get(f"/api/v1/tickets/{reference}", headers=login(client, "agent1"))
    assert r.status_code == 200, r.text
    return dict(r.json())


def texts_to(client: TestClient, phone: str) -> list[dict[str, Any]]:
    return [m for m in client.get("/dev/outbox.json").json() if m["to"] == phone]


def wallboard(client: TestClient) -> dict[str, Any]:
    r = client.get("/api/v1/wallboard", headers=login(client, "supervisor1"))
    assert r.status_code == 200, r.text
    return dict(r.json())


def next_of(ws: Any, type_: str, seen: list[str] | None = None) -> dict[str, Any]:
    while True:
        msg = ws.receive_json()
        if seen is not None:
            seen.append(msg["type"])
        if msg["type"] == type_:
            return msg  # type: ignore[no-any-return]


def problem(r: Any, status: int, error: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == error and body["detail"], body
    return dict(body)


def offline_scan(settings: Settings) -> int:
    return int(with_runtime(settings, tasks.kiosk_scan_async))


def silence(db: Engine, kiosk: Kiosk, seconds: int = 120) -> None:
    """The kiosk has not been heard from for ``seconds``."""
    with db.begin() as conn:
        conn.execute(
            update(KioskDevice)
            .where(KioskDevice.id == kiosk.id)
            .values(last_seen_at=utcnow() - timedelta(seconds=seconds))
        )


def bus_events(db: Engine, type_: str) -> list[Any]:
    with db.connect() as conn:
        return list(conn.execute(select(BusEvent).where(BusEvent.type == type_)).all())


# ------------------------------------------------------------------ submissions


class TestSubmissions:
    def test_a_report_becomes_a_routed_kiosk_ticket_and_the_citizen_hears_by_sms(
        self, client: TestClient, kiosk: Kiosk, db: Engine
    ) -> None:
        pressed = (utcnow() - timedelta(hours=3)).isoformat()
        body = {**STREET_LIGHT, "submitted_at": pressed, "provisional_reference": "K2611220010017"}
        r = kiosk.submit(client, body)
        assert r.status_code == 201, r.text
        answer = r.json()
        reference = answer["reference"]
        assert answer == {
            "reference": reference,
            "provisional_reference": "K2611220010017",
            "status": "received",
            "track_url": f"http://testserver/m/track?ref={reference}",
        }
        t = agent_view(client, reference)
        assert t["channel"] == "kiosk" and t["service"] == "street-light"
        assert t["source"] == "东湖区政务大厅 1 号机"
        assert t["fields"] == {"problem": "out", "pole_number": "DH-0231"}
        assert t["routing"]["department"].startswith("cgj-dh")  # the office where it is
        assert t["phone"] == E164 and t["locale"] == "zh-CN" and t["due_at"]
        (sent,) = [e for e in t["events"] if e["kind"] == "kiosk_submitted"]
        assert sent["public"] is False and sent["actor"] == "东湖区政务大厅 1 号机"
        assert sent["data"]["kiosk"] == "东湖区政务大厅 1 号机"
        assert sent["data"]["provisional_reference"] == "K2611220010017"
        assert sent["data"]["submitted_at"].startswith(pressed[:16])
        assert "card" not in sent["data"]

        # The core's acknowledgement, as for a web report: the reference and the track page.
        (ack,) = wait_for(lambda: texts_to(client, E164))
        assert ack["template"] == "ticket_received"
        assert " ".join(reference[i : i + 4] for i in range(0, 14, 4)) in ack["body"]

        with db.connect() as conn:
            row = conn.execute(select(KioskSubmission)).one()
            seen = conn.execute(
                select(KioskDevice.last_seen_at).where(KioskDevice.id == kiosk.id)
            ).scalar_one()
        assert row.device_id == kiosk.id and row.provisional_reference == "K2611220010017"
        assert row.key_hash != "" and len(row.key_hash) == 64
        assert row.submitted_at is not None and seen is not None

    def test_a_retry_answers_the_first_ticket_and_keys_are_per_kiosk(
        self, client: TestClient, kiosk: Kiosk, db: Engine
    ) -> None:
        first = kiosk.submit(client, STREET_LIGHT, key="q-0001")
        again = kiosk.submit(client, STREET_LIGHT, key="q-0001")
        assert (first.status_code, again.status_code) == (201, 200)
        assert first.json() == again.json()
        assert stored(db)["tickets"] == 1 and stored(db)["submissions"] == 1
        # Another kiosk's queue may number its reports the same way.
        other = register(client, "青山湖区政务大厅 2 号机")
        theirs = other.submit(client, STREET_LIGHT, key="q-0001")
        assert theirs.status_code == 201
        assert theirs.json()["reference"] != first.json()["reference"]
        # The same key with another report is a kiosk fault, not a retry.
        reused = kiosk.submit(client, {**STREET_LIGHT, "description": "另一件事"}, key="q-0001")
        problem(reused, 409, "idempotency_key_reused")
        assert stored(db)["tickets"] == 2
        wait_for(lambda: len(texts_to(client, E164)) == 2)
        assert len(texts_to(client, E164)) == 2  # one acknowledgement per ticket

    def test_concurrent_posts_of_one_key_make_one_ticket(
        self, settings: Settings, db: Engine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        kiosk = register_in_db(db, "东湖区政务大厅 3 号机")
        body = {**STREET_LIGHT, "provisional_reference": "K2611220030015"}
        n = 4
        gate = threading.Barrier(n)
        answers: list[httpx.Response] = []
        with LiveServer(settings) as server:

            def post() -> None:
                with httpx.Client(base_url=server.url, timeout=30) as http:
                    gate.wait()
                    answers.append(kiosk.submit(http, body, key="same-key"))

            threads = [threading.Thread(target=post) for _ in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert sorted(a.status_code for a in answers) == [200] * (n - 1) + [201], [
            a.text for a in answers
        ]
        assert len({a.json()["reference"] for a in answers}) == 1
        assert stored(db)["tickets"] == 1 and stored(db)["submissions"] == 1

    def test_the_idempotency_key_is_required(
        self, client: TestClient, kiosk: Kiosk, db: Engine
    ) -> None:
        r = client.post(f"{BASE}/submissions", json=STREET_LIGHT, headers=kiosk.headers())
        problem(r, 400, "idempotency_key_required")
        r = client.post(f"{BASE}/submissions", json=STREET_LIGHT, headers=kiosk.headers("  "))
        problem(r, 400, "idempotency_key_required")
        problem(kiosk.submit(client, STREET_LIGHT, key="k" * 101), 400, "invalid_idempotency_key")
        assert stored(db) == NOTHING

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"fields": {"problem": "out", "colour": "red"}}, "fields.colour"),
            ({"fields": {"problem": "broken"}}, "fields.problem"),
            ({"fields": {}}, "fields.problem"),
            ({"service": "no-such-service"}, "service"),
            ({"phone": "12345"}, "phone"),
            ({"description": "   "}, "description"),
            ({"description": "路" * 4001}, "description"),
            ({"submitted_at": "2099-01-01T00:00:00+08:00"}, "submitted_at"),
            ({"submitted_at": "2026-11-22T09:00:00"}, "submitted_at"),
            ({"provisional_reference": "K12"}, "provisional_reference"),
            ({"locale": "fr"}, "locale"),
            ({"card": {"digest": CARD_NUMBER, "last4": "2345"}}, "card.digest"),
            ({"card": {"digest": "ab" * 32, "last4": "23x5"}}, "card.last4"),
            ({"name": "王先生"}, "name"),
        ],
    )
    def test_a_bad_value_is_named_and_nothing_is_stored(
        self, client: TestClient, kiosk: Kiosk, db: Engine, change: dict[str, Any], field: str
    ) -> None:
        r = kiosk.submit(client, {**STREET_LIGHT, **change})
        body = problem(r, 422, "invalid_input")
        assert field in body["fields"], body
        assert stored(db) == NOTHING

    def test_a_provisional_reference_belongs_to_one_submission(
        self, client: TestClient, kiosk: Kiosk, db: Engine
    ) -> None:
        body = {**STREET_LIGHT, "provisional_reference": "K2611220010024"}
        assert kiosk.submit(client, body).status_code == 201
        before = stored(db)
        problem(kiosk.submit(client, body), 409, "provisional_conflict")
        other = register(client, "青山湖区政务大厅 2 号机")
        problem(other.submit(client, body), 409, "provisional_conflict")
        assert stored(db) == before

    def test_a_card_is_kept_as_its_digest_and_last_four_for_staff_only(
        self, client: TestClient, kiosk: Kiosk, db: Engine
    ) -> None:
        catalogue = client.get(f"{BASE}/catalogue", headers=kiosk.headers()).json()
        key = bytes.fromhex(catalogue["card_key"])
        digest = hmac.new(key, CARD_NUMBER.encode(), hashlib.sha256).hexdigest()
        card = {"digest": digest.upper(), "last4": CARD_NUMBER[-4:]}
        r = kiosk.submit(client, {**STREET_LIGHT, "card": card})
        assert r.status_code == 201, r.text
        t = agent_view(client, r.json()["reference"])
        (sent,) = [e for e in t["events"] if e["kind"] == "kiosk_submitted"]
        assert sent["public"] is False
        assert sent["data"]["card"] == {"digest": digest, "last4": "2345"}
        assert "2345" in sent["data"]["text"]
        public = [e for e in t["events"] if e["public"]]
        assert digest not in str(public) and "2345" not in str(public)
        with db.connect() as conn:
            everything = str(conn.execute(select(TicketEvent.data)).all())
        assert CARD_NUMBER not in everything


# ------------------------------------------------------------------ the device token


class TestDeviceToken:
    def test_a_revoked_unknown_or_missing_token_is_refused_and_nothing_is_stored(
        self, client: TestClient, kiosk: Kiosk, db: Engine
    ) -> None:
        admin = login(client, "admin")
        assert client.post(f"/api/v1/admin/kiosks/{kiosk.id}/revoke", headers=admin).is_success
        with db.connect() as conn:
            seen_before = conn.execute(
                select(KioskDevice.last_seen_at).where(KioskDevice.id == kiosk.id)
            ).scalar_one()
        key = {"Idempotency-Key": "q-1"}
        for headers in (
            kiosk.headers("q-1"),
            {"Authorization": "Bearer kd_not-a-token", **key},
            {"Authorization": f"Basic {kiosk.token}", **key},
            {"Authorization": "Bearer ", **key},
            key,
        ):
            r = client.post(f"{BASE}/submissions", json=STREET_LIGHT, headers=headers)
            problem(r, 401, "invalid_token")
            assert r.headers["www-authenticate"].startswith("Bearer")
        # The token is checked before the body.
        r = client.post(f"{BASE}/submissions", json={"x": 1}, headers=kiosk.headers("q-2"))
        problem(r, 401, "invalid_token")
        problem(kiosk.heartbeat(client), 401, "invalid_token")
        problem(client.get(f"{BASE}/catalogue", headers=kiosk.headers()), 401, "invalid_token")
        problem(kiosk.track(client, "26112104821377", "0000"), 401, "invalid_token")
        assert stored(db) == NOTHING
        assert bus_events(db, "kiosk.heartbeat") == []
        with db.connect() as conn:
            seen_after = conn.execute(
                select(KioskDevice.last_seen_at).where(KioskDevice.id == kiosk.id)
            ).scalar_one()
        assert seen_after == seen_before


# ------------------------------------------------------------------ provisional references, track


def mobile_look_up(client: TestClient, reference: str, last4: str) -> Any:
    page = client.get("/m/track")
    m = CSRF.search(page.text)
    assert m, page.text
    return client.post(
        "/m/track",
        data={"csrf": m.group(1), "lang": "zh-CN", "ref": reference, "last4": last4},
        follow_redirects=True,
    )


class TestTrack:
    def test_a_receipts_k_number_tracks_on_the_mobile_web_once_it_arrived(
        self, client: TestClient, kiosk: Kiosk
    ) -> None:
        waiting = mobile_look_up(client, "K2611220010031", PHONE[-4:])
        assert waiting.status_code == 404 and "临时编号" in waiting.text
        problem(kiosk.track(client, "K2611220010031", PHONE[-4:]), 404, "provisional_pending")

        body = {**STREET_LIGHT, "provisional_reference": "K2611220010031"}
        reference = kiosk.submit(client, body).json()["reference"]
        view = mobile_look_up(client, "k2611 2200 10031", PHONE[-4:])  # typed as printed
        assert view.status_code == 200 and "已受理" in view.text
        assert " ".join(reference[i : i + 4] for i in range(0, 14, 4)) in view.text
        assert mobile_look_up(client, "K2611220010031", "0000").status_code == 404

    def test_the_kiosk_shows_the_public_timeline_and_no_personal_data(
        self, client: TestClient, kiosk: Kiosk
    ) -> None:
        body = {**STREET_LIGHT, "provisional_reference": "K2611220010048"}
        reference = kiosk.submit(client, body).json()["reference"]
        agent = login(client, "agent1")
        r = client.post(f"/api/v1/tickets/{reference}/actions/dispatch", json={}, headers=agent)
        dept = r.json()["department"]
        client.post(
            f"/api/v1/tickets/{reference}/actions/note",
            json={"text": "内部：市民姓王", "public": False},
            headers=agent,
        )
        for typed in ("K2611220010048", reference):
            r = kiosk.track(client, typed, PHONE[-4:])
            assert r.status_code == 200, r.text
            t = r.json()
            assert t["reference"] == reference and t["status"] == "dispatched"
            assert t["service"] == {"zh-CN": "路灯故障", "en": "Street light out"}
            texts = [s["text"] for s in t["steps"]]
            assert texts[0] == "已受理" and texts[1].startswith("已派至")
            assert all(s["at"] for s in t["steps"])
            for private in (PHONE, PHONE[-4:], "解放路", "路灯连续三晚", "姓王", dept):
                assert private not in r.text, private
        en = kiosk.track(client, reference, PHONE[-4:], locale="en").json()
        assert en["steps"][0]["text"] == "Received" and en["status_text"]
        problem(kiosk.track(client, reference, "0000"), 404, "not_found")
        problem(kiosk.track(client, "123", PHONE[-4:]), 422, "invalid_reference")
        problem(kiosk.track(client, reference, "12"), 422, "invalid_last4")

    def test_twenty_wrong_digits_lock_the_reference_for_that_kiosk(
        self, client: TestClient, kiosk: Kiosk
    ) -> None:
        reference = kiosk.submit(client, STREET_LIGHT).json()["reference"]
        for i in range(20):
            problem(kiosk.track(client, reference, f"{1000 + i}"), 404, "not_found")
        locked = kiosk.track(client, reference, PHONE[-4:])
        problem(locked, 429, "locked")
        assert 0 < int(locked.headers["retry-after"]) <= 3600
        # Another kiosk (another client) is not locked out.
        other = register(client, "青山湖区政务大厅 2 号机")
        assert other.track(client, reference, PHONE[-4:]).status_code == 200


# ------------------------------------------------------------------ the catalogue


class TestCatalogue:
    def test_what_a_kiosk_needs_to_work_offline(
        self, client: TestClient, kiosk: Kiosk, db: Engine
    ) -> None:
        r = client.get(f"{BASE}/catalogue", headers=kiosk.headers())
        assert r.status_code == 200, r.text
        c = r.json()
        assert c["kiosk"] == {
            "id": kiosk.id,
            "name": "东湖区政务大厅 1 号机",
            "location": "东湖区政务服务中心一楼",
        }
        assert c["track_url"] == "http://testserver/m/track"
        expected_key = hmac.new(SECRET.encode(), b"kiosk-card", hashlib.sha256).hexdigest()
        assert c["card_key"] == expected_key
        groups = {g["code"]: g for g in c["groups"]}
        assert groups["facilities"]["name"] == {
            "zh-CN": "市政设施",
            "en": "Roads and public facilities",
        }
        assert all(g["icon"] for g in c["groups"])
        services = {s["code"]: s for s in c["services"]}
        assert {s["group"] for s in c["services"]} == set(groups)
        light = services["street-light"]
        assert light["group"] == "facilities" and light["kind"] == "report"
        assert light["name"] == {"zh-CN": "路灯故障", "en": "Street light out"}
        assert light["guidance"]["zh-CN"].startswith("路灯不亮")
        assert [f["code"] for f in light["fields"]] == ["pole_number", "problem"]
        problem_field = light["fields"][1]
        assert problem_field["required"] and [v["key"] for v in problem_field["values"]] == [
            "out",
            "flickering",
            "day",
            "pole",
        ]
        (form,) = services["housing-support"]["forms"]
        assert form["url"] == "http://testserver/m/forms/public-rental-housing-application.pdf"
        assert form["name"]["zh-CN"] == "公共租赁住房申请表"
        assert services["mayor-mailbox"]["mailbox"] is True and not light["mailbox"]
        with db.connect() as conn:
            seen = conn.execute(
                select(KioskDevice.last_seen_at).where(KioskDevice.id == kiosk.id)
            ).scalar_one()
        assert seen is not None

    def test_a_mailbox_letter_takes_its_subject_as_the_title(
        self, client: TestClient, kiosk: Kiosk
    ) -> None:
        body = {
            "service": "mayor-mailbox",
            "description": "建议在政务大厅增加夜间服务窗口。",
            "fields": {"subject": "关于延长办事时间的建议"},
            "phone": PHONE,
        }
        r = kiosk.submit(client, body)
        assert r.status_code == 201, r.text
        t = agent_view(client, r.json()["reference"])
        assert t["title"] == "关于延长办事时间的建议" and t["routing"]["department"] == "szb"


# ------------------------------------------------------------------ heartbeat, offline, wallboard


class TestKioskHealth:
    def test_a_heartbeat_updates_the_wallboard_and_reaches_supervisors(
        self, client: TestClient, kiosk: Kiosk
    ) -> None:
        before = wallboard(client)
        (k,) = before["kiosks"]
        assert k["id"] == kiosk.id and k["online"] is False and k["last_seen_at"] is None
        assert before["kiosks_offline"] == 1
        supervisor = login(client, "supervisor1")
        with client.websocket_connect("/ws", headers=supervisor) as ws:
            r = kiosk.heartbeat(
                client,
                queue=3,
                oldest_queued_at=(utcnow() - timedelta(minutes=7)).isoformat(),
                printer={"online": True, "paper": "low", "detail": "paper near end"},
            )
            assert r.status_code == 200, r.text
            assert r.json()["kiosk"] == {"id": kiosk.id, "name": kiosk.name}
            assert r.json()["server_time"]
            msg = next_of(ws, "kiosk.heartbeat")
        assert msg["kiosk_id"] == kiosk.id and msg["name"] == kiosk.name
        assert msg["online"] is True and msg["paper"] == "low" and msg["printer_online"] is True
        assert msg["queue"] == 3 and kiosk.token not in str(msg)
        w = wallboard(client)
        (k,) = w["kiosks"]
        assert k["online"] is True and k["paper"] == "low" and k["printer_online"] is True
        assert k["queue"] == 3 and k["version"] == "1.4.0" and k["last_seen_at"]
        assert k["printer_detail"] == "paper near end" and k["oldest_queued_at"]
        assert w["kiosks_online"] == 1 and w["kiosks_offline"] == 0
        bad = kiosk.heartbeat(client, queue=-1, printer={"paper": "full"})
        body = problem(bad, 422, "invalid_input")
        assert {"queue", "printer.paper"} <= set(body["fields"])

    def test_heartbeats_are_announced_when_something_changes_not_every_time(
        self, client: TestClient, kiosk: Kiosk, db: Engine
    ) -> None:
        for _ in range(3):
            assert kiosk.heartbeat(client, queue=0).status_code == 200
        assert len(bus_events(db, "kiosk.heartbeat")) == 1
        assert (
            kiosk.heartbeat(client, queue=0, printer={"online": True, "paper": "out"}).status_code
            == 200
        )
        assert (
            kiosk.heartbeat(client, queue=2, printer={"online": True, "paper": "out"}).status_code
            == 200
        )
        assert len(bus_events(db, "kiosk.heartbeat")) == 3
        (k,) = wallboard(client)["kiosks"]
        assert k["paper"] == "out" and k["queue"] == 2

    def test_an_outage_is_announced_once(
        self, client: TestClient, settings: Settings, kiosk: Kiosk, db: Engine
    ) -> None:
        assert kiosk.heartbeat(client).status_code == 200
        offline_scan(settings)
        assert bus_events(db, "kiosk.offline") == []  # just heard from
        silence(db, kiosk)
        offline_scan(settings)
        offline_scan(settings)
        (event,) = bus_events(db, "kiosk.offline")
        assert event.payload["kiosk_id"] == kiosk.id and event.payload["online"] is False
        assert event.supervisors_only and event.department_code is None
        (k,) = wallboard(client)["kiosks"]
        assert k["online"] is False
        # Back: the mark is cleared; the next outage is announced again, once.
        assert kiosk.heartbeat(client).status_code == 200
        assert wallboard(client)["kiosks"][0]["online"] is True
        offline_scan(settings)
        assert len(bus_events(db, "kiosk.offline")) == 1
        silence(db, kiosk)

        async def two_at_once(rt: Any) -> None:
            await asyncio.gather(tasks.kiosk_scan_async(rt), tasks.kiosk_scan_async(rt))

        with_runtime(settings, two_at_once)
        assert len(bus_events(db, "kiosk.offline")) == 2
        # A revoked kiosk is not watched.
        admin = login(client, "admin")
        assert client.post(f"/api/v1/admin/kiosks/{kiosk.id}/revoke", headers=admin).is_success
        assert kiosk.heartbeat(client).status_code == 401
        silence(db, kiosk, 600)
        offline_scan(settings)
        assert len(bus_events(db, "kiosk.offline")) == 2
        assert wallboard(client)["kiosks"] == []

    def test_department_users_and_agents_never_hear_of_kiosks(
        self, client: TestClient, settings: Settings, kiosk: Kiosk, db: Engine
    ) -> None:
        agent = login(client, "agent1")
        clerk = login(client, "jyj-clerk")
        supervisor = login(client, "supervisor1")

        def dispatch(text: str) -> str:
            r = client.post("/api/v1/tickets", headers=agent, json={"description": text})
            ref = r.json()["reference"]
            r = client.post(
                f"/api/v1/tickets/{ref}/actions/dispatch",
                headers=agent,
                json={"department": "jyj"},
            )
            assert r.status_code == 200, r.text
            return str(ref)

        with (
            client.websocket_connect("/ws", headers=clerk) as dept_ws,
            client.websocket_connect("/ws", headers=agent) as agent_ws,
            client.websocket_connect("/ws", headers=supervisor) as sup_ws,
        ):
            assert kiosk.heartbeat(client).status_code == 200
            next_of(sup_ws, "kiosk.heartbeat")
            ref = dispatch("学校门口交通拥堵")
            dept_seen: list[str] = []
            agent_seen: list[str] = []
            assert next_of(dept_ws, "ticket.assigned", dept_seen)["reference"] == ref
            next_of(agent_ws, "ticket.assigned", agent_seen)
        assert not [t for t in dept_seen + agent_seen if t.startswith("kiosk.")]

        # Nor on catch-up after an outage.
        silence(db, kiosk)
        offline_scan(settings)
        assert len(bus_events(db, "kiosk.offline")) == 1
        later = dispatch("校车超载")
        for who in (clerk, agent):
            seen: list[str] = []
            with client.websocket_connect("/ws?since=0", headers=who) as ws:
                while next_of(ws, "ticket.assigned", seen)["reference"] != later:
                    pass
            assert not [t for t in seen if t.startswith("kiosk.")], seen
        with client.websocket_connect("/ws?since=0", headers=supervisor) as ws:
            next_of(ws, "kiosk.offline")


# ------------------------------------------------------------------ the wallboard in a browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
class TestWallboardPage:
    def test_the_kiosk_panel_follows_heartbeats_and_outages_live(
        self, settings: Settings, db: Engine, backend: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        sync_api = pytest.importorskip("playwright.sync_api")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        kiosk = register_in_db(db, "东湖区政务大厅 5 号机")
        with LiveServer(settings) as live, sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
            page.set_default_timeout(10_000)
            page.goto(f"{live.url}/signin")
            page.fill("#username", "supervisor1")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(re.compile(r".*/supervisor/$"))
            page.wait_for_selector("#conn[data-state=live]")
            row = f'#wb-kiosks tr[data-kiosk="{kiosk.id}"]'
            page.wait_for_selector(f"{row} .state-offline")
            assert page.inner_text("#wb-kiosks_offline") == "1"

            with httpx.Client(base_url=live.url, timeout=10) as http:
                r = kiosk.heartbeat(http, queue=2, printer={"online": True, "paper": "low"})
                assert r.status_code == 200, r.text
            page.wait_for_selector(f"{row} .state-online")  # no reload: the event did it
            cells = page.locator(f"{row} td").all_inner_texts()
            assert cells[3] in ("纸张将尽", "Low") and cells[4] == "2"
            assert page.inner_text("#wb-kiosks_online") == "1"

            silence(db, kiosk)
            # The server's own scan (as its jobs loop runs it), on the server's event loop.
            rt = live.server.config.app.state.runtime
            loop = live.server.servers[0].get_loop()
            scan = asyncio.run_coroutine_threadsafe(tasks.kiosk_scan_async(rt), loop)
            assert scan.result(timeout=10) in (0, 1)  # 0: the jobs loop got there first
            page.wait_for_selector(f"{row} .state-offline")
            assert page.inner_text("#wb-kiosks_offline") == "1"
            shots = ROOT / "var" / "test-artifacts" / "screenshots" / "kiosk"
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / f"wallboard-{backend}.png"), full_page=True)
            browser.close()
