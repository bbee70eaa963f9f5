"""Two concurrent moves on one ticket: exactly one wins (real transactions)."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from contact.app import build_runtime
from contact.errors import ContactError
from contact.lifecycle import Action, Actor
from contact.models import Department, TicketEvent, User
from contact.principal import Principal
from contact.schemas import ActionBody, TicketCreate
from contact.service import act, open_ticket
from contact.settings import Settings


async def race(settings: Settings, action: Action, hold: float) -> list[object]:
    rt = build_runtime(settings)
    try:
        async with rt.db.session() as s:
            agent_id = (
                await s.execute(select(User.id).where(User.username == "agent1"))
            ).scalar_one()
            agent = Principal(Actor.agent, "agent1", user_id=agent_id)
            t, _ = await open_ticket(
                rt, s, TicketCreate(description="解放路路灯不亮", service="street-light"), agent
            )
            t = await act(rt, s, agent, t.reference, Action.dispatch, ActionBody())
            await s.commit()
            dept_code = (
                await s.execute(select(Department.code).where(Department.id == t.department_id))
            ).scalar_one()
        cat = await rt.catalogue()
        clerk = Principal(
            Actor.department,
            f"{dept_code}-clerk",
            department=dept_code,
            scope=cat.subtree(dept_code),
            scope_ids=frozenset(cat.departments[c].id for c in cat.subtree(dept_code)),
        )
        body = ActionBody(reason="不属于本单位", reply="已处理")

        async def one() -> object:
            async with rt.db.session() as s:
                try:
                    await act(rt, s, clerk, t.reference, action, body)
                    await asyncio.sleep(hold)  # keep the transaction open while the other tries
                    await s.commit()
                    return "ok"
                except ContactError as exc:
                    await s.rollback()
                    return exc.http_status

        results: list[object] = list(await asyncio.gather(one(), one()))
        async with rt.db.session() as s:
            kinds = (
                await s.execute(select(TicketEvent.kind).where(TicketEvent.ticket_id == t.id))
            ).scalars()
            results.append(sorted(kinds))
        return results
    finally:
        await rt.db.dispose()


class TestConcurrentMoves:
    def test_two_clerks_accepting_at_once_one_gets_409(self, settings: Settings) -> None:
        first, second, events = asyncio.run(race(settings, Action.accept, hold=0.3))
        assert sorted(map(str, (first, second))) == ["409", "ok"]
        assert events == ["accepted", "created", "dispatched"]

    def test_two_returns_at_once_one_is_recorded(self, settings: Settings) -> None:
        first, second, events = asyncio.run(race(settings, Action.return_, hold=0.3))
        outcomes = sorted(map(str, (first, second)))
        # The loser either sees the changed state (409) or, on PostgreSQL, that the
        # ticket has left its department while it waited for the row lock (404).
        assert outcomes in (["409", "ok"], ["404", "ok"])
        assert events == ["created", "dispatched", "returned"]
