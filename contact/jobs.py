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


class RqJobs(Jobs):
    """Production: one rq job per committed outbox row; ``contact worker`` runs them."""

    def __init__(self, redis_url: str) -> None:
        from redis import Redis
        from rq import Queue

        self.redis = Redis.from_url(redis_url)
        self.queue = Queue(QUEUE, connection=self.redis)

    async def kick(self, outbox_ids: list[int]) -> None:
        from contact import tasks

        with self.redis.pipeline() as pipe:
            for oid in outbox_ids:
                self.queue.enqueue(
                    tasks.deliver_outbox, oid, pipeline=pipe, result_ttl=60, failure_ttl=86400
                )
            pipe.execute()

    async def stop(self) -> None:
        self.redis.close()
