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


class InProcessJobs(Jobs):
    """The embedded default: one asyncio task delivers the outbox and runs the SLA scan."""

    def __init__(self) -> None:
        super().__init__()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._runtime: Runtime | None = None

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
        next_scan = 0.0
        while True:
            try:
                for lane in self.lanes.values():
                    await lane.sweep(rt)
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


def lane_keys(lane: str) -> tuple[str, str]:
    """The Redis list of nudged ids and the "a drain job is on it" flag of a lane."""
    return f"contact:{lane}:due", f"contact:{lane}:draining"


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

        super().__init__()
        self.redis = Redis.from_url(redis_url)
        self.aredis = aioredis.from_url(redis_url)
        self.queue = Queue(QUEUE, connection=self.redis)

    async def kick(self, outbox_ids: list[int]) -> None:
        from contact import tasks

        await self._push(DUE_LIST, DRAINING, tasks.drain_outbox, outbox_ids)

    async def nudge(self, lane: str, ids: list[int]) -> None:
        key = lane_keys(lane)
        await self._push(key[0], key[1], self.lanes[lane].drain, ids)

    async def _push(self, due: str, flag: str, drain: Any, ids: list[int]) -> None:
        async with self.aredis.pipeline(transaction=False) as pipe:
            pipe.rpush(due, *ids)
            pipe.set(flag, 1, nx=True, ex=DRAIN_CLAIM_SECONDS)
            _, claimed = await pipe.execute()
        if claimed:
            await asyncio.to_thread(self.queue.enqueue, drain, result_ttl=60, failure_ttl=86400)

    async def stop(self) -> None:
        await self.aredis.aclose()
        self.redis.close()
