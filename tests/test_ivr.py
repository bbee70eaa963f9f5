"""The demo IVR flow over signed Twilio Voice webhooks, read back as TwiML."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from contact.app import create_app
from contact.reference import is_valid
from contact.settings import Settings
from tests.conftest import login, wait_for
from tests.ivr_helpers import BASE, TOKEN, Phone, post_signed

CALLER = "+8613800138000"
OTHER = "+8613911112222"


def _client(settings: Settings, **overrides: Any) -> Any:
    s = settings.model_copy(update={"TWILIO_AUTH_TOKEN": TOKEN, **overrides})
    return TestClient(create_app(s))


@pytest.fixture
def voice(settings: Settings) -> Any:
    with _client(settings, AGENT_HOURS="always") as c:
        yield c


@pytest.fixture
def after_hours(settings: Settings) -> Any:
    with _client(settings, AGENT_HOURS="never") as c:
        yield c


def db(client: TestClient, sql: str, **params: Any) -> list[Any]:
    rt = client.app.state.runtime  # type: ignore[attr-defined]

    async def run() -> list[Any]:
        async with rt.db.session() as s:
            return list((await s.execute(text(sql), params)).all())

    return client.portal.call(run)  # type: ignore[union-attr]


def report_by_speech(client: TestClient, caller: str, words: str) -> str:
    phone = Phone(client, caller)
    phone.dial()
    phone.press("1")  # 中文
    phone.press("2")  # report
    phone.press("1")  # the first service group
    heard = phone.say(words)
    assert words in heard.text  # read back
    heard = phone.press("1")  # confirm
    digits = "".join(ch for ch in heard.text.split("。")[0] if ch.isdigit())
    reference = digits[-14:]
    assert is_valid(reference)
    spoken = " ".join(reference)
    assert heard.text.count(spoken) == 2  # digit by digit, twice
    return reference


def ticket_of(client: TestClient, reference: str) -> dict[str, Any]:
    agent = login(client, "agent1")
    r = client.get(f"/api/v1/tickets/{reference}", headers=agent)
    assert r.status_code == 200, r.text
    return dict(r.json())


class TestMenu:
    def test_the_welcome_is_bilingual_and_every_url_is_absolute(self, voice: TestClient) -> None:
        heard = Phone(voice).dial()
        langs = {lang for lang, _ in heard.says}
        assert langs == {"cmn-CN", "en-US"}
        assert heard.gather is not None and heard.gather.get("numDigits") == "1"
        assert heard.action == BASE + "/ivr/twilio/gather?node=welcome"

    def test_two_is_english_and_silence_is_chinese(self, voice: TestClient) -> None:
        english = Phone(voice)
        english.dial()
        heard = english.press("2")
        assert "track a request" in heard.text and heard.says[0][0] == "en-US"
        quiet = Phone(voice)
        quiet.dial()
        heard = quiet.silence()
        assert "查询办理进度" in heard.text and heard.says[0][0] == "cmn-CN"

    def test_star_repeats_and_pound_goes_back(self, voice: TestClient) -> None:
        phone = Phone(voice)
        phone.dial()
        main = phone.press("1").text
        assert phone.press("*").text == main
        phone.press("1")  # track: asks for the reference
        heard = phone.press("#")
        assert heard.text == main

    def test_invalid_keys_reprompt_twice_then_an_agent(self, voice: TestClient) -> None:
        phone = Phone(voice)
        phone.dial()
        phone.press("1")
        assert "查询办理进度" in phone.press("7").text
        assert "查询办理进度" in phone.press("8").text
        heard = phone.press("9")
        assert heard.enqueue is not None  # during hours: the agents' queue

    def test_silence_after_hours_ends_politely(self, after_hours: TestClient) -> None:
        phone = Phone(after_hours)
        phone.dial()
        phone.press("1")
        phone.silence()
        phone.silence()
        heard = phone.silence()
        assert heard.hangup and "再见" in heard.text

    def test_a_retried_start_hears_the_same_question(self, voice: TestClient) -> None:
        phone = Phone(voice)
        first = phone.dial()
        again = phone.dial()
        assert again.xml == first.xml
        assert db(voice, "SELECT count(*) FROM calls")[0][0] == 1


class TestReport:
    def test_a_spoken_report_becomes_a_routed_voice_ticket_with_an_sms(
        self, voice: TestClient
    ) -> None:
        reference = report_by_speech(voice, CALLER, "人民路和解放路路口的路灯不亮了")
        ticket = ticket_of(voice, reference)
        assert ticket["channel"] == "voice"
        assert ticket["service"] == "street-light"  # routed: the decision and its reason
        assert ticket["routing"]["department"] and "路灯" in ticket["routing"]["reason"]
        assert "路灯不亮" in ticket["description"]
        sms = wait_for(
            lambda: [
                m
                for m in voice.get("/dev/outbox.json").json()
                if m["to"] == CALLER and reference in m["body"]
            ]
        )
        assert sms
        rows = db(voice, "SELECT ticket_id, from_addr, state FROM calls")
        assert rows[0][0] is not None and rows[0][1] == CALLER

    def test_no_speech_becomes_a_voicemail_report(self, voice: TestClient) -> None:
        phone = Phone(voice, CALLER)
        phone.dial()
        phone.press("1")
        phone.press("2")
        phone.press("1")
        phone.silence()
        phone.silence()
        heard = phone.silence()  # the third silence: a voicemail instead
        assert heard.record is not None
        heard = phone.leave("https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1")
        assert "受理编号" in heard.text
        rows = db(voice, "SELECT recording_url, ticket_id FROM calls")
        assert rows[0][0].endswith("/RE1") and rows[0][1] is not None


class TestTrack:
    def test_the_callers_own_ticket_is_told_at_once(self, voice: TestClient) -> None:
        reference = report_by_speech(voice, CALLER, "小区门口垃圾三天没人清运")
        phone = Phone(voice, CALLER)
        phone.dial()
        phone.press("1")
        phone.press("1")
        heard = phone.press(reference)
        assert " ".join(reference) in heard.text and "最近进展" in heard.text

    def test_the_status_names_the_last_step_and_the_department(self, voice: TestClient) -> None:
        reference = report_by_speech(voice, CALLER, "人民路的路灯不亮了")
        agent = login(voice, "agent1")
        r = voice.post(f"/api/v1/tickets/{reference}/actions/dispatch", headers=agent, json={})
        assert r.status_code == 200, r.text
        dept = r.json()["department"]
        name = db(voice, "SELECT name_zh FROM departments WHERE code = :c", c=dept)[0][0]
        phone = Phone(voice, CALLER)
        phone.dial()
        phone.press("1")
        phone.press("1")
        heard = phone.press(reference)
        assert "已派单" in heard.text and f"已派至{name}" in heard.text

    def test_another_phone_needs_the_last_four_digits(self, voice: TestClient) -> None:
        reference = report_by_speech(voice, CALLER, "小区门口垃圾三天没人清运")
        stranger = Phone(voice, OTHER)
        stranger.dial()
        stranger.press("1")
        stranger.press("1")
        heard = stranger.press(reference)
        assert "后4位" in heard.text and "最近进展" not in heard.text
        heard = stranger.press("9999")
        assert "号码不符" in heard.text and "最近进展" not in heard.text
        friend = Phone(voice, OTHER)
        friend.dial()
        friend.press("1")
        friend.press("1")
        friend.press(reference)
        heard = friend.press(CALLER[-4:])
        assert "最近进展" in heard.text

    def test_a_typo_is_caught_by_the_check_digit(self, voice: TestClient) -> None:
        reference = report_by_speech(voice, CALLER, "小区门口垃圾三天没人清运")
        typo = reference[:-1] + str((int(reference[-1]) + 1) % 10)
        phone = Phone(voice, CALLER)
        phone.dial()
        phone.press("1")
        phone.press("1")
        heard = phone.press(typo)
        assert "编号有误" in heard.text and heard.action and "node=track" in heard.action


class TestQuestionsAndAgents:
    def test_a_common_question_is_answered_from_the_knowledge_base(self, voice: TestClient) -> None:
        phone = Phone(voice)
        phone.dial()
        phone.press("1")
        heard = phone.press("3")
        assert "请按1" in heard.text
        body = db(voice, "SELECT body_zh FROM kb_articles ORDER BY id LIMIT 1")[0][0]
        heard = phone.press("1")
        assert body[:20] in heard.text

    def test_an_agent_during_hours_is_the_queue_with_its_position(self, voice: TestClient) -> None:
        phone = Phone(voice)
        phone.dial()
        phone.press("1")
        heard = phone.press("0")
        assert heard.enqueue is not None and heard.enqueue.text == "hotline"
        wait_url = heard.enqueue.get("waitUrl", "")
        status, body = post_signed(
            voice, wait_url, phone.form(QueuePosition="3", AvgQueueTime="90", QueueTime="10")
        )
        assert status == 200 and "2位" in body and "<Pause" in body
        assert db(voice, "SELECT queue FROM calls")[0][0] == "hotline"

    def test_after_hours_an_agent_is_a_voicemail_and_a_callback(
        self, after_hours: TestClient
    ) -> None:
        phone = Phone(after_hours)
        phone.dial()
        phone.press("1")
        heard = phone.press("0")
        assert "非工作时间" in heard.text and heard.record is not None
        heard = phone.leave("https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE2")
        assert "回电" in heard.text and heard.hangup
        rows = db(
            after_hours, "SELECT t.title, t.kind FROM calls c JOIN tickets t ON t.id = c.ticket_id"
        )
        assert rows == [("回电请求", "inquiry")]


class TestWebhookSafety:
    @pytest.mark.parametrize("tamper", ["wrong token", "missing header", "altered form"])
    def test_a_bad_signature_is_403_and_no_call_is_stored(
        self, voice: TestClient, tamper: str
    ) -> None:
        form = Phone(voice).form()
        token = "0" * 32 if tamper == "wrong token" else TOKEN
        from twilio.request_validator import RequestValidator

        sig = RequestValidator(token).compute_signature(BASE + "/ivr/twilio/voice", form)
        if tamper == "altered form":
            form = {**form, "From": OTHER}
        headers = {} if tamper == "missing header" else {"X-Twilio-Signature": sig}
        r = voice.post("/ivr/twilio/voice", data=form, headers=headers)
        assert r.status_code == 403 and r.json()["error"] == "bad_signature"
        assert db(voice, "SELECT count(*) FROM calls")[0][0] == 0

    def test_no_personal_data_in_any_url(self, voice: TestClient) -> None:
        phone = Phone(voice, CALLER)
        heard = phone.dial()
        urls = [heard.action or ""]
        for key in ("1", "1"):
            heard = phone.press(key)
            urls.append(heard.action or "")
        for url in urls:
            assert CALLER[-8:] not in url and phone.sid not in url

    def test_status_callbacks_count_once_and_end_the_call(self, voice: TestClient) -> None:
        phone = Phone(voice)
        phone.dial()
        assert phone.status("completed", CallDuration="42") == 200
        assert phone.status("completed", CallDuration="42") == 200
        assert phone.status("in-progress") == 200  # late and out of order
        rows = db(voice, "SELECT status, duration_seconds, ended_at FROM calls")
        assert rows[0][0] == "completed" and rows[0][1] == 42 and rows[0][2] is not None
        assert db(voice, "SELECT count(*) FROM call_status_events")[0][0] == 2
        ended = db(voice, "SELECT count(*) FROM bus_events WHERE type = 'call.ended'")
        assert ended[0][0] == 1

    def test_a_late_answer_for_an_old_question_changes_nothing(self, voice: TestClient) -> None:
        phone = Phone(voice)
        phone.dial()
        old = phone.last
        main = phone.press("1")
        phone.last = old  # Twilio retries the welcome's answer
        heard = phone.press("2")
        assert heard.text == main.text  # the current question again, still in Chinese


def test_sid_is_needed(voice: TestClient) -> None:
    form = {"From": CALLER, "To": "+1", "CallStatus": "ringing", "Nonce": secrets.token_hex(4)}
    status, body = post_signed(voice, BASE + "/ivr/twilio/voice", form)
    assert status == 422 and "CallSid" in body
