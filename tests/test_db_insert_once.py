"""``Database.insert_once``: the webhooks' store-before-answer step."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from sqlalchemy import Table, text

from contact.db import Database
from contact.models import Channel, DeliveryStatus, Direction, Message, utcnow
from contact.settings import Settings

MESSAGES = cast(Table, Message.__table__)


def _row(sid: str) -> dict[str, Any]:
    now = utcnow()
    return dict(
        channel=Channel.sms,
        direction=Direction.inbound,
        provider="test",
        provider_id=sid,
        from_addr="+8613800138000",
        to_addr="+15550001111",
        body="路灯不亮",
        status=DeliveryStatus.received,
        segments=1,
        created_at=now,
        updated_at=now,
    )


async def _insert(db: Database, sid: str) -> Any:
    return await db.insert_once(
        MESSAGES, _row(sid), conflict=("provider", "provider_id"), returning="id"
    )


def test_first_insert_returns_the_id_and_a_repeat_returns_none(
    isolated_settings: Settings,
) -> None:
    async def scenario() -> tuple[Any, Any, Any, list[Any]]:
        db = Database(isolated_settings.DATABASE_URL, pool_size=2)
        try:
            first = await _insert(db, "SM-once-1")
            again = await _insert(db, "SM-once-1")
            other = await _insert(db, "SM-once-2")
            async with db.session() as s:
                rows = list(
                    await s.execute(
                        text(
                            "SELECT provider_id, status, direction, created_at FROM messages "
                            "WHERE provider = 'test' ORDER BY id"
                        )
                    )
                )
            return first, again, other, rows
        finally:
            await db.dispose()

    first, again, other, rows = asyncio.run(scenario())
    assert isinstance(first, int) and isinstance(other, int) and other != first
    assert again is None  # the same provider id: nothing new
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("SM-once-1", "received", "in"),
        ("SM-once-2", "received", "in"),
    ]
    assert rows[0][3] is not None


def test_unknown_columns_are_refused(isolated_settings: Settings) -> None:
    async def scenario() -> None:
        db = Database(isolated_settings.DATABASE_URL, pool_size=1)
        try:
            row = {**_row("SM-bad"), "nonsense": 1}
            await db.insert_once(
                MESSAGES, row, conflict=("provider", "provider_id"), returning="id"
            )
        finally:
            await db.dispose()

    with pytest.raises(Exception, match="nonsense"):
        asyncio.run(scenario())


def test_a_killed_database_connection_is_replaced_not_reused(
    isolated_settings: Settings, backend: str
) -> None:
    if backend != "postgres":
        pytest.skip("server-side connections are PostgreSQL's")

    async def scenario() -> tuple[bool, Any]:
        db = Database(isolated_settings.DATABASE_URL, pool_size=1)
        try:
            await _insert(db, "SM-kill-1")
            async with db.engine.connect() as conn:
                pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            killer = Database(isolated_settings.DATABASE_URL, pool_size=1)
            try:
                async with killer.engine.connect() as c:
                    await c.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                    await c.commit()
                    # Terminating only signals the backend: wait until it has gone.
                    for _ in range(100):
                        alive = await c.scalar(
                            text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                            {"pid": pid},
                        )
                        await c.commit()
                        if not alive:
                            break
                        await asyncio.sleep(0.05)
            finally:
                await killer.dispose()
            failed = False
            try:
                await _insert(db, "SM-kill-2")
            except Exception:
                failed = True  # the webhook answers 500 and Twilio retries
            return failed, await _insert(db, "SM-kill-2")
        finally:
            await db.dispose()

    failed, retried = asyncio.run(scenario())
    assert failed
    assert isinstance(retried, int)  # the retry got a fresh connection and stored it


class _Open:
    def is_closed(self) -> bool:
        return False


def test_only_errors_that_end_the_session_discard_the_connection() -> None:
    """A terminated backend may answer 57P01 before it closes: that connection is gone.
    A statement's own error (a duplicate key) leaves it fit to reuse."""
    from asyncpg import exceptions as pg

    from contact.db import _connection_lost

    live = _Open()
    assert _connection_lost(pg.AdminShutdownError("terminating connection"), live)
    assert _connection_lost(pg.ConnectionDoesNotExistError("connection was closed"), live)
    assert _connection_lost(ConnectionResetError(), live)
    assert not _connection_lost(pg.UniqueViolationError("duplicate key"), live)
    assert not _connection_lost(pg.PostgresSyntaxError("syntax error"), live)


def test_a_connection_stopped_while_closing_still_closes(tmp_path: Any) -> None:
    """SQLAlchemy stops an aiosqlite connection whose graceful close was interrupted
    (a cancelled query); close() then asks to stop again and waits. Before the fix that
    second request queued behind the first stop was never run and shutdown hung."""
    import aiosqlite

    from contact.db import make_engine

    make_engine(f"sqlite:///{tmp_path / 'engine.db'}")  # SQLite engines get the fix

    async def go() -> str:
        conn = await aiosqlite.connect(tmp_path / "x.db")
        await conn.execute("CREATE TABLE t (n INTEGER)")
        closing = asyncio.ensure_future(conn.close())
        await asyncio.sleep(0)  # close() has queued its work
        conn.stop()  # SQLAlchemy's forced stop, queued behind it
        try:
            await asyncio.wait_for(closing, 5)
        except TimeoutError:
            return "close() never returned"
        await asyncio.wait_for(asyncio.shield(conn.stop() or asyncio.sleep(0)), 5)
        return "closed"

    assert asyncio.run(go()) == "closed"
