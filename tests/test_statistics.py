"""Supervisor statistics: rates on known tickets, filters, scope, rankings, daily volume,
hot spots, and the access rules."""

from __future__ import annotations

import itertools
import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from contact.models import Channel, Ticket, TicketKind, TicketStatus
from contact.reports import find_hotspots, poisson_sf
from contact.runtime import Runtime
from tests.conftest import login

TZ = ZoneInfo("Asia/Shanghai")
_refs = itertools.count(1)


def ticket_row(cat: Any, created: datetime, **kw: Any) -> Ticket:
    """A ticket as the lifecycle would have left it; codes are resolved to ids."""
    dept = kw.pop("department", None)
    service = kw.pop("service", "street-light")
    district = kw.pop("district", "dh")
    values: dict[str, Any] = dict(
        reference=f"26{next(_refs):012d}",
        status=TicketStatus.received,
        kind=TicketKind.report,
        channel=Channel.sms,
        locale="zh-CN",
        description="路灯不亮",
        created_at=created,
        updated_at=created,
        version=1,
        reopen_count=0,
        dispatch_count=1 if dept else 0,
        urge_count=0,
    )
    values.update(kw)
    values["department_id"] = cat.departments[dept].id if dept else None
    values["service_id"] = cat.services[service].id if service else None
    values["district_id"] = cat.districts[district].id if district else None
    return Ticket(**values)


def insert(client: TestClient, specs: list[dict[str, Any]]) -> None:
    """Write tickets straight into the database through the app's own runtime."""
    rt: Runtime = client.app.state.runtime  # type: ignore[attr-defined]

    async def go() -> None:
        cat = await rt.catalogue()
        async with rt.db.session() as s:
            s.add_all(ticket_row(cat, **spec) for spec in specs)
            await s.commit()

    client.portal.call(go)  # type: ignore[union-attr]


def report(client: TestClient, who: str = "supervisor1", **params: Any) -> dict[str, Any]:
    r = client.get(f"/api/v1/stats/report?{urlencode(params)}", headers=login(client, who))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)
H = timedelta(hours=1)


def handled(created: datetime, dept: str, **kw: Any) -> dict[str, Any]:
    """A dispatched ticket, with what happened after as keyword arguments."""
    return dict(
        created=created,
        department=dept,
        status=kw.pop("status", TicketStatus.dispatched),
        dispatched_at=created + H,
        accept_due_at=created + 3 * H,
        due_at=created + 48 * H,
        **kw,
    )


def known_tickets() -> list[dict[str, Any]]:
    """Four tickets of cgj-dh (city management, Donghu) and two of zjj-jb (housing,
    Jiangbei), plus one nobody has dispatched yet."""
    t0 = NOW - 5 * DAY
    return [
        # signed for in time, resolved in time after 10 h, satisfied, solved
        handled(
            t0,
            "cgj-dh",
            status=TicketStatus.closed,
            accepted_at=t0 + 2 * H,
            resolved_at=t0 + 10 * H,
            closed_at=t0 + 12 * H,
            satisfaction=1,
            solved=True,
        ),
        # signed for late, resolved late after 30 h + 20 h, not satisfied, sent back once
        handled(
            t0,
            "cgj-dh",
            status=TicketStatus.resolved,
            accepted_at=t0 + 5 * H,
            resolved_at=t0 + 50 * H,
            satisfaction=3,
            solved=False,
            reopen_count=1,
            channel=Channel.voice,
        ),
        # a street office under cgj-dh: never signed for
        handled(t0, "cgj-dh-jf", channel=Channel.web),
        # signed for in time, still open
        handled(t0 - DAY, "cgj-dh", status=TicketStatus.accepted, accepted_at=t0 - DAY + H),
        # housing bureau in Jiangbei: resolved in time after 20 h, fairly satisfied
        handled(
            t0,
            "zjj-jb",
            status=TicketStatus.closed,
            service="property-management",
            district="jb",
            accepted_at=t0 + 2 * H,
            resolved_at=t0 + 20 * H,
            closed_at=t0 + 21 * H,
            satisfaction=2,
            solved=True,
        ),
        handled(
            t0,
            "zjj-jb",
            status=TicketStatus.accepted,
            service="property-management",
            district="jb",
            accepted_at=t0 + 2 * H,
            channel=Channel.voice,
        ),
        dict(created=t0, service="noise-neighbourhood", district="xs", channel=Channel.kiosk),
    ]


class TestRates:
    def test_rates_on_known_tickets(self, client: TestClient) -> None:
        insert(client, known_tickets())
        s = report(client)["summary"]
        assert s["tickets"] == 7
        assert s["by_status"] == {
            "closed": 2,
            "resolved": 1,
            "dispatched": 1,
            "accepted": 2,
            "received": 1,
        }
        assert s["by_channel"] == {"sms": 3, "voice": 2, "web": 1, "kiosk": 1}
        # response: 4 of 6 dispatched were signed for by the deadline
        assert (s["dispatched"], s["accepted_in_time"], s["response_rate"]) == (6, 4, 0.6667)
        # on time: 2 of 3 resolutions
        assert (s["resolved"], s["resolved_in_time"], s["on_time_rate"]) == (3, 2, 0.6667)
        # satisfaction: ratings 1, 3, 2 → 2 of 3
        assert (s["ratings"], s["satisfied"], s["satisfaction_rate"]) == (3, 2, 0.6667)
        assert (s["solved_answers"], s["solved"], s["resolution_rate"]) == (3, 2, 0.6667)
        # one send-back against three standing answers: 1 of 4 answers was sent back
        assert (s["reopened"], s["reopen_rate"]) == (1, 0.25)
        # handling: 10 h, 50 h, 20 h
        assert s["avg_handling_hours"] == pytest.approx(26.67, abs=0.01)

    def test_department_rows_and_ranking(self, client: TestClient) -> None:
        insert(client, known_tickets())
        rows = {r["code"]: r for r in report(client)["breakdowns"]["departments"]}
        dh = rows["cgj-dh"]
        assert dh["tickets"] == 3 and dh["level"] == "district" and dh["parent"] == "cgj"
        assert (dh["response_rate"], dh["on_time_rate"], dh["satisfaction_rate"]) == (
            0.6667,
            0.5,
            0.5,
        )
        assert dh["reopen_rate"] == pytest.approx(1 / 3, abs=1e-4)
        assert dh["avg_handling_hours"] == 30.0
        assert rows["cgj-dh-jf"]["response_rate"] == 0.0 and rows["cgj-dh-jf"]["rank"] == 3
        zjj = rows["zjj-jb"]
        assert (zjj["response_rate"], zjj["on_time_rate"], zjj["satisfaction_rate"]) == (
            1.0,
            1.0,
            1.0,
        )
        assert (zjj["rank"], zjj["score"]) == (1, 100.0)
        assert rows["cgj-dh"]["rank"] == 2
        assert rows[None]["rank"] is None and rows[None]["tickets"] == 1
        ordered = [r["code"] for r in report(client)["breakdowns"]["departments"]]
        assert ordered == ["zjj-jb", "cgj-dh", "cgj-dh-jf", None]

    def test_breakdowns_add_up_to_the_total(self, client: TestClient) -> None:
        insert(client, known_tickets())
        rep = report(client)
        for name in ("departments", "services", "channels", "districts"):
            assert sum(r["tickets"] for r in rep["breakdowns"][name]) == 7, name
        services = {r["code"]: r["tickets"] for r in rep["breakdowns"]["services"]}
        assert services == {"street-light": 4, "property-management": 2, "noise-neighbourhood": 1}
        districts = {r["code"]: r for r in rep["breakdowns"]["districts"]}
        assert districts["dh"]["tickets"] == 4 and districts["dh"]["name_zh"] == "东湖区"
        channels = {r["code"]: r["tickets"] for r in rep["breakdowns"]["channels"]}
        assert channels == {"sms": 3, "voice": 2, "web": 1, "kiosk": 1}

    def test_the_summary_endpoint_agrees_with_the_report(self, client: TestClient) -> None:
        insert(client, known_tickets())
        sup = login(client, "supervisor1")
        old = client.get("/api/v1/stats/summary", headers=sup).json()
        new = report(client)["summary"]
        for key in ("tickets", "response_rate", "on_time_rate", "satisfaction_rate"):
            assert old[key] == new[key], key
        assert (old["reopen_rate"], old["reopened"]) == (new["reopen_rate"], new["reopened"])


class TestFilters:
    def test_filters_change_the_figures(self, client: TestClient) -> None:
        insert(client, known_tickets())
        assert report(client)["summary"]["tickets"] == 7
        # a bureau includes its district and street offices
        cgj = report(client, department="cgj")["summary"]
        assert cgj["tickets"] == 4 and cgj["response_rate"] == 0.5
        assert report(client, department="cgj-dh")["summary"]["tickets"] == 4
        assert report(client, department="cgj-dh-jf")["summary"]["tickets"] == 1
        zjj = report(client, department="zjj")["summary"]
        assert zjj["tickets"] == 2 and zjj["satisfaction_rate"] == 1.0
        assert report(client, department="gaj")["summary"]["tickets"] == 0
        assert report(client, service="property-management")["summary"]["tickets"] == 2
        voice = report(client, channel="voice")["summary"]
        assert voice["tickets"] == 2 and voice["by_channel"] == {"voice": 2}
        assert report(client, district="jb")["summary"]["tickets"] == 2
        both = report(client, district="dh", channel="web")
        assert both["summary"]["tickets"] == 1
        assert both["filters"] == {
            "department": None,
            "service": None,
            "channel": "web",
            "district": "dh",
        }
        assert [r["code"] for r in both["breakdowns"]["departments"]] == ["cgj-dh-jf"]

    def test_the_period_bounds_the_figures(self, client: TestClient) -> None:
        insert(client, [*known_tickets(), dict(created=NOW - 40 * DAY)])
        assert report(client)["summary"]["tickets"] == 7  # default: the last 30 days
        older = report(
            client,
            **{"from": (NOW - 60 * DAY).isoformat(), "to": (NOW - 20 * DAY).isoformat()},
        )
        assert older["summary"]["tickets"] == 1
        assert datetime.fromisoformat(older["period"]["from"]) == NOW - 60 * DAY

    def test_daily_series_counts_local_days(self, client: TestClient) -> None:
        # 23:30 in Shanghai on 1 June is 15:30 UTC; 00:30 on 2 June is 16:30 UTC on 1 June
        specs = [
            dict(created=datetime(2025, 6, 1, 15, 30, tzinfo=UTC)),
            dict(created=datetime(2025, 6, 1, 16, 30, tzinfo=UTC)),
            dict(created=datetime(2025, 6, 1, 17, 0, tzinfo=UTC)),
            dict(created=datetime(2025, 6, 3, 2, 0, tzinfo=UTC)),
        ]
        insert(client, specs)
        rep = report(
            client, **{"from": "2025-06-01T00:00:00+08:00", "to": "2025-06-04T23:59:59+08:00"}
        )
        assert rep["series"] == [
            {"day": "2025-06-01", "tickets": 1},
            {"day": "2025-06-02", "tickets": 2},
            {"day": "2025-06-03", "tickets": 1},
            {"day": "2025-06-04", "tickets": 0},
        ]
        assert rep["period"]["timezone"] == "Asia/Shanghai"

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"from": "2025-06-01T00:00:00"}, "from"),
            ({"to": "2025-06-01T00:00:00"}, "to"),
            ({"from": "2025-06-02T00:00:00+08:00", "to": "2025-06-01T00:00:00+08:00"}, "from"),
            ({"from": "2023-01-01T00:00:00+08:00", "to": "2025-06-01T00:00:00+08:00"}, "from"),
            ({"from": "yesterday"}, "from"),
            ({"service": "no-such-service"}, "service"),
            ({"channel": "fax"}, "channel"),
            ({"district": "atlantis"}, "district"),
            ({"department": "no-such-dept"}, "department"),
            ({"day": "2025-13-01"}, "day"),
            ({"baseline_days": "2"}, "baseline_days"),
        ],
    )
    def test_bad_input_is_422_naming_the_field(
        self, client: TestClient, params: dict[str, str], field: str
    ) -> None:
        sup = login(client, "supervisor1")
        for path in ("report", "export.csv", "export.xlsx"):
            r = client.get(f"/api/v1/stats/{path}?{urlencode(params)}", headers=sup)
            assert r.status_code == 422, (path, r.text)
            body = r.json()
            assert body["error"] == "invalid_input" and field in body["fields"], body


class TestAccess:
    def test_agents_get_403_and_strangers_401(self, client: TestClient) -> None:
        agent = login(client, "agent1")
        for path in ("report", "export.csv", "export.xlsx"):
            r = client.get(f"/api/v1/stats/{path}", headers=agent)
            assert r.status_code == 403 and r.json()["error"] == "forbidden"
            assert client.get(f"/api/v1/stats/{path}").status_code == 401

    def test_admin_reads_everything(self, client: TestClient) -> None:
        insert(client, known_tickets())
        assert report(client, "admin")["summary"]["tickets"] == 7

    def test_a_department_sees_only_its_own_scope(self, client: TestClient) -> None:
        insert(client, known_tickets())
        rep = report(client, "cgj-dh-clerk")
        assert rep["summary"]["tickets"] == 4  # cgj-dh and its street office
        codes = {r["code"] for r in rep["breakdowns"]["departments"]}
        assert codes == {"cgj-dh", "cgj-dh-jf"}
        assert {r["code"] for r in rep["breakdowns"]["services"]} == {"street-light"}
        assert report(client, "cgj-dh-jf-clerk")["summary"]["tickets"] == 1
        assert report(client, "zjj-jb-clerk")["summary"]["tickets"] == 2
        # narrowing inside the scope works; the channel filter still applies
        assert report(client, "cgj-dh-clerk", department="cgj-dh-jf")["summary"]["tickets"] == 1
        assert report(client, "cgj-dh-clerk", channel="voice")["summary"]["tickets"] == 1

    @pytest.mark.parametrize("department", ["zjj", "zjj-jb", "cgj", "cgj-jb"])
    def test_a_department_outside_the_scope_is_404(
        self, client: TestClient, department: str
    ) -> None:
        insert(client, known_tickets())
        clerk = login(client, "cgj-dh-clerk")
        for path in ("report", "export.csv", "export.xlsx"):
            r = client.get(f"/api/v1/stats/{path}?department={department}", headers=clerk)
            assert r.status_code == 404 and r.json()["error"] == "not_found", (path, r.text)

    def test_hot_spots_of_a_department_stay_in_its_scope(self, client: TestClient) -> None:
        day = datetime(2025, 6, 10, 10, 0, tzinfo=TZ)
        specs = [
            dict(created=day + i * timedelta(minutes=5), department="zjj-jb", district="jb")
            for i in range(12)
        ]
        insert(client, specs)
        params = {"to": day.replace(hour=23).isoformat()}
        assert report(client, **params)["hotspots"]["items"]
        assert report(client, "cgj-dh-clerk", **params)["hotspots"]["items"] == []


class TestThroughTheApi:
    def test_a_ticket_handled_end_to_end_counts_everywhere(self, client: TestClient) -> None:
        agent, sup = login(client, "agent1"), login(client, "supervisor1")
        refs = []  # the second ticket stays with the agents: not yet dispatched
        for desc in ("解放路88号门前路灯不亮", "中山路路灯整夜不亮"):
            r = client.post(
                "/api/v1/tickets",
                headers=agent,
                json={
                    "description": desc,
                    "service": "street-light",
                    "address": "东湖区解放路88号",
                    "channel": "voice",
                },
            )
            assert r.status_code == 201, r.text
            refs.append(r.json()["reference"])
        first = refs[0]
        r = client.post(
            f"/api/v1/tickets/{first}/actions/dispatch",
            headers=agent,
            json={"department": "cgj-dh"},
        )
        assert r.status_code == 200, r.text
        clerk = login(client, "cgj-dh-clerk")
        assert (
            client.post(f"/api/v1/tickets/{first}/actions/accept", headers=clerk).status_code == 200
        )
        r = client.post(
            f"/api/v1/tickets/{first}/actions/resolve", headers=clerk, json={"reply": "已修复"}
        )
        assert r.status_code == 200, r.text
        r = client.post(
            f"/api/v1/tickets/{first}/actions/close",
            headers=agent,
            json={"satisfaction": 1, "solved": True},
        )
        assert r.status_code == 200, r.text

        s = report(client)["summary"]
        assert s["tickets"] == 2 and s["by_status"] == {"closed": 1, "received": 1}
        assert (s["response_rate"], s["on_time_rate"], s["satisfaction_rate"]) == (1.0, 1.0, 1.0)
        assert s["resolution_rate"] == 1.0 and s["reopen_rate"] == 0.0
        assert s["avg_handling_hours"] is not None and s["avg_handling_hours"] < 1
        rows = {r["code"]: r for r in report(client)["breakdowns"]["departments"]}
        assert rows["cgj-dh"]["rank"] == 1 and rows[None]["tickets"] == 1

        # the citizen is not satisfied after all: sent back, the redo rate shows it
        r = client.post(
            f"/api/v1/tickets/{first}/actions/reopen",
            headers=agent,
            json={"reason": "路灯仍然不亮", "satisfaction": 3, "solved": False},
        )
        assert r.status_code == 200, r.text
        s = report(client)["summary"]
        assert (s["reopened"], s["reopen_rate"], s["satisfaction_rate"]) == (1, 1.0, 0.0)
        assert s["resolved"] == 0 and s["resolution_rate"] == 0.0
        assert client.get("/api/v1/stats/summary", headers=sup).json()["reopened"] == 1


# ------------------------------------------------------------------ hot spots


def poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: fine for the small means of a test."""
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


class TestPoisson:
    def test_upper_tail_matches_known_values(self) -> None:
        assert poisson_sf(0, 3.0) == 1.0
        assert poisson_sf(1, 1.0) == pytest.approx(1 - math.exp(-1))
        assert poisson_sf(3, 1.0) == pytest.approx(1 - math.exp(-1) * 2.5)
        assert poisson_sf(2, 5.0) == pytest.approx(1 - math.exp(-5) * 6)
        # far into the tail the answer is tiny but not zero
        assert 0 < poisson_sf(40, 3.0) < 1e-20
        assert poisson_sf(5, 0.0) == 0.0
        # a large mean does not underflow: compare with the tail summed term by term
        tail = math.fsum(
            math.exp(-1000 + i * math.log(1000) - math.lgamma(i + 1)) for i in range(1000, 2000)
        )
        assert poisson_sf(1000, 1000.0) == pytest.approx(tail, rel=1e-9)
        head = math.fsum(
            math.exp(-1000 + i * math.log(1000) - math.lgamma(i + 1)) for i in range(900)
        )
        assert poisson_sf(900, 1000.0) == pytest.approx(1 - head, rel=1e-9)

    def test_a_spike_of_thirty_is_flagged(self) -> None:
        rng = random.Random(7)
        pairs = [("street-light", "dh"), ("garbage", "jb"), ("noise-neighbourhood", "xs")]
        means = {pairs[0]: 3.0, pairs[1]: 6.0, pairs[2]: 1.0}
        baseline = {p: sum(poisson(rng, means[p]) for _ in range(28)) for p in pairs}
        today = {p: poisson(rng, means[p]) for p in pairs}
        today[pairs[0]] += 30
        hits = find_hotspots(today, baseline, 28)
        assert [h.key for h in hits] == [pairs[0]]
        hit = hits[0]
        assert hit.count == today[pairs[0]] and hit.p_value < 1e-10
        assert hit.baseline_mean == pytest.approx(baseline[pairs[0]] / 28, abs=1e-3)
        assert hit.ratio > 5

    def test_an_ordinary_week_flags_nothing(self) -> None:
        rng = random.Random(2025)
        means = {("s", d): m for d, m in enumerate((0.3, 1.0, 2.5, 4.0, 8.0, 15.0))}
        history = {p: [poisson(rng, m) for _ in range(35)] for p, m in means.items()}
        for day in range(28, 35):  # each day of the week against the 28 days before it
            today = {p: counts[day] for p, counts in history.items()}
            baseline = {p: sum(counts[day - 28 : day]) for p, counts in history.items()}
            assert find_hotspots(today, baseline, 28) == [], day

    def test_a_small_count_never_flags_even_when_new(self) -> None:
        assert find_hotspots({"new": 4}, {}, 28) == []
        assert [h.key for h in find_hotspots({"new": 5}, {}, 28)] == ["new"]

    def test_the_report_shows_the_spike(self, client: TestClient) -> None:
        day = datetime(2025, 6, 30, tzinfo=TZ)
        rng = random.Random(11)
        specs: list[dict[str, Any]] = []
        for d in range(29):  # 28 baseline days and the day itself, ~2 a day per pair
            for service, district in (("street-light", "dh"), ("garbage", "jb")):
                for _ in range(poisson(rng, 2.0)):
                    at = day - timedelta(days=28 - d) + timedelta(hours=rng.uniform(8, 20))
                    specs.append(dict(created=at, service=service, district=district))
        specs += [
            dict(created=day + timedelta(hours=9, minutes=i), service="garbage", district="jb")
            for i in range(30)
        ]
        insert(client, specs)
        rep = report(client, to="2025-06-30T23:59:59+08:00")
        hs = rep["hotspots"]
        assert hs["day"] == "2025-06-30" and hs["baseline_days"] == 28
        assert [(h["service"], h["district"]) for h in hs["items"]] == [("garbage", "jb")]
        item = hs["items"][0]
        assert item["count"] >= 30 and item["p_value"] < 0.001 and item["ratio"] > 5
        assert item["district_name_zh"] == "江北区" and 1 <= item["baseline_mean"] <= 3
        # the day before was ordinary; a service filter keeps the other pair out
        quiet = report(client, to="2025-06-30T12:00:00+08:00", day="2025-06-29")
        assert quiet["hotspots"]["items"] == []
        other = report(client, to="2025-06-30T23:59:59+08:00", service="street-light")
        assert other["hotspots"]["items"] == []
