"""The state machine table: what each role may do from each state."""

from __future__ import annotations

import pytest

from contact.errors import Forbidden, IllegalTransition
from contact.lifecycle import Action, Actor, allowed_actions, check
from contact.models import ExtensionState, TicketKind, TicketStatus

S = TicketStatus


class TestTransitions:
    @pytest.mark.parametrize(
        ("status", "action", "actor", "to"),
        [
            (S.received, Action.dispatch, Actor.agent, S.dispatched),
            (S.dispatched, Action.accept, Actor.department, S.accepted),
            (S.dispatched, Action.return_, Actor.department, S.returned),
            (S.returned, Action.dispatch, Actor.agent, S.dispatched),
            (S.accepted, Action.resolve, Actor.department, S.resolved),
            (S.resolved, Action.reopen, Actor.citizen, S.reopened),
            (S.reopened, Action.dispatch, Actor.system, S.dispatched),
            (S.resolved, Action.close, Actor.citizen, S.closed),
            (S.received, Action.merge, Actor.agent, S.merged),
            (S.merged, Action.close, Actor.system, S.closed),
        ],
    )
    def test_the_closed_loop(self, status, action, actor, to) -> None:  # type: ignore[no-untyped-def]
        assert check(status, action, actor, kind=TicketKind.complaint).to == to

    def test_agent_answers_an_inquiry_at_once(self) -> None:
        assert (
            check(S.received, Action.resolve, Actor.agent, kind=TicketKind.inquiry).to == S.resolved
        )

    def test_a_complaint_cannot_be_resolved_at_intake(self) -> None:
        with pytest.raises(IllegalTransition):
            check(S.received, Action.resolve, Actor.agent, kind=TicketKind.complaint)

    def test_illegal_move_names_state_and_allowed_moves(self) -> None:
        with pytest.raises(IllegalTransition) as err:
            check(S.closed, Action.accept, Actor.department)
        assert err.value.http_status == 409
        assert err.value.data["status"] == "closed"
        assert err.value.data["allowed"] == allowed_actions(S.closed, Actor.department)

    def test_a_department_cannot_dispatch(self) -> None:
        with pytest.raises(Forbidden):
            check(S.received, Action.dispatch, Actor.department)

    def test_only_supervisors_reassign_an_accepted_ticket(self) -> None:
        assert check(S.accepted, Action.dispatch, Actor.supervisor).to == S.dispatched
        with pytest.raises(Forbidden):
            check(S.accepted, Action.dispatch, Actor.agent)

    def test_extensions_are_requested_once_and_decided_by_supervisors(self) -> None:
        check(S.accepted, Action.request_extension, Actor.department)
        with pytest.raises(IllegalTransition):
            check(
                S.accepted,
                Action.request_extension,
                Actor.department,
                extension=ExtensionState.requested,
            )
        with pytest.raises(IllegalTransition):
            check(S.accepted, Action.grant_extension, Actor.supervisor)
        grant = check(
            S.accepted, Action.grant_extension, Actor.supervisor, extension=ExtensionState.requested
        )
        assert grant.to is None
        with pytest.raises(Forbidden):
            check(
                S.accepted, Action.grant_extension, Actor.agent, extension=ExtensionState.requested
            )

    def test_urge_is_an_event_not_a_state(self) -> None:
        assert check(S.accepted, Action.urge, Actor.supervisor).to is None
        with pytest.raises(Forbidden):
            check(S.accepted, Action.urge, Actor.agent)

    def test_return_needs_a_reason(self) -> None:
        assert "reason" in check(S.dispatched, Action.return_, Actor.department).needs

    def test_nothing_leaves_closed_but_reopen_and_notes(self) -> None:
        assert allowed_actions(S.closed) == ["note", "reopen"]
