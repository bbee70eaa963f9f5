"""The one interpreter of IVR flows.

A call's progress is a :class:`CallState` (current node, language, retries, the
questions to go back to, variables, the path so far), kept by the caller of the
engine (the call record). Each turn takes the caller's input at the node that asked
and returns the verbs to play next (:class:`Turn`), which :mod:`ivr.twiml` writes as
TwiML. Whatever touches tickets goes through :class:`Effects`, so the webhooks, the
terminal simulator and the tests run the same engine.

Rules every node follows: ``*`` repeats the question, ``#`` goes back to the
previous question; silence or an invalid key re-prompts (with the node's ``invalid``
text where it has one) up to ``retries`` times and then goes to ``on_fail``. An input
for a node the call is no longer at (a retried or late webhook) changes nothing and
asks the current question again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from contact.reference import is_valid, normalize
from ivr.flow import Flow, Node

MAX_STEPS = 64  # nodes one turn may pass through (flows are checked for silent loops)
MAX_CHOICES = 9


# ------------------------------------------------------------------ what the caller hears


@dataclass(frozen=True)
class Say:
    text: str
    language: str  # a flow language (zh-CN, en)


@dataclass(frozen=True)
class Gather:
    node: str
    input: str  # dtmf | speech
    num_digits: int | None
    timeout: int
    language: str
    prompts: tuple[Say, ...]


@dataclass(frozen=True)
class Record:
    node: str
    max_seconds: int
    language: str


@dataclass(frozen=True)
class Enqueue:
    queue: str
    language: str


@dataclass(frozen=True)
class Hangup:
    pass


Verb = Say | Gather | Record | Enqueue | Hangup


@dataclass
class Turn:
    verbs: list[Verb] = field(default_factory=list)

    @property
    def waits_for(self) -> str | None:
        """The node whose input the next request carries (None: the call left the flow)."""
        last = self.verbs[-1] if self.verbs else None
        return last.node if isinstance(last, Gather | Record) else None


# ------------------------------------------------------------------ state


@dataclass
class CallState:
    caller: str  # E.164, "" when withheld
    language: str
    node: str = ""
    retries: int = 0
    back: list[str] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)
    path: list[str] = field(default_factory=list)
    ended: str | None = None  # completed | queued

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CallState:
        return cls(**data)


@dataclass(frozen=True)
class TicketView:
    reference: str
    phone: str | None
    status: str  # already in the caller's language
    last_step: str
    reply: str


class Effects(Protocol):
    async def find_ticket(self, reference: str, language: str) -> TicketView | None: ...

    async def open_ticket(self, state: CallState, *, callback: bool) -> str | None: ...

    async def choices(self, source: str, language: str) -> list[tuple[str, str]]: ...

    async def kb_answer(self, article: str, language: str) -> str: ...

    async def working_now(self) -> bool: ...

    async def prefer_voice(self, reference: str) -> bool: ...


class _Vars(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def spoken_digits(digits: str) -> str:
    return " ".join(digits)


# ------------------------------------------------------------------ the engine


class Engine:
    def __init__(self, flow: Flow, effects: Effects) -> None:
        self.flow = flow
        self.effects = effects

    def new_call(self, caller: str, language: str | None = None) -> CallState:
        lang = language if language in self.flow.languages else self.flow.default_language
        return CallState(caller=caller, language=lang or self.flow.default_language)

    async def start(self, state: CallState) -> Turn:
        turn = Turn()
        await self._go(state, self.flow.start, turn)
        return turn

    async def repeat(self, state: CallState) -> Turn:
        """The current question again (a retried webhook, a caller back from hold)."""
        turn = Turn()
        if state.ended:
            turn.verbs.append(Hangup())
        else:
            self._ask(state, self.flow.node(state.node), turn)
        return turn

    async def answer(
        self,
        state: CallState,
        node_name: str,
        *,
        digits: str | None = None,
        speech: str | None = None,
        recording: str | None = None,
    ) -> Turn:
        if state.ended or node_name != state.node:
            return await self.repeat(state)
        node = self.flow.node(state.node)
        turn = Turn()
        if node.type == "record":
            state.vars[node.store] = recording or ""
            await self._go(state, node.next or self.flow.on_fail, turn)
            return turn
        key = (digits or "").strip()
        if key == "*" and node.type != "speech":
            self._ask(state, node, turn)
            return turn
        if key == "#" and node.type != "speech":
            previous = state.back.pop() if state.back else node.name
            state.retries = 0
            await self._go(state, previous, turn, push=False)
            return turn
        target = await self._accept(state, node, key, (speech or "").strip())
        if target is not None:
            state.retries = 0
            await self._go(state, target, turn, came_from=node.name)
            return turn
        empty = not key and not (speech or "").strip()
        if empty and node.timeout_option is not None:
            if node.timeout_option.language:
                state.language = node.timeout_option.language
            await self._go(state, node.timeout_option.next, turn, came_from=node.name)
            return turn
        state.retries += 1
        if state.retries > node.retries:
            state.retries = 0
            await self._go(state, node.on_fail or self.flow.on_fail, turn)
            return turn
        if not empty and node.invalid:
            turn.verbs.append(Say(self._text(node.invalid, state), state.language))
        self._ask(state, node, turn)
        return turn

    # -------------------------------------------------------------- walking

    async def _go(
        self, state: CallState, name: str, turn: Turn, *, came_from: str = "", push: bool = True
    ) -> None:
        if came_from and push:
            state.back.append(came_from)
            del state.back[:-10]
        for _ in range(MAX_STEPS):
            node = self.flow.node(name)
            state.node = name
            state.path.append(name)
            del state.path[:-200]
            if node.type in ("say", "redirect"):
                if node.prompt:
                    turn.verbs.append(Say(self._text(node.prompt, state), state.language))
                name = node.next or self.flow.on_fail
                continue
            if node.type == "action":
                outcome = await self._act(node, state)
                name = node.outcomes.get(outcome) or self.flow.on_fail
                continue
            if node.type == "hangup":
                turn.verbs.append(Say(self._text(node.prompt, state), state.language))
                turn.verbs.append(Hangup())
                state.ended = "completed"
                return
            if node.type == "enqueue":
                turn.verbs.append(Enqueue(node.queue, state.language))
                state.ended = "queued"
                return
            if node.type == "choice":
                options = (await self.effects.choices(node.source or "", state.language))[
                    :MAX_CHOICES
                ]
                if not options:  # nothing to choose from: skip the question
                    name = node.next or self.flow.on_fail
                    continue
                state.vars[f"options:{node.name}"] = [[key, label] for key, label in options]
            state.retries = 0
            self._ask(state, node, turn)
            return
        raise RuntimeError(f"flow {self.flow.name}: more than {MAX_STEPS} steps without input")

    def _ask(self, state: CallState, node: Node, turn: Turn) -> None:
        if node.type == "record":
            turn.verbs.append(Record(node.name, node.max_seconds, state.language))
            return
        if node.bilingual:
            prompts = tuple(
                Say(self._text(node.prompt, state, lang), lang) for lang in self.flow.languages
            )
        else:
            prompts = (Say(self._text(node.prompt, state), state.language),)
        speech = node.type == "speech"
        turn.verbs.append(
            Gather(
                node=node.name,
                input="speech" if speech else "dtmf",
                num_digits=None if speech else (node.length if node.type == "digits" else 1),
                timeout=node.wait_seconds,
                language=state.language,
                prompts=prompts,
            )
        )

    async def _accept(self, state: CallState, node: Node, key: str, speech: str) -> str | None:
        """The next node for this input, or None if it is empty or invalid."""
        if node.type == "speech":
            if not speech:
                return None
            state.vars[node.store] = speech[:1000]
            return node.next
        if node.type == "menu":
            option = node.options.get(key)
            if option is None:
                return None
            if option.language:
                state.language = option.language
            return option.next
        if node.type == "choice":
            options = state.vars.get(f"options:{node.name}") or []
            if not key.isdigit() or not 1 <= int(key) <= len(options):
                return None
            state.vars[node.store] = options[int(key) - 1][0]
            return node.next
        if node.type == "digits":
            value = normalize(key)
            if len(value) != node.length or not value.isdigit():
                return None
            if node.check == "reference" and not is_valid(value):
                return None
            state.vars[node.store] = value
            return node.next
        return None

    # -------------------------------------------------------------- actions

    async def _act(self, node: Node, state: CallState) -> str:
        v = state.vars
        lang = state.language
        if node.action == "find_ticket":
            ticket = await self.effects.find_ticket(str(v.get("reference", "")), lang)
            if ticket is None:
                return "missing"
            v["reference_digits"] = spoken_digits(ticket.reference)
            if ticket.phone and state.caller and ticket.phone == state.caller:
                self._heard(v, ticket)
                return "own"
            return "other"
        if node.action == "verify_last4":
            ticket = await self.effects.find_ticket(str(v.get("reference", "")), lang)
            if ticket is not None and ticket.phone and ticket.phone[-4:] == v.get("last4"):
                self._heard(v, ticket)
                return "ok"
            return "mismatch"
        if node.action in ("open_ticket", "open_callback"):
            reference = await self.effects.open_ticket(
                state, callback=node.action == "open_callback"
            )
            if not reference:
                return "failed"
            v["ticket_reference"] = reference
            v["reference_digits"] = spoken_digits(reference)
            return "ok"
        if node.action == "agent_hours":
            return "open" if await self.effects.working_now() else "closed"
        if node.action == "prefer_voice":
            done = await self.effects.prefer_voice(str(v.get("ticket_reference", "")))
            return "ok" if done else "failed"
        if node.action == "kb_answer":
            v["answer"] = await self.effects.kb_answer(str(v.get("kb_article", "")), lang)
            return "ok"
        raise RuntimeError(f"unknown action {node.action}")  # the loader refuses these

    @staticmethod
    def _heard(v: dict[str, Any], ticket: TicketView) -> None:
        v["ticket_reference"] = ticket.reference
        v["status"] = ticket.status
        v["last_step"] = ticket.last_step
        v["reply"] = ticket.reply

    def _text(self, table: Any, state: CallState, language: str | None = None) -> str:
        lang = language or state.language
        template = table.get(lang) or table.get(self.flow.default_language) or ""
        values = _Vars(state.vars)
        values["choices"] = self._choices_text(state, lang)
        return str(template.format_map(values)).strip()

    def _choices_text(self, state: CallState, lang: str) -> str:
        options = state.vars.get(f"options:{state.node}") or []
        if lang == "zh-CN":
            return "；".join(f"{label}请按{n}" for n, (_, label) in enumerate(options, 1)) + "。"
        return " ".join(f"For {label}, press {n}." for n, (_, label) in enumerate(options, 1))
