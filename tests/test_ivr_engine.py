"""The flow engine and the flow loader on their own."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from contact.app import build_runtime
from contact.models import Call, Direction
from contact.settings import Settings
from ivr.effects import CoreEffects
from ivr.engine import Engine, Enqueue, Gather, Hangup, Record, Turn
from ivr.flow import FLOWS_DIR, FlowError, parse_flow

SEQUENCES = 10_000
KEYS = [*"0123456789", "*", "#", ""]


def _demo() -> dict[str, Any]:
    return dict(yaml.safe_load((FLOWS_DIR / "demo.yaml").read_text(encoding="utf-8")))


class TestLoader:
    def test_the_demo_flow_loads(self) -> None:
        flow = parse_flow(_demo())
        assert flow.start == "welcome" and set(flow.languages) == {"zh-CN", "en"}

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            (lambda f: f["nodes"]["main"]["options"].update({"4": "nowhere"}), "unknown node"),
            (
                lambda f: f["nodes"].update(
                    {"lonely": {"type": "say", "prompt": {"zh-CN": "a", "en": "b"}, "next": "main"}}
                ),
                "no path reaches node(s) lonely",
            ),
            (lambda f: f["nodes"]["goodbye"]["prompt"].pop("en"), "prompt missing for en"),
            (lambda f: f["nodes"]["main"].update({"type": "dance"}), "unknown node type 'dance'"),
            (lambda f: f["nodes"]["agent"].update({"action": "teleport"}), "unknown action"),
            (lambda f: f.update({"start": "nope"}), "start names unknown node 'nope'"),
            (
                lambda f: (
                    f["nodes"].update(
                        {
                            "a": {"type": "say", "prompt": {"zh-CN": "a", "en": "a"}, "next": "b"},
                            "b": {"type": "redirect", "next": "a"},
                        }
                    ),
                    f["nodes"]["main"]["options"].update({"4": "a"}),
                ),
                "loop without waiting for input: a -> b -> a",
            ),
            (lambda f: f["nodes"]["main"]["options"].update({"*": "main"}), "not a keypad digit"),
        ],
    )
    def test_a_broken_flow_is_refused_naming_the_fault(self, change: Any, message: str) -> None:
        raw = _demo()
        change(raw)
        with pytest.raises(FlowError, match=message.replace("(", r"\(").replace(")", r"\)")):
            parse_flow(raw)

    def test_every_flow_file_shipped_loads(self) -> None:
        from ivr.flow import load_flows

        assert "demo" in load_flows(Path(FLOWS_DIR))


async def _fuzz(settings: Settings, sequences: int, seed: int) -> dict[str, int]:
    rt = build_runtime(settings)
    ends: dict[str, int] = {}
    rng = random.Random(seed)
    try:
        await rt.warm()
        async with rt.db.session() as session:
            for n in range(sequences):
                caller = rng.choice(["+8613800138000", "+8613911112222", ""])
                call = Call(provider="test", call_sid=f"FUZZ{n}", direction=Direction.inbound)
                engine = Engine(_flow(), CoreEffects(rt, session, call))
                state = engine.new_call(caller)
                turn = await engine.start(state)
                presses = [_random_input(rng) for _ in range(rng.randrange(0, 16))]
                for kind, value in presses + [("silence", "")] * 40:
                    if state.ended:
                        break
                    node = turn.waits_for
                    assert node is not None and node == state.node, (turn, state)
                    turn = await _feed(engine, state, node, turn, kind, value)
                _assert_ended(state, turn)
                ends[state.ended or "?"] = ends.get(state.ended or "?", 0) + 1
            await session.rollback()
    finally:
        await rt.db.dispose()
    return ends


def _flow() -> Any:
    from ivr.routes import flows

    return flows()["demo"]


def _random_input(rng: random.Random) -> tuple[str, str]:
    r = rng.random()
    if r < 0.7:
        return "key", rng.choice(KEYS)
    if r < 0.8:
        return "key", "".join(rng.choice("0123456789") for _ in range(rng.choice([4, 14])))
    if r < 0.9:
        return "speech", rng.choice(["路灯不亮", "garbage not collected", ""])
    return "recording", rng.choice(["https://api.twilio.com/x/Recordings/RE1", ""])


async def _feed(engine: Engine, state: Any, node: str, turn: Turn, kind: str, value: str) -> Turn:
    last = turn.verbs[-1]
    if isinstance(last, Record):
        return await engine.answer(state, node, recording=value if kind == "recording" else "")
    assert isinstance(last, Gather)
    if last.input == "speech":
        return await engine.answer(state, node, speech=value if kind == "speech" else "")
    return await engine.answer(state, node, digits=value if kind == "key" else "")


def _assert_ended(state: Any, turn: Turn) -> None:
    assert state.ended in ("completed", "queued"), f"call left at {state.node}: {state.path[-8:]}"
    last = turn.verbs[-1]
    assert isinstance(last, Hangup | Enqueue)


@pytest.mark.parametrize("hours", ["always", "never"])
def test_ten_thousand_random_calls_all_end_in_a_defined_state(
    settings: Settings, backend: str, hours: str
) -> None:
    # A fifth of the sequences on PostgreSQL (same engine; the database is slower per step).
    sequences = SEQUENCES // 2 if backend == "sqlite" else SEQUENCES // 10
    ends = asyncio.run(
        _fuzz(settings.model_copy(update={"AGENT_HOURS": hours}), sequences, seed=len(hours))
    )
    assert sum(ends.values()) == sequences
    assert set(ends) <= {"completed", "queued"}
    if hours == "never":
        assert "queued" not in ends
