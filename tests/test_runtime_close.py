"""Shutting down while background work is still inside a query."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import text

from contact.settings import Settings
from tests.conftest import with_runtime


def test_close_waits_for_a_query_in_flight_and_then_exits(settings: Settings) -> None:
    finished: list[bool] = []

    async def scenario(rt: object) -> float:
        from contact.runtime import Runtime

        assert isinstance(rt, Runtime)

        async def slow_reader() -> None:
            async with rt.db.session() as s:
                await s.execute(text("SELECT 1"))
                await asyncio.sleep(0.3)
                await s.execute(text("SELECT 2"))
            finished.append(True)

        rt.spawn(slow_reader(), name="slow-reader")
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await rt.close()
        return time.monotonic() - started

    took = with_runtime(settings, scenario)
    assert finished == [True]
    assert took < 5


def test_close_cancels_work_that_outlives_the_grace(settings: Settings) -> None:
    async def scenario(rt: object) -> bool:
        from contact.runtime import Runtime

        assert isinstance(rt, Runtime)

        async def forever() -> None:
            async with rt.db.session() as s:
                await s.execute(text("SELECT 1"))
                await asyncio.sleep(3600)

        task = rt.spawn(forever(), name="forever")
        await asyncio.sleep(0.05)
        await asyncio.wait_for(rt.close(grace=0.2), timeout=10)
        return task.cancelled()

    assert with_runtime(settings, scenario) is True
