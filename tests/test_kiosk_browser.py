"""The kiosk's screens in headless Chromium at 1080×1920, driven by taps only.

A kiosk runtime (its own server, a dummy printer) talks to a live central server.
Screenshots go to ``var/test-artifacts/screenshots/<backend>/kiosk-*.png``.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from contact.settings import Settings
from kiosk.hardware.escpos_text import decode
from kiosk.hardware.printer import DummyPrinter, ReceiptPrinter, make_printer
from kiosk.runtime.app import KioskConfig, create_kiosk_app
from tests.conftest import PASSWORD, ROOT
from tests.live import AppServer, LiveServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "var" / "test-artifacts"
IDLE = 8
PHONE = "13800138000"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (apt-get)"
    ),
]

sync_api = pytest.importorskip("playwright.sync_api")

# Every visible control is a touch target of at least 60 × 60 px; nothing needs hover.
TARGETS_JS = """
() => {
  const small = [];
  const visible = (el) => {
    const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none';
  };
  const controls = document.querySelectorAll(
    'a, button, input:not([type=hidden]), textarea, label.option');
  for (const el of controls) {
    if (el.matches('.option input')) continue;  // the whole label is the target
    if (!visible(el)) continue;
    const r = el.getBoundingClientRect();
    if (r.height < 60 || r.width < 60)
      small.push(el.outerHTML.slice(0, 80) + ' ' + r.width + 'x' + r.height);
  }
  return small;
}
"""


class Hall:
    """A central server and one registered kiosk runtime talking to it."""

    def __init__(self, central: LiveServer, kiosk: AppServer, printer: ReceiptPrinter, token: str):
        self.central = central
        self.kiosk = kiosk
        self.printer = printer
        self.token = token

    def service_without_required_fields(self) -> tuple[str, str]:
        r = httpx.get(
            f"{self.central.url}/api/v1/kiosk/catalogue",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        for s in r.json()["services"]:
            if not any(f.get("required") for f in s["fields"]):
                return str(s["group"]), str(s["code"])
        raise AssertionError("no simple service")


@pytest.fixture
def hall(settings: Settings, tmp_path: Path) -> Iterator[Hall]:
    with LiveServer(settings) as central:
        admin = httpx.post(
            f"{central.url}/api/v1/auth/token", data={"username": "admin", "password": PASSWORD}
        ).json()["access_token"]
        r = httpx.post(
            f"{central.url}/api/v1/admin/kiosks",
            headers={"Authorization": f"Bearer {admin}"},
            json={"name": "市民中心一楼", "location": "江城市民中心"},
        )
        assert r.status_code == 201, r.text
        token = r.json()["token"]
        printer = make_printer("dummy")
        config = KioskConfig(
            server=central.url,
            token=token,
            data_dir=tmp_path / "kiosk",
            printer="dummy",
            idle_seconds=IDLE,
            heartbeat_seconds=30,
        )
        with AppServer(create_kiosk_app(config, printer)) as kiosk:
            yield Hall(central, kiosk, printer, token)


@pytest.fixture
def browser(hall: Hall) -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


class Screen:
    def __init__(self, browser: Any, hall: Hall, backend: str, width: int, height: int) -> None:
        self.context = browser.new_context(
            viewport={"width": width, "height": height}, has_touch=True, locale="zh-CN"
        )
        self.page = self.context.new_page()
        self.page.set_default_timeout(10_000)
        self.url = hall.kiosk.url
        self.folder = ARTIFACTS / "screenshots" / backend
        self.folder.mkdir(parents=True, exist_ok=True)

    def check(self, name: str) -> None:
        """Large targets on this screen, and a screenshot of it."""
        small = self.page.evaluate(TARGETS_JS)
        assert small == [], f"{name}: targets under 60 px: {small}"
        self.page.screenshot(path=str(self.folder / f"kiosk-{name}.png"), full_page=True)

    def tap(self, selector: str) -> None:
        self.page.locator(selector).first.tap()

    def go(self, selector: str) -> None:
        """Tap what leads to another screen and wait for it."""
        with self.page.expect_navigation():
            self.page.locator(selector).first.tap()

    def tap_keys(self, keys: str) -> None:
        for k in keys:
            self.page.locator(f"#pad [data-key='{k}']").tap()


def test_report_and_track_by_tapping_only(browser: Any, hall: Hall, backend: str) -> None:
    group, service = hall.service_without_required_fields()
    s = Screen(browser, hall, backend, 1080, 1920)
    s.page.goto(f"{s.url}/kiosk/")
    s.check("01-home")
    s.go("[data-testid=go-report]")
    s.check("02-groups")
    s.go(f"[data-testid=group-{group}]")
    s.check("03-services")
    s.go(f"[data-testid=service-{service}]")
    phrases = s.page.locator(".phrase")
    first, second = phrases.nth(0).inner_text(), phrases.nth(1).inner_text()
    phrases.nth(0).tap()
    phrases.nth(1).tap()
    s.tap("#phone")
    s.tap_keys(PHONE)
    assert s.page.locator("#phone").input_value() == PHONE
    s.check("04-form")
    s.go("[data-testid=next]")
    described = s.page.get_by_test_id("review-description").inner_text()
    assert first in described and second in described
    shown_text = s.page.inner_text("body")  # the number is masked on screen
    assert "138****8000" in shown_text and PHONE not in shown_text
    s.check("05-review")
    s.go("[data-testid=confirm]")
    reference = s.page.get_by_test_id("reference").get_attribute("data-reference")
    assert reference and reference.isdigit() and len(reference) == 14  # online: the real one
    assert s.page.get_by_test_id("printed").is_visible()
    s.check("06-receipt")

    assert isinstance(hall.printer, DummyPrinter)
    paper = decode(hall.printer.output)
    assert reference[:4] in paper.text.replace(" ", "")
    assert any(q.endswith(f"ref={reference}") for q in paper.qr)

    s.go("[data-testid=done]")
    s.go("[data-testid=go-track]")
    s.tap("#ref")
    s.tap_keys(reference)
    s.tap("#last4")
    s.tap_keys(PHONE[-4:])
    s.check("07-track")
    s.go("[data-testid=look-up]")
    shown = s.page.get_by_test_id("tracked-reference").inner_text().replace(" ", "")
    assert shown == reference
    assert PHONE not in s.page.content()
    s.check("08-tracked")

    s.go("[data-testid=lang]")
    assert s.page.locator("html").get_attribute("lang") == "en"
    s.context.close()


def test_the_idle_timeout_clears_what_was_entered(browser: Any, hall: Hall, backend: str) -> None:
    _group, service = hall.service_without_required_fields()
    s = Screen(browser, hall, backend, 1080, 1920)
    s.page.goto(f"{s.url}/kiosk/report/{service}?lang=en")
    s.page.locator(".phrase").first.tap()
    s.tap("#phone")
    s.tap_keys("139")
    assert s.page.locator("#description").input_value()
    started = time.monotonic()
    s.page.wait_for_url(f"{s.url}/kiosk/", timeout=(IDLE + 5) * 1000)
    assert time.monotonic() - started >= IDLE - 2
    assert s.page.locator("html").get_attribute("lang") == "zh-CN"  # back to the default
    s.page.go_back()
    s.page.goto(f"{s.url}/kiosk/report/{service}")
    assert s.page.locator("#description").input_value() == ""
    assert s.page.locator("#phone").input_value() == ""
    s.context.close()


def test_landscape_screens_keep_large_targets(browser: Any, hall: Hall, backend: str) -> None:
    _group, service = hall.service_without_required_fields()
    s = Screen(browser, hall, backend, 1920, 1080)
    for name, path in [
        ("l-home", "/kiosk/"),
        ("l-groups", "/kiosk/report"),
        ("l-form", f"/kiosk/report/{service}"),
        ("l-track", "/kiosk/track"),
        ("l-guides", "/kiosk/guides"),
    ]:
        s.page.goto(s.url + path)
        s.check(name)
    s.context.close()


def test_the_keypad_opens_on_a_field_focused_before_the_script_ran(
    browser: Any, hall: Hall, backend: str
) -> None:
    """The tracking screen focuses its reference field at once (for the barcode scanner).
    On a slow kiosk that focus came before the script listened for it, and tapping the
    already-focused field brought no keypad: a touch-only screen left without keys."""
    s = Screen(browser, hall, backend, 1080, 1920)

    def late(route: Any) -> None:
        time.sleep(1.5)  # the page renders and focuses the field first
        route.continue_()

    s.page.route("**/kiosk/static/kiosk.js", late)
    s.page.goto(f"{s.url}/kiosk/track")
    assert s.page.evaluate("document.activeElement.id") == "ref"
    s.page.wait_for_function("document.readyState === 'complete'")
    s.tap("#ref")
    s.tap_keys("2026")
    assert s.page.locator("#ref").input_value() == "2026"
    s.context.close()
