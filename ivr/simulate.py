"""``contact ivr simulate``: a phone call in the terminal.

The app is built in-process with the current settings and called exactly as Twilio
calls it: signed form posts to ``/ivr/twilio/voice``, then to each ``<Gather>``,
``<Record>`` and ``<Redirect>`` URL the TwiML names, and a ``completed`` status
callback when the call ends. So the call goes through the same webhooks, flow engine
and database as a real one (a report opens a real ticket). What the caller hears
(``<Say>``) is printed; keys, speech and voicemail are typed lines; end of input (or
Ctrl-C) is the caller hanging up.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import secrets
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO
from urllib.parse import urljoin, urlsplit

from contact.reference import is_valid, normalize
from contact.settings import Settings

KEYS = frozenset("0123456789*#")
MAX_UNATTENDED = 50  # documents fetched in a row without the caller doing anything
# 14 digits, read out one by one ("2 6 1 1 ...") or written together.
SPOKEN_REFERENCE = re.compile(r"(?<!\d)(?<!\d[ -])\d(?:[ -]?\d){13}(?![ -]?\d)")

MESSAGES: dict[str, dict[str, str]] = {
    "zh-CN": {
        "dialling": "📞 模拟来电：{caller} 拨打 {to}（{sid}）",
        "help": "按键：输入数字后回车；语音：输入要说的话；空行表示不作声；Ctrl-D 挂机。",
        "withheld": "（{number} 不是有效的电话号码，按未显示号码的来电处理）",
        "keys_only": "（按键只有 0-9、* 和 #）",
        "beep": "（嘀——请输入留言内容，回车结束）",
        "queued": "⏳ 正在排队等待人工坐席……",
        "queue_left": "（模拟到此结束：来电者在排队中挂机）",
        "reference": "📋 受理编号：{reference}",
        "play": "🎵 {url}",
        "not_simulated": "（<{verb}> 未模拟，通话在此结束）",
        "caller_hung_up": "📴 您已挂机（{seconds} 秒）",
        "call_over": "📴 通话结束（{seconds} 秒）",
        "failed": "⚠️ 热线应答出错（HTTP {status}），通话中断",
    },
    "en": {
        "dialling": "📞 Simulated call from {caller} to {to} ({sid})",
        "help": "Keys: type digits and Enter; speech: type the words; an empty line is "
        "silence; Ctrl-D hangs up.",
        "withheld": "({number} is not a valid phone number: the call comes in as withheld)",
        "keys_only": "(the keys are 0-9, * and #)",
        "beep": "(beep - type your message, Enter to finish)",
        "queued": "⏳ Waiting in the queue for an agent...",
        "queue_left": "(end of the simulation: the caller hangs up while waiting)",
        "reference": "📋 Reference: {reference}",
        "play": "🎵 {url}",
        "not_simulated": "(<{verb}> is not simulated; the call ends here)",
        "caller_hung_up": "📴 You hung up ({seconds} s)",
        "call_over": "📴 The call is over ({seconds} s)",
        "failed": "⚠️ The hotline answered with an error (HTTP {status}); the call drops",
    },
}


class HungUp(Exception):
    """The caller hung up (end of input or Ctrl-C)."""

    def __init__(self, interrupted: bool = False) -> None:
        super().__init__()
        self.interrupted = interrupted


class CallDropped(Exception):
    """The hotline answered with an error, or with TwiML the call cannot follow."""


class Terminal:
    """The caller's side: lines shown, lines typed (``None`` is end of input)."""

    def __init__(self, stdin: TextIO, stdout: TextIO) -> None:
        self.stdin = stdin
        self.stdout = stdout
        for stream in (stdin, stdout):
            if isinstance(stream, io.TextIOWrapper):
                stream.reconfigure(errors="replace")  # a terminal that is not UTF-8
        self.interactive = stdin is sys.stdin and stdout is sys.stdout and stdin.isatty()

    def show(self, line: str) -> None:
        print(line, file=self.stdout, flush=True)

    def ask(self, prompt: str) -> str | None:
        if self.interactive:  # input(): line editing on a terminal
            try:
                return input(prompt)
            except EOFError:
                print(file=self.stdout)
                return None
        self.stdout.write(prompt)
        self.stdout.flush()
        line = self.stdin.readline()
        if not line:
            self.show("")
            return None
        line = line.rstrip("\r\n")
        self.show(line)  # typed input is echoed, so the transcript reads like a call
        return line


Post = Callable[[str, dict[str, str], dict[str, str]], tuple[int, str]]


@dataclass
class Call:
    """One simulated call, driven through ``post(path, form, headers)``."""

    post: Post
    base_url: str  # PUBLIC_BASE_URL: what Twilio signs and requests
    token: str
    caller: str
    to: str
    terminal: Terminal
    lang: str = "zh-CN"
    account_sid: str = field(default_factory=lambda: "AC" + secrets.token_hex(16))
    sid: str = field(default_factory=lambda: "CA" + secrets.token_hex(16))
    references: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        from twilio.request_validator import RequestValidator

        self.validator = RequestValidator(self.token)
        self.started = time.monotonic()
        self.msg = MESSAGES.get(self.lang, MESSAGES["en"])

    # ---------------------------------------------------------------- requests

    def form(self, **extra: str) -> dict[str, str]:
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": self.sid,
            "CallStatus": "in-progress",
            "Called": self.to,
            "Caller": self.caller,
            "Direction": "inbound",
            "From": self.caller,
            "To": self.to,
            **extra,
        }

    def request(self, url: str, **extra: str) -> str:
        """POST a signed webhook to ``url`` (absolute, under PUBLIC_BASE_URL): the TwiML."""
        if not url.startswith(self.base_url + "/"):
            raise CallDropped(f"the TwiML names a URL outside PUBLIC_BASE_URL: {url}")
        form = self.form(**extra)
        signature = self.validator.compute_signature(url, form)
        status, body = self.post(url[len(self.base_url) :], form, {"X-Twilio-Signature": signature})
        if status != 200:
            self.terminal.show(self.msg["failed"].format(status=status))
            raise CallDropped(f"{url} answered HTTP {status}: {body[:300]}")
        return body

    def seconds(self) -> str:
        return str(int(time.monotonic() - self.started))

    # ---------------------------------------------------------------- the call

    def run(self) -> int:
        """The whole call; 0 when it ended (either side hung up), 130 on Ctrl-C."""
        self.terminal.show(
            self.msg["dialling"].format(caller=self.caller, to=self.to, sid=self.sid)
        )
        self.terminal.show(self.msg["help"])
        url = self.base_url + "/ivr/twilio/voice"
        try:
            body = self.request(url, CallStatus="ringing")
            unattended = 0
            while (step := self.play(body, url)) is not None:
                url, body, attended = step
                unattended = 0 if attended else unattended + 1
                if unattended > MAX_UNATTENDED:
                    raise CallDropped(f"{MAX_UNATTENDED} redirects in a row (last: {url})")
            self.terminal.show(self.msg["call_over"].format(seconds=self.seconds()))
            code = 0
        except HungUp as hung:
            self.terminal.show(self.msg["caller_hung_up"].format(seconds=self.seconds()))
            code = 130 if hung.interrupted else 0
        self.hang_up()
        return code

    def hang_up(self) -> None:
        """Twilio's status callback at the end of the call."""
        self.request(
            self.base_url + "/ivr/twilio/status",
            CallStatus="completed",
            CallDuration=self.seconds(),
        )

    def play(self, body: str, url: str) -> tuple[str, str, bool] | None:
        """Play one TwiML document: the next (URL, document, whether the caller acted),
        or None when the call ends."""
        root = ET.fromstring(body)  # noqa: S314 - TwiML the app itself wrote
        for verb in root:
            tag = verb.tag
            if tag in ("Say", "Play", "Pause"):
                self.hear(verb)
            elif tag == "Gather":
                for prompt in verb:
                    self.hear(prompt)
                given = self.gather(verb)
                if given is None:  # nothing heard and no report of it: the next verb
                    continue
                action = urljoin(url, verb.get("action") or url)
                return action, self.request(action, **given), True
            elif tag == "Record":
                action = urljoin(url, verb.get("action") or url)
                given, words = self.record()
                answer = self.request(action, **given)
                callback = verb.get("transcribeCallback")
                if verb.get("transcribe") == "true" and callback and words:
                    self.request(
                        urljoin(url, callback),
                        TranscriptionText=words,
                        TranscriptionStatus="completed",
                        TranscriptionSid="TR" + secrets.token_hex(16),
                        RecordingSid=given.get("RecordingSid", ""),
                        RecordingUrl=given.get("RecordingUrl", ""),
                    )
                return action, answer, True
            elif tag == "Redirect":
                target = urljoin(url, (verb.text or "").strip() or url)
                return target, self.request(target), False
            elif tag == "Enqueue":
                self.wait_in_queue(verb, url)
                return None
            elif tag in ("Hangup", "Reject"):
                return None
            else:
                self.terminal.show(self.msg["not_simulated"].format(verb=tag))
                return None
        return None  # the end of the document ends the call

    def hear(self, verb: ET.Element) -> None:
        if verb.tag == "Say":
            text = (verb.text or "").strip()
            if text:
                self.terminal.show("🔊 " + text)
                self.note_references(text)
        elif verb.tag == "Play":
            self.terminal.show(self.msg["play"].format(url=(verb.text or "").strip()))

    def note_references(self, text: str) -> None:
        for match in SPOKEN_REFERENCE.finditer(text):
            reference = normalize(match.group())
            if is_valid(reference) and reference not in self.references:
                self.references.add(reference)
                self.terminal.show(self.msg["reference"].format(reference=reference))

    def gather(self, verb: ET.Element) -> dict[str, str] | None:
        """The caller's answer as Twilio reports it, or None when Twilio would not
        call the action (nothing given and ``actionOnEmptyResult`` off)."""
        if verb.get("input", "dtmf") == "speech":
            words = self.ask("speech> ").strip()
            if words:
                return {"SpeechResult": words, "Confidence": "0.92"}
        else:
            keys = self.keys(verb)
            if keys:
                return {"Digits": keys}
        return {} if verb.get("actionOnEmptyResult") == "true" else None

    def keys(self, verb: ET.Element) -> str:
        while True:
            line = self.ask("keys> ")
            keys = "".join(ch for ch in line if ch in KEYS)
            if keys or not line.strip():
                break
            self.terminal.show(self.msg["keys_only"])
        finish = verb.get("finishOnKey", "#")
        if finish and finish in keys:
            keys = keys[: keys.index(finish)]
        limit = verb.get("numDigits")
        if limit and limit.isdigit():
            keys = keys[: int(limit)]
        return keys

    def record(self) -> tuple[dict[str, str], str]:
        """A voicemail: the typed words stand for the audio (an empty line: nothing)."""
        self.terminal.show(self.msg["beep"])
        words = self.ask("voicemail> ").strip()
        if not words:
            return {"RecordingDuration": "0"}, ""
        recording = "RE" + secrets.token_hex(16)
        return {
            "RecordingSid": recording,
            "RecordingUrl": (
                f"https://api.twilio.com/2010-04-01/Accounts/{self.account_sid}"
                f"/Recordings/{recording}"
            ),
            "RecordingDuration": str(max(1, len(words) // 4)),
            "Digits": "#",
        }, words

    def wait_in_queue(self, verb: ET.Element, url: str) -> None:
        """In the queue: what the wait URL says once, then the caller leaves."""
        self.terminal.show(self.msg["queued"])
        queue = "QU" + secrets.token_hex(16)
        wait_url = verb.get("waitUrl")
        if wait_url:
            hold = self.request(
                urljoin(url, wait_url),
                QueueSid=queue,
                QueuePosition="1",
                CurrentQueueSize="1",
                QueueTime="0",
                AvgQueueTime="0",
            )
            for heard in ET.fromstring(hold):  # noqa: S314 - TwiML the app itself wrote
                self.hear(heard)
        self.terminal.show(self.msg["queue_left"])
        action = verb.get("action")
        if action:
            self.request(
                urljoin(url, action),
                QueueSid=queue,
                QueueResult="hangup",
                QueueTime=self.seconds(),
            )

    def ask(self, prompt: str) -> str:
        try:
            line = self.terminal.ask(prompt)
        except KeyboardInterrupt:
            self.terminal.show("")
            raise HungUp(interrupted=True) from None
        if line is None:
            raise HungUp
        return line


# -------------------------------------------------------------------- the command


async def _database_problem(settings: Settings) -> str | None:
    """Why calls cannot be taken on this database, or None."""
    from sqlalchemy import select

    from contact.db import Database
    from contact.models import Department

    db = Database(settings.DATABASE_URL, pool_size=1)
    try:
        async with db.session() as s:
            department = await s.scalar(select(Department.id).limit(1))
    except Exception as exc:
        return (
            f"the database is not ready ({type(exc).__name__}); "
            "run `contact db upgrade` and `contact seed-demo`"
        )
    finally:
        await db.dispose()
    if department is None:
        return "no city is set up in the database yet; run `contact seed-demo`"
    return None


def simulate(
    settings: Settings,
    caller: str,
    lang: str | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> int:
    """Take one call from ``caller`` in the terminal; the exit status."""
    from fastapi.testclient import TestClient

    from contact.app import create_app
    from contact.schemas import normalize_phone

    lang = lang or settings.DEFAULT_LOCALE
    terminal = Terminal(stdin or sys.stdin, stdout or sys.stdout)
    problem = asyncio.run(_database_problem(settings))
    if problem:
        print(f"contact: {problem}", file=sys.stderr)
        return 2
    token = settings.TWILIO_AUTH_TOKEN or secrets.token_hex(16)
    if not settings.TWILIO_AUTH_TOKEN:  # signatures for this run only
        settings = settings.model_copy(update={"TWILIO_AUTH_TOKEN": token})
    try:
        normalize_phone(caller, settings.DEFAULT_REGION)
    except ValueError:
        terminal.show(MESSAGES.get(lang, MESSAGES["en"])["withheld"].format(number=caller))

    base = urlsplit(settings.PUBLIC_BASE_URL)
    origin = f"{base.scheme}://{base.netloc}"
    with TestClient(create_app(settings), base_url=origin) as client:

        def post(path: str, form: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
            r = client.post(path, data=form, headers=headers)
            return r.status_code, r.text

        call = Call(
            post=post,
            base_url=settings.PUBLIC_BASE_URL,
            token=token,
            caller=caller,
            to=settings.TWILIO_FROM_NUMBER or "12345",
            terminal=terminal,
            lang=lang,
        )
        try:
            return call.run()
        except CallDropped as exc:
            print(f"contact: the call dropped: {exc}", file=sys.stderr)
            with contextlib.suppress(CallDropped):
                call.hang_up()
            return 1
