"""The citizens' mobile web (``/m/``): reporting from a phone, tracking, rating, reopening,
and the leaders' mailboxes — as a citizen's browser sees them (form posts, no
JavaScript), on SQLite and on PostgreSQL.

Every ``/m/`` response a test receives is checked for the citizen's phone number in
any form it could take.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import ExifTags, Image
from sqlalchemy import bindparam, create_engine, text

from channels.mobile_web import guard, track
from contact.app import create_app
from contact.db import sync_url
from contact.models import UTCDateTime, utcnow
from contact.settings import Settings
from tests.conftest import login, wait_for

BUDGET = 30 * 1024
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
TOKEN = re.compile(r'name="t" value="([^"]+)"')


def phone_forms(national: str) -> list[str]:
    """Every way an 11-digit Chinese mobile number could be written on a page."""
    a, b, c = national[:3], national[3:7], national[7:]
    return [
        f"+86{national}",
        f"86{national}",
        national,
        f"{a} {b} {c}",
        f"{a}-{b}-{c}",
        f"+86 {a} {b} {c}",
        f"{a}{b[:2]} {b[2:]}{c}",
    ]


class Phone:
    """A citizen's browser: cookies kept, every /m/ response remembered for the scan."""

    def __init__(self, client: TestClient, national: str) -> None:
        self.client = client
        self.national = national
        self.e164 = f"+86{national}"
        self.seen: list[tuple[str, str]] = []
        self.codes: set[str] = set()  # codes already read from the outbox

    def _keep(self, r: Any) -> Any:
        for hop in [*r.history, r]:
            if hop.request.url.path.startswith("/m"):
                headers = " ".join(f"{k}: {v}" for k, v in hop.headers.items())
                self.seen.append((str(hop.request.url), headers + "\n" + hop.text))
        return r

    def get(self, path: str, **kw: Any) -> Any:
        return self._keep(self.client.get(path, **kw))

    def post(self, path: str, **kw: Any) -> Any:
        return self._keep(self.client.post(path, **kw))

    def csrf(self, html: str) -> str:
        m = CSRF.search(html)
        assert m, "no CSRF field on the page"
        return m.group(1)

    def check_privacy(self) -> None:
        for address, body in self.seen:
            for form in phone_forms(self.national):
                assert form not in body, (address, form)

    # -------------------------------------------------------------- the report steps

    def details(
        self,
        service: str,
        data: dict[str, Any],
        photos: list[tuple[str, bytes]] = (),  # type: ignore[assignment]
        lang: str = "zh-CN",
    ) -> Any:
        page = self.get(f"/m/report/{service}?lang={lang}")
        assert page.status_code == 200
        form = {"csrf": self.csrf(page.text), "lang": lang, **data}
        files = [("photo", (name, body, "application/octet-stream")) for name, body in photos]
        return self.post(
            f"/m/report/details?service={service}&lang={lang}",
            data=form,
            files=files or None,
            follow_redirects=False,
        )

    def contact(
        self, phone: str | None = None, anonymous: bool = False, lang: str = "zh-CN"
    ) -> Any:
        page = self.get(f"/m/report/contact?lang={lang}")
        assert page.status_code == 200, page.text
        data = {"csrf": self.csrf(page.text), "lang": lang, "phone": phone or self.national}
        if anonymous:
            data["anonymous"] = "1"
        return self.post("/m/report/contact", data=data, follow_redirects=False)

    def code(self) -> str:
        """The newest code texted to this phone that was not read before."""

        def found() -> str | None:
            for m in self.client.get("/dev/outbox.json").json():
                if m["to"] == self.e164 and m["template"] == "verify_code":
                    code = re.search(r"\d{6}", m["body"])
                    if code and code.group(0) not in self.codes:
                        return code.group(0)
            return None

        code = str(wait_for(found))
        self.codes.add(code)
        return code

    def verify(self, code: str, lang: str = "zh-CN") -> Any:
        page = self.get(f"/m/report/verify?lang={lang}")
        return self.post(
            "/m/report/verify",
            data={"csrf": self.csrf(page.text), "lang": lang, "code": code},
            follow_redirects=False,
        )

    def report(self, service: str, data: dict[str, Any], **kw: Any) -> str:
        r = self.details(service, data, **kw)
        assert r.status_code == 303, r.text
        assert self.contact().status_code == 303
        done = self.verify(self.code())
        assert done.status_code == 303 and "/m/report/done" in done.headers["location"]
        page = self.get(done.headers["location"])
        m = re.search(r'id="reference">([0-9 ]+)<', page.text)
        assert m, page.text
        return m.group(1).replace(" ", "")

    # -------------------------------------------------------------- tracking

    def look_up(self, reference: str, last4: str, lang: str = "zh-CN") -> Any:
        page = self.get(f"/m/track?lang={lang}")
        return self.post(
            "/m/track",
            data={"csrf": self.csrf(page.text), "lang": lang, "ref": reference, "last4": last4},
            follow_redirects=True,
        )


@pytest.fixture
def mobile_settings(settings: Settings, tmp_path: Path) -> Settings:
    return fresh_settings(settings, tmp_path)


def fresh_settings(settings: Settings, tmp_path: Path) -> Settings:
    """The test's settings with photos under ``tmp_path``, and no counters, codes or
    drafts left from an earlier test."""
    engine = create_engine(sync_url(settings.DATABASE_URL))
    with engine.begin() as conn:  # counters are per client; start each test afresh
        conn.execute(text("DELETE FROM web_limits"))
        conn.execute(text("DELETE FROM phone_codes"))
        conn.execute(text("DELETE FROM web_drafts"))
    engine.dispose()
    guard._last_purge[0] = 0.0
    return settings.model_copy(update={"MEDIA_DIR": tmp_path / "media"})


@pytest.fixture
def app(mobile_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(mobile_settings)) as c:
        yield c


@pytest.fixture
def citizen(app: TestClient) -> Iterator[Phone]:
    phone = Phone(app, "13800138000")
    yield phone
    phone.check_privacy()


def sql(settings: Settings, statement: str, **params: Any) -> list[Any]:
    stmt = text(statement).bindparams(
        *(bindparam(k, type_=UTCDateTime()) for k, v in params.items() if isinstance(v, datetime))
    )
    engine = create_engine(sync_url(settings.DATABASE_URL))
    try:
        with engine.begin() as conn:
            result = conn.execute(stmt, params)
            return list(result.all()) if result.returns_rows else []
    finally:
        engine.dispose()


def jpeg(size: tuple[int, int] = (640, 480), *, gps: bool = False, orientation: int = 1) -> bytes:
    img = Image.new("RGB", size, (10, 120, 200))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.Base.Orientation] = orientation
    if gps:
        exif.get_ifd(ExifTags.IFD.GPSInfo).update(
            {
                ExifTags.GPS.GPSLatitudeRef: "N",
                ExifTags.GPS.GPSLatitude: (30.0, 35.0, 12.5),
                ExifTags.GPS.GPSLongitudeRef: "E",
                ExifTags.GPS.GPSLongitude: (114.0, 17.0, 3.3),
            }
        )
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def ticket(client: TestClient, reference: str) -> dict[str, Any]:
    r = client.get(f"/api/v1/tickets/{reference}", headers=login(client, "agent1"))
    assert r.status_code == 200, r.text
    return dict(r.json())


def act(client: TestClient, who: str, reference: str, action: str, **body: Any) -> dict[str, Any]:
    r = client.post(
        f"/api/v1/tickets/{reference}/actions/{action}", json=body, headers=login(client, who)
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def resolved(client: TestClient, reference: str, reply: str = "路灯已修复。") -> str:
    """Dispatched to the suggested department, accepted and answered; the department."""
    dept = act(client, "agent1", reference, "dispatch")["department"]
    act(client, f"{dept}-clerk", reference, "accept")
    act(client, f"{dept}-clerk", reference, "resolve", reply=reply)
    return str(dept)


def web_ticket(client: TestClient, phone: str = "+8613800138000", **extra: Any) -> str:
    """A web report opened through the API (for tracking tests)."""
    body = {
        "description": "东湖区解放路88号路灯不亮",
        "service": "street-light",
        "phone": phone,
        "address": "东湖区解放路88号",
        "district": "dh",
        "channel": "web",
        "fields": {"problem": "out"},
        **extra,
    }
    r = client.post("/api/v1/tickets", json=body, headers=login(client, "agent1"))
    assert r.status_code == 201, r.text
    return str(r.json()["reference"])


# ---------------------------------------------------------------- pages


PAGES = [
    "/m/",
    "/m/?lang=en",
    "/m/report",
    "/m/report?lang=en",
    "/m/report?q=%E8%B7%AF%E7%81%AF",
    "/m/report?q=noise&lang=en",
    "/m/report/street-light",
    "/m/report/street-light?lang=en",
    "/m/report/mayor-mailbox",
    "/m/report/secretary-mailbox?lang=en",
    "/m/report/housing-support",
    "/m/track",
    "/m/track?lang=en&ref=26112104821377",
]


class TestPages:
    def test_every_page_is_light_self_contained_and_labelled(self, citizen: Phone) -> None:
        for path in PAGES:
            r = citizen.get(path)
            assert r.status_code == 200, path
            html = r.text
            assert len(r.content) < BUDGET, (path, len(r.content))
            assert re.search(r'<html lang="(zh-CN|en)">', html)
            assert "<h1>" in html
            # Nothing loaded from elsewhere: no scripts or styles by URL, no CDN.
            assert not re.search(r"<(script|link|img)[^>]+(src|href)=", html), path
            assert "http://" not in html and "https://" not in html, path
            csp = r.headers["content-security-policy"]
            nonce = re.search(r"'nonce-([^']+)'", csp)
            assert nonce and f'<style nonce="{nonce.group(1)}">' in html
            assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
            # Every visible input, select and textarea has a label tied to it.
            for tag in re.findall(r"<(?:input|select|textarea)\b[^>]*>", html):
                if 'type="hidden"' in tag:
                    continue
                if re.search(r'type="(radio|checkbox)"', tag):
                    continue  # wrapped in its <label class="opt">
                ident = re.search(r'id="([^"]+)"', tag)
                assert ident, (path, tag)
                assert f'<label for="{ident.group(1)}"' in html, (path, tag)

    def test_the_language_switch_keeps_the_page_and_the_choice_carries_on(
        self, citizen: Phone
    ) -> None:
        zh = citizen.get("/m/report?q=%E8%B7%AF%E7%81%AF")
        assert "选择问题类型" in zh.text and "路灯故障" in zh.text
        switch = re.search(r'<a href="([^"]+)" lang="en"', zh.text)
        assert switch
        en = citizen.get(switch.group(1).replace("&amp;", "&"))
        assert '<html lang="en">' in en.text and "Street light out" in en.text
        # Every link and form on the English page stays in English.
        links = re.findall(r'<a href="(/m/[^"]*)"(?! lang="zh-CN")', en.text)
        assert links and all("lang=en" in link for link in links), links
        forms = re.findall(r"<form\b.*?</form>", en.text, re.S)
        assert forms and all('name="lang" value="en"' in f for f in forms)
        back = re.search(r'<a href="([^"]+)" lang="zh-CN"', en.text)
        assert back and "lang=zh-CN" in back.group(1) and "q=" in back.group(1)

    def test_the_default_is_the_citys_language(self, citizen: Phone) -> None:
        assert '<html lang="zh-CN">' in citizen.get("/m/").text

    def test_the_search_filters_on_the_server(self, citizen: Phone) -> None:
        page = citizen.get("/m/report?q=%E6%AC%A0%E8%96%AA")  # 欠薪
        assert "拖欠工资" in page.text or "欠薪" in page.text
        assert "路灯故障" not in page.text
        nothing = citizen.get("/m/report?q=zzzzzz")
        assert "没有找到" in nothing.text

    def test_the_picker_groups_services_by_the_catalogue_groups(self, citizen: Phone) -> None:
        page = citizen.get("/m/report").text
        for group in ("市政设施", "水电气暖", "领导信箱"):
            assert f"<h2>{group}</h2>" in page
        assert page.count('href="/m/report/') >= 45

    def test_guidance_fields_and_forms_of_a_service(self, citizen: Phone) -> None:
        page = citizen.get("/m/report/street-light").text
        assert "请尽量提供灯杆上的编号" in page  # the guidance (description)
        assert 'type="radio" name="problem" value="out"' in page  # singlevaluelist
        assert 'name="pole_number"' in page  # string
        assert page.count('type="file"') == 3
        housing = citizen.get("/m/report/housing-support").text
        link = re.search(r'href="(/m/forms/[^"]+\.pdf)"', housing)
        assert link and "公共租赁住房申请表" in housing
        pdf = citizen.get(link.group(1))
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
        assert pdf.headers["content-type"] == "application/pdf"
        assert citizen.get("/m/forms/..%2Fpyproject.toml", follow_redirects=False).status_code in (
            303,
            404,
        )

    def test_each_field_type_has_its_own_input(
        self, citizen: Phone, mobile_settings: Settings
    ) -> None:
        extra = [
            {
                "code": "details",
                "datatype": "text",
                "required": True,
                "order": 1,
                "label_zh": "详细情况",
                "label_en": "Details",
            },
        ]
        sql(
            mobile_settings,
            "UPDATE services SET fields = :f WHERE code = 'other'",
            f=json.dumps(extra),
        )
        expected = {
            ("street-light", "problem"): 'type="radio"',
            ("street-light", "pole_number"): 'type="text"',
            ("heating", "room_temperature"): 'inputmode="decimal"',
            ("bus", "occurred_at"): 'type="datetime-local"',
            ("food-safety", "problems"): 'type="checkbox"',
            ("other", "details"): "<textarea",
        }
        for (code, name), kind in expected.items():
            page = citizen.get(f"/m/report/{code}").text
            tag = re.search(rf'<(?:input|textarea)[^>]*name="{name}"[^>]*>', page)
            assert tag and kind in tag.group(0), (code, name)
        food = citizen.get("/m/report/food-safety").text
        assert food.count('name="problems"') >= 3  # one box per value

    def test_list_number_and_datetime_values_are_kept_as_the_core_wants_them(
        self, citizen: Phone, app: TestClient
    ) -> None:
        reference = citizen.report(
            "bus",
            {"route": "12路", "occurred_at": "2026-11-20T14:30", "description": "司机拒载"},
        )
        assert ticket(app, reference)["fields"] == {
            "route": "12路",
            "occurred_at": "2026-11-20T14:30+08:00",
        }
        app.cookies.clear()
        reference = citizen.report(
            "consumer", {"shop_name": "某超市", "amount": "199.5", "description": "多收钱"}
        )
        assert ticket(app, reference)["fields"] == {"shop_name": "某超市", "amount": 199.5}


# ---------------------------------------------------------------- reporting


class TestReport:
    def test_a_report_from_a_phone_becomes_a_web_ticket_with_its_photo(
        self, citizen: Phone, app: TestClient, mobile_settings: Settings
    ) -> None:
        photo = jpeg(gps=True, orientation=6)
        reference = citizen.report(
            "street-light",
            {
                "problem": "out",
                "pole_number": "DH-0231",
                "description": "解放路的路灯连续三晚不亮",
                "address": "解放路88号",
                "district": "dh",
            },
            photos=[("IMG_0001.JPG", photo)],
        )
        t = ticket(app, reference)
        assert t["channel"] == "web" and t["service"] == "street-light"
        assert t["fields"] == {"problem": "out", "pole_number": "DH-0231"}
        assert t["district"] == "dh" and t["phone"] == citizen.e164 and not t["anonymous"]
        assert t["routing"]["department"].startswith("cgj-dh")  # the office there
        assert t["locale"] == "zh-CN"

        # The photo is an attachment of the ticket, re-encoded: upright, no EXIF, no GPS.
        ((path, content_type, size),) = sql(
            mobile_settings,
            "SELECT a.path, a.content_type, a.size FROM attachments a "
            "JOIN tickets t ON t.id = a.ticket_id WHERE t.reference = :r",
            r=reference,
        )
        stored = (mobile_settings.MEDIA_DIR / path).read_bytes()
        assert content_type == "image/jpeg" and size == len(stored)
        img = Image.open(io.BytesIO(stored))
        assert img.size == (480, 640)  # turned by its orientation tag before it was dropped
        assert not img.getexif() and b"Exif" not in stored and b"PhoneMaker" not in stored

        # The reference came by SMS once (the core's acknowledgement), after the code.
        # (Only this ticket's texts: with the shared worker on PostgreSQL, a text of an
        # earlier test to the same phone can land after that test.)
        def texts() -> list[dict[str, Any]]:
            rows = app.get("/dev/outbox.json").json()
            return [
                m
                for m in rows
                if m["to"] == citizen.e164
                and m["template"] != "verify_code"
                and f"/m/track?ref={reference}" in m["body"]
            ]

        (ack,) = wait_for(texts)
        assert ack["template"] == "ticket_received"
        assert " ".join(reference[i : i + 4] for i in range(0, 14, 4)) in ack["body"]

    def test_a_report_in_english_and_anonymous(self, citizen: Phone, app: TestClient) -> None:
        r = citizen.details(
            "noise-neighbourhood", {"description": "Loud music every night"}, lang="en"
        )
        assert r.status_code == 303 and "lang=en" in r.headers["location"]
        assert citizen.contact(anonymous=True, lang="en").status_code == 303
        code = citizen.code()
        page = citizen.get("/m/report/verify?lang=en")
        assert "ending in 8000" in page.text
        done = citizen.verify(code, lang="en")
        final = citizen.get(done.headers["location"])
        assert "Your reference" in final.text
        reference = re.search(r'id="reference">([0-9 ]+)<', final.text).group(1).replace(" ", "")  # type: ignore[union-attr]
        t = ticket(app, reference)
        assert t["anonymous"] and t["locale"] == "en"
        dept = act(app, "agent1", reference, "dispatch")["department"]
        seen = app.get(f"/api/v1/tickets/{reference}", headers=login(app, f"{dept}-clerk"))
        assert seen.json()["phone"] is None  # the department does not see the number

    def test_missing_required_fields_come_back_with_the_values_kept(self, citizen: Phone) -> None:
        r = citizen.details("street-light", {"description": "", "address": "解放路88号"})
        assert r.status_code == 422
        assert r.text.count("请填写此项") == 2  # the problem (a radio list) and the description
        assert 'value="解放路88号"' in r.text
        en = citizen.details("street-light", {"problem": "out"}, lang="en")
        assert en.status_code == 422 and "Please fill this in." in en.text

    def test_a_wrong_number_or_an_unknown_district_is_refused(self, citizen: Phone) -> None:
        r = citizen.details(
            "heating",
            {"description": "暖气不热", "room_temperature": "很冷", "district": "nowhere"},
        )
        assert r.status_code == 422
        assert "请输入数字" in r.text and "请从列表中选择" in r.text

    def test_a_non_image_or_an_oversized_photo_is_refused_with_a_clear_message(
        self, citizen: Phone, mobile_settings: Settings
    ) -> None:
        r = citizen.details(
            "street-light",
            {"problem": "out", "description": "路灯不亮"},
            photos=[("photo.jpg", b"%PDF-1.4 this is not a photo" * 50)],
        )
        assert r.status_code == 422
        assert "照片 1 不是可识别的图片" in r.text
        big = b"\xff\xd8\xff\xe0" + b"\0" * (8 * 1024 * 1024)
        r = citizen.details(
            "street-light",
            {"problem": "out", "description": "路灯不亮"},
            photos=[("ok.jpg", jpeg()), ("big.jpg", big)],
            lang="en",
        )
        assert r.status_code == 422
        assert "Photo 2 is larger than 8 MB" in r.text
        # The good photo is kept: the form shows it, ticked, and offers two more slots.
        assert r.text.count('name="keep"') == 1 and r.text.count('type="file"') == 2
        broken = jpeg()[:200]  # a JPEG cut short: not decodable
        r = citizen.details(
            "street-light",
            {"problem": "out", "description": "路灯不亮"},
            photos=[("x.jpg", broken)],
        )
        assert r.status_code == 422 and "不是可识别的图片" in r.text
        assert not list((mobile_settings.MEDIA_DIR).glob("*/*.part"))

    def test_at_most_three_photos(self, citizen: Phone) -> None:
        shots = [(f"{i}.jpg", jpeg((100 + i, 80))) for i in range(3)]
        r = citizen.details("street-light", {"problem": "out", "description": "x"}, photos=shots)
        assert r.status_code == 303
        again = citizen.get("/m/report/street-light")
        assert again.text.count('name="keep"') == 3 and 'type="file"' not in again.text

    def test_an_unticked_photo_is_taken_back(
        self, citizen: Phone, mobile_settings: Settings
    ) -> None:
        citizen.details(
            "street-light", {"problem": "out", "description": "x"}, photos=[("a.jpg", jpeg())]
        )
        (path,) = list(mobile_settings.MEDIA_DIR.glob("*/*.jpg"))
        r = citizen.details("street-light", {"problem": "out", "description": "x"})  # no keep
        assert r.status_code == 303 and not path.exists()
        assert citizen.get("/m/report/street-light").text.count('type="file"') == 3

    def test_a_letter_to_the_mayor_is_answered_by_the_mayors_office(
        self, citizen: Phone, app: TestClient
    ) -> None:
        home = citizen.get("/m/")
        assert 'href="/m/report/mayor-mailbox?lang=zh-CN"' in home.text
        assert 'href="/m/report/secretary-mailbox?lang=zh-CN"' in home.text
        page = citizen.get("/m/report/mayor-mailbox").text
        assert "来信内容" in page and 'name="address"' not in page
        missing = citizen.details("mayor-mailbox", {"description": "市长您好"})
        assert missing.status_code == 422 and "请填写此项" in missing.text  # the subject
        reference = citizen.report(
            "mayor-mailbox", {"subject": "关于老旧小区加装电梯", "description": "市长您好，……"}
        )
        t = ticket(app, reference)
        assert t["kind"] == "suggestion" and t["title"] == "关于老旧小区加装电梯"
        assert t["routing"]["department"] == "szb"
        assert resolved(app, reference, "感谢来信，已转市住建局研究办理。") == "szb"
        view = citizen.look_up(reference, "8000")
        assert "感谢来信，已转市住建局研究办理。" in view.text and "市长办公室" in view.text

    def test_the_code_takes_five_tries_then_a_new_code_is_needed(
        self, citizen: Phone, app: TestClient
    ) -> None:
        assert (
            citizen.details("street-light", {"problem": "out", "description": "x"}).status_code
            == 303
        )
        citizen.contact()
        code = citizen.code()
        wrong = f"{(int(code) + 1) % 10**6:06d}"
        answers = [citizen.verify(wrong) for _ in range(5)]
        assert "还可以再试 4 次" in answers[0].text
        assert "验证码已失效" in answers[-1].text
        after = citizen.verify(code)  # the right code, too late
        assert after.status_code == 422 and "验证码已失效" in after.text
        assert "6 digits" in citizen.verify("12345x", lang="en").text
        assert app.get("/api/v1/tickets", headers=login(app, "agent1")).json()["total"] == 0

    def test_an_expired_code_is_refused_and_a_new_one_works(
        self, citizen: Phone, app: TestClient, mobile_settings: Settings
    ) -> None:
        citizen.details("street-light", {"problem": "out", "description": "x"})
        citizen.contact()
        first = citizen.code()
        sql(
            mobile_settings,
            "UPDATE phone_codes SET expires_at = :t, created_at = :t",
            t=utcnow() - timedelta(minutes=1),
        )
        assert "验证码已失效" in citizen.verify(first).text
        page = citizen.get("/m/report/verify")
        sent = citizen.post(
            "/m/report/resend", data={"csrf": citizen.csrf(page.text), "lang": "zh-CN"}
        )
        assert "新的验证码已发送" in sent.text
        second = citizen.code()
        assert citizen.verify(second).status_code == 303
        assert app.get("/api/v1/tickets", headers=login(app, "agent1")).json()["total"] == 1

    def test_codes_are_stored_hashed(self, citizen: Phone, mobile_settings: Settings) -> None:
        citizen.details("street-light", {"problem": "out", "description": "x"})
        citizen.contact()
        code = citizen.code()
        ((stored, phone),) = sql(mobile_settings, "SELECT code_hash, phone FROM phone_codes")
        assert code not in stored and len(stored) == 64 and phone == citizen.e164

    def test_codes_are_rate_limited_per_phone_and_per_client(
        self, app: TestClient, mobile_settings: Settings
    ) -> None:
        replies = []
        for _ in range(6):  # six reports from six browsers, one number
            browser = Phone(app, "13900139000")
            app.cookies.clear()
            browser.details("street-light", {"problem": "out", "description": "x"})
            replies.append(browser.contact())
        assert [r.status_code for r in replies] == [303] * 5 + [429]
        assert "验证码发送过于频繁" in replies[-1].text
        # Another number from the same client is still fine, up to the client's limit.
        app.cookies.clear()
        other = Phone(app, "13700137000")
        other.details("street-light", {"problem": "out", "description": "x"})
        assert other.contact().status_code == 303
        # A resend within a minute waits.
        page = other.get("/m/report/verify")
        again = other.post(
            "/m/report/resend", data={"csrf": other.csrf(page.text), "lang": "zh-CN"}
        )
        assert again.status_code == 429 and "秒后再重新获取" in again.text

    def test_a_form_without_its_csrf_token_changes_nothing(
        self, citizen: Phone, mobile_settings: Settings
    ) -> None:
        citizen.get("/m/report/street-light")
        r = citizen.post(
            "/m/report/details?service=street-light",
            data={"csrf": "forged", "problem": "out", "description": "x"},
        )
        assert r.status_code == 403 and "页面已过期" in r.text
        assert sql(mobile_settings, "SELECT count(*) FROM web_drafts")[0][0] == 0
        # A staff session cookie in the same browser does not get in the citizen's way.
        citizen.client.cookies.set("contact_session", "s.whatever")
        ok = citizen.details("street-light", {"problem": "out", "description": "x"})
        assert ok.status_code == 303
        citizen.client.cookies.delete("contact_session")

    def test_submitting_twice_opens_one_ticket(self, citizen: Phone, app: TestClient) -> None:
        citizen.details("street-light", {"problem": "out", "description": "x"})
        citizen.contact()
        code = citizen.code()
        page = citizen.get("/m/report/verify")
        form = {"csrf": citizen.csrf(page.text), "lang": "zh-CN", "code": code}
        first = citizen.post("/m/report/verify", data=form, follow_redirects=False)
        second = citizen.post("/m/report/verify", data=form, follow_redirects=False)
        assert first.status_code == second.status_code == 303
        assert second.headers["location"].startswith("/m/report/done")
        assert app.get("/api/v1/tickets", headers=login(app, "agent1")).json()["total"] == 1

    def test_steps_out_of_order_start_again(self, citizen: Phone) -> None:
        assert citizen.get("/m/report/contact").status_code == 410
        assert citizen.get("/m/report/verify").status_code == 410
        assert citizen.get("/m/report/done", follow_redirects=False).status_code == 303


# ---------------------------------------------------------------- tracking


class TestTrack:
    def test_the_timeline_shows_the_steps_and_the_answer_and_no_personal_data(
        self, citizen: Phone, app: TestClient
    ) -> None:
        reference = web_ticket(app)
        act(app, "agent1", reference, "note", text="内部：市民姓王，住3单元", public=False)
        dept = resolved(app, reference, "已更换灯泡，路灯恢复照明。")
        act(app, f"{dept}-clerk", reference, "note", text="维修人员已回访现场", public=True)
        spaced = " ".join(reference[i : i + 4] for i in range(0, 14, 4))
        view = citizen.look_up(spaced, "8000")  # typed grouped, as printed
        assert view.status_code == 200
        page = view.text
        depts = app.get("/api/v1/departments", headers=login(app, "agent1")).json()
        name = next(d for d in depts if d["code"] == dept)
        assert "已受理" in page and f"已派至 {name['name_zh']}" in page
        assert "已更换灯泡，路灯恢复照明。" in page and "维修人员已回访现场" in page
        assert 'id="status">已办结，待您评价' in page
        for private in ("内部", "姓王", "解放路88号", "88号", "路灯不亮"):
            assert private not in page, private
        en = citizen.get(
            re.search(r'href="([^"]+)" lang="en"', page).group(1).replace("&amp;", "&")
        )  # type: ignore[union-attr]
        assert f"Sent to {name['name_en']}" in en.text and "Progress" in en.text

    def test_twenty_wrong_guesses_lock_the_reference_for_that_client(
        self, citizen: Phone, app: TestClient
    ) -> None:
        reference = web_ticket(app)
        for i in range(19):
            r = citizen.look_up(reference, f"{1000 + i}")
            assert r.status_code == 404 and "没有找到匹配的诉求" in r.text
        assert citizen.look_up(reference, "8000").status_code == 200  # right, before the lock
        for i in range(20):
            assert citizen.look_up(reference, f"{2000 + i}").status_code == 404
        locked = citizen.look_up(reference, "8000")
        assert locked.status_code == 429 and "尝试次数过多" in locked.text
        # Another client is not locked out.
        app._transport.client = ("203.0.113.9", 40000)  # type: ignore[attr-defined]
        try:
            assert citizen.look_up(reference, "8000").status_code == 200
        finally:
            app._transport.client = ("testclient", 50000)  # type: ignore[attr-defined]

    def test_wrong_guesses_across_references_lock_the_client(
        self, citizen: Phone, app: TestClient
    ) -> None:
        reference = web_ticket(app)
        others = [web_ticket(app, phone=f"+861370013{7000 + i}") for i in range(3)]
        for i in range(50):
            r = citizen.look_up(others[i % 3], f"{i:04d}"[-4:] if i % 3 else "0001")
            assert r.status_code == 404
        locked = citizen.look_up(reference, "8000")
        assert locked.status_code == 429 and "尝试次数过多" in locked.text

    def test_look_ups_are_rate_limited_per_client(
        self, citizen: Phone, app: TestClient, mobile_settings: Settings
    ) -> None:
        reference = web_ticket(app)
        key = guard.digest(mobile_settings.SECRET_KEY, "track-client", "testclient")
        sql(
            mobile_settings,
            "INSERT INTO web_limits (key, scope, count, reset_at) "
            "VALUES (:k, 'track-client', 60, :t)",
            k=key,
            t=utcnow() + timedelta(minutes=5),
        )
        busy = citizen.look_up(reference, "8000")
        assert busy.status_code == 429 and "查询过于频繁" in busy.text

    def test_a_malformed_reference_or_last4_is_explained(
        self, citizen: Phone, app: TestClient
    ) -> None:
        reference = web_ticket(app)
        wrong_check_digit = str((int(reference[-1]) + 1) % 10)
        assert "14 位数字" in citizen.look_up(reference[:-1] + wrong_check_digit, "8000").text
        assert "后 4 位" in citizen.look_up(reference, "80").text
        assert "reference has 14 digits" in citizen.look_up("123", "8000", lang="en").text

    def test_provisional_kiosk_references_have_a_hook(
        self, citizen: Phone, app: TestClient
    ) -> None:
        reference = web_ticket(app)
        waiting = citizen.look_up("K20261121001", "8000")
        assert waiting.status_code == 404 and "临时编号" in waiting.text

        async def kiosk(session: Any, provisional: str) -> str | None:
            return reference if provisional == "K20261121001" else None

        track.register_provisional(kiosk)
        try:
            assert citizen.look_up("k2026 1121 001", "8000").status_code == 200
        finally:
            track._provisional.remove(kiosk)

    def test_a_forged_or_expired_link_shows_the_form(
        self, citizen: Phone, app: TestClient, mobile_settings: Settings
    ) -> None:
        reference = web_ticket(app)
        forged = citizen.get(f"/m/track/view?t={reference}.9999999999.{'0' * 32}")
        assert forged.status_code == 403 and "查询已过期" in forged.text
        old = guard.track_token(mobile_settings.SECRET_KEY, reference, now=1.0)
        assert citizen.get(f"/m/track/view?t={old}").status_code == 403
        fresh = guard.track_token(mobile_settings.SECRET_KEY, reference)
        assert citizen.get(f"/m/track/view?t={fresh}").status_code == 200

    def test_files_published_with_the_answer_can_be_downloaded(
        self, citizen: Phone, app: TestClient, mobile_settings: Settings
    ) -> None:
        reference = web_ticket(app)
        resolved(app, reference)
        folder = mobile_settings.MEDIA_DIR / "ab"
        folder.mkdir(parents=True)
        (folder / "notice.pdf").write_bytes(b"%PDF-1.4 answer")
        (folder / "internal.pdf").write_bytes(b"%PDF-1.4 internal")
        for name, public in (("notice.pdf", True), ("internal.pdf", False)):
            sql(
                mobile_settings,
                "INSERT INTO attachments (ticket_id, filename, content_type, size, sha256, path,"
                " public, created_at) SELECT id, :n, 'application/pdf', 15, :h, :p, :pub, :t"
                " FROM tickets WHERE reference = :r",
                n=name,
                h=name.ljust(64, "0"),
                p=f"ab/{name}",
                pub=public,
                t=utcnow(),
                r=reference,
            )
        view = citizen.look_up(reference, "8000")
        assert "notice.pdf" in view.text and "internal.pdf" not in view.text
        link = re.search(r'href="(/m/track/file/\d+\?[^"]+)"', view.text)
        assert link
        got = citizen.get(link.group(1).replace("&amp;", "&"))
        assert got.status_code == 200 and got.content == b"%PDF-1.4 answer"
        other = re.sub(r"file/\d+", "file/999", link.group(1).replace("&amp;", "&"))
        assert citizen.get(other).status_code == 404
        unsigned = link.group(1).split("?")[0]
        assert citizen.get(unsigned).status_code == 404

    def test_rating_closes_the_ticket_once(self, citizen: Phone, app: TestClient) -> None:
        reference = web_ticket(app)
        resolved(app, reference)
        view = citizen.look_up(reference, "8000")
        assert "您对办理结果满意吗" in view.text and "/m/track/reopen" in view.text
        form = {
            "csrf": citizen.csrf(view.text),
            "lang": "zh-CN",
            "t": TOKEN.search(view.text).group(1),  # type: ignore[union-attr]
            "satisfaction": "2",
            "solved": "yes",
        }
        rated = citizen.post("/m/track/rate", data=form)
        assert rated.status_code == 200 and "感谢您的评价" in rated.text
        assert "您的评价：基本满意" in rated.text and "/m/track/reopen" not in rated.text
        t = ticket(app, reference)
        assert t["status"] == "closed" and t["satisfaction"] == 2
        again = citizen.post("/m/track/rate", data={**form, "satisfaction": "1"})
        assert again.status_code == 409 and "不能评价" in again.text
        assert ticket(app, reference)["satisfaction"] == 2
        reopen = citizen.post("/m/track/reopen", data={**form, "reason": "又坏了"})
        assert reopen.status_code == 409 and ticket(app, reference)["status"] == "closed"

    def test_not_satisfied_is_a_rating_too(self, citizen: Phone, app: TestClient) -> None:
        reference = web_ticket(app)
        resolved(app, reference)
        view = citizen.look_up(reference, "8000", lang="en")
        token = TOKEN.search(view.text).group(1)  # type: ignore[union-attr]
        form = {"csrf": citizen.csrf(view.text), "lang": "en", "t": token, "satisfaction": "3"}
        assert "Thank you for rating" in citizen.post("/m/track/rate", data=form).text
        t = ticket(app, reference)
        assert t["status"] == "closed" and t["satisfaction"] == 3

    def test_reopening_sends_it_back_to_the_department_once(
        self, citizen: Phone, app: TestClient
    ) -> None:
        reference = web_ticket(app)
        dept = resolved(app, reference)
        view = citizen.look_up(reference, "8000")
        token = TOKEN.search(view.text).group(1)  # type: ignore[union-attr]
        form = {"csrf": citizen.csrf(view.text), "lang": "zh-CN", "t": token}
        empty = citizen.post("/m/track/reopen", data={**form, "reason": " "})
        assert empty.status_code == 422
        back = citizen.post("/m/track/reopen", data={**form, "reason": "路灯又不亮了"})
        assert back.status_code == 200 and "已为您重新办理" in back.text
        assert "按您的要求重新办理" in back.text and "路灯又不亮了" not in back.text
        t = ticket(app, reference)
        assert t["status"] == "dispatched" and t["department"] == dept
        assert [e["kind"] for e in t["events"]][-2:] == ["reopened", "dispatched"]
        # Answered again: it may be rated, but not reopened a second time from the page.
        act(app, f"{dept}-clerk", reference, "accept")
        act(app, f"{dept}-clerk", reference, "resolve", reply="已彻底修复。")
        again = citizen.get(f"/m/track/view?t={token}")
        assert "您对办理结果满意吗" in again.text and "/m/track/reopen" not in again.text
        refused = citizen.post("/m/track/reopen", data={**form, "reason": "还是不亮"})
        assert refused.status_code == 409
        assert ticket(app, reference)["status"] == "resolved"

    def test_nothing_after_the_window(
        self, citizen: Phone, app: TestClient, mobile_settings: Settings
    ) -> None:
        reference = web_ticket(app)
        resolved(app, reference)
        days = mobile_settings.SATISFACTION_WINDOW_DAYS + 1
        sql(
            mobile_settings,
            "UPDATE tickets SET resolved_at = :t WHERE reference = :r",
            t=utcnow() - timedelta(days=days),
            r=reference,
        )
        view = citizen.look_up(reference, "8000")
        assert "您对办理结果满意吗" not in view.text and "/m/track/reopen" not in view.text
        token = re.search(r"t=([0-9a-f.]+)", str(view.url)).group(1)  # type: ignore[union-attr]
        csrf = citizen.csrf(citizen.get("/m/track").text)
        form = {"csrf": csrf, "lang": "zh-CN", "t": token}
        assert citizen.post("/m/track/rate", data={**form, "satisfaction": "1"}).status_code == 409
        assert citizen.post("/m/track/reopen", data={**form, "reason": "x"}).status_code == 409
        assert ticket(app, reference)["status"] == "resolved"

    def test_status_texts_of_a_web_report_go_to_its_phone(
        self, citizen: Phone, app: TestClient
    ) -> None:
        reference = citizen.report("street-light", {"problem": "out", "description": "x"})
        resolved(app, reference, "已修复。")

        def resolved_text() -> list[dict[str, Any]]:
            rows = app.get("/dev/outbox.json").json()
            return [
                m for m in rows if m["to"] == citizen.e164 and m["template"] == "ticket_resolved"
            ]

        (sms,) = wait_for(resolved_text)
        assert "已修复" in sms["body"]


# ---------------------------------------------------------------- the city and housekeeping


class TestCity:
    def test_the_leaders_offices_have_their_clerks(self, app: TestClient) -> None:
        agent = login(app, "agent1")
        depts = {d["code"]: d for d in app.get("/api/v1/departments", headers=agent).json()}
        assert depts["szb"]["name_zh"] == "市长办公室" and depts["szb"]["level"] == "bureau"
        assert depts["swb"]["name_en"] == "Party Secretary's Office"
        for code in ("szb", "swb"):
            assert login(app, f"{code}-clerk")
        for code, dept in (("mayor-mailbox", "szb"), ("secretary-mailbox", "swb")):
            svc = app.get(f"/api/v1/services/{code}", headers=agent).json()
            assert svc["department"] == dept and svc["kind"] == "suggestion"
            assert [(f["code"], f["required"]) for f in svc["fields"]] == [("subject", True)]

    def test_expired_drafts_codes_and_counters_are_purged(
        self, citizen: Phone, mobile_settings: Settings, app: TestClient
    ) -> None:
        citizen.details(
            "street-light", {"problem": "out", "description": "x"}, photos=[("a.jpg", jpeg())]
        )
        citizen.contact()
        citizen.code()
        (path,) = list(mobile_settings.MEDIA_DIR.glob("*/*.jpg"))
        past = utcnow() - timedelta(hours=3)
        sql(mobile_settings, "UPDATE web_drafts SET expires_at = :t", t=past)
        sql(mobile_settings, "UPDATE phone_codes SET expires_at = :t", t=past)
        sql(mobile_settings, "UPDATE web_limits SET reset_at = :t", t=past)
        guard._last_purge[0] = 0.0
        reference = web_ticket(app)
        citizen.look_up(reference, "8000")  # any write of the pages purges, now and then
        for table in ("web_drafts", "phone_codes"):
            assert sql(mobile_settings, f"SELECT count(*) FROM {table}")[0][0] == 0
        assert sql(mobile_settings, "SELECT count(*) FROM web_limits")[0][0] == 1  # this look-up
        assert not path.exists()  # the photo no ticket took
