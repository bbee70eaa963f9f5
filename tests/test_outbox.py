"""Durable notifications: retries with backoff, a visible dead letter, delivery after restart."""

from __future__ import annotations

from sqlalchemy import select, update

from contact import outbox
from contact.channels import DeliveryError, DeliveryReceipt, OutboundMessage
from contact.models import Channel, DevMessage, Outbox, OutboxStatus, utcnow
from contact.runtime import Runtime
from contact.settings import Settings
from tests.conftest import with_runtime as run


class FlakyGateway:
    """A provider that fails ``failures`` times, then accepts."""

    channel = Channel.sms
    provider = "flaky"
    max_length = 1600

    def __init__(self, failures: int, permanent: bool = False) -> None:
        self.failures = failures
        self.permanent = permanent
        self.calls: list[str] = []

    async def send(self, message: OutboundMessage) -> DeliveryReceipt:
        self.calls.append(message.key)
        if len(self.calls) <= self.failures:
            raise DeliveryError("provider unavailable", permanent=self.permanent, code="503")
        return DeliveryReceipt("flaky", f"FX{len(self.calls)}", "sent")


async def queue_one(rt: Runtime, key: str = "test:1") -> int:
    async with rt.db.session() as s:
        await outbox.queue(
            s,
            key=key,
            channel=Channel.sms,
            recipient="+8613800138123",
            template="help",
            locale="zh-CN",
            context={},
        )
        ids = outbox.take_pending(s)
        await s.commit()
    return ids[0]


async def row(rt: Runtime, oid: int) -> Outbox:
    async with rt.db.session() as s:
        return (await s.execute(select(Outbox).where(Outbox.id == oid))).scalar_one()


async def make_due(rt: Runtime, oid: int) -> None:
    async with rt.db.session() as s:
        await s.execute(update(Outbox).where(Outbox.id == oid).values(next_attempt_at=utcnow()))
        await s.commit()


class TestDelivery:
    def test_a_failing_provider_is_retried_with_growing_backoff(
        self, isolated_settings: Settings
    ) -> None:
        async def scenario(rt: Runtime) -> None:
            gw = FlakyGateway(failures=2)
            rt.registry.register(gw)
            oid = await queue_one(rt)
            assert await rt.deliverer.deliver(oid) == "retry"
            first = await row(rt, oid)
            assert first.status == OutboxStatus.pending and first.attempts == 1
            assert await rt.deliverer.deliver(oid) == "not-due"  # backing off
            await make_due(rt, oid)
            assert await rt.deliverer.deliver(oid) == "retry"
            second = await row(rt, oid)
            gap1 = first.next_attempt_at - first.created_at
            gap2 = second.next_attempt_at - utcnow()
            assert gap2 > gap1  # exponential
            await make_due(rt, oid)
            assert await rt.deliverer.deliver(oid) == "sent"
            done = await row(rt, oid)
            assert done.status == OutboxStatus.sent and done.attempts == 3
            assert len(set(gw.calls)) == 1  # one key, however many attempts

        run(isolated_settings, scenario)

    def test_after_the_last_attempt_it_is_a_dead_letter(self, isolated_settings: Settings) -> None:
        async def scenario(rt: Runtime) -> None:
            rt.registry.register(FlakyGateway(failures=100))
            rt.deliverer.max_attempts = 3
            oid = await queue_one(rt)
            results = []
            for _ in range(3):
                await make_due(rt, oid)
                results.append(await rt.deliverer.deliver(oid))
            assert results == ["retry", "retry", "dead"]
            dead = await row(rt, oid)
            assert dead.status == OutboxStatus.dead and "unavailable" in (dead.last_error or "")

        run(isolated_settings, scenario)

    def test_a_permanent_refusal_is_dead_at_once(self, isolated_settings: Settings) -> None:
        async def scenario(rt: Runtime) -> None:
            rt.registry.register(FlakyGateway(failures=1, permanent=True))
            oid = await queue_one(rt)
            assert await rt.deliverer.deliver(oid) == "dead"

        run(isolated_settings, scenario)

    def test_the_same_key_is_queued_once(self, isolated_settings: Settings) -> None:
        async def scenario(rt: Runtime) -> None:
            await queue_one(rt, "same")
            async with rt.db.session() as s:
                await outbox.queue(
                    s,
                    key="same",
                    channel=Channel.sms,
                    recipient="+8613800138123",
                    template="help",
                    locale="zh-CN",
                    context={},
                )
                assert outbox.take_pending(s) == []
                await s.commit()
                count = len((await s.execute(select(Outbox))).scalars().all())
            assert count == 1

        run(isolated_settings, scenario)

    def test_pending_rows_are_delivered_by_the_sweep_after_a_restart(
        self, isolated_settings: Settings
    ) -> None:
        """Rows committed but never nudged (the process died first) go out on the next sweep."""
        from contact import tasks

        async def scenario(rt: Runtime) -> None:
            ids = [await queue_one(rt, f"restart:{i}") for i in range(3)]
            # A "crashed" delivery: claimed, lease since expired.
            async with rt.db.session() as s:
                await s.execute(
                    update(Outbox)
                    .where(Outbox.id == ids[0])
                    .values(status=OutboxStatus.sending, lease_until=utcnow())
                )
                await s.commit()
            assert await tasks.sweep_outbox_async(rt) == 3
            assert await tasks.sweep_outbox_async(rt) == 0
            async with rt.db.session() as s:
                sent = (await s.execute(select(DevMessage))).scalars().all()
            assert len(sent) == 3

        run(isolated_settings, scenario)

    def test_opted_out_citizens_get_nothing(self, isolated_settings: Settings) -> None:
        from contact.models import Citizen

        async def scenario(rt: Runtime) -> None:
            async with rt.db.session() as s:
                c = Citizen(phone="+8613800138124", locale="zh-CN", opt_outs=["sms"])
                s.add(c)
                await s.flush()
                await outbox.queue(
                    s,
                    key="optout",
                    channel=Channel.sms,
                    recipient=c.phone or "",
                    template="help",
                    locale="zh-CN",
                    context={},
                    citizen_id=c.id,
                )
                (oid,) = outbox.take_pending(s)
                await s.commit()
            assert await rt.deliverer.deliver(oid) == "skipped"
            assert (await row(rt, oid)).last_error == "opted out"

        run(isolated_settings, scenario)
