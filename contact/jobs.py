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

from contact.runtime import Jobs, Runtime

log = logging.getLogger(__name__)
QUEUE = "contact"


class InProcessJobs(Jobs):
    """The embedded default: one asyncio task delivers the outbox and runs the SLA scan."""

    def __init__(self) -> None:
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._runtime: Runtime | None = None

    async def kick(self, outbox_ids: list[int]) -> None:
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
        next_scan = 0.0
        while True:
            try:
                await tasks.sweep_outbox_async(rt)
                if time.monotonic() >= next_scan:
                    await tasks.sla_scan_async(rt)
                    next_scan = time.monotonic() + rt.settings.SLA_SCAN_INTERVAL_SECONDS
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


class RqJobs(Jobs):
    """Production: committed outbox ids go on a Redis list; an rq job drains it in batches.

    A request pays one non-blocking RPUSH and one SET NX. Only when no drain job is
    queued or running (the ``DRAINING`` flag was free) does it enqueue one, so under
    load one job delivers many rows. ``contact worker`` runs the jobs.
    """

    def __init__(self, redis_url: str) -> None:
        import redis.asyncio as aioredis
        from redis import Redis
        from rq import Queue

        self.redis = Redis.from_url(redis_url)
        self.aredis = aioredis.from_url(redis_url)
        self.queue = Queue(QUEUE, connection=self.redis)

    async def kick(self, outbox_ids: list[int]) -> None:
        from contact import tasks

        async with self.aredis.pipeline(transaction=False) as pipe:
            pipe.rpush(DUE_LIST, *outbox_ids)
            pipe.set(DRAINING, 1, nx=True, ex=DRAIN_CLAIM_SECONDS)
            _, claimed = await pipe.execute()
        if claimed:
            await asyncio.to_thread(
                self.queue.enqueue, tasks.drain_outbox, result_ttl=60, failure_ttl=86400
            )

    async def stop(self) -> None:
        await self.aredis.aclose()
        self.redis.close()
