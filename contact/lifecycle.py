"""The ticket state machine: one table of allowed moves, one ``check()``.

Everything that changes a ticket's status goes through :func:`check`; no other
module branches on the status to decide what is allowed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from contact.errors import Forbidden, IllegalTransition
from contact.models import ExtensionState, Role, TicketKind, TicketStatus

S = TicketStatus


class Action(enum.StrEnum):
    dispatch = "dispatch"
    accept = "accept"
    return_ = "return"
    request_extension = "request-extension"
    grant_extension = "grant-extension"
    deny_extension = "deny-extension"
    resolve = "resolve"
    reopen = "reopen"
    close = "close"
    urge = "urge"
    escalate = "escalate"
    deny_return = "deny-return"
    merge = "merge"
    note = "note"


class Actor(enum.StrEnum):
    """Who acts: the staff roles, plus the citizen (by SMS, track page) and the system (jobs)."""

    agent = "agent"
    department = "department"
    supervisor = "supervisor"
    admin = "admin"
    citizen = "citizen"
    system = "system"


A = Actor
STAFF = frozenset({A.agent, A.supervisor, A.admin})
SUPERVISING = frozenset({A.supervisor, A.admin})
DEPT = frozenset({A.department})
OPEN_FOR_DEPT = (S.dispatched, S.accepted)


@dataclass(frozen=True)
class Move:
    to: TicketStatus | None  # None: the status stays (urge, note, extensions)
    actors: frozenset[Actor]
    needs: tuple[str, ...] = ()  # body fields the action requires
    event: str = ""  # TicketEvent.kind; defaults to the action's name


# (status, action) → move.  The whole life of a ticket, in one place.
TRANSITIONS: dict[tuple[TicketStatus, Action], Move] = {}


def _allow(
    froms: tuple[TicketStatus, ...],
    action: Action,
    to: TicketStatus | None,
    actors: frozenset[Actor],
    needs: tuple[str, ...] = (),
    event: str = "",
) -> None:
    for status in froms:
        TRANSITIONS[(status, action)] = Move(
            to, actors, needs, event or action.value.replace("-", "_")
        )


_allow(
    (S.received, S.returned, S.reopened),
    Action.dispatch,
    S.dispatched,
    STAFF | {A.system},
    event="dispatched",
)
# Reassigning a ticket a department already holds is a supervisor's call.
_allow((S.dispatched, S.accepted), Action.dispatch, S.dispatched, SUPERVISING, event="dispatched")
_allow((S.dispatched,), Action.accept, S.accepted, DEPT, event="accepted")
_allow(OPEN_FOR_DEPT, Action.return_, S.returned, DEPT, ("reason",), "returned")
_allow(
    (S.accepted,), Action.request_extension, None, DEPT, ("reason", "until"), "extension_requested"
)
_allow((S.accepted,), Action.grant_extension, None, SUPERVISING, (), "extension_granted")
_allow((S.accepted,), Action.deny_extension, None, SUPERVISING, ("reason",), "extension_denied")
_allow((S.accepted,), Action.resolve, S.resolved, DEPT | SUPERVISING, ("reply",), "resolved")
# An inquiry answered at once by the agent (直接办结).
_allow((S.received,), Action.resolve, S.resolved, STAFF, ("reply",), "resolved")
_allow(
    (S.resolved, S.closed), Action.reopen, S.reopened, STAFF | {A.citizen}, ("reason",), "reopened"
)
_allow((S.resolved, S.merged), Action.close, S.closed, STAFF | {A.system, A.citizen}, (), "closed")
# Not accepted (不予受理): closed at intake, with the reason.
_allow((S.received, S.returned), Action.close, S.closed, STAFF, ("reason",), "closed")
_allow(
    (S.received, S.dispatched, S.accepted, S.returned, S.reopened),
    Action.merge,
    S.merged,
    STAFF,
    ("into",),
    "merged",
)
_allow(
    (S.dispatched, S.accepted, S.reopened), Action.urge, None, SUPERVISING | {A.system}, (), "urged"
)
# Escalation (提级督办): urgent priority, the department and the bureau above it told.
_allow((S.dispatched, S.accepted), Action.escalate, None, SUPERVISING, ("reason",), "escalated")
# A return the contact centre does not accept (退单不予认可) goes back to that department.
_allow((S.returned,), Action.deny_return, S.dispatched, SUPERVISING, ("reason",), "return_denied")
_allow(tuple(S), Action.note, None, STAFF | DEPT, ("text",), "note")


def actor_for(role: Role) -> Actor:
    return Actor(role.value)


def allowed_actions(status: TicketStatus, actor: Actor | None = None) -> list[str]:
    return sorted(
        a.value
        for (s, a), move in TRANSITIONS.items()
        if s == status and (actor is None or actor in move.actors)
    )


def check(
    status: TicketStatus,
    action: Action,
    actor: Actor,
    *,
    kind: TicketKind | None = None,
    extension: ExtensionState = ExtensionState.none,
) -> Move:
    """The move for ``action`` from ``status`` by ``actor``, or a typed error.

    IllegalTransition (409) carries the current status and the moves allowed now;
    Forbidden (403) says the state allows it but not for this role.
    """
    move = TRANSITIONS.get((status, action))
    if move is None or not _guard(status, action, kind, extension):
        raise IllegalTransition(
            f"cannot {action.value} a ticket that is {status.value}",
            status=status.value,
            allowed=allowed_actions(status, actor),
        )
    if actor not in move.actors:
        raise Forbidden(f"role {actor.value} may not {action.value} this ticket")
    return move


def _guard(
    status: TicketStatus, action: Action, kind: TicketKind | None, extension: ExtensionState
) -> bool:
    """Conditions beyond the status: the few rules the table alone cannot say."""
    if action == Action.resolve and status == S.received:
        return kind == TicketKind.inquiry
    if action == Action.request_extension:
        return extension != ExtensionState.requested
    if action in (Action.grant_extension, Action.deny_extension):
        return extension == ExtensionState.requested
    return True


# States in which a department is working on it (its deadlines run).
OPEN_STATES = frozenset({S.received, S.dispatched, S.accepted, S.returned, S.reopened})
FINAL_STATES = frozenset({S.closed, S.merged})


# What a citizen hears or reads for each status (SMS status replies, the IVR).
STATUS_NAMES = {
    "zh-CN": {
        "received": "已受理",
        "dispatched": "已派单",
        "accepted": "办理中",
        "returned": "重新派单中",
        "resolved": "已办结",
        "reopened": "重新办理中",
        "closed": "已归档",
        "merged": "已合并办理",
    },
    "en": {
        "received": "received",
        "dispatched": "sent to the department",
        "accepted": "being handled",
        "returned": "being re-assigned",
        "resolved": "resolved",
        "reopened": "being handled again",
        "closed": "closed",
        "merged": "handled together with another request",
    },
}
