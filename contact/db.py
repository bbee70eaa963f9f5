"""Engines and sessions.

The application talks to the database through SQLAlchemy's asyncio layer
(asyncpg on PostgreSQL, aiosqlite on SQLite); migrations use the sync drivers
(psycopg, sqlite3). A plain ``postgresql://`` URL picks the drivers itself.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util.concurrency import greenlet_spawn


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


_STOP_ASKED = "_contact_stop_asked"


def _stop_once() -> None:
    """Make aiosqlite's ``Connection.stop()`` answer a second call with the first one's
    future.

    Each aiosqlite connection runs its calls on a worker thread, which ends when it
    reaches a stop request. When a query is cancelled (a request dropped, a shutdown),
    SQLAlchemy closes the connection gracefully and, if that is interrupted, stops it;
    ``close()`` itself ends with another ``stop()`` and waits for it. A request queued
    behind the first stop is never run, so that wait never ends and the process hangs
    at shutdown. The second call now returns the first stop's future (done once the
    thread has stopped) instead of queueing work nobody will run."""
    try:
        from aiosqlite.core import Connection
    except ImportError:  # pragma: no cover - aiosqlite comes with the package
        return
    original = getattr(Connection, "stop", None)
    if original is None or getattr(original, "once", False):
        return

    def stop(self: Any) -> asyncio.Future[Any] | None:
        if _STOP_ASKED in self.__dict__:
            first: asyncio.Future[Any] | None = self.__dict__[_STOP_ASKED]
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            return first if first is not None and first.get_loop() is loop else None
        first = original(self)
        self.__dict__[_STOP_ASKED] = first
        return first  # type: ignore[no-any-return]

    stop.once = True  # type: ignore[attr-defined]
    Connection.stop = stop  # type: ignore[method-assign]


def make_engine(url: str, *, pool_size: int = 20) -> AsyncEngine:
    ensure_sqlite_dir(url)
    if _is_sqlite(url):
        _stop_once()
        engine = create_async_engine(async_url(url))
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # No pre-ping (it costs a round trip per checkout); connections are recycled instead.
    # No overflow: overflow connections are closed on return, and under a steady load
    # above the pool size every request would pay a new connection (TLS attempt and
    # all); the pool keeps its connections and a request past it waits for one.
    return create_async_engine(
        async_url(url), pool_size=pool_size, max_overflow=0, pool_recycle=1800
    )


def dialect_name(session: AsyncSession) -> str:
    bind = session.bind
    assert bind is not None, "session without a bind"
    return bind.dialect.name


class Database:
    """One engine and session factory per process (and per event loop)."""

    def __init__(self, url: str, *, pool_size: int = 20) -> None:
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

    async def insert_once(
        self, table: Table, row: Mapping[str, Any], *, conflict: tuple[str, ...], returning: str
    ) -> Any | None:
        """``INSERT`` one row in its own transaction, unless it clashes on ``conflict``:
        the new row's ``returning`` column, or None if the row was there already.

        The hot path of webhooks that must be stored before they are answered. On
        PostgreSQL it is one autocommitted statement on the driver connection of a
        pooled connection (no ORM session, no BEGIN/COMMIT round trips); elsewhere
        an ordinary transaction. Values must be plain (strings, numbers, enums,
        timezone-aware datetimes), not JSON.
        """
        _check_columns(table, (*row, *conflict, returning))
        if not self.postgres:
            stmt = _insert("sqlite", table, conflict, False, returning)
            async with self.engine.begin() as conn:
                return (await conn.execute(stmt, dict(row))).scalar_one_or_none()
        sql = _raw_insert(table, tuple(row), conflict, returning)
        args = [v.value if isinstance(v, enum.Enum) else v for v in row.values()]
        async with self.driver() as conn:
            return await conn.fetchval(sql, *args)

    @asynccontextmanager
    async def driver(self) -> AsyncIterator[Any]:
        """PostgreSQL only: the asyncpg connection of a pooled connection, autocommitting
        each statement (JSON columns take JSON text and give back objects). For the few
        hot paths where a session's round trips are most of the cost; a connection that
        breaks is invalidated, not returned to the pool."""
        assert self.postgres, "driver() is for PostgreSQL"
        pooled = await self.engine.raw_connection()
        try:
            yield pooled.driver_connection
        except BaseException as exc:
            if _connection_lost(exc, pooled.driver_connection):
                await greenlet_spawn(pooled.invalidate)
            raise
        finally:
            await greenlet_spawn(pooled.close)

    async def dispose(self) -> None:
        await self.engine.dispose()


# SQLSTATE classes after which the server has dropped (or is dropping) the connection:
# connection exceptions (08…) and operator intervention (57P01 admin shutdown, 57P02
# crash shutdown, 57P03 cannot connect now).
_GONE = ("08", "57P")


def _connection_lost(exc: BaseException, conn: Any) -> bool:
    """Whether the asyncpg connection behind ``exc`` can no longer be used: anything but
    a statement's own error (a constraint, a syntax error), or a server error that
    ends the session (a terminated backend answers 57P01 before it closes)."""
    from asyncpg import PostgresError

    if not isinstance(exc, PostgresError) or conn is None or conn.is_closed():
        return True
    return str(getattr(exc, "sqlstate", "") or "").startswith(_GONE)


@lru_cache(maxsize=64)
def _check_columns(table: Table, names: tuple[str, ...]) -> None:
    unknown = set(names) - set(table.c.keys())
    if unknown:
        raise ValueError(f"not columns of {table.name}: {sorted(unknown)}")


@lru_cache(maxsize=64)
def _raw_insert(table: Table, columns: tuple[str, ...], conflict: tuple[str, ...], ret: str) -> str:
    marks = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
    return (  # names checked by _check_columns; values are parameters
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks}) "  # noqa: S608
        f"ON CONFLICT ({', '.join(conflict)}) DO NOTHING RETURNING {ret}"
    )


@lru_cache(maxsize=256)
def _insert(dialect: str, table: Table, conflict: tuple[str, ...], touch: bool, returning: str):  # type: ignore[no-untyped-def]
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
    stmt = dialect_insert(table)
    if conflict and touch:
        stmt = stmt.on_conflict_do_update(
            index_elements=list(conflict), set_={c: stmt.excluded[c] for c in conflict}
        )
    elif conflict:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(conflict))
    return stmt.returning(table.c[returning]) if returning else stmt


def insert_into(  # type: ignore[no-untyped-def]
    session: AsyncSession,
    model: Any,
    *,
    conflict: tuple[str, ...] = (),
    touch: bool = False,
    returning: str = "",
):
    """A prepared ``INSERT`` for ``model``'s table, to execute with the row(s) as parameters.

    ``conflict``: skip rows that clash on these columns (``ON CONFLICT DO NOTHING``), or,
    with ``touch``, return the existing row's ``returning`` column instead. Statements
    are built once per dialect and shape, so the hot path pays no statement building.
    """
    table = model if isinstance(model, Table) else model.__table__
    return _insert(dialect_name(session), table, conflict, touch, returning)
