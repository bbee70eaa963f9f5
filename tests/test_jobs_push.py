"""Nudges and outbox kicks reach Redis whole, however many requests ask at once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from contact.jobs import RqJobs, lane_keys
from contact.runtime import Lane
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.skipif(not REDIS_URL, reason="needs CONTACT_TEST_REDIS_URL")


def _noop_drain() -> int:  # pragma: no cover - enqueued, never run here
    return 0


async def _nothing(rt: object) -> int:  # pragma: no cover
    return 0


def test_concurrent_nudges_all_arrive_and_start_one_drain() -> None:
    import redis
    from rq import Queue

    assert REDIS_URL
    lane = "test-push-lane"
    due, flag = lane_keys(lane)
    sync = redis.Redis.from_url(REDIS_URL)
    queue = Queue("test-push", connection=sync)  # no worker listens here
    queue.empty()
    sync.delete(due, flag)

    async def scenario() -> None:
        jobs = RqJobs(REDIS_URL)
        jobs.queue = Queue("test-push", connection=jobs.redis)
        jobs.add_lane(Lane(lane, _noop_drain, _nothing, _noop_drain))
        try:
            await asyncio.gather(*(jobs.nudge(lane, [n]) for n in range(1, 501)))
            await jobs.flush()
        finally:
            await jobs.stop()

    try:
        asyncio.run(scenario())
        ids = sorted(int(x) for x in sync.lrange(due, 0, -1))
        assert ids == list(range(1, 501))  # every id, once
        assert sync.get(flag) is not None
        assert len(queue) == 1  # one drain job for all of them
    finally:
        queue.empty()
        sync.delete(due, flag)
        sync.close()


def test_the_worker_runs_at_a_lower_cpu_priority_than_the_server(session_worker: Any) -> None:
    import os

    import psutil

    from tests.conftest import wait_for

    assert session_worker is not None and session_worker.proc is not None
    expected = min(19, os.nice(0) + 10)  # WORKER_NICE's default, on top of ours
    proc = psutil.Process(session_worker.proc.pid)
    wait_for(lambda: proc.nice() == expected)
