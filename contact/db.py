"""Engines and sessions.

The application talks to the database through SQLAlchemy's asyncio layer
(asyncpg on PostgreSQL, aiosqlite on SQLite); migrations use the sync drivers
(psycopg, sqlite3). A plain ``postgresql://`` URL picks the drivers itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def _is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def async_url(url: str) -> str:
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres") or u.drivername.startswith("postgresql+"):
        return str(u.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False))
    if _is_sqlite(url):
        return str(u.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False))
    return url


def sync_url(url: str) -> str:
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres") or u.drivername.startswith("postgresql+"):
        return str(u.set(drivername="postgresql+psycopg").render_as_string(hide_password=False))
    if _is_sqlite(url):
        return str(u.set(drivername="sqlite").render_as_string(hide_password=False))
    return url


def ensure_sqlite_dir(url: str) -> None:
    if _is_sqlite(url):
        db = make_url(url).database
        if db and db != ":memory:":
            Path(db).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    ensure_sqlite_dir(url)
    if _is_sqlite(url):
        engine = create_async_engine(async_url(url))
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        async_url(url), pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )


def dialect_name(session: AsyncSession) -> str:
    bind = session.bind
    assert bind is not None, "session without a bind"
    return bind.dialect.name


class Database:
    """One engine and session factory per process (and per event loop)."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as s:
            yield s

    async def dispose(self) -> None:
        await self.engine.dispose()


def insert_ignore(session: AsyncSession, table: object, conflict: list[str]):  # type: ignore[no-untyped-def]
    """``INSERT ... ON CONFLICT (cols) DO NOTHING`` for the session's dialect."""
    if dialect_name(session) == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(index_elements=conflict)  # type: ignore[arg-type]
    from sqlalchemy.dialects.sqlite import insert as lite_insert

    return lite_insert(table).on_conflict_do_nothing(index_elements=conflict)  # type: ignore[arg-type]
