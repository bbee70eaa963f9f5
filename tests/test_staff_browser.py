"""The staff pages in a real browser (Debian's chromium driven by Playwright).

A text arrives through /dev/sms; the agent sees it live and dispatches it; the
department's clerk, in a second browser context, sees it arrive, accepts and
resolves it; the supervisor's statistics move; the citizen's status text is in the
dev outbox. Screenshots of every screen go to ``var/test-artifacts/screenshots``.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from contact.settings import Settings
from tests.conftest import PASSWORD, ROOT, wait_for
from tests.ivr_helpers import TOKEN as VOICE_TOKEN
from tests.ivr_helpers import Phone
from tests.live import LiveServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = ROOT / "var" / "test-artifacts" / "screenshots"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (apt-get)"
    ),
]

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def live(settings: Settings) -> Iterator[LiveServer]:
    # Twilio's webhooks are signed for the public URL the tests' phone uses.
    served = settings.model_copy(update={"TWILIO_AUTH_TOKEN": VOICE_TOKEN, "AGENT_HOURS": "always"})
    with LiveServer(served) as server:
        yield server


@pytest.fixture
def browser(live: LiveServer) -> Iterator[Any]:
    # After the server: Playwright's sync API keeps an event loop running in this
    # thread, so everything that sets up the database must come first.
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def shots(backend: str) -> Any:
    folder = SHOTS / backend
    folder.mkdir(parents=True, exist_ok=True)

    def shot(page: Any, name: str) -> None:
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)

    return shot


def sign_in(browser: Any, live: LiveServer, username: str) -> Any:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(f"{live.url}/signin")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    # The page after signing in loads every script and style it needs: with both cores
    # busy (a model training beside the browser) that once took over 10 s in CI.
    page.wait_for_url(re.compile(r".*/(console|dept|supervisor|admin)/$"), timeout=20_000)
    if page.locator("#conn").count():
        page.wait_for_selector("#conn[data-state=live]")
    return page


def text_in(live: LiveServer, phone: str, body: str) -> str:
    r = httpx.post(f"{live.url}/dev/sms", data={"From": phone, "Body": body}, timeout=10)
    assert r.status_code == 200, r.text
    return str(r.json()["ticket_reference"])


def api_token(live: LiveServer, username: str) -> dict[str, str]:
    r = httpx.post(
        f"{live.url}/api/v1/auth/token", data={"username": username, "password": PASSWORD}
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def dispatch(live: LiveServer, agent: dict[str, str], ref: str, department: str) -> None:
    r = httpx.post(
        f"{live.url}/api/v1/tickets/{ref}/actions/dispatch",
        json={"department": department},
        headers=agent,
    )
    assert r.status_code == 200, r.text


def row(page: Any, reference: str) -> Any:
    return page.locator(f'tr[data-reference="{reference}"]')


def stat(page: Any, name: str) -> str:
    return str(page.locator(f"#st-{name}").inner_text())


HOSTILE = (
    "小区路灯不亮 东湖区 <script>window.__pwned=1</script>"
    '<img src=x onerror="window.__pwned=2"> =HYPERLINK("http://evil")'
)


class TestTheLoopInTheBrowser:
    def test_a_text_goes_from_the_console_to_the_department_and_back(
        self, live: LiveServer, browser: Any, shots: Any
    ) -> None:
        signin = browser.new_page()
        signin.goto(f"{live.url}/signin")
        shots(signin, "00-signin")
        signin.close()

        agent = sign_in(browser, live, "agent1")
        shots(agent, "01-console-empty")

        phone = "+8613900139001"
        sent = time.monotonic()
        reference = text_in(live, phone, HOSTILE)
        row(agent, reference).wait_for(timeout=2_000)  # live, without a reload
        seen_after = time.monotonic() - sent
        assert seen_after < 2.0
        assert agent.locator(f'#activity li[data-reference="{reference}"]').count() == 1

        row(agent, reference).click()
        agent.wait_for_selector("#detail-description")
        # Citizen text is shown as text, never run or parsed.
        assert HOSTILE in agent.inner_text("#detail-description")
        assert agent.evaluate("window.__pwned") is None
        assert agent.locator("#detail img").count() == 0
        shots(agent, "02-console-ticket")

        agent.keyboard.press("d")  # dispatch, by keyboard
        first = agent.locator("button.suggestion").first
        first.wait_for()
        assert first.get_attribute("data-department") == "cgj-dh"
        assert "cgj" not in first.inner_text()  # names and reasons, not codes
        shots(agent, "03-console-dispatch")

        clerk = sign_in(browser, live, "cgj-dh-clerk")
        shots(clerk, "04-dept-before")
        agent.wait_for_selector("form.action-form[data-ready]")
        agent.keyboard.press("1")  # the first suggestion
        row(clerk, reference).wait_for(timeout=5_000)  # arrives live
        wait_for(lambda: row(agent, reference).count() == 0, timeout=5)  # out of the queue
        shots(clerk, "05-dept-arrived")

        supervisor = sign_in(browser, live, "supervisor1")
        supervisor.goto(f"{live.url}/supervisor/stats")
        supervisor.wait_for_selector("#st-volume:not(:empty)")
        resolved_before = stat(supervisor, "resolved")
        shots(supervisor, "06-stats-before")

        row(clerk, reference).click()
        clerk.wait_for_selector('.actions button[data-action="accept"]')
        clerk.keyboard.press("a")  # accept (签收)
        clerk.wait_for_selector('.actions button[data-action="resolve"]')
        clerk.click('.actions button[data-action="resolve"]')
        clerk.fill("#f-resolve-reply", "路灯已于今日修复。")
        clerk.set_input_files(
            "#f-resolve-files",
            {"name": "维修记录.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4\n%%EOF\n"},
        )
        shots(clerk, "07-dept-resolve")
        clerk.locator("form.action-form button[type=submit]").click()
        wait_for(lambda: row(clerk, reference).count() == 0, timeout=5)
        assert clerk.evaluate("window.__pwned") is None

        supervisor.reload()
        supervisor.wait_for_selector("#st-volume:not(:empty)")
        wait_for(lambda: stat(supervisor, "resolved") != resolved_before, timeout=5)
        shots(supervisor, "08-stats-after")

        supervisor.goto(f"{live.url}/supervisor/")
        supervisor.wait_for_selector("#wb-overdue:not(:has-text('—'))")
        shots(supervisor, "09-wallboard")

        def status_text() -> list[dict[str, Any]]:
            rows = httpx.get(f"{live.url}/dev/outbox.json").json()
            return [m for m in rows if m["to"] == phone and m["template"] == "ticket_resolved"]

        (sms,) = wait_for(status_text, timeout=15)
        assert "路灯已于今日修复" in sms["body"]

        token = httpx.post(
            f"{live.url}/api/v1/auth/token", data={"username": "agent1", "password": PASSWORD}
        ).json()["access_token"]
        done = httpx.get(
            f"{live.url}/api/v1/tickets/{reference}", headers={"Authorization": f"Bearer {token}"}
        ).json()
        assert [a["filename"] for a in done["attachments"]] == ["维修记录.pdf"]

        admin = sign_in(browser, live, "admin")
        admin.goto(f"{live.url}/admin/")
        assert admin.locator("#audit td", has_text="sign_in").count() >= 4
        shots(admin, "10-admin")

    def test_after_a_10_second_drop_every_new_ticket_shows_once(
        self, live: LiveServer, browser: Any, shots: Any
    ) -> None:
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(10_000)
        dropping = threading.Event()
        open_sockets: list[Any] = []

        def route(ws: Any) -> None:
            if dropping.is_set():
                ws.close(code=1011, reason="network down")
                return
            ws.connect_to_server()
            open_sockets.append(ws)

        page.route_web_socket(re.compile(r".*/ws(\?.*)?$"), route)
        page.goto(f"{live.url}/signin?next=/console/")
        page.fill("#username", "agent1")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("#conn[data-state=live]")
        before = text_in(live, "+8613900139002", "噪音扰民 夜间施工")
        row(page, before).wait_for()

        dropping.set()
        for ws in open_sockets:
            ws.close(code=1011, reason="network down")
        page.wait_for_selector("#conn[data-state=offline]")
        started = time.monotonic()
        refs = [text_in(live, f"+861390013910{i}", f"第{i}条：道路积水") for i in range(5)]
        shots(page, "11-console-offline")
        time.sleep(max(0.0, 10 - (time.monotonic() - started)))
        for r in refs:
            assert row(page, r).count() == 0  # nothing arrived while the network was down
        dropping.clear()

        page.wait_for_selector("#conn[data-state=live]", timeout=20_000)
        for r in refs:
            row(page, r).wait_for(timeout=5_000)
        time.sleep(0.5)  # anything doubled would show by now
        for r in [*refs, before]:
            assert row(page, r).count() == 1
            assert page.locator(f'#activity li[data-reference="{r}"]').count() == 1
        shots(page, "12-console-caught-up")
        context.close()

    def test_a_clerk_sees_only_its_own_department(self, live: LiveServer, browser: Any) -> None:
        agent = api_token(live, "agent1")
        ours = text_in(live, "+8613900139003", "东湖区路灯不亮")
        theirs = text_in(live, "+8613900139004", "学校门口交通拥堵")
        clerk = sign_in(browser, live, "cgj-dh-clerk")
        for ref, dept in ((ours, "cgj-dh"), (theirs, "jyj")):
            dispatch(live, agent, ref, dept)
        row(clerk, ours).wait_for()
        time.sleep(0.5)
        assert row(clerk, theirs).count() == 0
        # The page's own session cannot read the other ticket either.
        status = clerk.evaluate("r => fetch('/api/v1/tickets/' + r).then(x => x.status)", theirs)
        assert status == 404
        assert clerk.goto(f"{live.url}/console/").status == 403
        assert clerk.goto(f"{live.url}/supervisor/").status == 403

    def test_a_live_update_keeps_the_reply_being_typed(
        self, live: LiveServer, browser: Any
    ) -> None:
        """While a clerk types the reply, a supervisor urges the ticket: the page shows
        the urging and keeps the form, the text and the cursor."""
        agent = api_token(live, "agent1")
        ref = text_in(live, "+8613900139005", "东湖区路灯不亮")
        dispatch(live, agent, ref, "cgj-dh")
        clerk = sign_in(browser, live, "cgj-dh-clerk")
        row(clerk, ref).click()
        clerk.wait_for_selector('.actions button[data-action="accept"]')
        clerk.keyboard.press("a")
        clerk.wait_for_selector('.actions button[data-action="resolve"]')
        clerk.click('.actions button[data-action="resolve"]')
        clerk.locator("#f-resolve-reply").wait_for()
        clerk.keyboard.type("路灯已于今日")
        r = httpx.post(
            f"{live.url}/api/v1/tickets/{ref}/actions/urge",
            json={"reason": "市民多次来电"},
            headers=api_token(live, "supervisor1"),
        )
        assert r.status_code == 200, r.text
        clerk.locator(".timeline li", has_text="市民多次来电").wait_for()
        assert clerk.input_value("#f-resolve-reply") == "路灯已于今日"
        assert clerk.evaluate("document.activeElement.id") == "f-resolve-reply"
        clerk.keyboard.type("修复。")
        clerk.click('form.action-form[data-action="resolve"] button[type=submit]')
        wait_for(
            lambda: (
                httpx.get(f"{live.url}/api/v1/tickets/{ref}", headers=agent).json()["reply"]
                == "路灯已于今日修复。"
            )
        )


@pytest.fixture
def hot_spot_today(settings: Settings) -> Settings:
    """Four weeks of about two garbage complaints a day in Jiangbei, then 30 in the last
    minute, and the hot-spot scan run: a hot spot announced today."""
    import random
    from datetime import timedelta

    from contact import tasks
    from contact.models import utcnow
    from tests.conftest import with_runtime
    from tests.test_hotspots import poisson, ticket

    rng = random.Random(4)

    async def go(rt: Any) -> int:
        cat = await rt.catalogue()
        now = utcnow()
        rows = [
            ticket(cat, now - timedelta(days=day, hours=rng.uniform(0, 20)), "garbage", "jb")
            for day in range(1, 29)
            for _ in range(poisson(rng, 2.0))
        ]
        rows += [ticket(cat, now - timedelta(seconds=i + 1), "garbage", "jb") for i in range(30)]
        async with rt.db.session() as s:
            s.add_all(rows)
            await s.commit()
        return await tasks.hotspot_scan_async(rt, now=now)

    assert with_runtime(settings, go) == 1
    return settings


class TestHotSpots:
    def test_the_department_to_act_sees_todays_hot_spot_on_its_workbench(
        self, hot_spot_today: Settings, live: LiveServer, browser: Any, shots: Any
    ) -> None:
        clerk = sign_in(browser, live, "cgj-jb-clerk")
        line = clerk.locator('#dept-hotspots li[data-service="garbage"][data-district="jb"]')
        line.wait_for()
        assert "江北区" in line.inner_text()
        assert int(line.locator(".num").inner_text()) >= 30
        assert line.locator("a").get_attribute("href") == (
            "/supervisor/stats?service=garbage&district=jb"
        )
        # None of the day's complaints is with the department yet; one dispatched to it
        # shows at once.
        assert "已派本部门 0 件" in line.locator(".mine").inner_text()
        agent = api_token(live, "agent1")
        r = httpx.post(
            f"{live.url}/api/v1/tickets",
            headers=agent,
            json={"description": "江北区江北大道垃圾桶满了没人清运", "service": "garbage"},
        )
        assert r.status_code == 201, r.text
        dispatch(live, agent, r.json()["reference"], "cgj-jb")
        line.locator(".mine", has_text="已派本部门 1 件").wait_for()
        shots(clerk, "dept-hotspots")
        # Another department in the same district has nothing to act on.
        other = sign_in(browser, live, "zjj-jb-clerk")
        other.locator("#dept-hotspots li.muted").wait_for()
        assert other.locator("#dept-hotspots li[data-service]").count() == 0


@pytest.fixture
def routing_version(settings: Settings) -> Settings:
    """A routing model version learnt from resolved tickets (the shared messages, their
    services as intake's keywords gave them), in use."""
    from bench.routing import keyword_services
    from contact import model_router
    from tests.conftest import with_runtime
    from tests.test_model_router import CATALOGUE, insert_resolved, messages

    train, _ = messages()
    insert_resolved(settings, train, services=keyword_services(CATALOGUE, train))
    outcome = with_runtime(settings, model_router.train_from_tickets)
    assert outcome.active and "accuracy" in outcome.metrics.get("service", {}), outcome.message
    return settings


class TestModelRouting:
    def test_the_dispatch_dialog_starts_where_the_model_routed_the_ticket(
        self, routing_version: Settings, live: LiveServer, browser: Any
    ) -> None:
        """A ticket no keyword placed was routed by the model; dispatching it, the agent's
        first suggestion is that department, not the general service's office."""
        from tests.test_model_router import CATALOGUE, messages, unruled

        agent = api_token(live, "agent1")
        made: dict[bool, dict[str, Any]] = {}  # service named? → the ticket
        for body, _ in unruled(CATALOGUE, messages()[1]):
            r = httpx.post(
                f"{live.url}/api/v1/tickets",
                headers=agent,
                json={"description": body, "channel": "voice", "phone": "+8613800138000"},
            )
            assert r.status_code == 201, r.text
            t = r.json()
            assert t["routing"]["rule"] == "model"
            made.setdefault(t["service"] != "other", t)
            if len(made) == 2:
                break
        assert set(made) == {True, False}
        page = sign_in(browser, live, "agent1")
        for t in made.values():
            row(page, t["reference"]).click()
            # This ticket's detail, not the one shown before it.
            page.locator("#detail-title", has_text=t["reference_grouped"]).wait_for()
            page.keyboard.press("d")
            form = f'form.action-form[data-reference="{t["reference"]}"]'
            page.wait_for_selector(f"{form}[data-ready]", timeout=20_000)
            first = page.locator(f"{form} button.suggestion").first
            assert first.get_attribute("data-department") == t["routing"]["department"]
            page.keyboard.press("Escape")
            page.wait_for_selector(form, state="detached")


class TestReclassify:
    def test_the_agent_corrects_the_service_and_the_suggestions_follow(
        self, live: LiveServer, browser: Any
    ) -> None:
        """A street light that is out because the whole street has no power: the agent
        files it as a power cut in the dispatch dialog; the suggestions start again from
        that service, and the ticket is dispatched with it, its deadline with it."""
        agent = api_token(live, "agent1")
        made = httpx.post(
            f"{live.url}/api/v1/tickets",
            headers=agent,
            json={"description": "解放路88号门前路灯不亮", "channel": "voice"},
        ).json()
        assert made["service"] == "street-light"
        page = sign_in(browser, live, "agent1")
        row(page, made["reference"]).click()
        page.locator("#detail-title", has_text=made["reference_grouped"]).wait_for()
        page.keyboard.press("d")
        form = f'form.action-form[data-reference="{made["reference"]}"]'
        page.wait_for_selector(f"{form}[data-ready]", timeout=20_000)
        assert page.input_value("#f-dispatch-service") == "street-light"
        first = page.locator(f"{form} button.suggestion").first
        assert (first.get_attribute("data-department") or "").startswith("cgj")
        page.focus("#f-dispatch-service")  # Tab, Tab from the suggestions
        page.select_option("#f-dispatch-service", "power-outage")
        page.wait_for_selector(f'{form}[data-ready] button.suggestion[data-department^="gdj"]')
        assert (first.get_attribute("data-department") or "").startswith("gdj")
        page.keyboard.press("1")
        page.wait_for_selector(form, state="detached")
        # The history says where it went and what it was filed as before.
        page.locator("ol.timeline li", has_text="事项: 路灯故障 → 停电与供电故障").wait_for()
        done = httpx.get(f"{live.url}/api/v1/tickets/{made['reference']}", headers=agent).json()
        assert done["status"] == "dispatched" and done["department"].startswith("gdj")
        assert done["service"] == "power-outage" and done["service_confirmed_at"]
        assert done["due_at"] < made["due_at"]


class TestCalls:
    def test_taking_the_next_caller_pops_their_history_at_once(
        self, live: LiveServer, browser: Any, shots: Any
    ) -> None:
        caller = "+8613900139005"
        earlier = text_in(live, caller, "楼下烧烤油烟很大")
        with httpx.Client(base_url=live.url, timeout=10) as line:
            phone = Phone(line, caller)  # type: ignore[arg-type]
            phone.dial()
            phone.press("1")
            assert phone.press("0").enqueue is not None  # waiting for an agent
        agent = sign_in(browser, live, "agent1")
        started = time.monotonic()
        agent.keyboard.press("n")  # take the next caller
        agent.locator("#caller button", has_text=earlier).wait_for(timeout=1_000)
        assert time.monotonic() - started < 1.0
        shots(agent, "13-console-caller")
        agent.locator("#caller button", has_text=earlier).click()
        agent.wait_for_selector("#detail-description")
        assert "楼下烧烤油烟很大" in agent.inner_text("#detail-description")
        agent.keyboard.press("n")  # nobody else is waiting: said, not an error
        agent.wait_for_selector("#toast:not([hidden])")
        assert "没有等待的来电" in agent.inner_text("#toast")
