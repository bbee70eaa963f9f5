"""Reference data caches never make a request wait on a second pooled connection."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from contact.app import build_runtime
from contact.settings import Settings


async def expired_cache_with_the_pool_in_use(settings: Settings) -> int:
    rt = build_runtime(settings, pool_size=2)
    try:
        await rt.warm()
        rt.invalidate()
        # Every pooled connection is held by a request in progress (PostgreSQL: 2).
        async with rt.db.session() as a, rt.db.session() as b:
            await a.execute(text("SELECT 1"))
            await b.execute(text("SELECT 1"))
            catalogue = await asyncio.wait_for(rt.catalogue(), timeout=2)
        await asyncio.sleep(0.2)  # the reload runs once connections are free again
        return len(catalogue.services)
    finally:
        await rt.db.dispose()


class TestCache:
    def test_an_expired_cache_is_served_while_it_reloads(self, isolated_settings: Settings) -> None:
        assert asyncio.run(expired_cache_with_the_pool_in_use(isolated_settings)) > 10
