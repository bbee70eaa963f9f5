"""Jobs of the SMS channel: answering stored texts.

The Twilio webhook only stores a text and nudges this lane; a job applies the
conversation rules and queues the answer. The ``messages`` rows are the queue: a
text still ``received`` is due, so a lost nudge or a killed worker only delays it.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select, update

from channels.sms.inbound import process_inbound
from contact import tasks
from contact.jobs import lane_keys
from contact.models import Channel, DeliveryStatus, Direction, Message, utcnow
from contact.runtime import Lane, Runtime

log = logging.getLogger(__name__)
LANE = "sms-inbound"
SETTLE = timedelta(seconds=2)  # a nudge normally gets there first


async def process_ids(rt: Runtime, ids: list[int]) -> int:
    """Answer each stored text; a text that breaks the rules engine is set aside as
    ``failed`` (visible on its message), never retried forever."""
    done = 0
    for message_id in ids:
        async with rt.db.session() as s:
            try:
                await process_inbound(rt, s, message_id)
                await rt.commit(s)
                done += 1
            except Exception:
                log.exception("text %s could not be processed", message_id)
                await s.rollback()
                rt.discard(s)
                await s.execute(
                    update(Message)
                    .where(Message.id == message_id, Message.status == DeliveryStatus.received)
                    .values(status=DeliveryStatus.failed, error_code="processing")
                )
                await s.commit()
    return done


async def sweep_inbound_async(rt: Runtime, limit: int = 200) -> int:
    """Texts stored but not yet answered (no nudge reached a worker)."""
    async with rt.db.session() as s:
        ids = list(
            (
                await s.execute(
                    select(Message.id)
                    .where(
                        Message.status == DeliveryStatus.received,
                        Message.direction == Direction.inbound,
                        Message.channel == Channel.sms,
                        Message.created_at <= utcnow() - SETTLE,
                    )
                    .order_by(Message.id)
                    .limit(limit)
                )
            ).scalars()
        )
    return await process_ids(rt, ids) if ids else 0


def drain_inbound() -> int:
    assert tasks.RUNTIME is not None
    rt = tasks.RUNTIME
    due, flag = lane_keys(LANE)
    return tasks.drain_list(due, flag, lambda ids: tasks._run(process_ids(rt, ids)))


def sweep_inbound() -> int:
    assert tasks.RUNTIME is not None
    return tasks._run(sweep_inbound_async(tasks.RUNTIME))


INBOUND_LANE = Lane(LANE, drain_inbound, sweep_inbound_async, sweep_inbound)
