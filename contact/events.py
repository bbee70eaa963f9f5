"""Real-time events (SPEC §7): closed models, references and ids only, no personal data."""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

EventType = Literal[
    "ticket.created",
    "ticket.updated",
    "ticket.assigned",
    "sla.due_soon",
    "sla.overdue",
    "call.incoming",
    "call.connected",
    "call.ended",
    "kiosk.heartbeat",
    "kiosk.offline",
    "hotspot.detected",
]
EVENT_TYPES: tuple[str, ...] = EventType.__args__  # type: ignore[attr-defined]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TicketCreated(_Event):
    type: Literal["ticket.created"] = "ticket.created"
    reference: str
    ticket_id: int
    status: str
    channel: str
    service: str | None
    department: str | None


class TicketUpdated(_Event):
    type: Literal["ticket.updated"] = "ticket.updated"
    reference: str
    ticket_id: int
    kind: str  # the TicketEvent kind: accepted, returned, resolved, urged, ...
    status: str
    department: str | None
    event_id: int | None = None


class TicketAssigned(_Event):
    type: Literal["ticket.assigned"] = "ticket.assigned"
    reference: str
    ticket_id: int
    department: str
    previous_department: str | None = None


class SlaEvent(_Event):
    type: Literal["sla.due_soon", "sla.overdue"]
    reference: str
    ticket_id: int
    department: str | None
    deadline: Literal["accept", "resolve"]
    due_at: str


class CallEvent(_Event):
    """A call entered the agents' queue, was connected to an agent, or ended."""

    type: Literal["call.incoming", "call.connected", "call.ended"]
    call_id: int
    citizen_id: int | None  # the console looks up the caller's history by it
    ticket_id: int | None
    queue: str | None
    agent_id: int | None
    status: str | None = None


class KioskEvent(_Event):
    """``kiosk.heartbeat`` / ``kiosk.offline``: the kiosk and what the wallboard shows of
    it (no token, no address, nothing a citizen typed)."""

    type: Literal["kiosk.heartbeat", "kiosk.offline"]
    kiosk_id: int
    name: str
    online: bool
    paper: str | None = None
    printer_online: bool | None = None
    queue: int | None = None
    last_seen_at: str | None = None


class HotspotFacts(BaseModel):
    """One hot spot: a service in a district, the department to act on it, and how
    improbable the day's count is (counts and catalogue names only, no ticket)."""

    service: str
    service_name_zh: str
    service_name_en: str
    district: str
    district_name_zh: str
    district_name_en: str
    department: str  # the department that owns the service there (it can act)
    count: int
    expected: float  # the mean tested against
    p_value: float


class HotspotEvent(_Event, HotspotFacts):
    """``hotspot.detected``: today's count of one service in one district is improbably
    high against its trailing baseline."""

    type: Literal["hotspot.detected"] = "hotspot.detected"
    day: str  # the local day, YYYY-MM-DD
    baseline_mean: float


class BusMessage(BaseModel):
    """What a websocket subscriber receives."""

    id: int
    type: str
    payload: dict[str, Any]
    department: str | None = None
    supervisors_only: bool = False
    created_at: str

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "created_at": self.created_at, **self.payload}

    @cached_property
    def wire_text(self) -> str:
        """The message as sent: encoded once, however many consoles receive it."""
        return json.dumps(self.wire(), ensure_ascii=False, separators=(",", ":"))


AnyEvent = (
    TicketCreated
    | TicketUpdated
    | TicketAssigned
    | SlaEvent
    | CallEvent
    | KioskEvent
    | HotspotEvent
)
