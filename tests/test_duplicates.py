"""Duplicate detection: the scoring on constructed pairs and non-pairs (precision and
recall printed), the suggestions endpoint and its scoping, linked tickets of one phone,
and merging that tells every reporter the outcome."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from contact.app import create_app
from contact.db import sync_url
from contact.duplicates import (
    LINK_WINDOW,
    THRESHOLD,
    WINDOW,
    Report,
    address_similarity,
    haversine_m,
    normalize_address,
    profile,
    score,
)
from contact.settings import Settings
from tests.conftest import login, wait_for

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def report(text: str, **over: Any) -> Report:
    return Report(**{"text": text, "created_at": T0, **over})


def key(address: str) -> Any:
    found = normalize_address(address)
    assert found is not None
    return found


# ------------------------------------------------------------------ scoring


class TestAddresses:
    @pytest.mark.parametrize(
        ("a", "b"),
        [
            ("江城市东湖区解放路８８号", "解放路88号"),
            ("解放路八十八号", "东湖区解放路88号"),
            ("湖滨花园小区3号楼", "湖滨花园小区3栋"),
            ("No. 88 Harbor Rd", "88 harbor road, Donghu, Jiangcheng"),
            ("#12 Spring St.", "12 Spring Street"),
            ("Building 5, 88 Keji Road, Gaoxin, Jiangcheng", "88 keji rd bldg 5"),
        ],
    )
    def test_one_place_written_two_ways_is_the_same_address(self, a: str, b: str) -> None:
        assert address_similarity(key(a), key(b)) == 1.0

    def test_another_road_or_a_far_house_number_is_not(self) -> None:
        assert address_similarity(key("解放路88号"), key("中山路88号")) < 0.3
        assert address_similarity(key("解放路88号"), key("解放路188号")) < 0.3
        assert address_similarity(key("解放路88号"), key("解放路90号")) >= 0.8

    def test_a_housing_estate_is_not_taken_for_a_district(self) -> None:
        assert key("湖滨花园小区5栋").name.startswith("湖滨花园小区")
        assert key("江城市东湖区湖滨路").name == "湖滨路"

    def test_haversine(self) -> None:
        # One thousandth of a degree of latitude is about 111 m.
        assert haversine_m(30.0, 114.0, 30.001, 114.0) == pytest.approx(111.2, abs=0.5)


class TestScore:
    def test_a_text_message_retelling_a_kiosk_report_is_suggested(self) -> None:
        kiosk = report(
            "解放路88号前面道路坑洼破损，有一个大坑，车辆经过很危险，请尽快修补",
            address="江城市东湖区解放路88号",
            district="dh",
            service="pothole",
            family="cgj",
        )
        sms = report(
            "解放路88号门口路面有个大坑，晚上骑车差点摔倒",
            created_at=T0 + timedelta(hours=5),
            district="dh",
            service="pothole",
            family="cgj",
        )
        m = score(profile(kiosk), profile(sms))
        assert m.score >= THRESHOLD
        assert {"same_address", "same_service", "recent"} <= set(m.reasons)

    def test_the_same_words_at_another_address_are_not(self) -> None:
        a = report(
            "Big pothole in front of the school", address="88 Harbor Road", lat=30.0, lon=114.0
        )
        b = report(
            "Big pothole in front of the school", address="12 Spring Street", lat=30.02, lon=114.0
        )
        m = score(profile(a), profile(b))
        assert m.score < THRESHOLD
        assert "far_apart" in m.reasons and m.distance_m and m.distance_m > 2000

    def test_older_tickets_weigh_less(self) -> None:
        a = report("小区门口垃圾堆积三天没人清运", service="garbage", district="dh")
        fresh = score(profile(a), profile(report("小区门口垃圾三天没清运", service="garbage")))
        old = score(
            profile(a),
            profile(
                report(
                    "小区门口垃圾三天没清运",
                    service="garbage",
                    created_at=T0 + timedelta(days=6),
                )
            ),
        )
        assert old.score < fresh.score
        assert "recent" in fresh.reasons and "recent" not in old.reasons

    def test_the_same_reporter_counts(self) -> None:
        a = report("楼下餐馆油烟很大", reporter=7)
        b = report("楼下餐馆的油烟太大了", reporter=7)
        assert "same_reporter" in score(profile(a), profile(b)).reasons


@pytest.fixture(scope="module")
def cases() -> Any:
    from bench.duplicates import EN, ZH, build_cases

    if not ZH.exists() or not EN.exists():
        pytest.skip(f"shared data absent: {ZH.parent}")
    return build_cases(seed=1)


class TestConstructedPairs:
    """The same problem told twice (a text message and a kiosk or web report, from real
    citizens' texts with typos, synonyms, other ways of writing the address) and
    non-pairs (other problems in the same district, the same category elsewhere, the same
    words at another address). Seed 1; the scoring was tuned on seed 2."""

    def test_precision_and_recall(self, cases: Any) -> None:
        from bench.duplicates import evaluate

        figures = evaluate(cases)
        print(figures.line())
        for lang in ("zh", "en"):
            f = evaluate([c for c in cases if c.lang == lang])
            print(f"duplicates ({lang}): precision={f.precision:.3f} recall={f.recall:.3f}")
            assert f.precision >= 0.95 and f.recall >= 0.88, lang
        assert figures.pairs >= 300 and figures.non_pairs >= 600
        assert figures.precision >= 0.95
        assert figures.recall >= 0.90

    def test_no_suggestion_across_districts(self, cases: Any) -> None:
        from bench.duplicates import by_kind

        kinds = by_kind(cases)
        for lang in ("zh", "en"):
            got, total = kinds[f"{lang}:other-district"]
            assert got == 0 and total > 0


# ------------------------------------------------------------------ through HTTP


POTHOLE_SMS = "解放路88号门口路面有个大坑，晚上骑车差点摔倒"
POTHOLE_KIOSK = "解放路88号前面道路坑洼破损，有一个大坑，车辆经过很危险，请尽快修补"


def kiosk_report(client: TestClient, agent: dict[str, str], phone: str, **over: Any) -> str:
    body = {
        "description": POTHOLE_KIOSK,
        "service": "pothole",
        "address": "江城市东湖区解放路88号",
        "phone": phone,
        "channel": "kiosk",
        **over,
    }
    r = client.post("/api/v1/tickets", headers=agent, json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["reference"])


def sms_report(client: TestClient, phone: str, body: str = POTHOLE_SMS) -> str:
    r = client.post("/dev/sms", data={"From": phone, "Body": body})
    assert r.status_code == 200, r.text
    return str(r.json()["ticket_reference"])


def duplicates(client: TestClient, headers: dict[str, str], ref: str) -> dict[str, Any]:
    r = client.get(f"/api/v1/tickets/{ref}/duplicates", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def texts_to(client: TestClient, phone: str, template: str) -> list[dict[str, Any]]:
    rows = client.get("/dev/outbox.json", params={"limit": 1000}).json()
    return [r for r in rows if r["to"] == phone and r["template"] == template]


def act(
    client: TestClient, headers: dict[str, str], ref: str, action: str, **body: Any
) -> dict[str, Any]:
    r = client.post(f"/api/v1/tickets/{ref}/actions/{action}", headers=headers, json=body)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def resolve(client: TestClient, agent: dict[str, str], ref: str, reply: str) -> str:
    """Dispatch to the suggested department, accept and resolve as its clerk."""
    dept = act(client, agent, ref, "dispatch")["department"]
    clerk = login(client, f"{dept}-clerk")
    act(client, clerk, ref, "accept")
    act(client, clerk, ref, "resolve", reply=reply)
    return str(dept)


def age(settings: Settings, ref: str, days: float) -> None:
    """Move a ticket's creation ``days`` into the past."""
    engine = create_engine(sync_url(settings.DATABASE_URL))
    try:
        with engine.begin() as conn:
            created = conn.execute(
                text("SELECT created_at FROM tickets WHERE reference = :r"), {"r": ref}
            ).scalar_one()
            if isinstance(created, str):  # SQLite keeps text, in UTC
                moved: Any = (datetime.fromisoformat(created) - timedelta(days=days)).isoformat(
                    sep=" "
                )
            else:
                moved = created - timedelta(days=days)
            conn.execute(
                text("UPDATE tickets SET created_at = :c WHERE reference = :r"),
                {"c": moved, "r": ref},
            )
    finally:
        engine.dispose()


class TestSuggestionsOverHttp:
    def test_the_same_pothole_by_sms_and_by_kiosk_is_suggested_and_merged(
        self, client: TestClient
    ) -> None:
        sms_phone, kiosk_phone = "+8613800138101", "+8613800138102"
        agent = login(client, "agent1")
        by_sms = sms_report(client, sms_phone)
        by_kiosk = kiosk_report(client, agent, kiosk_phone)
        other = kiosk_report(
            client,
            agent,
            "+8613800138103",
            description="中山路120号路面塌陷",
            address="江城市东湖区中山路120号",
        )

        found = duplicates(client, agent, by_kiosk)
        assert found["reference"] == by_kiosk and found["can_merge"] is True
        refs = [s["reference"] for s in found["suggestions"]]
        assert refs == [by_sms], found
        top = found["suggestions"][0]
        assert THRESHOLD <= top["score"] <= 1
        assert {"similar_text", "same_address", "same_service"} <= set(top["reasons"])
        assert top["channel"] == "sms" and top["service"] == "pothole"
        assert top["status"] == "received" and top["created_at"]
        # The other way round too; and no phone number anywhere in the answer.
        back = client.get(f"/api/v1/tickets/{by_sms}/duplicates", headers=agent)
        assert [s["reference"] for s in back.json()["suggestions"]] == [by_kiosk]
        for phone in (sms_phone, kiosk_phone):
            assert phone[-8:] not in back.text
        assert other not in back.text

        # Merge the text into the kiosk report: its sender hears it is handled together.
        assert act(client, agent, by_sms, "merge", into=by_kiosk)["status"] == "merged"
        wait_for(lambda: texts_to(client, sms_phone, "ticket_merged"))
        assert duplicates(client, agent, by_kiosk)["suggestions"] == []

        # The outcome reaches both reporters.
        resolve(client, agent, by_kiosk, "坑已填补，路面已恢复。")
        for phone in (sms_phone, kiosk_phone):
            sent = wait_for(lambda p=phone: texts_to(client, p, "ticket_resolved"))
            assert len(sent) == 1 and "坑已填补" in sent[0]["body"]

    def test_an_old_ticket_is_no_candidate(self, client: TestClient, settings: Settings) -> None:
        agent = login(client, "agent1")
        old = kiosk_report(client, agent, "+8613800138111")
        new = sms_report(client, "+8613800138112")
        assert [s["reference"] for s in duplicates(client, agent, new)["suggestions"]] == [old]
        age(settings, old, 8)
        assert duplicates(client, agent, new)["suggestions"] == []

    def test_the_window_the_least_score_and_the_linking_hours_are_settings(
        self, settings: Settings
    ) -> None:
        defaults = Settings()
        assert defaults.DUPLICATE_THRESHOLD == THRESHOLD
        assert WINDOW.days == defaults.DUPLICATE_WINDOW_DAYS
        assert LINK_WINDOW.total_seconds() / 3600 == defaults.DUPLICATE_LINK_HOURS
        wider = settings.model_copy(
            update={"DUPLICATE_WINDOW_DAYS": 14.0, "DUPLICATE_LINK_HOURS": 120.0}
        )
        with TestClient(create_app(wider)) as client:
            agent = login(client, "agent1")
            phone = "+8613800138115"
            last_week = kiosk_report(client, agent, "+8613800138116")
            same_phone = kiosk_report(
                client, agent, phone, description="楼下广场舞音响太吵", service=None, address=None
            )
            new = sms_report(client, phone)
            age(settings, last_week, 8)  # past the default week, within the city's fortnight
            age(settings, same_phone, 4)  # past the default 72 hours, within 120
            found = duplicates(client, agent, new)
            assert [s["reference"] for s in found["suggestions"]] == [last_week]
            assert [t["reference"] for t in found["linked"]] == [same_phone]
            assert found["window_days"] == 14 and found["link_hours"] == 120
            best = found["suggestions"][0]["score"]
        stricter = settings.model_copy(update={"DUPLICATE_THRESHOLD": min(1.0, best + 0.01)})
        with TestClient(create_app(stricter)) as client:
            found = duplicates(client, login(client, "agent1"), new)
            assert found["suggestions"] == []
            assert found["threshold"] == stricter.DUPLICATE_THRESHOLD
            assert found["window_days"] == 7 and found["link_hours"] == 72
            assert found["linked"] == []

    def test_unknown_reference_is_404(self, client: TestClient) -> None:
        r = client.get("/api/v1/tickets/26010100000000/duplicates", headers=login(client, "agent1"))
        assert r.status_code == 404
        assert client.get("/api/v1/tickets/26010100000000/duplicates").status_code == 401


class TestScoping:
    def test_departments_see_only_their_own_tickets_and_candidates(
        self, client: TestClient
    ) -> None:
        agent = login(client, "agent1")
        mine = kiosk_report(client, agent, "+8613800138121")
        twin = kiosk_report(client, agent, "+8613800138122", address="解放路88号")
        undispatched = sms_report(client, "+8613800138123")
        dept = act(client, agent, mine, "dispatch")["department"]
        assert act(client, agent, twin, "dispatch")["department"] == dept

        everyone = {s["reference"] for s in duplicates(client, agent, mine)["suggestions"]}
        assert everyone == {twin, undispatched}
        clerk = login(client, f"{dept}-clerk")
        seen = duplicates(client, clerk, mine)
        assert [s["reference"] for s in seen["suggestions"]] == [twin]
        assert seen["can_merge"] is False  # merging is the contact centre's call

        stranger = login(client, "gdj-clerk")
        for ref in (mine, undispatched):
            r = client.get(f"/api/v1/tickets/{ref}/duplicates", headers=stranger)
            assert r.status_code == 404, r.text
        r = client.get(f"/api/v1/tickets/{undispatched}/duplicates", headers=clerk)
        assert r.status_code == 404


class TestLinked:
    def test_the_same_phone_twice_within_the_window_is_linked(
        self, client: TestClient, settings: Settings
    ) -> None:
        agent = login(client, "agent1")
        phone = "13800138131"
        first = kiosk_report(
            client, agent, phone, description="楼下广场舞音响太吵", service=None, address=None
        )
        second = kiosk_report(client, agent, phone)
        stranger = kiosk_report(
            client, agent, "13800138132", description="公交车甩站", service=None, address=None
        )
        found = duplicates(client, agent, second)
        assert [t["reference"] for t in found["linked"]] == [first]
        assert found["suggestions"] == []  # a different problem: linked, not a duplicate
        assert set(found["linked"][0]) >= {"reference", "status", "service", "created_at"}
        assert "score" not in found["linked"][0]
        assert stranger not in str(found)
        assert "13800138131" not in str(found)
        back = duplicates(client, agent, first)
        assert [t["reference"] for t in back["linked"]] == [second]

        age(settings, first, 4)  # past the 72-hour window
        assert duplicates(client, agent, second)["linked"] == []


class TestEveryReporterHearsTheOutcome:
    def test_merged_into_a_ticket_already_resolved(self, client: TestClient) -> None:
        agent = login(client, "agent1")
        target = kiosk_report(client, agent, "+8613800138141")
        resolve(client, agent, target, "坑已填补。")
        late = sms_report(client, "+8613800138142")
        act(client, agent, late, "merge", into=target)
        wait_for(lambda: texts_to(client, "+8613800138142", "ticket_merged"))
        told = wait_for(lambda: texts_to(client, "+8613800138142", "ticket_resolved"))
        assert len(told) == 1 and "坑已填补" in told[0]["body"]

    def test_a_duplicate_of_a_duplicate(self, client: TestClient) -> None:
        agent = login(client, "agent1")
        a = sms_report(client, "+8613800138151")
        b = kiosk_report(client, agent, "+8613800138152")
        c = kiosk_report(client, agent, "+8613800138153", address="解放路88号附近")
        act(client, agent, a, "merge", into=b)
        act(client, agent, b, "merge", into=c)
        resolve(client, agent, c, "已修复。")
        for phone in ("+8613800138151", "+8613800138152", "+8613800138153"):
            sent = wait_for(lambda p=phone: texts_to(client, p, "ticket_resolved"))
            assert len(sent) == 1 and "已修复" in sent[0]["body"]

    def test_not_accepted_reaches_the_duplicates_too(self, client: TestClient) -> None:
        agent = login(client, "agent1")
        target = kiosk_report(client, agent, "+8613800138161")
        dup = sms_report(client, "+8613800138162")
        act(client, agent, dup, "merge", into=target)
        act(client, agent, target, "close", reason="该路段属于在建工地，由施工单位负责")
        for phone in ("+8613800138161", "+8613800138162"):
            sent = wait_for(lambda p=phone: texts_to(client, p, "ticket_closed"))
            assert len(sent) == 1 and "施工单位" in sent[0]["body"]


def ticket_of(client: TestClient, ref: str) -> dict[str, Any]:
    r = client.get(f"/api/v1/tickets/{ref}", headers=login(client, "supervisor1"))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


class TestMergedReportersRate:
    """The outcome text asks every reporter to rate it; a merged reporter's reply is a
    rating too, not a puzzle answered with the help text."""

    def merged_and_resolved(self, client: TestClient, dup_phone: str) -> tuple[str, str, str]:
        agent = login(client, "agent1")
        target = kiosk_report(client, agent, "+8613800138171")
        dup = sms_report(client, dup_phone)
        act(client, agent, dup, "merge", into=target)
        dept = resolve(client, agent, target, "坑已填补。")
        wait_for(lambda: texts_to(client, dup_phone, "ticket_resolved"))
        return target, dup, dept

    def test_satisfied_counts_for_their_own_ticket(self, client: TestClient) -> None:
        target, dup, _ = self.merged_and_resolved(client, "+8613800138172")
        r = client.post("/dev/sms", data={"From": "+8613800138172", "Body": "1"})
        out = r.json()
        assert out["ticket_reference"] == dup and "感谢" in out["reply"], out
        mine = ticket_of(client, dup)
        assert mine["status"] == "merged" and mine["satisfaction"] == 1
        handled = ticket_of(client, target)
        assert handled["status"] == "resolved" and handled["satisfaction"] is None
        assert "merged_reporter_rated" in [e["kind"] for e in handled["events"]]
        stats = client.get("/api/v1/stats/summary", headers=login(client, "supervisor1")).json()
        assert stats["ratings"] == 1 and stats["satisfaction_rate"] == 1.0
        # Rated once: a second digit has nothing left to rate.
        again = client.post("/dev/sms", data={"From": "+8613800138172", "Body": "2"}).json()
        assert again["ticket_reference"] is None and ticket_of(client, dup)["satisfaction"] == 1

    def test_not_satisfied_sends_the_handled_ticket_back(self, client: TestClient) -> None:
        target, dup, dept = self.merged_and_resolved(client, "+8613800138173")
        out = client.post("/dev/sms", data={"From": "+8613800138173", "Body": "3"}).json()
        assert out["ticket_reference"] == dup and "重新办理" in out["reply"], out
        handled = ticket_of(client, target)
        assert handled["status"] == "dispatched" and handled["department"] == dept
        assert ticket_of(client, dup)["satisfaction"] == 3
        reopened = [e for e in handled["events"] if e["kind"] == "reopened"]
        assert len(reopened) == 1 and dup in str(reopened[0])


# ------------------------------------------------------------------ the console


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
class TestConsole:
    def test_the_agent_sees_the_possible_duplicate_and_merges_by_keyboard(
        self, settings: Settings, backend: str
    ) -> None:
        sync_api = pytest.importorskip("playwright.sync_api")
        from tests.conftest import PASSWORD, ROOT
        from tests.live import LiveServer

        hostile = POTHOLE_SMS + '<img src=x onerror="window.__pwned=1">'
        with LiveServer(settings) as live, sync_api.sync_playwright() as p:
            token = httpx.post(
                f"{live.url}/api/v1/auth/token",
                data={"username": "agent1", "password": PASSWORD},
            ).json()["access_token"]
            agent = {"Authorization": f"Bearer {token}"}
            by_sms = httpx.post(
                f"{live.url}/dev/sms", data={"From": "+8613800138171", "Body": hostile}
            ).json()["ticket_reference"]
            r = httpx.post(
                f"{live.url}/api/v1/tickets",
                headers=agent,
                json={
                    "description": POTHOLE_KIOSK,
                    "service": "pothole",
                    "address": "江城市东湖区解放路88号",
                    "phone": "+8613800138172",
                    "channel": "kiosk",
                },
            )
            by_kiosk = r.json()["reference"]
            noise = httpx.post(
                f"{live.url}/api/v1/tickets",
                headers=agent,
                json={"description": "楼下广场舞音响太吵", "phone": "+8613800138172"},
            ).json()["reference"]

            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 1366, "height": 900})
                page.set_default_timeout(10_000)
                page.goto(f"{live.url}/signin")
                page.fill("#username", "agent1")
                page.fill("#password", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_url(re.compile(r".*/console/$"))
                page.locator(f'tr[data-reference="{by_sms}"]').click()
                item = page.locator(f'.dup-list li[data-reference="{by_kiosk}"]')
                item.wait_for()
                assert "%" in item.inner_text()
                page.locator(f'tr[data-reference="{by_kiosk}"]').click()
                entry = page.locator(f'.dup-list li[data-reference="{by_sms}"]')
                entry.wait_for()
                # The citizen's words are text, never markup.
                assert "<img" in entry.inner_text()
                assert page.locator(".duplicates img").count() == 0
                assert page.evaluate("window.__pwned") is None
                # The same phone's other report is listed apart, with the window it used.
                linked = page.locator(".dup-linked li")
                assert linked.count() == 1 and noise.replace(
                    " ", ""
                ) in linked.inner_text().replace(" ", "")
                assert "72" in page.locator(".duplicates h3").nth(1).inner_text()
                shots = ROOT / "var" / "test-artifacts" / "screenshots" / backend
                shots.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(shots / "console-duplicates.png"), full_page=True)

                page.locator(f'tr[data-reference="{by_sms}"]').click()
                page.locator(f'.dup-list li[data-reference="{by_kiosk}"]').wait_for()
                page.keyboard.press("m")  # the merge form lists the suggestions first
                page.locator("form.action-form button.suggestion").first.wait_for()
                # The first suggestion takes the focus once the form is up (until then
                # a digit goes into the reference field, as typing a reference should).
                page.wait_for_function(
                    "document.activeElement && document.activeElement.matches('button.suggestion')"
                )
                page.keyboard.press("1")
                wait_for(
                    lambda: (
                        httpx.get(f"{live.url}/api/v1/tickets/{by_sms}", headers=agent).json()[
                            "merged_into"
                        ]
                        == by_kiosk
                    ),
                    timeout=10,
                )
            finally:
                browser.close()
