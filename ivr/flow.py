"""IVR flows as data: ``ivr/flows/*.yaml``, checked when loaded.

A flow is a set of named nodes; the engine (:mod:`ivr.engine`) walks them. Node types:

``say``      speak ``prompt`` and go on to ``next``
``menu``     speak ``prompt``, read one key; ``options`` maps keys to nodes (an option
             may also set the call's ``language``); ``timeout`` (optional) is where
             silence goes instead of a re-prompt
``digits``   read ``length`` digits (``check: reference`` tests the check digit)
``choice``   a menu whose options come from data (``source``: service groups, the
             knowledge base's top answers), listed in ``{choices}``
``speech``   read speech in the call's language
``record``   record a voicemail (``max_seconds``), transcribed where the provider can
``action``   run a named action; its outcome picks the next node from ``outcomes``
``enqueue``  put the caller in the agents' queue
``redirect`` go to ``next`` (a named jump)
``hangup``   speak ``prompt`` and end the call

Every input node re-prompts ``retries`` times (flow default 2) on silence or an
invalid key and then goes to ``on_fail``; ``*`` repeats a node, ``#`` goes back to
the previous question. Prompts are given per language and may use ``{names}`` the
engine fills in (``{choices}``, ``{reference_digits}``, ...).

Errors on load name the flow, the node and what is wrong: an unknown node type or
target, a node no path reaches, a prompt missing for a language, a missing field.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

FLOWS_DIR = Path(__file__).parent / "flows"
NODE_TYPES = frozenset(
    {"say", "menu", "digits", "choice", "speech", "record", "action", "enqueue", "redirect"}
    | {"hangup"}
)
INPUT_TYPES = frozenset({"menu", "digits", "choice", "speech"})
ACTIONS = frozenset(
    {"find_ticket", "verify_last4", "open_ticket", "agent_hours", "open_callback", "kb_answer"}
    | {"prefer_voice"}
)
SOURCES = frozenset({"service_groups", "kb_top"})
CHECKS = frozenset({"reference"})
KEYS = frozenset("0123456789")
DEFAULT_RETRIES = 2


class FlowError(ValueError):
    """A flow file that cannot run: the message names the flow, the node and the fault."""


@dataclass(frozen=True)
class Option:
    next: str
    language: str | None = None


@dataclass(frozen=True)
class Node:
    name: str
    type: str
    prompt: Mapping[str, str] = field(default_factory=dict)
    next: str | None = None
    options: Mapping[str, Option] = field(default_factory=dict)
    timeout_option: Option | None = None
    outcomes: Mapping[str, str] = field(default_factory=dict)
    action: str | None = None
    source: str | None = None
    length: int = 1
    check: str | None = None
    invalid: Mapping[str, str] = field(default_factory=dict)
    retries: int = DEFAULT_RETRIES
    on_fail: str | None = None
    wait_seconds: int = 6
    max_seconds: int = 120
    queue: str = "hotline"
    bilingual: bool = False  # speak every language's prompt (the language menu)
    store: str = ""  # the call variable an input is kept in (default: the node's name)

    @property
    def takes_input(self) -> bool:
        return self.type in INPUT_TYPES

    def targets(self) -> Iterator[tuple[str, str]]:
        """(what points, node name) for every node this one can go to."""
        if self.next:
            yield "next", self.next
        for key, opt in self.options.items():
            yield f"option '{key}'", opt.next
        if self.timeout_option:
            yield "timeout", self.timeout_option.next
        for outcome, target in self.outcomes.items():
            yield f"outcome '{outcome}'", target
        if self.on_fail:
            yield "on_fail", self.on_fail


@dataclass(frozen=True, eq=False)  # one object per loaded flow: compared by identity
class Flow:
    name: str
    start: str
    languages: tuple[str, ...]
    default_language: str
    nodes: Mapping[str, Node]
    say_language: Mapping[str, str]  # the Say/Gather language tag per flow language
    speech_language: Mapping[str, str]  # the speech recognition tag (zh-CN / cmn-Hans-CN)
    voice: Mapping[str, str]
    on_fail: str

    def node(self, name: str) -> Node:
        return self.nodes[name]


def _need(raw: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in raw or raw[key] in (None, ""):
        raise FlowError(f"{where}: '{key}' is required")
    return raw[key]


def _texts(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        raise FlowError(f"{where}: prompts are given per language, e.g. {{zh-CN: ..., en: ...}}")
    return {str(k): v for k, v in value.items()}


def _option(value: Any, where: str) -> Option:
    if isinstance(value, str):
        return Option(value)
    if isinstance(value, Mapping):
        return Option(str(_need(value, "next", where)), value.get("language"))
    raise FlowError(f"{where}: an option is a node name or {{next: ..., language: ...}}")


def _node(name: str, raw: Any, where: str, default_retries: int) -> Node:
    if not isinstance(raw, Mapping):
        raise FlowError(f"{where}: a node is a mapping with a 'type'")
    kind = str(_need(raw, "type", where))
    if kind not in NODE_TYPES:
        raise FlowError(f"{where}: unknown node type '{kind}' (one of {sorted(NODE_TYPES)})")
    options_raw = raw.get("options") or {}
    if not isinstance(options_raw, Mapping):
        raise FlowError(f"{where}: 'options' maps keys to nodes")
    options = {}
    for key, value in options_raw.items():
        key = str(key)
        if key not in KEYS:
            raise FlowError(f"{where}: option key '{key}' is not a keypad digit (* and # are kept)")
        options[key] = _option(value, f"{where}, option '{key}'")
    node = Node(
        name=name,
        type=kind,
        prompt=_texts(raw.get("prompt"), where),
        next=raw.get("next"),
        options=options,
        timeout_option=_option(raw["timeout"], f"{where}, timeout") if raw.get("timeout") else None,
        outcomes={str(k): str(v) for k, v in (raw.get("outcomes") or {}).items()},
        action=raw.get("action"),
        source=raw.get("source"),
        length=int(raw.get("length", 1)),
        check=raw.get("check"),
        invalid=_texts(raw.get("invalid"), where),
        retries=int(raw.get("retries", default_retries)),
        on_fail=raw.get("on_fail"),
        wait_seconds=int(raw.get("wait_seconds", 6)),
        max_seconds=int(raw.get("max_seconds", 120)),
        queue=str(raw.get("queue", "hotline")),
        bilingual=bool(raw.get("bilingual", False)),
        store=str(raw.get("store") or name),
    )
    _check_shape(node, where)
    return node


def _check_shape(node: Node, where: str) -> None:
    if node.type in {"say", "redirect", "digits", "speech", "record", "choice"} and not node.next:
        raise FlowError(f"{where}: a {node.type} node needs 'next'")
    if node.type == "menu" and not node.options:
        raise FlowError(f"{where}: a menu needs 'options'")
    if node.type == "action":
        if node.action not in ACTIONS:
            raise FlowError(f"{where}: unknown action '{node.action}' (one of {sorted(ACTIONS)})")
        if not node.outcomes:
            raise FlowError(f"{where}: an action needs 'outcomes'")
    if node.type == "choice" and node.source not in SOURCES:
        raise FlowError(f"{where}: unknown source '{node.source}' (one of {sorted(SOURCES)})")
    if node.type == "digits" and not 1 <= node.length <= 20:
        raise FlowError(f"{where}: 'length' must be 1-20")
    if node.check is not None and node.check not in CHECKS:
        raise FlowError(f"{where}: unknown check '{node.check}' (one of {sorted(CHECKS)})")
    if not 0 <= node.retries <= 5:
        raise FlowError(f"{where}: 'retries' must be 0-5")
    if node.type in {"say", "menu", "digits", "choice", "speech", "hangup"} and not node.prompt:
        raise FlowError(f"{where}: a {node.type} node needs a 'prompt'")


def parse_flow(raw: Any, name: str = "flow") -> Flow:
    if not isinstance(raw, Mapping):
        raise FlowError(f"flow {name}: the file must hold a mapping")
    name = str(raw.get("name") or name)
    where = f"flow {name}"
    languages = tuple(str(x) for x in _need(raw, "languages", where))
    default_language = str(raw.get("default_language") or languages[0])
    if default_language not in languages:
        raise FlowError(f"{where}: default_language '{default_language}' is not in languages")
    nodes_raw = _need(raw, "nodes", where)
    if not isinstance(nodes_raw, Mapping):
        raise FlowError(f"{where}: 'nodes' maps names to nodes")
    retries = int(raw.get("retries", DEFAULT_RETRIES))
    nodes = {
        str(n): _node(str(n), body, f"{where}, node '{n}'", retries)
        for n, body in nodes_raw.items()
    }
    flow = Flow(
        name=name,
        start=str(_need(raw, "start", where)),
        languages=languages,
        default_language=default_language,
        nodes=nodes,
        say_language=_texts(raw.get("say_language"), where) or {x: x for x in languages},
        speech_language=_texts(raw.get("speech_language"), where) or {x: x for x in languages},
        voice=_texts(raw.get("voice"), where),
        on_fail=str(_need(raw, "on_fail", where)),
    )
    _check_graph(flow)
    return flow


def _check_graph(flow: Flow) -> None:
    where = f"flow {flow.name}"
    for target, label in ((flow.start, "start"), (flow.on_fail, "on_fail")):
        if target not in flow.nodes:
            raise FlowError(f"{where}: {label} names unknown node '{target}'")
    for lang in flow.languages:
        for table, label in ((flow.say_language, "say_language"), (flow.speech_language, "")):
            if lang not in table:
                raise FlowError(f"{where}: {label or 'speech_language'} has nothing for '{lang}'")
    for node in flow.nodes.values():
        for what, target in node.targets():
            if target not in flow.nodes:
                raise FlowError(
                    f"{where}, node '{node.name}': {what} goes to unknown node '{target}'"
                )
        for key, opt in node.options.items():
            if opt.language and opt.language not in flow.languages:
                raise FlowError(
                    f"{where}, node '{node.name}': option '{key}' sets unknown language "
                    f"'{opt.language}'"
                )
        for table, label in ((node.prompt, "prompt"), (node.invalid, "invalid")):
            if table:
                missing = [lang for lang in flow.languages if lang not in table]
                if missing:
                    raise FlowError(
                        f"{where}, node '{node.name}': {label} missing for {', '.join(missing)}"
                    )
    seen, stack = set(), [flow.start, flow.on_fail]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        stack.extend(target for _, target in flow.nodes[name].targets())
    unreachable = sorted(set(flow.nodes) - seen)
    if unreachable:
        raise FlowError(f"{where}: no path reaches node(s) {', '.join(unreachable)}")
    _check_no_silent_loop(flow)


def _check_no_silent_loop(flow: Flow) -> None:
    """A loop of nodes that never waits for the caller would never answer Twilio."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(name: str, trail: list[str]) -> None:
        node = flow.nodes[name]
        if node.takes_input or node.type in {"record", "enqueue", "hangup"}:
            return
        if state.get(name) == 1:
            loop = " -> ".join([*trail[trail.index(name) :], name])
            raise FlowError(f"flow {flow.name}: nodes loop without waiting for input: {loop}")
        if state.get(name) == 2:
            return
        state[name] = 1
        for _, target in node.targets():
            visit(target, [*trail, name])
        state[name] = 2

    for name in flow.nodes:
        visit(name, [])


def load_flow(path: Path | str) -> Flow:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise FlowError(f"flow {path.name}: not valid YAML: {exc}") from None
    return parse_flow(raw, path.stem)


def load_flows(directory: Path = FLOWS_DIR) -> dict[str, Flow]:
    return {f.name: f for f in (load_flow(p) for p in sorted(directory.glob("*.yaml")))}
