"""The scheduled deadline job: due-soon and overdue marked once, events out, department told."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select, update

from contact import tasks
from contact.app import build_runtime
from contact.lifecycle import Action, Actor
from contact.models import BusEvent, SlaState, Ticket, TicketEvent, User, utcnow
from contact.principal import Principal
from contact.schemas import ActionBody, TicketCreate
from contact.service import act, open_ticket
from contact.settings import Settings


async def scenario(settings: Settings) -> dict[str, object]:
    rt = build_runtime(settings)
    try:
        async with rt.db.session() as s:
            uid = (await s.execute(select(User.id).where(User.username == "agent1"))).scalar_one()
            agent = Principal(Actor.agent, "agent1", user_id=uid)
            refs = []
            for text in ("解放路路灯不亮", "人民路路灯闪烁", "滨江路路灯白天亮"):
                t, _ = await open_ticket(
                    rt, s, TicketCreate(description=text, service="street-light"), agent
                )
                t = await act(rt, s, agent, t.reference, Action.dispatch, ActionBody())
                refs.append(t.reference)
            await s.commit()
            now = utcnow()
            # One long past its accept-by time, one near it, one with plenty of time left.
            await s.execute(
                update(Ticket)
                .where(Ticket.reference == refs[0])
                .values(
                    dispatched_at=now - timedelta(hours=5), accept_due_at=now - timedelta(hours=1)
                )
            )
            await s.execute(
                update(Ticket)
                .where(Ticket.reference == refs[1])
                .values(
                    dispatched_at=now - timedelta(hours=4), accept_due_at=now + timedelta(minutes=5)
                )
            )
            await s.commit()
        first = await tasks.sla_scan_async(rt)
        second = await tasks.sla_scan_async(rt)
        async with rt.db.session() as s:
            states = {t.reference: t.sla_state for t in (await s.execute(select(Ticket))).scalars()}
            bus = [
                (b.type, b.department_code) for b in (await s.execute(select(BusEvent))).scalars()
            ]
            events = [
                e.kind
                for e in (await s.execute(select(TicketEvent).order_by(TicketEvent.id))).scalars()
            ]
        return {
            "refs": refs,
            "first": first,
            "second": second,
            "states": states,
            "bus": bus,
            "events": events,
        }
    finally:
        await rt.db.dispose()


class TestSlaScan:
    def test_marks_once_and_tells_the_department(self, isolated_settings: Settings) -> None:
        out = asyncio.run(scenario(isolated_settings))
        refs, states = out["refs"], out["states"]
        assert states[refs[0]] == SlaState.overdue  # type: ignore[index]
        assert states[refs[1]] == SlaState.due_soon  # type: ignore[index]
        assert states[refs[2]] == SlaState.ok  # type: ignore[index]
        assert out["first"] == 2 and out["second"] == 0
        sla = [b for b in out["bus"] if b[0].startswith("sla.")]  # type: ignore[attr-defined]
        assert sorted(t for t, _ in sla) == ["sla.due_soon", "sla.overdue"]
        assert all(dept for _, dept in sla)  # addressed to the department holding the ticket
        assert out["events"].count("sla_overdue") == 1  # type: ignore[attr-defined]
