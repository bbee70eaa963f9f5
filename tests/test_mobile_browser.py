"""The citizens' pages in a real phone-sized browser with JavaScript off (Debian's chromium
driven by Playwright, 360×640): a report from the service picker to the reference on
screen, then tracking and rating it; every page within its weight budget, labelled,
with large enough touch targets and enough contrast, and never showing the phone
number. Screenshots go to ``var/test-artifacts/screenshots/<backend>/m-*.png`` and
the page weights to ``var/test-artifacts/m-page-weights-<backend>.json``.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from contact.settings import Settings
from tests.conftest import PASSWORD, ROOT, wait_for
from tests.live import LiveServer
from tests.test_mobile_web import fresh_settings, jpeg, phone_forms, sql

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "var" / "test-artifacts"
BUDGET = 30 * 1024
NATIONAL = "13800138000"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (apt-get)"
    ),
]

sync_api = pytest.importorskip("playwright.sync_api")

# Measured in the page itself: labels, target sizes, contrast, language, headings.
AUDIT_JS = """
() => {
  const problems = [];
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none';
  };
  const name = (el) => el.outerHTML.slice(0, 80);
  if (!['zh-CN', 'en'].includes(document.documentElement.lang)) problems.push('lang');
  if (document.querySelectorAll('h1').length !== 1) problems.push('one h1');
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (el.type === 'hidden' || !visible(el)) continue;
    if (!el.labels || el.labels.length === 0) problems.push('no label: ' + name(el));
    const box = (el.type === 'radio' || el.type === 'checkbox')
      ? el.closest('label').getBoundingClientRect() : el.getBoundingClientRect();
    if (box.height < 44) problems.push('small target: ' + name(el));
  }
  for (const el of document.querySelectorAll('a, button')) {
    if (!visible(el)) continue;
    const box = el.getBoundingClientRect();
    if (box.height < 44 || box.width < 44) problems.push('small target: ' + name(el));
  }
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  let lowest = 21;
  for (const el of document.body.querySelectorAll('*')) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || !visible(el)) continue;
    const fg = lum(rgb(getComputedStyle(el).color).slice(0, 3));
    const bg = lum(background(el));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    lowest = Math.min(lowest, ratio);
    if (ratio < 4.5) problems.push('contrast ' + ratio.toFixed(2) + ': ' + name(el));
  }
  return {problems, lowest};
}
"""


@pytest.fixture
def mobile_settings(settings: Settings, tmp_path: Path) -> Settings:
    return fresh_settings(settings, tmp_path)


@pytest.fixture
def live(mobile_settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(mobile_settings) as server:
        yield server


@pytest.fixture
def browser(live: LiveServer) -> Iterator[Any]:
    # After the server: Playwright's sync API keeps an event loop running in this thread.
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


class Visit:
    """A phone with JavaScript off; every response it gets is kept for the checks."""

    def __init__(self, browser: Any, live: LiveServer, backend: str) -> None:
        self.live = live
        self.context = browser.new_context(
            java_script_enabled=False,
            viewport={"width": 360, "height": 640},
            is_mobile=True,
            has_touch=True,
            locale="zh-CN",
        )
        self.page = self.context.new_page()
        self.page.set_default_timeout(10_000)
        self.responses: list[Any] = []
        self.requests: list[Any] = []
        self.page.on("response", lambda r: self.responses.append(r))
        self.page.on("request", lambda r: self.requests.append(r))
        self.folder = ARTIFACTS / "screenshots" / backend
        self.folder.mkdir(parents=True, exist_ok=True)
        self.weights: dict[str, int] = {}

    def check(self, name: str) -> None:
        """The page now shown: weight, self-containment, accessibility; a screenshot."""
        page = self.page
        doc = next(
            r
            for r in reversed(self.responses)
            if r.request.resource_type == "document" and r.url == page.url
        )
        body = doc.body()  # read now: a page navigated away from has no body to read
        self.weights[name] = len(body)
        text = body.decode("utf-8")
        for form in phone_forms(NATIONAL):
            assert form not in text, (name, form)
        assert len(body) < BUDGET, (name, len(body))
        audit = page.evaluate(AUDIT_JS)
        assert not audit["problems"], (name, audit["problems"])
        page.screenshot(path=str(self.folder / f"{name}.png"), full_page=True)

    def assert_private_and_self_contained(self) -> None:
        """No request left the site or fetched more than a page; no header held the phone."""
        for request in self.requests:
            assert request.url.startswith(self.live.url), request.url  # nothing from elsewhere
            if request.resource_type != "document":  # no CSS, scripts or images to fetch
                assert request.url.endswith("/favicon.ico"), request.url
        for response in self.responses:  # the bodies were scanned as each page was checked
            headers = " ".join(response.headers.values())
            for form in phone_forms(NATIONAL):
                assert form not in headers, (response.url, form)


def outbox(live: LiveServer) -> list[dict[str, Any]]:
    return list(httpx.get(f"{live.url}/dev/outbox.json", timeout=10).json())


def agent_token(live: LiveServer, username: str) -> dict[str, str]:
    r = httpx.post(
        f"{live.url}/api/v1/auth/token", data={"username": username, "password": PASSWORD}
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def act(live: LiveServer, who: str, reference: str, action: str, **body: Any) -> dict[str, Any]:
    r = httpx.post(
        f"{live.url}/api/v1/tickets/{reference}/actions/{action}",
        json=body,
        headers=agent_token(live, who),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


class TestOnAPhoneWithoutJavaScript:
    def test_report_track_and_rate(
        self,
        live: LiveServer,
        browser: Any,
        backend: str,
        tmp_path: Path,
        mobile_settings: Settings,
    ) -> None:
        v = Visit(browser, live, backend)
        page = v.page
        page.goto(f"{live.url}/m/")
        v.check("m-01-home")
        page.get_by_role("link", name="我要反映问题").click()
        page.wait_for_url("**/m/report?*")
        v.check("m-02-services")
        page.fill("#q", "路灯")
        page.get_by_role("button", name="搜索").click()
        page.wait_for_url("**q=*")
        v.check("m-03-search")
        page.get_by_role("link", name="路灯故障").click()
        page.wait_for_url("**/m/report/street-light*")
        assert page.locator("#geo").is_hidden()  # the location button needs JavaScript
        v.check("m-04-details")

        photo = tmp_path / "IMG_2041.JPG"
        photo.write_bytes(jpeg((1200, 900), gps=True))
        not_photo = tmp_path / "notes.jpg"
        not_photo.write_bytes(b"just some text, not a picture" * 20)
        page.get_by_label("不亮").check()
        page.fill("#f-pole_number", "DH-0231")
        page.fill("#description", "解放路的路灯连续三晚不亮，晚上很黑。")
        page.fill("#address", "解放路88号")
        page.select_option("#district", "dh")
        page.set_input_files("#photo1", str(not_photo))
        page.get_by_role("button", name="下一步").click()
        page.wait_for_selector("text=照片 1 不是可识别的图片")
        assert page.input_value("#description") == "解放路的路灯连续三晚不亮，晚上很黑。"
        v.check("m-05-details-photo-refused")
        page.set_input_files("#photo1", str(photo))
        page.get_by_role("button", name="下一步").click()
        page.wait_for_url("**/m/report/contact*")
        v.check("m-06-contact")

        page.fill("#phone", NATIONAL)
        page.get_by_role("button", name="发送验证码").click()
        page.wait_for_url("**/m/report/verify*")
        v.check("m-07-code")

        def code() -> str | None:
            for m in outbox(live):
                if m["to"] == f"+86{NATIONAL}" and m["template"] == "verify_code":
                    return re.search(r"\d{6}", m["body"]).group(0)  # type: ignore[union-attr]
            return None

        page.fill("#code", str(wait_for(code)))
        page.get_by_role("button", name="提交").click()
        page.wait_for_url("**/m/report/done*")
        v.check("m-08-done")
        shown = page.inner_text("#reference")
        reference = shown.replace(" ", "")
        assert re.fullmatch(r"\d{4} \d{4} \d{4} \d{2}", shown)

        def acknowledgement() -> list[dict[str, Any]]:
            return [
                m
                for m in outbox(live)
                if m["to"] == f"+86{NATIONAL}" and m["template"] == "ticket_received"
            ]

        (sms,) = wait_for(acknowledgement)
        assert shown in sms["body"]

        page.get_by_role("link", name="查询进度").click()
        page.wait_for_url("**/m/track?*")
        assert page.input_value("#ref") == shown
        v.check("m-09-track")
        page.fill("#last4", "1234")
        page.get_by_role("button", name="查询").click()
        page.wait_for_selector("#problem")
        v.check("m-10-track-wrong")
        page.fill("#last4", NATIONAL[-4:])
        page.get_by_role("button", name="查询").click()
        page.wait_for_url("**/m/track/view*")
        assert page.inner_text("#status") == "已受理"
        v.check("m-11-timeline")

        dept = act(live, "agent1", reference, "dispatch")["department"]
        act(live, f"{dept}-clerk", reference, "accept")
        act(live, f"{dept}-clerk", reference, "resolve", reply="已更换灯泡，路灯恢复照明。")
        page.reload()
        assert "已更换灯泡" in page.inner_text("#reply")
        v.check("m-12-answered")
        page.get_by_label("满意", exact=True).check()
        page.get_by_label("已解决").check()
        page.get_by_role("button", name="提交评价").click()
        page.wait_for_selector("#notice")
        assert "感谢您的评价" in page.inner_text("#notice")
        v.check("m-13-rated")

        # The English pages.
        page.goto(f"{live.url}/m/?lang=en")
        v.check("m-14-home-en")
        page.get_by_role("link", name="Mayor's mailbox").click()
        page.wait_for_url("**/m/report/mayor-mailbox?lang=en")
        v.check("m-15-mailbox-en")
        page.goto(f"{live.url}/m/report?lang=en")
        v.check("m-16-services-en")
        page.goto(f"{live.url}/m/track?lang=en")
        v.check("m-17-track-en")

        v.assert_private_and_self_contained()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"m-page-weights-{backend}.json").write_text(
            json.dumps(v.weights, indent=1, sort_keys=True)
        )
        assert max(v.weights.values()) < BUDGET

        # The stored photo has no EXIF (and so no GPS position).
        ((path,),) = sql(
            mobile_settings,
            "SELECT a.path FROM attachments a JOIN tickets t ON t.id = a.ticket_id "
            "WHERE t.reference = :r",
            r=reference,
        )
        stored = (mobile_settings.MEDIA_DIR / path).read_bytes()
        assert b"Exif" not in stored and stored.startswith(b"\xff\xd8")
        v.context.close()

    def test_the_location_button_fills_the_position_where_scripts_run(
        self, live: LiveServer, browser: Any, backend: str
    ) -> None:
        context = browser.new_context(
            viewport={"width": 360, "height": 640},
            geolocation={"latitude": 30.5871, "longitude": 114.2881},
            permissions=["geolocation"],
        )
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.goto(f"{live.url}/m/report/street-light?lang=en")
        page.get_by_role("button", name="Use my location").click()
        page.wait_for_selector("#geo-status:has-text('Your location was added')")
        assert page.input_value("#lat") == "30.587100"
        assert page.input_value("#lon") == "114.288100"
        folder = ARTIFACTS / "screenshots" / backend
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / "m-18-location.png"), full_page=True)
        context.close()
