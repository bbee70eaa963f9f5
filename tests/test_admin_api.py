"""The admin API (``/api/v1/admin/...``): the catalogue, routing words, the business
calendar, staff accounts, API clients and kiosks. Admins only; every change audited;
bad input 422 naming the field and nothing written; duplicates 409; unknown 404."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, delete, insert, select, update

from contact.db import sync_url
from contact.models import ApiClient, AuditEntry, Base, KioskDevice, User
from contact.settings import Settings
from tests.conftest import PASSWORD, login, truncate, wait_for, with_runtime

# Reference tables the admin edits. SQLite gives each test its own copy; on PostgreSQL
# the tests share one database, so each test puts them back as they were.
RESTORED = ("users", "services", "departments", "districts")
REPLACED = ("working_hours", "calendar_days", "api_clients", "kiosk_devices")


def _snapshot(url: str) -> dict[str, list[dict[str, Any]]]:
    engine = create_engine(sync_url(url))
    with engine.connect() as conn:
        snap = {
            name: [dict(r._mapping) for r in conn.execute(select(Base.metadata.tables[name]))]
            for name in RESTORED + REPLACED
        }
    engine.dispose()
    return snap


def _restore(url: str, snap: dict[str, list[dict[str, Any]]]) -> None:
    truncate(url)  # tickets, sessions and audit rows may point at what the test added
    engine = create_engine(sync_url(url))
    with engine.begin() as conn:
        for name in RESTORED:  # users before services before departments before districts
            table = Base.metadata.tables[name]
            now = {r.id: dict(r._mapping) for r in conn.execute(select(table))}
            for row in snap[name]:
                if now.get(row["id"]) != row:
                    conn.execute(update(table).where(table.c.id == row["id"]).values(**row))
            conn.execute(delete(table).where(table.c.id.not_in([r["id"] for r in snap[name]])))
        for name in REPLACED:
            table = Base.metadata.tables[name]
            conn.execute(delete(table))
            if snap[name]:
                conn.execute(insert(table), snap[name])
    engine.dispose()


@pytest.fixture(autouse=True)
def catalogue_restored(backend: str, settings: Settings) -> Iterator[None]:
    if backend != "postgres":
        yield
        return
    url = str(settings.DATABASE_URL)
    snap = _snapshot(url)
    yield
    _restore(url, snap)


# ------------------------------------------------------------------ helpers


@pytest.fixture
def admin(client: TestClient) -> dict[str, str]:
    return login(client, "admin")


def audit_rows(settings: Settings, prefix: str = "admin.") -> list[tuple[str, dict[str, Any]]]:
    async def go(rt: Any) -> list[tuple[str, dict[str, Any]]]:
        async with rt.db.session() as s:
            rows = await s.execute(
                select(AuditEntry.action, AuditEntry.detail)
                .where(AuditEntry.action.startswith(prefix))
                .order_by(AuditEntry.id)
            )
            return [(a, d) for a, d in rows.all()]

    return list(with_runtime(settings, go))


def query(settings: Settings, stmt: Any) -> list[Any]:
    async def go(rt: Any) -> list[Any]:
        async with rt.db.session() as s:
            return list((await s.execute(stmt)).all())

    return list(with_runtime(settings, go))


def problem(r: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] and body["detail"]
    if field is not None:
        assert field in body["fields"], body
    return dict(body)


def suggest(client: TestClient, headers: dict[str, str], **params: str) -> dict[str, Any]:
    r = client.get("/api/v1/routing/suggest", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


NEW_SERVICE = {
    "code": "bike-share",
    "name_zh": "共享单车乱停放",
    "name_en": "Shared bikes parked badly",
    "group_zh": "交通出行",
    "group_en": "Transport",
    "kind": "report",
    "keywords": ["共享单车", " 单车堆放 ", "共享单车"],
    "department": "cgj",
    "territorial": True,
    "policy": "complaint",
    "fields": [
        {
            "code": "brand",
            "datatype": "singlevaluelist",
            "required": False,
            "label_zh": "品牌",
            "label_en": "Brand",
            "values": [
                {"key": "hello", "name_zh": "哈啰", "name_en": "Hello"},
                {"key": "meituan", "name_zh": "美团", "name_en": "Meituan"},
            ],
        }
    ],
}

ADMIN_ROUTES = [
    ("GET", "/api/v1/admin/services"),
    ("POST", "/api/v1/admin/services"),
    ("PATCH", "/api/v1/admin/services/street-light"),
    ("GET", "/api/v1/admin/policies"),
    ("GET", "/api/v1/admin/departments"),
    ("POST", "/api/v1/admin/departments"),
    ("PATCH", "/api/v1/admin/departments/cgj"),
    ("GET", "/api/v1/admin/districts"),
    ("PATCH", "/api/v1/admin/districts/dh"),
    ("GET", "/api/v1/admin/calendar"),
    ("PUT", "/api/v1/admin/calendar/hours"),
    ("PUT", "/api/v1/admin/calendar/days/2031-06-02"),
    ("DELETE", "/api/v1/admin/calendar/days/2031-06-02"),
    ("GET", "/api/v1/admin/users"),
    ("POST", "/api/v1/admin/users"),
    ("PATCH", "/api/v1/admin/users/agent1"),
    ("POST", "/api/v1/admin/users/agent1/reset-password"),
    ("POST", "/api/v1/admin/users/agent1/unlock"),
    ("GET", "/api/v1/admin/api-clients"),
    ("POST", "/api/v1/admin/api-clients"),
    ("POST", "/api/v1/admin/api-clients/1/revoke"),
    ("GET", "/api/v1/admin/kiosks"),
    ("POST", "/api/v1/admin/kiosks"),
    ("POST", "/api/v1/admin/kiosks/1/revoke"),
    ("GET", "/api/v1/admin/audit"),
    ("GET", "/api/v1/admin/routing/models"),
    ("GET", "/api/v1/admin/routing/outcomes"),
    ("POST", "/api/v1/admin/routing/models/1/activate"),
    ("POST", "/api/v1/admin/routing/train"),
]


# ------------------------------------------------------------------ access


class TestAccess:
    def test_the_list_above_covers_every_admin_route(self, client: TestClient) -> None:
        paths = {
            (m.upper(), path)
            for path, ops in client.get("/openapi.json").json()["paths"].items()
            if path.startswith("/api/v1/admin/")
            for m in ops
        }
        assert len(paths) == len(ADMIN_ROUTES)
        listed = {(m, p.split("/api/v1/admin/")[1]) for m, p in ADMIN_ROUTES}
        for method, path in paths:
            shape = path.split("/api/v1/admin/")[1].split("/")
            assert any(
                m == method
                and len(p.split("/")) == len(shape)
                and all(
                    a == b or b.startswith("{") for a, b in zip(p.split("/"), shape, strict=True)
                )
                for m, p in listed
            ), (method, path)

    @pytest.mark.parametrize("username", ["agent1", "supervisor1", "cgj-dh-clerk"])
    def test_other_roles_are_refused_before_anything_is_read(
        self, client: TestClient, settings: Settings, username: str
    ) -> None:
        headers = login(client, username)
        for method, path in ADMIN_ROUTES:
            # Even a body that would not validate is refused for the role first.
            r = client.request(method, path, headers=headers, json={"bogus": 1})
            assert r.status_code == 403, (method, path, r.text)
            assert r.json()["error"] == "forbidden"
        assert audit_rows(settings) == []
        assert client.get("/api/v1/services/street-light", headers=headers).status_code == 200

    def test_signed_out_is_401(self, client: TestClient) -> None:
        assert client.get("/api/v1/admin/users").status_code == 401


# ------------------------------------------------------------------ services


class TestServices:
    def test_an_admin_adds_a_service_that_routing_uses_at_once(
        self, client: TestClient, settings: Settings, admin: dict[str, str]
    ) -> None:
        r = client.post("/api/v1/admin/services", json=NEW_SERVICE, headers=admin)
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["keywords"] == ["共享单车", "单车堆放"]
        assert made["fields"][0]["code"] == "brand" and made["fields"][0]["order"] == 1
        assert made["active"] is True and made["policy"] == "complaint"
        listed = client.get("/api/v1/admin/services", headers=admin).json()
        assert "bike-share" in [s["code"] for s in listed]
        # Routing reads the new keywords (territorial: the bureau's office in the district).
        found = wait_for(
            lambda: (
                (s := suggest(client, admin, text="路口共享单车堆放", address="东湖区解放路1号"))[
                    "service"
                ]
                == "bike-share"
                and s
            )
        )
        assert found["suggestions"][0]["department"].startswith("cgj-dh")
        ((action, detail),) = audit_rows(settings)
        assert action == "admin.service.create"
        assert detail["service"] == "bike-share" and detail["fields"] == ["brand"]

    def test_a_duplicate_code_is_409_and_writes_nothing(
        self, client: TestClient, settings: Settings, admin: dict[str, str]
    ) -> None:
        r = client.post(
            "/api/v1/admin/services", json={**NEW_SERVICE, "code": "street-light"}, headers=admin
        )
        problem(r, 409, "code")
        assert audit_rows(settings) == []

    @pytest.mark.parametrize(
        ("fields", "where"),
        [
            ([{"code": "Bad Code", "datatype": "string", "label_zh": "甲", "label_en": "A"}],
             "fields[0].code"),
            ([{"code": "a", "datatype": "string", "label_zh": "甲", "label_en": "A"},
              {"code": "b", "datatype": "colour", "label_zh": "乙", "label_en": "B"}],
             "fields[1].datatype"),
            ([{"code": "a", "datatype": "singlevaluelist", "label_zh": "甲", "label_en": "A",
               "values": [{"key": "x", "name_zh": "叉"}]}],
             "fields[0].values[0].name_en"),
        ],
    )  # fmt: skip
    def test_a_bad_field_definition_is_422_naming_the_place(
        self,
        client: TestClient,
        settings: Settings,
        admin: dict[str, str],
        fields: list[Any],
        where: str,
    ) -> None:
        r = client.post(
            "/api/v1/admin/services", json={**NEW_SERVICE, "fields": fields}, headers=admin
        )
        problem(r, 422, where)
        r = client.patch("/api/v1/admin/services/pothole", json={"fields": fields}, headers=admin)
        problem(r, 422, where)
        codes = [s["code"] for s in client.get("/api/v1/admin/services", headers=admin).json()]
        assert "bike-share" not in codes
        pothole = client.get("/api/v1/services/pothole", headers=admin).json()
        assert all(f["code"] not in ("a", "b", "Bad Code") for f in pothole["fields"])
        assert audit_rows(settings) == []

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"department": "nowhere"}, "department"),
            ({"department": "cgj-dh"}, "department"),  # territorial needs a bureau
            ({"policy": "someday"}, "policy"),
            ({"kind": "rant"}, "kind"),
            ({"name_zh": ""}, "name_zh"),
            ({"name_zh": None}, "name_zh"),
            ({"code": "renamed"}, "code"),
            ({"keywords": ["x" * 51]}, "keywords.0"),
        ],
    )
    def test_bad_input_is_422_and_changes_nothing(
        self,
        client: TestClient,
        settings: Settings,
        admin: dict[str, str],
        change: dict[str, Any],
        field: str,
    ) -> None:
        before = client.get("/api/v1/services/street-light", headers=admin).json()
        r = client.patch("/api/v1/admin/services/street-light", json=change, headers=admin)
        body = problem(r, 422)
        assert any(k.startswith(field) or field.startswith(k) for k in body["fields"]), body
        assert client.get("/api/v1/services/street-light", headers=admin).json() == before
        assert audit_rows(settings) == []

    def test_an_unknown_service_is_404(self, client: TestClient, admin: dict[str, str]) -> None:
        r = client.patch("/api/v1/admin/services/nope", json={"active": False}, headers=admin)
        problem(r, 404)

    def test_a_required_field_added_by_the_admin_is_enforced_at_intake(
        self, client: TestClient, settings: Settings, admin: dict[str, str]
    ) -> None:
        agent = login(client, "agent1")
        pothole = client.get("/api/v1/services/pothole", headers=admin).json()
        added = {
            "code": "lane",
            "datatype": "string",
            "required": True,
            "label_zh": "车道",
            "label_en": "Lane",
        }
        r = client.patch(
            "/api/v1/admin/services/pothole",
            json={"fields": [*pothole["fields"], added]},
            headers=admin,
        )
        assert r.status_code == 200, r.text
        assert [f["code"] for f in r.json()["fields"]][-1] == "lane"
        ticket = {
            "description": "路面有个大坑",
            "service": "pothole",
            "channel": "web",
            "phone": "+8613800138111",
            "fields": {},
        }

        def refused() -> Any:
            r = client.post("/api/v1/tickets", json=ticket, headers=agent)
            return r.status_code == 422 and r.json()

        body = wait_for(refused)
        assert "fields.lane" in body["fields"]
        r = client.post(
            "/api/v1/tickets", json={**ticket, "fields": {"lane": "左转道"}}, headers=agent
        )
        assert r.status_code == 201, r.text
        ((action, detail),) = audit_rows(settings)
        assert action == "admin.service.update" and detail["service"] == "pothole"
        assert "lane" in detail["changed"]["fields"]

    def test_a_deactivated_service_stays_listed_for_the_admin_only(
        self, client: TestClient, settings: Settings, admin: dict[str, str]
    ) -> None:
        r = client.patch("/api/v1/admin/services/taxi", json={"active": False}, headers=admin)
        assert r.status_code == 200 and r.json()["active"] is False
        listed = {s["code"]: s for s in client.get("/api/v1/admin/services", headers=admin).json()}
        assert listed["taxi"]["active"] is False
        assert "taxi" not in [
            s["code"] for s in client.get("/api/v1/services", headers=admin).json()
        ]
        # Unchanged values write nothing and audit nothing.
        client.patch("/api/v1/admin/services/taxi", json={"active": False}, headers=admin)
        assert [a for a, _ in audit_rows(settings)] == ["admin.service.update"]
        assert audit_rows(settings)[0][1]["changed"] == {"active": False}


# ------------------------------------------------------------------ departments, routing


STREET = {
    "code": "cgj-dh-xh",
    "name_zh": "新湖城管中队",
    "name_en": "Xinhu Urban Management Squad",
    "level": "street",
    "parent": "cgj-dh",
    "keywords": ["新湖路"],
    "phone": "027-1234 5678",
}


class TestDepartments:
    def test_a_new_street_office_gets_its_street_at_once(
        self, client: TestClient, settings: Settings, admin: dict[str, str]
    ) -> None:
        r = client.post("/api/v1/admin/departments", json=STREET, headers=admin)
        assert r.status_code == 201, r.text
        assert r.json()["district"] == "dh"  # its district office's
        found = wait_for(
            lambda: (
                (s := suggest(client, admin, text="路灯不亮", address="东湖区新湖路3号"))[
                    "suggestions"
                ][0]["department"]
                == "cgj-dh-xh"
                and s
            )
        )
        assert found["service"] == "street-light"
        assert [a for a, _ in audit_rows(settings)] == ["admin.department.create"]

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"level": "bureau"}, "parent"),  # a bureau has no parent
            ({"parent": "cgj"}, "parent"),  # a street office sits under a district office
            ({"parent": None}, "parent"),
            ({"parent": "nowhere"}, "parent"),
            ({"district": "jb"}, "district"),  # not its district office's district
            (
                {"level": "district", "keywords": ["x"], "parent": "cgj", "district": "dh"},
                "keywords",
            ),
            ({"phone": "call me"}, "phone"),
        ],
    )
    def test_a_placement_the_database_or_routing_would_refuse_is_422(
        self,
        client: TestClient,
        settings: Settings,
        admin: dict[str, str],
        change: dict[str, Any],
        field: str,
    ) -> None:
        r = client.post("/api/v1/admin/departments", json={**STREET, **change}, headers=admin)
        problem(r, 422, field)
        codes = [d["code"] for d in client.get("/api/v1/admin/departments", headers=admin).json()]
        assert "cgj-dh-xh" not in codes
        assert audit_rows(settings) == []

    def test_a_duplicate_code_is_409(self, client: TestClient, admin: dict[str, str]) -> None:
        r = client.post(
            "/api/v1/admin/departments", json={**STREET, "code": "cgj-dh-jf"}, headers=admin
        )
        problem(r, 409, "code")

    def test_a_department_in_use_is_not_deactivated(
        self, client: TestClient, settings: Settings, admin: dict[str, str]
    ) -> None:
        r = client.patch("/api/v1/admin/departments/cgj", json={"active": False}, headers=admin)
        assert problem(r, 409)["error"] == "in_use"
        assert audit_rows(settings) == []

    def test_edit_and_deactivate_a_department(
        self, client: TestClient, settings: Settings, admin: dict[str, str]
    ) -> None:
        client.post("/api/v1/admin/departments", json=STREET, headers=admin)
        r = client.patch(
            "/api/v1/admin/departments/cgj-dh-xh",
            json={"name_en": "Xinhu Squad", "keywords": ["新湖路", "新湖广场"], "phone": None},
            headers=admin,
        )
        assert r.status_code == 200, r.text
        assert r.json()["keywords"] == ["新湖路", "新湖广场"] and r.json()["phone"] is None
        r = client.patch(
            "/api/v1/admin/departments/cgj-dh-xh", json={"active": False}, headers=admin
        )
        assert r.status_code == 200 and r.json()["active"] is False
        public = [d["code"] for d in client.get("/api/v1/departments", headers=admin).json()]
        wait_for(
            lambda: (
                "cgj-dh-xh"
                not in [d["code"] for d in client.get("/api/v1/departments", headers=admin).json()]
            )
        )
        assert "cgj-dh-jf" in public
        actions = [a for a, _ in audit_rows(settings)]
        assert actions == ["admin.department.create", *["admin.department.update"] * 2]
        assert audit_rows(settings)[1][1]["changed"]["name_en"] == "Xinhu Squad"
        problem(client.patch("/api/v1/admin/departments/zz", json={}, headers=admin), 404)


class TestDistricts:
    def test_a_new_address_word_places_addresses_in_its_district(
        self, client: TestClient, settings: Settings, admin: dict[str, str]
    ) -> None:
        dh = {d["code"]: d for d in client.get("/api/v1/admin/districts", headers=admin).json()}[
            "dh"
        ]
        assert suggest(client, admin, text="路灯不亮", address="星光里小区")["district"] is None
        r = client.patch(
            "/api/v1/admin/districts/dh",
            json={"keywords": [*dh["keywords"], "星光里"]},
            headers=admin,
        )
        assert r.status_code == 200 and "星光里" in r.json()["keywords"]
        wait_for(
            lambda: (
                suggest(client, admin, text="路灯不亮", address="星光里小区")["district"] == "dh"
            )
        )
        ((action, detail),) = audit_rows(settings)
        assert action == "admin.district.update" and detail["district"] == "dh"

    def test_a_word_of_another_district_is_409(
        self, client: TestClient, settings: Settings, admin: dict[str, str]
    ) -> None:
        r = client.patch("/api/v1/admin/districts/dh", json={"keywords": ["江北"]}, headers=admin)
        assert problem(r, 409, "keywords")["error"] == "duplicate"
        dh = {d["code"]: d for d in client.get("/api/v1/admin/districts", headers=admin).json()}
        assert "东湖" in dh["dh"]["keywords"]
        assert audit_rows(settings) == []
        problem(client.patch("/api/v1/admin/districts/zz", json={}, headers=admin), 404)


# ------------------------------------------------------------------ calendar


class TestCalendar:
    def test_add_change_and_remove_a_holiday(
        self, client: TestClient, settings: Settings, admin: dict[str, str]
    ) -> None:
        day = {"kind": "holiday", "name_zh": "城市纪念日", "name_en": "City Day"}
        r = client.put("/api/v1/admin/calendar/days/2031-06-02", json=day, headers=admin)
        assert r.status_code == 201 and r.json()["kind"] == "holiday"
        r = client.put(
            "/api/v1/admin/calendar/days/2031-06-02",
            json={**day, "name_en": "Founding Day"},
            headers=admin,
        )
        assert r.status_code == 200 and r.json()["name_en"] == "Founding Day"
        cal = client.get("/api/v1/admin/calendar?year=2031", headers=admin).json()
        assert [d["day"] for d in cal["days"]] == ["2031-06-02"]
        assert cal["working_hours"][0] == {"weekday": 0, "start": "09:00:00", "end": "12:00:00"}
        assert (
            client.delete("/api/v1/admin/calendar/days/2031-06-02", headers=admin).status_code
            == 204
        )
        problem(client.delete("/api/v1/admin/calendar/days/2031-06-02", headers=admin), 404)
        assert client.get("/api/v1/admin/calendar?year=2031", headers=admin).json()["days"] == []
        assert [a for a, _ in audit_rows(settings)] == [
            "admin.calendar.day.create",
            "admin.calendar.day.update",
            "admin.calendar.day.delete",
        ]

    @pytest.mark.parametrize(
        ("path", "body", "field"),
        [
            ("/api/v1/admin/calendar/days/2031-02-30", {"kind": "holiday"}, "day"),
            ("/api/v1/admin/calendar/days/2031-06-02", {"kind": "party"}, "kind"),
            ("/api/v1/admin/calendar/hours", {"periods": []}, "periods"),
            (
                "/api/v1/admin/calendar/hours",
                {"periods": [{"weekday": 0, "start": "12:00", "end": "09:00"}]},
                "periods[0].end",
            ),
            (
                "/api/v1/admin/calendar/hours",
                {
                    "periods": [
                        {"weekday": 1, "start": "09:00", "end": "12:00"},
                        {"weekday": 1, "start": "11:00", "end": "15:00"},
                    ]
                },
                "periods[1].start",
            ),
            (
                "/api/v1/admin/calendar/hours",
                {"periods": [{"weekday": 7, "start": "09:00", "end": "12:00"}]},
                "periods.0.weekday",
            ),
        ],
    )
    def test_bad_calendar_input_is_422(
        self,
        client: TestClient,
        settings: Settings,
        admin: dict[str, str],
        path: str,
        body: dict[str, Any],
        field: str,
    ) -> None:
        before = client.get("/api/v1/admin/calendar", headers=admin).json()
        problem(client.put(path, json=body, headers=admin), 422, field)
        assert client.get("/api/v1/admin/calendar", headers=admin).json() == before
        assert audit_rows(settings) == []

    def test_new_working_hours_move_the_deadlines_of_new_tickets(
        self, client: TestClient, settings: Settings, admin: dict[str, str]
    ) -> None:
        agent = login(client, "agent1")
        ticket = {"description": "咨询社保转移手续", "service": "social-insurance"}

        def due() -> datetime:
            r = client.post("/api/v1/tickets", json=ticket, headers=agent)
            assert r.status_code == 201, r.text
            return datetime.fromisoformat(r.json()["due_at"])

        before = due()
        # One working hour a week: five working days' worth takes months.
        r = client.put(
            "/api/v1/admin/calendar/hours",
            json={"periods": [{"weekday": 6, "start": "09:00", "end": "10:00"}]},
            headers=admin,
        )
        assert r.status_code == 200, r.text
        assert r.json() == [{"weekday": 6, "start": "09:00:00", "end": "10:00:00"}]
        wait_for(lambda: due() > before + timedelta(days=60))
        ((action, detail),) = audit_rows(settings)
        assert action == "admin.calendar.hours" and detail["new"] == ["6 09:00-10:00"]
        assert "0 09:00-12:00" in detail["old"]


# ------------------------------------------------------------------ users


def stored_user(settings: Settings, username: str) -> Any:
    ((user,),) = query(settings, select(User).where(User.username == username))
    return user


class TestUsers:
    def test_a_new_user_gets_a_password_shown_once(
        self, client: TestClient, settings: Settings, admin: dict[str, str]
    ) -> None:
        r = client.post(
            "/api/v1/admin/users",
            json={
                "username": "cgj-dh-clerk2",
                "display_name": "王芳",
                "role": "department",
                "department": "cgj-dh",
                "locale": "en",
            },
            headers=admin,
        )
        assert r.status_code == 201, r.text
        password = r.json()["password"]
        assert len(password) >= 16 and r.json()["user"]["department"] == "cgj-dh"
        user = stored_user(settings, "cgj-dh-clerk2")
        assert user.password_hash.startswith("$argon2") and password not in user.password_hash
        listed = client.get("/api/v1/admin/users", headers=admin).text
        assert password not in listed and "password" not in listed
        me = client.get("/api/v1/me", headers=login(client, "cgj-dh-clerk2", password)).json()
        assert me["role"] == "department" and me["department"] == "cgj-dh"
        ((action, detail),) = audit_rows(settings)
        assert action == "admin.user.create" and detail["target"] == "cgj-dh-clerk2"
        assert password not in str(detail)

    @pytest.mark.parametrize(
        ("body", "status", "field"),
        [
            ({"username": "x1", "role": "department"}, 422, "department"),
            ({"username": "x1", "role": "agent", "department": "cgj"}, 422, "department"),
            ({"username": "x1", "role": "department", "department": "zz"}, 422, "department"),
            ({"username": "x 1", "role": "agent"}, 422, "username"),
            ({"username": "x1", "role": "mayor"}, 422, "role"),
            ({"username": "x1", "role": "agent", "locale": "fr"}, 422, "locale"),
            ({"username": "agent1", "role": "agent"}, 409, "username"),
        ],
    )
    def test_refusals_write_nothing(
        self,
        client: TestClient,
        settings: Settings,
        admin: dict[str, str],
        body: dict[str, Any],
        status: int,
        field: str,
    ) -> None:
        problem(client.post("/api/v1/admin/users", json=body, headers=admin), status, field)
        assert "x1" not in [
            u["username"] for u in client.get("/api/v1/admin/users", headers=admin).json()
        ]
        assert audit_rows(settings) == []

    def test_a_deactivated_user_is_refused_at_once(
        self, client: TestClient, settings: Settings, admin: dict[str, str]
    ) -> None:
        bearer = login(client, "agent2")
        # The client's cookie jar is agent2's browser; the admin calls with a bearer token.
        browser = client
        page = browser.get("/signin").text
        csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
        browser.post(
            "/signin",
            data={"username": "agent2", "password": PASSWORD, "csrf_token": csrf},
            follow_redirects=False,
        )
        assert browser.get("/api/v1/me").json()["username"] == "agent2"
        assert client.get("/api/v1/me", headers=bearer).status_code == 200

        r = client.patch("/api/v1/admin/users/agent2", json={"active": False}, headers=admin)
        assert r.status_code == 200 and r.json()["active"] is False
        assert client.get("/api/v1/me", headers=bearer).status_code == 401
        assert browser.get("/api/v1/me").status_code == 401
        assert browser.get("/console/", follow_redirects=False).status_code == 303
        browser.cookies.clear()
        r = client.post("/api/v1/auth/token", data={"username": "agent2", "password": PASSWORD})
        assert r.status_code == 401
        # Active again: the old token stays revoked; signing in works.
        client.patch("/api/v1/admin/users/agent2", json={"active": True}, headers=admin)
        assert client.get("/api/v1/me", headers=bearer).status_code == 401
        login(client, "agent2")
        assert [a for a, _ in audit_rows(settings)] == ["admin.user.update"] * 2

    def test_an_open_websocket_of_a_deactivated_user_is_closed(
        self,
        client: TestClient,
        admin: dict[str, str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        from starlette.websockets import WebSocketDisconnect

        import contact.api

        monkeypatch.setattr(contact.api, "RECHECK_SECONDS", 0.2)
        bearer = login(client, "agent2")
        with client.websocket_connect("/ws", headers=bearer) as ws:
            assert ws.receive_json()["type"] == "hello"
            r = client.patch("/api/v1/admin/users/agent2", json={"active": False}, headers=admin)
            assert r.status_code == 200
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
            assert closed.value.code == 4401
        client.patch("/api/v1/admin/users/agent2", json={"active": True}, headers=admin)

    def test_role_and_department_change_together(
        self, client: TestClient, settings: Settings, admin: dict[str, str]
    ) -> None:
        bearer = login(client, "agent1")
        r = client.patch(
            "/api/v1/admin/users/agent1",
            json={"role": "department", "department": "jyj", "display_name": "李雷"},
            headers=admin,
        )
        assert r.status_code == 200, r.text
        me = client.get("/api/v1/me", headers=bearer).json()  # the same token, new role
        assert me["role"] == "department" and me["department"] == "jyj"
        r = client.patch("/api/v1/admin/users/agent1", json={"role": "agent"}, headers=admin)
        assert r.status_code == 200 and r.json()["department"] is None
        problem(
            client.patch("/api/v1/admin/users/agent1", json={"role": "department"}, headers=admin),
            422,
            "department",
        )
        (_, first), (_, second) = audit_rows(settings)
        assert first["changed"] == {
            "display_name": "李雷",
            "role": "department",
            "department": "jyj",
        }
        assert second["changed"] == {"role": "agent", "department": None}

    def test_an_admin_cannot_lock_themselves_out(
        self, client: TestClient, settings: Settings, admin: dict[str, str]
    ) -> None:
        for change in ({"active": False}, {"role": "agent"}):
            r = client.patch("/api/v1/admin/users/admin", json=change, headers=admin)
            assert problem(r, 409)["error"] == "own_account"
        assert audit_rows(settings) == []
        problem(client.patch("/api/v1/admin/users/nobody", json={}, headers=admin), 404)

    def test_a_password_reset_ends_old_sessions_and_lifts_a_lock(
        self, client: TestClient, settings: Settings, admin: dict[str, str]
    ) -> None:
        bearer = login(client, "agent1")
        for _ in range(5):
            client.post("/api/v1/auth/token", data={"username": "agent1", "password": "wrong"})
        assert stored_user(settings, "agent1").locked_until is not None
        r = client.post("/api/v1/admin/users/agent1/reset-password", headers=admin)
        assert r.status_code == 200, r.text
        password = r.json()["password"]
        assert r.json()["user"]["locked_until"] is None
        assert client.get("/api/v1/me", headers=bearer).status_code == 401
        r = client.post("/api/v1/auth/token", data={"username": "agent1", "password": PASSWORD})
        assert r.status_code == 401
        login(client, "agent1", password)
        ((action, detail),) = audit_rows(settings)
        assert action == "admin.user.reset_password" and password not in str(detail)

    def test_unlock(self, client: TestClient, settings: Settings, admin: dict[str, str]) -> None:
        for _ in range(5):
            client.post("/api/v1/auth/token", data={"username": "agent2", "password": "wrong"})
        locked = client.post(
            "/api/v1/auth/token", data={"username": "agent2", "password": PASSWORD}
        )
        assert locked.status_code == 423
        listed = {u["username"]: u for u in client.get("/api/v1/admin/users", headers=admin).json()}
        assert listed["agent2"]["locked_until"] is not None
        r = client.post("/api/v1/admin/users/agent2/unlock", headers=admin)
        assert r.status_code == 200 and r.json()["locked_until"] is None
        login(client, "agent2")
        assert [a for a, _ in audit_rows(settings)] == ["admin.user.unlock"]


# ------------------------------------------------------------------ API clients, kiosks


def sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TestApiClients:
    def test_the_key_is_shown_once_and_only_its_hash_is_stored(
        self, client: TestClient, settings: Settings, admin: dict[str, str]
    ) -> None:
        r = client.post("/api/v1/admin/api-clients", json={"name": "城管通 App"}, headers=admin)
        assert r.status_code == 201, r.text
        key, made = r.json()["key"], r.json()["client"]
        assert key.startswith("ck_") and key.startswith(made["prefix"]) and made["active"]
        ((stored,),) = query(settings, select(ApiClient.key_hash).where(ApiClient.id == made["id"]))
        assert stored == sha256(key)
        listed = client.get("/api/v1/admin/api-clients", headers=admin)
        assert key not in listed.text and stored not in listed.text
        assert listed.json() == [{**made, "last_used_at": None}]
        ((action, detail),) = audit_rows(settings)
        assert action == "admin.apiclient.create" and key not in str(detail)
        problem(
            client.post("/api/v1/admin/api-clients", json={"name": "城管通 App"}, headers=admin),
            409,
            "name",
        )
        problem(
            client.post("/api/v1/admin/api-clients", json={"name": ""}, headers=admin), 422, "name"
        )

    def test_a_revoked_key_is_no_longer_accepted(
        self, client: TestClient, settings: Settings, admin: dict[str, str]
    ) -> None:
        made = client.post("/api/v1/admin/api-clients", json={"name": "wx"}, headers=admin).json()
        key, client_id = made["key"], made["client"]["id"]
        paths = client.get("/openapi.json").json()["paths"]
        consumer = "post" in paths.get("/open311/v2/requests.{fmt}", {})
        post = {
            "api_key": key,
            "service_code": "pothole",
            "address_string": "东湖区解放路1号",
            "description": "路面塌陷",
        }
        if consumer:  # Open311 intake checks keys: accepted now
            r = client.post("/open311/v2/requests.json", data=post)
            assert r.status_code == 201, r.text
        r = client.post(f"/api/v1/admin/api-clients/{client_id}/revoke", headers=admin)
        assert r.status_code == 200 and r.json()["active"] is False
        ((active,),) = query(settings, select(ApiClient.active).where(ApiClient.id == client_id))
        assert active is False
        if consumer:
            assert client.post("/open311/v2/requests.json", data=post).status_code == 403
        assert [a for a, _ in audit_rows(settings)] == [
            "admin.apiclient.create",
            "admin.apiclient.revoke",
        ]
        problem(client.post("/api/v1/admin/api-clients/9999/revoke", headers=admin), 404)


class TestKiosks:
    def test_register_and_revoke_a_kiosk(
        self, client: TestClient, settings: Settings, admin: dict[str, str]
    ) -> None:
        r = client.post(
            "/api/v1/admin/kiosks",
            json={"name": "东湖区政务大厅 1 号机", "location": "东湖区政务服务中心一楼"},
            headers=admin,
        )
        assert r.status_code == 201, r.text
        token, kiosk = r.json()["token"], r.json()["kiosk"]
        assert token.startswith("kd_") and kiosk["location"] == "东湖区政务服务中心一楼"
        ((stored,),) = query(
            settings, select(KioskDevice.token_hash).where(KioskDevice.id == kiosk["id"])
        )
        assert stored == sha256(token)
        listed = client.get("/api/v1/admin/kiosks", headers=admin)
        assert token not in listed.text and stored not in listed.text
        assert [k["name"] for k in listed.json()] == ["东湖区政务大厅 1 号机"]
        r = client.post(f"/api/v1/admin/kiosks/{kiosk['id']}/revoke", headers=admin)
        assert r.status_code == 200 and r.json()["active"] is False
        ((active,),) = query(
            settings, select(KioskDevice.active).where(KioskDevice.id == kiosk["id"])
        )
        assert active is False
        problem(
            client.post(
                "/api/v1/admin/kiosks", json={"name": "东湖区政务大厅 1 号机"}, headers=admin
            ),
            409,
            "name",
        )
        problem(client.post("/api/v1/admin/kiosks/9999/revoke", headers=admin), 404)
        actions = [a for a, _ in audit_rows(settings)]
        assert actions == ["admin.kiosk.create", "admin.kiosk.revoke"]
        assert token not in str(audit_rows(settings))


class TestAudit:
    def test_the_audit_lists_sign_ins_and_changes_newest_first(
        self, client: TestClient, admin: dict[str, str]
    ) -> None:
        client.post("/api/v1/admin/users/agent1/unlock", headers=admin)
        rows = client.get("/api/v1/admin/audit", headers=admin).json()
        assert [r["action"] for r in rows] == ["admin.user.unlock", "sign_in"]
        assert rows[0]["detail"]["target"] == "agent1" and rows[0]["username"] == "admin"
        only = client.get("/api/v1/admin/audit?action=admin.", headers=admin).json()
        assert [r["action"] for r in only] == ["admin.user.unlock"]
