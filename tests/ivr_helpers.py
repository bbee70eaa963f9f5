"""A phone for the tests: posts signed Twilio Voice webhooks and reads the TwiML back."""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from twilio.request_validator import RequestValidator

BASE = "http://testserver"
TOKEN = "12345678901234567890123456789012"
NESTABLE = {"Say", "Play", "Pause"}  # what may sit inside <Gather>


def post_signed(
    client: TestClient, url: str, form: dict[str, str], token: str = TOKEN
) -> tuple[int, str]:
    sig = RequestValidator(token).compute_signature(url, form)
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    r = client.post(path, data=form, headers={"X-Twilio-Signature": sig})
    return r.status_code, r.text


@dataclass
class Heard:
    """One TwiML answer, checked for shape and read for the test."""

    xml: str
    says: list[tuple[str, str]] = field(default_factory=list)  # (language, text)
    gather: ET.Element | None = None
    record: ET.Element | None = None
    enqueue: ET.Element | None = None
    hangup: bool = False

    @property
    def text(self) -> str:
        return " ".join(t for _, t in self.says)

    @property
    def action(self) -> str | None:
        el = self.gather if self.gather is not None else self.record
        return el.get("action") if el is not None else None


def parse(xml: str) -> Heard:
    root = ET.fromstring(xml)
    assert root.tag == "Response", xml
    heard = Heard(xml)
    for el in root:
        if el.tag == "Say":
            assert el.get("language"), f"Say without a language: {xml}"
            heard.says.append((el.get("language", ""), el.text or ""))
        elif el.tag == "Gather":
            assert heard.gather is None, "two Gathers in one answer"
            for child in el:
                assert child.tag in NESTABLE, f"<{child.tag}> inside <Gather>: {xml}"
                if child.tag == "Say":
                    assert child.get("language"), f"Say without a language: {xml}"
                    heard.says.append((child.get("language", ""), child.text or ""))
            assert el.get("action", "").startswith(BASE + "/ivr/twilio/"), xml
            assert el.get("input") in ("dtmf", "speech")
            if el.get("input") == "speech":
                assert el.get("language"), "speech Gather without a language"
            heard.gather = el
        elif el.tag == "Record":
            assert el.get("action", "").startswith(BASE + "/ivr/twilio/"), xml
            heard.record = el
        elif el.tag == "Enqueue":
            assert el.get("waitUrl", "").startswith(BASE + "/ivr/twilio/"), xml
            heard.enqueue = el
        elif el.tag == "Hangup":
            heard.hangup = True
        elif el.tag in ("Redirect", "Pause", "Dial"):
            pass
        else:
            raise AssertionError(f"unexpected <{el.tag}>: {xml}")
    return heard


class Phone:
    """One call: ``dial()``, then ``press()`` / ``say()`` / ``silence()`` / ``leave()``."""

    def __init__(self, client: TestClient, caller: str = "+8613800138000") -> None:
        self.client = client
        self.caller = caller
        self.sid = "CA" + secrets.token_hex(16)
        self.last: Heard | None = None

    def form(self, **extra: str) -> dict[str, str]:
        return {
            "CallSid": self.sid,
            "AccountSid": "AC" + "b" * 32,
            "From": self.caller,
            "To": "+8612345",
            "CallStatus": "in-progress",
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
            **extra,
        }

    def _post(self, url: str, **extra: str) -> Heard:
        status, body = post_signed(self.client, url, self.form(**extra))
        assert status == 200, body
        self.last = parse(body)
        return self.last

    def dial(self) -> Heard:
        return self._post(BASE + "/ivr/twilio/voice", CallStatus="ringing")

    def press(self, digits: str) -> Heard:
        assert self.last is not None and self.last.gather is not None, "nothing is asking"
        return self._post(self.last.gather.get("action", ""), Digits=digits)

    def say(self, words: str) -> Heard:
        assert self.last is not None and self.last.gather is not None
        assert self.last.gather.get("input") == "speech"
        return self._post(self.last.gather.get("action", ""), SpeechResult=words, Confidence="0.9")

    def silence(self) -> Heard:
        assert self.last is not None and self.last.gather is not None
        return self._post(self.last.gather.get("action", ""))

    def leave(self, recording_url: str) -> Heard:
        assert self.last is not None and self.last.record is not None
        return self._post(
            self.last.record.get("action", ""), RecordingUrl=recording_url, RecordingDuration="9"
        )

    def status(self, status: str, **extra: str) -> int:
        code, _ = post_signed(
            self.client, BASE + "/ivr/twilio/status", self.form(CallStatus=status, **extra)
        )
        return code
