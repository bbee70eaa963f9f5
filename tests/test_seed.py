"""The demo city as a user would find it: departments with clerks, a catalogue that routes,
and a ticket history whose every step adds up. On SQLite, and on PostgreSQL when
``CONTACT_TEST_DATABASE_URL`` is set."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from contact import reference, routing
from contact.db import Database, sync_url
from contact.migrate import upgrade
from contact.models import (
    CalendarDay,
    Citizen,
    DeadlinePolicy,
    Department,
    District,
    KbArticle,
    Service,
    Ticket,
    TicketEvent,
    TicketStatus,
    User,
    WorkingHours,
)
from contact.security import verify_password
from contact.seed import (
    AlreadySeeded,
    demo_catalogue,
    demo_history,
    is_empty,
    messages,
    seed_demo,
)
from tests.conftest import drop_postgres, scratch_postgres

PASSWORD = "demo-Passw0rd"
NOW = datetime(2026, 11, 20, 7, 30, tzinfo=UTC)  # a Friday afternoon in Jiangcheng
SHANGHAI = ZoneInfo("Asia/Shanghai")
EVENT_KINDS = {
    "created",
    "dispatched",
    "accepted",
    "returned",
    "extension_requested",
    "extension_granted",
    "resolved",
    "reopened",
    "closed",
    "merged",
    "urged",
    "satisfaction",
}
OPEN = {"received", "dispatched", "accepted", "returned", "reopened"}
E164 = re.compile(r"^\+[1-9]\d{7,14}$")


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(
                not os.environ.get("CONTACT_TEST_DATABASE_URL"),
                reason="CONTACT_TEST_DATABASE_URL not set",
            ),
        ),
    ]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/t.db"
        upgrade(url)
        yield url
        return
    url = scratch_postgres("seed")
    upgrade(url)
    try:
        yield url
    finally:
        drop_postgres(url)


async def _seed(url: str, **kwargs):  # type: ignore[no-untyped-def]
    db = Database(url)
    try:
        return await seed_demo(db, password=PASSWORD, now=NOW, **kwargs)
    finally:
        await db.dispose()


async def _seed_again(url: str) -> tuple[bool, bool]:
    """(raised AlreadySeeded, is_empty) for a second run on the same database."""
    db = Database(url)
    try:
        raised = False
        try:
            await seed_demo(db, password=PASSWORD, now=NOW)
        except AlreadySeeded:
            raised = True
        return raised, await is_empty(db)
    finally:
        await db.dispose()


def _counts(s: Session) -> dict[str, int | None]:
    return {
        m.__tablename__: s.scalar(select(func.count()).select_from(m))
        for m in (District, Department, Service, User, KbArticle, Citizen, Ticket, TicketEvent)
    }


def test_seed_demo_city(db_url: str) -> None:
    report = asyncio.run(_seed(db_url))
    assert report.seconds < 15, report.seconds

    engine = create_engine(sync_url(db_url))
    try:
        with Session(engine) as s:
            _check_city(s, report)
            _check_history(s, report)
            before = _counts(s)
        raised, empty = asyncio.run(_seed_again(db_url))
        assert raised and not empty
        with Session(engine) as s:
            assert _counts(s) == before  # the second run changed nothing
    finally:
        engine.dispose()


def _check_city(s: Session, report) -> None:  # type: ignore[no-untyped-def]
    depts = s.scalars(select(Department)).all()
    by_id = {d.id: d for d in depts}
    bureaus = [d for d in depts if d.level == "bureau"]
    assert 10 <= len(bureaus) <= 16
    assert 40 <= len(depts) <= 70
    assert report.departments == len(depts)
    for d in depts:
        if d.level == "bureau":
            continue
        assert d.parent_id is not None
        parent = by_id[d.parent_id]
        if d.level == "district":
            assert parent.level == "bureau" and d.district_id is not None
        if d.level == "street":
            assert parent.level == "district" and d.keywords
            assert d.district_id == parent.district_id

    users = {u.username: u for u in s.scalars(select(User)).all()}
    assert users["admin"].role == "admin"
    assert users["supervisor1"].role == "supervisor"
    assert users["agent1"].role == "agent" and users["agent2"].role == "agent"
    for d in depts:  # one clerk per department, bureaus included
        clerk = users[f"{d.code}-clerk"]
        assert clerk.role == "department" and clerk.department_id == d.id
    assert sorted(report.usernames) == sorted(users)
    assert verify_password(users["cgj-clerk"].password_hash, PASSWORD)
    assert not verify_password(users["admin"].password_hash, "wrong")

    districts = s.scalars(select(District)).all()
    assert 4 <= len(districts) <= 5
    assert all(d.keywords for d in districts)
    address = "江城市东湖区解放路88号"
    placed = [d.code for d in districts if any(k in address for k in d.keywords)]
    assert placed == ["dh"]

    policies = {p.code: p for p in s.scalars(select(DeadlinePolicy)).all()}
    assert set(policies) == {"urgent", "utility", "inquiry", "complaint", "suggestion"}
    assert (policies["urgent"].accept_minutes, policies["urgent"].resolve_minutes) == (30, 60)
    assert not policies["urgent"].working_time and not policies["utility"].working_time
    assert policies["inquiry"].resolve_minutes == 5 * 7 * 60 and policies["inquiry"].working_time
    assert policies["complaint"].resolve_minutes == 15 * 7 * 60
    for p in policies.values():
        assert p.urgent_resolve_minutes <= p.resolve_minutes

    services = {x.code: x for x in s.scalars(select(Service)).all()}
    assert 35 <= len(services) <= 50
    for svc in services.values():
        assert by_id[svc.default_department_id].level == "bureau"
        assert svc.deadline_policy_id in {p.id for p in policies.values()}
        assert svc.name_zh and svc.name_en and svc.group_zh and svc.group_en
        assert svc.description_zh and svc.description_en
        if svc.territorial:  # the bureau has an office in every district
            offices = [d for d in depts if d.parent_id == svc.default_department_id]
            assert {d.district_id for d in offices} == {d.id for d in districts}
    assert by_id[services["other"].default_department_id].code == "xtb"
    assert services["social-insurance"].kind == "inquiry"
    assert sum(1 for x in services.values() if x.fields) >= 10

    hours = s.scalars(select(WorkingHours)).all()
    assert len(hours) == 10 and {h.weekday for h in hours} == set(range(5))
    days = {c.day: c.kind for c in s.scalars(select(CalendarDay)).all()}
    assert days[date(2026, 10, 1)] == "holiday" and days[date(2026, 10, 10)] == "workday"
    assert days[date(2027, 1, 1)] == "holiday"

    articles = s.scalars(select(KbArticle)).all()
    assert 10 <= len(articles) <= 16
    for a in articles:
        assert a.title_zh and a.title_en and len(a.body_zh) > 50 and len(a.body_en) > 50
        assert a.service_id in {x.id for x in services.values()} and a.keywords


def _check_history(s: Session, report) -> None:  # type: ignore[no-untyped-def]
    tickets = s.scalars(select(Ticket)).all()
    assert len(tickets) == report.tickets == 300
    statuses = Counter(t.status.value for t in tickets)
    assert set(statuses) == {st.value for st in TicketStatus}
    assert statuses["closed"] + statuses["resolved"] > len(tickets) / 2  # most are done
    assert len({t.channel for t in tickets}) == 6
    assert len({t.kind for t in tickets}) == 5
    assert len({t.service_id for t in tickets}) >= 30
    assert len({t.district_id for t in tickets if t.district_id}) >= 4
    locales = Counter(t.locale for t in tickets)
    assert locales["zh-CN"] > locales["en"] > 0
    assert min(t.created_at for t in tickets) >= NOW - timedelta(days=61)

    events: dict[int, list[TicketEvent]] = defaultdict(list)
    for e in s.scalars(select(TicketEvent).order_by(TicketEvent.id)).all():
        events[e.ticket_id].append(e)
    assert sum(len(v) for v in events.values()) == report.events
    ids = {t.id for t in tickets}
    sla_open: Counter[str] = Counter()
    for t in tickets:
        assert reference.is_valid(t.reference)
        assert t.reference[:6] == t.created_at.astimezone(SHANGHAI).strftime("%y%m%d")
        assert t.created_at.tzinfo is not None and t.updated_at <= NOW
        assert t.accept_due_at and t.due_at and t.accept_due_at <= t.due_at
        assert t.description and t.title
        if t.status != "received":
            assert t.department_id is not None, t.reference
        else:
            assert t.department_id is None

        history = events[t.id]
        times = [e.created_at for e in history]
        assert times == sorted(times), t.reference
        assert history[0].kind == "created" and history[0].to_status == "received"
        assert history[0].created_at == t.created_at
        assert history[-1].to_status == t.status, t.reference
        for prev, e in itertools.pairwise(history):
            assert e.from_status == prev.to_status, (t.reference, e.kind)
            assert e.kind in EVENT_KINDS
        assert t.dispatch_count == sum(1 for e in history if e.kind == "dispatched")
        assert t.reopen_count == sum(1 for e in history if e.kind == "reopened")
        assert t.urge_count == sum(1 for e in history if e.kind == "urged")
        for e in history:
            if e.kind == "returned":
                assert e.reason
            if e.actor.endswith("-clerk"):
                assert e.actor_id is not None

        if t.status in ("resolved", "closed"):
            resolved = [e for e in history if e.kind == "resolved"]
            assert t.reply and resolved and resolved[-1].data["reply"] == t.reply
            assert t.resolved_at == resolved[-1].created_at
            assert t.sla_state in ("met", "missed")
        if t.status in OPEN:
            assert t.sla_state in ("ok", "due_soon", "overdue")
            sla_open[t.sla_state.value] += 1
        if t.status == "closed":
            assert t.closed_at == history[-1].created_at
        if t.satisfaction is not None:
            assert t.status == "closed" and 1 <= t.satisfaction <= 5 and t.solved is not None
        if t.status == "merged":
            assert t.merged_into_id in ids and t.merged_into_id != t.id
        else:
            assert t.merged_into_id is None
    closed = [t for t in tickets if t.status == "closed"]
    assert sum(1 for t in closed if t.satisfaction) > 0.8 * len(closed)
    assert sla_open["overdue"] > 0 and sla_open["ok"] > sla_open["overdue"]

    phones = [c.phone for c in s.scalars(select(Citizen)).all()]
    assert len(phones) == report.citizens and len(set(phones)) == len(phones)
    assert all(p and E164.match(p) for p in phones)


# ---------------------------------------------------------------- without a database


def test_history_is_deterministic() -> None:
    a = demo_history(now=NOW, tickets=120, seed=7)
    b = demo_history(now=NOW, tickets=120, seed=7)
    c = demo_history(now=NOW, tickets=120, seed=8)
    refs = [t["reference"] for t in a.tickets]
    assert refs == [t["reference"] for t in b.tickets]
    assert [e["kind"] for e in a.events] == [e["kind"] for e in b.events]
    assert refs != [t["reference"] for t in c.tickets]
    assert len(set(refs)) == len(refs) == 120


def test_small_histories() -> None:
    assert demo_history(now=NOW, tickets=0).tickets == []
    assert len(demo_history(now=NOW, tickets=3).tickets) == 3


def test_every_message_routes_to_its_own_service() -> None:
    """The keywords are good enough that each sample message finds its service by text alone."""
    cat = demo_catalogue()
    rc = cat.routing_catalogue()
    router = routing.RuleRouter()
    addr = {"zh-CN": "东湖区解放路88号", "en": "88 Jiefang Road, Donghu District"}
    wrong = []
    for locale, table in (("zh-CN", messages.MESSAGES_ZH), ("en", messages.MESSAGES_EN)):
        for code, texts in table.items():
            for t in texts:
                text_ = t.format(addr=addr[locale])
                decision = router.route(rc, routing.RoutingRequest(text=text_))
                if decision.service != code:
                    wrong.append((code, decision.service, text_))
    assert not wrong, wrong
    assert sum(len(v) for v in messages.MESSAGES_ZH.values()) >= 60
    assert sum(len(v) for v in messages.MESSAGES_EN.values()) >= 15


def test_catalogue_is_consistent() -> None:
    cat = demo_catalogue()
    codes = [s["code"] for s in cat.services]
    assert len(codes) == len(set(codes))
    assert set(messages.MESSAGES_ZH) == set(codes)  # every service has sample messages
    dept_codes = {d["code"] for d in cat.departments}
    for svc in cat.services:
        assert svc["dept"] in dept_codes and svc["policy"] in {p["code"] for p in cat.policies}
        for f in svc["fields"]:
            assert f["datatype"] in {
                "string",
                "number",
                "datetime",
                "text",
                "singlevaluelist",
                "multivaluelist",
            }
            assert f["label_zh"] and f["label_en"] and isinstance(f["required"], bool)
            if f["datatype"].endswith("valuelist"):
                assert f["values"] and all(v["key"] and v["name_en"] for v in f["values"])
    # No address word belongs to two districts.
    seen: dict[str, str] = {}
    for d in cat.districts:
        for kw in d["keywords"]:
            assert seen.setdefault(kw, d["code"]) == d["code"], kw
    # demo_catalogue hands out copies.
    cat.services[0]["keywords"].append("x")
    assert "x" not in demo_catalogue().services[0]["keywords"]
