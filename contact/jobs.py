"""Running durable work: rq workers with Redis, or an in-process loop without.

The outbox is the durable queue; rq (or the in-process loop) only carries
"look at row N now" nudges. A sweeper finds whatever a nudge missed, so a lost
nudge or a killed worker delays a message but never loses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from contact.runtime import Jobs, Runtime

log = logging.getLogger(__name__)
QUEUE = "contact"
# Routing model training has a worker process of its own: deliveries never wait behind it.
TRAIN_QUEUE = "contact-train"
# A training job that runs longer than this is stopped (200,000 tickets take about three
# minutes on two cores). A training cut short by a worker stopping or dying is run again
# (up to TRAIN_RETRIES times): at once when the worker stopped, or the next one started on
# the same host, can tell (contact.worker.requeue_orphaned_training); otherwise once rq
# sees it abandoned, its heartbeat lapsing this long plus a minute after it began.
TRAIN_TIMEOUT_SECONDS = 1200
TRAIN_RETRIES = 2


class InProcessJobs(Jobs):
    """The embedded default: one asyncio task delivers the outbox and runs the SLA,
    kiosk and hot-spot scans and deletes old real-time events; routing model retraining
    runs beside it (in a thread)."""

    def __init__(self) -> None:
        super().__init__()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._runtime: Runtime | None = None
        self._training: asyncio.Task[str] | None = None

    async def kick(self, outbox_ids: list[int]) -> None:
        self._wake.set()

    async def nudge(self, lane: str, ids: list[int]) -> None:
        self._wake.set()

    async def start(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._task = asyncio.create_task(self._loop(), name="contact-jobs")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        from contact import tasks

        rt = self._runtime
        assert rt is not None
        interval = rt.settings.SWEEP_INTERVAL_SECONDS
        next_scan = next_kiosk_scan = next_hotspot_scan = 0.0
        # The first retraining check and clean-up wait a minute: start-up is for serving.
        next_retrain = next_prune = time.monotonic() + 60
        while True:
            try:
                for lane in self.lanes.values():
                    await lane.sweep(rt)
                await tasks.sweep_outbox_async(rt)
                if time.monotonic() >= next_scan:
                    await tasks.sla_scan_async(rt)
                    next_scan = time.monotonic() + rt.settings.SLA_SCAN_INTERVAL_SECONDS
                if time.monotonic() >= next_kiosk_scan:
                    await tasks.kiosk_scan_async(rt)
                    next_kiosk_scan = time.monotonic() + tasks.KIOSK_SCAN_SECONDS
                if time.monotonic() >= next_hotspot_scan:
                    next_hotspot_scan = time.monotonic() + rt.settings.HOTSPOT_SCAN_INTERVAL_SECONDS
                    await tasks.hotspot_scan_async(rt)
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + tasks.PRUNE_EVENTS_SECONDS
                    await tasks.prune_events_async(rt)
                if time.monotonic() >= next_retrain:
                    next_retrain = time.monotonic() + tasks.RETRAIN_CHECK_SECONDS
                    if self._training is None or self._training.done():
                        self._training = rt.spawn(
                            tasks.retrain_routing_async(rt), name="routing-retrain"
                        )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("in-process jobs failed; retrying")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=interval)


DUE_LIST = "contact:outbox:due"
DRAINING = "contact:outbox:draining"
DRAIN_CLAIM_SECONDS = 60
# Queue the ids and claim the drain flag in one round trip: 1 if this call claimed it
# (and must enqueue a drain job), nil if a drain is already queued or running.
PUSH_SCRIPT = """
redis.call('RPUSH', KEYS[1], unpack(ARGV, 2))
return redis.call('SET', KEYS[2], 1, 'NX', 'EX', ARGV[1])
"""


def lane_keys(lane: str) -> tuple[str, str]:
    """The Redis list of nudged ids and the "a drain job is on it" flag of a lane."""
    return f"contact:{lane}:due", f"contact:{lane}:draining"


class RqJobs(Jobs):
    """Production: committed outbox ids go on a Redis list; an rq job drains it in batches.

    A push is one round trip (RPUSH + SET NX in a script). Only when no drain job is
    queued or running (the ``DRAINING`` flag was free) does it enqueue one, so under
    load one job delivers many rows. ``contact worker`` runs the jobs.

    Pushes do not hold up the request that asks for them: ids are buffered per list
    and one task per list sends them, so while a push is in flight the next ones
    gather and go together. The rows are committed before they are pushed, and the
    sweeps find any id a crash kept from Redis.
    """

    def __init__(self, redis_url: str) -> None:
        import redis.asyncio as aioredis
        from redis import Redis
        from rq import Queue

        super().__init__()
        self.redis = Redis.from_url(redis_url)
        self.aredis = aioredis.from_url(redis_url)
        self._push_script = self.aredis.register_script(PUSH_SCRIPT)
        self.queue = Queue(QUEUE, connection=self.redis)
        self._pending: dict[str, list[int]] = {}
        self._senders: dict[str, asyncio.Task[None]] = {}

    async def kick(self, outbox_ids: list[int]) -> None:
        from contact import tasks

        await self._push(DUE_LIST, DRAINING, tasks.drain_outbox, outbox_ids)

    async def nudge(self, lane: str, ids: list[int]) -> None:
        key = lane_keys(lane)
        await self._push(key[0], key[1], self.lanes[lane].drain, ids)

    async def _push(self, due: str, flag: str, drain: Any, ids: list[int]) -> None:
        self._pending.setdefault(due, []).extend(ids)
        if due not in self._senders:
            self._senders[due] = asyncio.create_task(self._send(due, flag, drain))

    async def _send(self, due: str, flag: str, drain: Any) -> None:
        try:
            while self._pending.get(due):
                ids = self._pending.pop(due)
                try:
                    claimed = await self._push_script(
                        keys=[due, flag], args=[DRAIN_CLAIM_SECONDS, *ids]
                    )
                    if claimed:
                        await asyncio.to_thread(
                            self.queue.enqueue, drain, result_ttl=60, failure_ttl=86400
                        )
                except Exception:
                    log.warning("%d ids not pushed to %s; the sweep finds them", len(ids), due)
        finally:
            del self._senders[due]

    async def flush(self) -> None:
        """Wait until every id asked for so far has been pushed (or given up on)."""
        while self._senders:
            await asyncio.gather(*self._senders.values(), return_exceptions=True)

    async def stop(self) -> None:
        await self.flush()
        await self.aredis.aclose()
        self.redis.close()
