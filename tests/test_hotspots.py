"""Hot spots: a synthetic spike is detected, ordinary weeks are not; the periodic scan
announces each new one once (``hotspot.detected``) to supervisors and the owning
department."""

from __future__ import annotations

import asyncio
import itertools
import random
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from contact import tasks
from contact.models import Channel, HotspotAlert, Ticket, TicketKind, TicketStatus
from contact.reports import (
    HOTSPOT_ALPHA,
    HOTSPOT_MIN_COUNT,
    baseline_shape,
    count_sf,
    find_hotspots,
    poisson_sf,
    without_past_events,
)
from contact.runtime import Runtime
from tests.conftest import login
from tests.test_statistics import poisson

TZ = ZoneInfo("Asia/Shanghai")
SERVICES = 10
DISTRICTS = 6
BASELINE = 28


def city(seed: int) -> dict[tuple[int, int], float]:
    """10 services × 6 districts with daily means from 0.5 to 8."""
    rng = random.Random(seed)
    return {
        (s, d): round(rng.uniform(0.5, 8.0), 2) for s in range(SERVICES) for d in range(DISTRICTS)
    }


def history(
    means: dict[tuple[int, int], float],
    days: int,
    rng: random.Random,
    *,
    weekend: float = 1.0,
    burst: float | None = None,
) -> dict[tuple[int, int], list[int]]:
    """Daily counts from day 0, a Monday. With ``weekend`` < 1 Saturdays and Sundays are
    that much quieter than working days (the week's mean stays the pair's); with
    ``burst`` each day's rate is the mean times a gamma variable of that shape (mean 1,
    variance 1/burst): busy and quiet days beyond chance, as weather and news make them."""
    scale = 7 / (5 + 2 * weekend)

    def rate(m: float, day: int) -> float:
        r = m * scale * (1.0 if day % 7 < 5 else weekend)
        return r * rng.gammavariate(burst, 1 / burst) if burst else r

    return {pair: [poisson(rng, rate(m, i)) for i in range(days)] for pair, m in means.items()}


def working(day: int) -> bool:
    return day % 7 < 5


def scan_day(
    counts: dict[tuple[int, int], list[int]],
    day: int,
    alpha: float = HOTSPOT_ALPHA,
    *,
    shaped: bool = True,
) -> list[Any]:
    """Day ``day`` against the 28 days before it, as the scan does (working days and
    the rest weighed apart, dispersion from the baseline); ``shaped=False``: a flat
    Poisson mean, every day alike."""
    today = {p: c[day] for p, c in counts.items()}
    daily: dict[tuple[int, int], list[float]] = {
        p: [float(n) for n in c[day - BASELINE : day]] for p, c in counts.items()
    }
    shape = None
    if shaped:
        kinds = [working(d) for d in range(day - BASELINE, day)]
        daily, _ = without_past_events(daily, kinds, working(day))
        shape = baseline_shape(daily, kinds, working(day))
    baseline = {p: sum(c) for p, c in daily.items()}
    return find_hotspots(today, baseline, BASELINE, alpha=alpha, shape=shape)


# ------------------------------------------------------------------ the test itself


class TestSpikeAndOrdinaryWeeks:
    def test_thirty_extra_complaints_in_one_pair_are_detected(self) -> None:
        means = city(2025)
        rng = random.Random(8)
        counts = history(means, BASELINE + 1, rng)
        spiked = (3, 4)
        counts[spiked][BASELINE] += 30
        hits = scan_day(counts, BASELINE)
        assert [h.key for h in hits] == [spiked]
        hit = hits[0]
        assert hit.count >= 30 and hit.p_value < 1e-10
        assert hit.expected == pytest.approx(means[spiked], abs=1.5)

    @pytest.mark.parametrize("mean", [0.5, 2.0, 8.0, 15.0])
    def test_the_spike_is_detected_whatever_the_pairs_usual_volume(self, mean: float) -> None:
        rng = random.Random(int(mean * 10))
        for _ in range(20):
            baseline = sum(poisson(rng, mean) for _ in range(BASELINE))
            today = poisson(rng, mean) + 30
            assert find_hotspots({"pair": today}, {"pair": baseline}, BASELINE), (mean, today)

    def test_an_ordinary_week_flags_nothing(self) -> None:
        means = city(2025)
        counts = history(means, BASELINE + 7, random.Random(9))
        for day in range(BASELINE, BASELINE + 7):  # scanned each day: 60 pairs × 7 = 420 tests
            assert scan_day(counts, day) == [], day

    def test_false_alarms_are_rare_over_many_ordinary_weeks(self) -> None:
        """200 weeks of 420 tests each: the current threshold almost never fires; the
        former 0.001 fired in about one week in four."""
        rng = random.Random(77)
        weeks, alarmed, alarmed_before = 200, 0, 0
        for w in range(weeks):
            counts = history(city(w), BASELINE + 7, rng)
            days = range(BASELINE, BASELINE + 7)
            alarmed += any(scan_day(counts, d) for d in days)
            alarmed_before += any(scan_day(counts, d, alpha=0.001) for d in days)
        assert alarmed / weeks <= 0.02, alarmed
        assert alarmed_before / weeks >= 0.1, alarmed_before

    def test_the_thresholds(self) -> None:
        assert HOTSPOT_ALPHA == 1e-5 and HOTSPOT_MIN_COUNT == 5


class TestBusyDaysAndBurstyCounts:
    """Real counts are not flat Poisson: weekends are quieter and some days busier than
    chance allows. The baseline weighs working days apart and measures the spread."""

    def test_a_city_with_quiet_weekends_and_bursty_days_raises_few_false_alarms(self) -> None:
        rng = random.Random(31)
        weeks, alarmed, alarmed_flat = 60, 0, 0
        for w in range(weeks):
            counts = history(city(w), BASELINE + 7, rng, weekend=0.45, burst=4.0)
            days = range(BASELINE, BASELINE + 7)
            alarmed += any(scan_day(counts, d) for d in days)
            alarmed_flat += any(scan_day(counts, d, shaped=False) for d in days)
        assert alarmed / weeks <= 0.1, alarmed
        assert alarmed_flat / weeks >= 0.8, alarmed_flat  # a flat Poisson cries wolf

    @pytest.mark.parametrize(("weekend", "burst"), [(1.0, None), (0.45, None), (0.45, 4.0)])
    def test_thirty_extra_complaints_still_stand_out(
        self, weekend: float, burst: float | None
    ) -> None:
        rng = random.Random(12)
        found = 0
        for t in range(40):
            means = city(t)
            means[(0, 0)] = 2.0
            counts = history(means, BASELINE + 1, rng, weekend=weekend, burst=burst)
            counts[(0, 0)][BASELINE] += 30
            found += (0, 0) in [h.key for h in scan_day(counts, BASELINE)]
        assert found >= 38, found

    def test_working_days_and_the_rest_are_weighed_apart(self) -> None:
        counts = history(city(4), BASELINE, random.Random(2), weekend=0.4)
        kinds = [working(d) for d in range(BASELINE)]
        workday = baseline_shape(counts, kinds, True)
        sunday = baseline_shape(counts, kinds, False)
        assert workday.exposure == pytest.approx(sunday.exposure)
        assert 1.05 < workday.today < 1.3 and 0.35 < sunday.today < 0.65
        # Weighed days add up to the baseline's length in average days.
        assert workday.exposure == pytest.approx(BASELINE, rel=0.01)
        assert workday.dispersion < 1.2  # weekday effect accounted for: Poisson again

    def test_the_spread_is_measured(self) -> None:
        calm = history(city(5), BASELINE, random.Random(3))
        bursty = history(city(5), BASELINE, random.Random(3), burst=2.0)
        kinds = [True] * BASELINE
        assert baseline_shape(calm, kinds, True).dispersion < 1.15
        assert baseline_shape(bursty, kinds, True).dispersion > 2.0
        assert baseline_shape({}, kinds, True).dispersion == 1.0  # nothing to measure

    def test_past_events_do_not_hide_the_next_one(self) -> None:
        """Two earlier hot spots in the baseline (30 extra in a day each) would raise the
        city's dispersion and their pairs' level for four weeks; set aside, a second,
        smaller event in the same pair (12 extra) still stands out."""
        rng = random.Random(5)
        found, found_raw, aside = 0, 0, []
        for t in range(40):
            means = city(t)
            means[(0, 0)] = 2.0
            counts = history(means, BASELINE + 1, rng)
            counts[(0, 0)][10] += 30
            counts[(1, 1)][20] += 30
            counts[(0, 0)][BASELINE] += 12
            kinds = [working(d) for d in range(BASELINE)]
            raw = {p: [float(n) for n in c[:BASELINE]] for p, c in counts.items()}
            cleaned, n = without_past_events(raw, kinds, working(BASELINE))
            aside.append(n)
            assert cleaned[(0, 0)][10] < 6 and cleaned[(1, 1)][20] < 15
            spread = baseline_shape(cleaned, kinds, True).dispersion
            assert spread < 1.1 and baseline_shape(raw, kinds, True).dispersion > spread + 0.1
            found += (0, 0) in [h.key for h in scan_day(counts, BASELINE)]
            shape = baseline_shape(raw, kinds, working(BASELINE))
            today = {p: c[BASELINE] for p, c in counts.items()}
            totals = {p: sum(c) for p, c in raw.items()}
            hits = find_hotspots(today, totals, BASELINE, shape=shape)
            found_raw += (0, 0) in [h.key for h in hits]
        assert found >= 34 and found_raw <= 8, (found, found_raw)
        assert min(aside) >= 2 and sum(aside) / len(aside) < 2.5  # the two, rarely more

    def test_a_pairs_own_rhythm_is_not_set_aside(self) -> None:
        """Five complaints every Monday and hardly any otherwise is how that pair
        behaves: the Mondays stay in its baseline, and the next Monday is no hot spot."""
        counts = history(city(6), BASELINE + 1, random.Random(8))
        counts[(2, 2)] = [5 if d % 7 == 0 else 0 for d in range(BASELINE + 1)]
        kinds = [working(d) for d in range(BASELINE)]
        daily = {p: [float(n) for n in c[:BASELINE]] for p, c in counts.items()}
        cleaned, _ = without_past_events(daily, kinds, True)
        assert cleaned[(2, 2)] == daily[(2, 2)]
        assert (2, 2) not in [h.key for h in scan_day(counts, BASELINE)]

    def test_calm_and_bursty_pairs_are_each_judged_by_their_own_spread(self) -> None:
        """Half the pairs vary like a gamma variable of shape 2 day to day, half are
        Poisson. One city-wide dispersion would be too low for the first (false alarms)
        and too high for the second (missed events); each pair's own, averaged with the
        city's, is neither."""
        import dataclasses

        def mixed(t: int, rng: random.Random, days: int) -> dict[tuple[int, int], list[int]]:
            means = city(t)
            means[(0, 0)] = means[(0, 1)] = 5.0
            return {
                p: [
                    poisson(rng, m * (rng.gammavariate(2.0, 0.5) if sum(p) % 2 == 0 else 1))
                    for _ in range(days)
                ]
                for p, m in means.items()
            }

        def scan(counts: dict[tuple[int, int], list[int]], day: int, own: bool) -> list[Any]:
            kinds = [working(d) for d in range(day - BASELINE, day)]
            daily = {p: [float(n) for n in c[day - BASELINE : day]] for p, c in counts.items()}
            daily, _ = without_past_events(daily, kinds, working(day))
            shape = baseline_shape(daily, kinds, working(day))
            if not own:
                shape = dataclasses.replace(shape, pairs={})
            today = {p: c[day] for p, c in counts.items()}
            totals = {p: sum(c) for p, c in daily.items()}
            return [h.key for h in find_hotspots(today, totals, BASELINE, shape=shape)]

        rng = random.Random(3)
        weeks = [mixed(w, rng, BASELINE + 7) for w in range(60)]
        days = range(BASELINE, BASELINE + 7)
        alarmed = sum(any(scan(c, d, True) for d in days) for c in weeks)
        alarmed_pooled = sum(any(scan(c, d, False) for d in days) for c in weeks)
        assert alarmed <= 9 and alarmed_pooled >= 9, (alarmed, alarmed_pooled)
        found = found_pooled = 0
        for t in range(40):
            counts = mixed(t, rng, BASELINE + 1)
            counts[(0, 1)][BASELINE] += 20  # a calm pair of mean 5
            found += (0, 1) in scan(counts, BASELINE, True)
            found_pooled += (0, 1) in scan(counts, BASELINE, False)
        assert found >= 26 and found_pooled <= 14, (found, found_pooled)

    def test_the_tail_of_a_spread_out_count(self) -> None:
        from scipy.stats import nbinom

        for k, mean in [(5, 2.0), (12, 3.5), (40, 6.0), (3, 0.2)]:
            assert count_sf(k, mean, 1.0) == poisson_sf(k, mean)
            for dispersion in (1.5, 3.0):
                size = mean / (dispersion - 1)
                reference = nbinom.sf(k - 1, size, 1 / dispersion)
                assert count_sf(k, mean, dispersion) == pytest.approx(reference, rel=1e-9)
                assert count_sf(k, mean, dispersion) > poisson_sf(k, mean)
        assert count_sf(0, 3.0, 2.0) == 1.0


# ------------------------------------------------------------------ the periodic scan

NOW = datetime(2025, 6, 10, 15, 0, tzinfo=TZ)
_refs = itertools.count(1)


def ticket(cat: Any, created: datetime, service: str, district: str) -> Ticket:
    return Ticket(
        reference=f"27{next(_refs):012d}",
        status=TicketStatus.received,
        kind=TicketKind.complaint,
        channel=Channel.voice,
        locale="zh-CN",
        description="垃圾桶满了没人清运",
        service_id=cat.services[service].id,
        district_id=cat.districts[district].id,
        created_at=created,
        updated_at=created,
        version=1,
        reopen_count=0,
        dispatch_count=0,
        urge_count=0,
    )


def seed_spike(rt: Runtime, client: TestClient) -> None:
    """28 days of about two a day for three pairs, and today 30 more garbage complaints
    in Jiangbei."""
    rng = random.Random(5)
    pairs = [("garbage", "jb"), ("street-light", "dh"), ("noise-neighbourhood", "xs")]

    async def go() -> None:
        cat = await rt.catalogue()
        rows = []
        for back in range(BASELINE, -1, -1):
            midnight = (NOW - timedelta(days=back)).replace(hour=0)
            for service, district in pairs:
                for _ in range(poisson(rng, 2.0)):
                    at = midnight + timedelta(hours=rng.uniform(8, 14.5))
                    rows.append(ticket(cat, at, service, district))
        rows += [
            ticket(cat, NOW - timedelta(minutes=5 * i + 1), "garbage", "jb") for i in range(30)
        ]
        async with rt.db.session() as s:
            s.add_all(rows)
            await s.commit()

    client.portal.call(go)  # type: ignore[union-attr]


def until(ws: Any, type_: str, stop: str | None = None) -> dict[str, Any] | None:
    """The next message of ``type_`` (None if ``stop`` comes first)."""
    while True:
        msg = ws.receive_json()
        if msg["type"] == type_:
            return msg  # type: ignore[no-any-return]
        if msg["type"] == stop:
            return None


class TestTheScan:
    def test_a_spike_today_is_announced_once_to_whom_it_concerns(self, client: TestClient) -> None:
        rt: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
        seed_spike(rt, client)
        scan = client.portal.call  # type: ignore[union-attr]
        assert scan(lambda: tasks.hotspot_scan_async(rt, now=NOW)) == 1
        assert scan(lambda: tasks.hotspot_scan_async(rt, now=NOW)) == 0  # once only
        # two scans at once (two workers) still announce nothing new
        later = NOW + timedelta(minutes=15)

        async def both() -> list[int]:
            return list(
                await asyncio.gather(
                    tasks.hotspot_scan_async(rt, now=later),
                    tasks.hotspot_scan_async(rt, now=later),
                )
            )

        assert scan(both) == [0, 0]

        async def alerts() -> list[HotspotAlert]:
            async with rt.db.session() as s:
                return list((await s.execute(select(HotspotAlert))).scalars())

        (alert,) = scan(alerts)
        assert str(alert.day) == "2025-06-10" and alert.count >= 30 and alert.p_value < 1e-10

        def replay(who: str) -> list[dict[str, Any]]:
            """Every hot spot the user's socket replays (a ticket assigned to the user's
            own department after the scan marks the end of the replay)."""
            with client.websocket_connect("/ws?since=0", headers=login(client, who)) as ws:
                found = []
                while (msg := until(ws, "hotspot.detected", stop="ticket.assigned")) is not None:
                    found.append(msg)
                return found

        agent = login(client, "agent1")
        for dept in ("cgj-jb", "zjj-jb", "cgj-dh"):  # end-of-replay markers
            r = client.post("/api/v1/tickets", headers=agent, json={"description": "市容问题"})
            ref = r.json()["reference"]
            r = client.post(
                f"/api/v1/tickets/{ref}/actions/dispatch", headers=agent, json={"department": dept}
            )
            assert r.status_code == 200, r.text

        (seen,) = replay("supervisor1")
        assert seen["service"] == "garbage" and seen["district"] == "jb"
        assert seen["district_name_zh"] == "江北区" and seen["service_name_en"]
        assert seen["department"] == "cgj-jb" and seen["day"] == "2025-06-10"
        assert seen["count"] == alert.count and seen["p_value"] < 1e-10
        assert 1 <= seen["expected"] <= 3 and seen["baseline_mean"] > 0
        assert not {"phone", "description", "reference", "address"} & set(seen)
        assert [m["district"] for m in replay("cgj-jb-clerk")] == ["jb"]  # the owner
        assert replay("zjj-jb-clerk") == []  # another department in the same district
        assert replay("cgj-dh-clerk") == []  # the same bureau elsewhere
        assert replay("agent1") == []  # the department's to act on, not the agents'

        # the day's announced hot spots, as each may see them
        def announced(who: str) -> Any:
            return client.get(
                "/api/v1/stats/hotspots", params={"day": "2025-06-10"}, headers=login(client, who)
            )

        (listed,) = announced("supervisor1").json()
        assert listed["department"] == "cgj-jb" and listed["count"] == alert.count
        assert listed["service_name_zh"] and listed["district_name_en"]
        assert listed["with_you"] is None  # a supervisor sees every ticket
        (owned,) = announced("cgj-jb-clerk").json()
        assert owned["district"] == "jb" and owned["with_you"] == 0  # none dispatched yet

        # 12 of the day's complaints reach the department, 3 go to another one.
        async def dispatch(n: int, dept: str, skip: int) -> None:
            cat = await rt.catalogue()
            async with rt.db.session() as s:
                today = await s.execute(
                    select(Ticket)
                    .where(
                        Ticket.service_id == cat.services["garbage"].id,
                        Ticket.district_id == cat.districts["jb"].id,
                        Ticket.created_at >= NOW - timedelta(hours=3),
                    )
                    .order_by(Ticket.id)
                    .offset(skip)
                    .limit(n)
                )
                for t in today.scalars():
                    t.department_id = cat.departments[dept].id
                await s.commit()

        scan(lambda: dispatch(12, "cgj-jb", 0))
        scan(lambda: dispatch(3, "zjj-jb", 12))
        (owned,) = announced("cgj-jb-clerk").json()
        assert owned["with_you"] == 12 and owned["count"] == alert.count
        assert announced("zjj-jb-clerk").json() == []
        assert announced("agent1").status_code == 403
        assert (
            client.get("/api/v1/stats/hotspots", headers=login(client, "supervisor1")).json() == []
        )

        # the supervisor statistics list it too
        r = client.get(
            "/api/v1/stats/report",
            params={"to": NOW.isoformat()},
            headers=login(client, "supervisor1"),
        )
        items = r.json()["hotspots"]["items"]
        assert [(i["service"], i["district"]) for i in items] == [("garbage", "jb")]
        assert r.json()["hotspots"]["past_events"] == 0  # an ordinary four weeks before

    def test_an_ordinary_day_announces_nothing(self, client: TestClient) -> None:
        rt: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
        rng = random.Random(3)

        async def go() -> int:
            cat = await rt.catalogue()
            rows = [
                ticket(cat, NOW - timedelta(hours=rng.uniform(0, 24 * 28)), "garbage", "jb")
                for _ in range(60)
            ]
            async with rt.db.session() as s:
                s.add_all(rows)
                await s.commit()
            announced = await tasks.hotspot_scan_async(rt, now=NOW)
            async with rt.db.session() as s:
                stored = (await s.execute(select(func.count(HotspotAlert.id)))).scalar_one()
            return announced + stored

        assert client.portal.call(go) == 0  # type: ignore[union-attr]

    def test_a_make_up_working_sunday_is_weighed_as_a_working_day(self, client: TestClient) -> None:
        """2026-09-20 is a Sunday worked in exchange for the National Day break (调休).
        Street lights are reported about 14 times on a working day and twice on other
        days; 15 reports that Sunday are an ordinary working day's, not a hot spot — as
        they would be if Sundays were always days off."""
        from contact import reports
        from contact.principal import SYSTEM

        rt: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
        now = datetime(2026, 9, 20, 15, 0, tzinfo=TZ)
        rng = random.Random(11)

        async def go() -> tuple[int, list[str]]:
            cat = await rt.catalogue()
            calendar = await rt.calendar()
            assert calendar.is_working_day(now.date()) and now.weekday() == 6
            rows = []
            for back in range(BASELINE, 0, -1):
                midnight = (now - timedelta(days=back)).replace(hour=0)
                mean = 14.0 if calendar.is_working_day(midnight.date()) else 2.0
                for _ in range(poisson(rng, mean)):
                    at = midnight + timedelta(hours=rng.uniform(8, 18))
                    rows.append(ticket(cat, at, "street-light", "dh"))
            midnight = now.replace(hour=0)
            rows += [
                ticket(cat, midnight + timedelta(hours=8, minutes=25 * i), "street-light", "dh")
                for i in range(15)
            ]
            async with rt.db.session() as s:
                s.add_all(rows)
                await s.commit()
            announced = await tasks.hotspot_scan_async(rt, now=now)
            window = reports.Filters(start=midnight, end=now)
            async with rt.db.session() as s:
                weekdays_only = await reports.hotspots(
                    s, SYSTEM, window, cat, TZ, day=now.date(), working_day=reports._weekday
                )
            return announced, [h.service for h in weekdays_only.items]

        announced, if_sundays_were_off = client.portal.call(go)  # type: ignore[union-attr]
        assert announced == 0
        assert if_sundays_were_off == ["street-light"]
