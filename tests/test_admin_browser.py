"""The admin page in a real browser: an API key issued by keyboard is shown once and
never again, a holiday is added, the service field editor opens. Screenshots go to
``var/test-artifacts/screenshots/<backend>/admin-*.png``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest

from contact.settings import Settings
from tests import test_staff_browser as staff
from tests.conftest import wait_for
from tests.test_admin_api import catalogue_restored  # noqa: F401 - autouse on PostgreSQL
from tests.test_staff_browser import LiveServer, api_token, sign_in

# The staff pages' browser fixtures: a live server, Debian's chromium, screenshots.
pytestmark = staff.pytestmark
live = staff.live
browser = staff.browser
shots = staff.shots


class TestAdminPage:
    def test_an_api_key_is_shown_once_and_a_holiday_is_added(
        self, live: LiveServer, browser: Any, shots: Any
    ) -> None:
        page = sign_in(browser, live, "admin")
        page.wait_for_selector("#services tbody tr[data-code='street-light']")
        assert page.evaluate("document.activeElement === document.body")

        # The tabs by keyboard: End → audit, ← kiosks, ← API clients; Tab into the form.
        page.focus("#tab-services")
        page.keyboard.press("End")
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("ArrowLeft")
        assert page.get_attribute("#tab-apiclients", "aria-selected") == "true"
        assert page.is_visible("#pane-apiclients") and not page.is_visible("#pane-services")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "apiclient-name"
        page.keyboard.type("区政务服务网")
        page.keyboard.press("Enter")
        secret = page.locator("#apiclients-secret code")
        secret.wait_for()
        key = secret.inner_text()
        assert key.startswith("ck_") and len(key) > 40
        assert page.evaluate("document.activeElement.dataset.secret") == "1"  # focus on it
        row = page.locator("#apiclients tbody tr", has_text="区政务服务网")
        row.wait_for()
        prefix = row.locator("td.prefix").inner_text().rstrip("…")
        assert key.startswith(prefix) and key not in row.inner_text()
        shots(page, "admin-01-apiclient-key")

        # Reloaded: the same tab, the client listed by its prefix, the key nowhere.
        page.reload()
        row = page.locator("#apiclients tbody tr", has_text="区政务服务网")
        row.wait_for()
        assert page.get_attribute("#tab-apiclients", "aria-selected") == "true"
        assert page.locator("#apiclients-secret").is_hidden()
        assert key not in page.content()
        assert prefix in row.inner_text()
        listed = httpx.get(f"{live.url}/api/v1/admin/api-clients", headers=api_token(live, "admin"))
        assert key not in listed.text and listed.json()[0]["prefix"] == prefix
        shots(page, "admin-02-apiclient-after-reload")

        # A public holiday next year.
        day = date(date.today().year + 1, 6, 2).isoformat()
        page.click("#tab-calendar")
        page.wait_for_selector("#hours tbody tr")
        page.fill("#day-day", day)
        page.select_option("#day-kind", "holiday")
        page.fill("#day-name_zh", "城市纪念日")
        page.fill("#day-name_en", "City Day")
        page.click("#day-form button[type=submit]")
        added = page.locator(f'#days tbody tr[data-code="{day}"]')
        added.wait_for()
        assert "City Day" in added.inner_text() or "城市纪念日" in added.inner_text()
        cal = httpx.get(
            f"{live.url}/api/v1/admin/calendar?year={day[:4]}", headers=api_token(live, "admin")
        ).json()
        assert {
            "day": day,
            "kind": "holiday",
            "name_zh": "城市纪念日",
            "name_en": "City Day",
        } in cal["days"]
        shots(page, "admin-03-calendar")

        # The service editor with its form fields; a bad field is named and focused.
        page.click("#tab-services")
        page.click("#services tbody tr[data-code='street-light'] button")
        page.wait_for_selector(".fields-editor .field-card")
        assert page.locator(".field-card").count() == 2
        page.click("button.add-field")
        assert page.evaluate("document.activeElement.dataset.path") == "fields[2].code"
        page.keyboard.type("Bad Code")
        page.click("#svc-editor button[type=submit]")
        page.wait_for_selector('[data-path="fields[2].code"][aria-invalid="true"]')
        assert page.evaluate("document.activeElement.dataset.path") == "fields[2].code"
        shots(page, "admin-04-service-fields")
        page.click("#tab-audit")
        page.wait_for_selector("#audit td:text('admin.calendar.day.create')")
        assert page.evaluate("window.__pwned") is None


@pytest.fixture
def two_versions(settings: Settings) -> Settings:
    """Two routing model versions trained from the same resolved tickets (v2 in use),
    the tickets' services as intake's keywords gave them."""
    from bench.routing import keyword_services
    from contact import model_router
    from tests.conftest import with_runtime
    from tests.test_model_router import CATALOGUE, insert_resolved, messages

    train, _ = messages()
    insert_resolved(settings, train, services=keyword_services(CATALOGUE, train))

    async def go(rt: Any) -> list[Any]:
        return [await model_router.train_from_tickets(rt) for _ in range(2)]

    outcomes = with_runtime(settings, go)
    assert [o.version for o in outcomes] == [1, 2] and outcomes[1].active
    return settings


@pytest.fixture
def few_resolved(settings: Settings) -> Settings:
    """Forty resolved tickets: not yet enough for a first model version."""
    from tests.test_model_router import insert_resolved, messages

    insert_resolved(settings, messages()[0][:40])
    return settings


class TestRoutingModels:
    @pytest.fixture
    def live(self, settings: Settings) -> Iterator[LiveServer]:
        """Auto-dispatch is on at 0.9 here, so the page can mark that threshold."""
        served = settings.model_copy(update={"AGENT_HOURS": "always", "ROUTING_AUTO_DISPATCH": 0.9})
        with LiveServer(served) as server:
            yield server

    def test_without_a_version_the_page_says_how_far_there_is_to_go(
        self, few_resolved: Settings, live: LiveServer, browser: Any
    ) -> None:
        page = sign_in(browser, live, "admin")
        page.click("#tab-routing")
        empty = page.locator("#models tbody td", has_text=re.compile("目前40件|40 so far"))
        empty.wait_for()
        assert "100" in empty.inner_text()

    def test_versions_are_listed_with_their_figures_and_one_is_put_back_in_use(
        self, two_versions: Settings, live: LiveServer, browser: Any, shots: Any
    ) -> None:
        admin = api_token(live, "admin")
        page = sign_in(browser, live, "admin")
        page.click("#tab-routing")
        older = page.locator('#models tbody tr[data-code="1"]')
        older.wait_for()
        current = page.locator('#models tbody tr[data-code="2"]')
        assert current.locator("button").count() == 0 and "%" in current.inner_text()
        assert re.fullmatch(r"\d+\.\d%", current.locator("td.service-accuracy").inner_text())
        assert "v1" in older.inner_text() and "%" in older.inner_text()
        # What auto-dispatch would do with v2, threshold by threshold; 0.9 is the setting.
        note = page.locator("#auto-note")
        assert "v2" in note.inner_text()
        thresholds = page.locator("#auto-dispatch tbody tr")
        assert thresholds.count() == 8
        marked = page.locator("#auto-dispatch tbody tr.current")
        assert marked.count() == 1
        assert re.match(
            r"90\.0% \((当前设置|current setting)\)", marked.locator("td").first.inner_text()
        )
        shares = [
            float(t.split("%")[0]) for t in thresholds.locator("td:nth-child(2)").all_inner_texts()
        ]
        assert shares == sorted(shares, reverse=True) and shares[0] > 0
        # On the city's own tickets: every one the keywords placed went where suggested.
        placed = page.locator('#live-routing tbody tr[data-code="keyword"]')
        assert re.search(r"(目录关键词|catalogue's keywords)", placed.inner_text())
        assert placed.locator("td.right-share").inner_text().startswith("100.0%")
        assert placed.locator("td.auto-share").inner_text() == "—"  # none went at once
        assert placed.locator("td.service-share").inner_text().startswith("100.0%")  # kept
        shots(page, "admin-05-routing-models")

        # Back to v1 by keyboard: the button is named for its version.
        older.locator("button").focus()
        assert "v1" in (page.evaluate("document.activeElement.getAttribute('aria-label')"))
        page.keyboard.press("Enter")
        page.wait_for_selector('#models tbody tr[data-code="2"] button')
        assert older.locator("button").count() == 0
        assert page.evaluate("document.activeElement.id") == "models-train"
        assert "v1" in note.inner_text()
        listed = httpx.get(f"{live.url}/api/v1/admin/routing/models", headers=admin).json()
        assert [m["version"] for m in listed["items"] if m["active"]] == [1]

        # Train now: a third version is trained in the background and listed.
        page.keyboard.press("Enter")
        page.locator("#toast", has_text=re.compile("已开始训练|Training has started")).wait_for()

        def third() -> bool:
            items = httpx.get(f"{live.url}/api/v1/admin/routing/models", headers=admin).json()
            return any(m["version"] == 3 for m in items["items"])

        wait_for(third, timeout=90)
        audit = httpx.get(f"{live.url}/api/v1/admin/audit?limit=20", headers=admin).json()
        assert {"routing.activate", "routing.train"} <= {a["action"] for a in audit}
