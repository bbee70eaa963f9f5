"""The engine's verbs written as TwiML (twilio's ``VoiceResponse``).

Prompts nest inside ``<Gather>``; every action URL is absolute under
``PUBLIC_BASE_URL`` and carries only the node's name (no personal data in URLs).
Gather reports silence too (``actionOnEmptyResult``), so the engine decides about
re-prompts; a ``<Redirect>`` to the same action follows in case it does not.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from twilio.twiml.voice_response import VoiceResponse

from ivr.engine import Enqueue, Gather, Hangup, Record, Say, Turn, Verb
from ivr.flow import Flow

BASE = "/ivr/twilio"


class Urls:
    def __init__(self, public_base_url: str) -> None:
        self.public = public_base_url.rstrip("/")
        self.base = self.public + BASE

    def __call__(self, path: str, **query: str | int) -> str:
        return f"{self.base}/{path}" + (f"?{urlencode(query)}" if query else "")


def _say(resp: Any, flow: Flow, say: Say) -> None:
    kwargs = {"language": flow.say_language.get(say.language, say.language)}
    voice = flow.voice.get(say.language)
    if voice:
        kwargs["voice"] = voice
    resp.say(say.text, **kwargs)


def render(turn: Turn, flow: Flow, urls: Urls) -> str:
    return _render(tuple(turn.verbs), flow, urls.public)


@lru_cache(maxsize=2048)  # the same questions are asked all day long
def _render(verbs: tuple[Verb, ...], flow: Flow, public_base_url: str) -> str:
    urls = Urls(public_base_url)
    resp = VoiceResponse()
    for verb in verbs:
        if isinstance(verb, Say):
            _say(resp, flow, verb)
        elif isinstance(verb, Gather):
            action = urls("gather", node=verb.node)
            options: dict[str, object] = {
                "input": verb.input,
                "action": action,
                "method": "POST",
                "timeout": verb.timeout,
                "action_on_empty_result": True,
            }
            if verb.input == "speech":
                options["language"] = flow.speech_language.get(verb.language, verb.language)
                options["speech_timeout"] = "auto"
            else:
                options["num_digits"] = verb.num_digits
                options["finish_on_key"] = ""  # * and # are keys the flow reads
            gather = resp.gather(**options)
            for prompt in verb.prompts:
                _say(gather, flow, prompt)
            resp.redirect(action, method="POST")
        elif isinstance(verb, Record):
            resp.record(
                action=urls("record", node=verb.node),
                method="POST",
                max_length=verb.max_seconds,
                finish_on_key="#",
                play_beep=True,
                transcribe=verb.language == "en",  # Twilio transcribes English only
                transcribe_callback=urls("transcription"),
            )
        elif isinstance(verb, Enqueue):
            resp.enqueue(
                verb.queue,
                wait_url=urls("wait", lang=verb.language),
                wait_url_method="POST",
                action=urls("queue-exit"),
                method="POST",
            )
        elif isinstance(verb, Hangup):
            resp.hangup()
    return str(resp)
