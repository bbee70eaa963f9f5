"""The limit: a bare ASGI app that answers POST with one INSERT + COMMIT in PostgreSQL.

``uvicorn bench.limit_app:app --workers 2``; ``BENCH_LIMIT_DSN`` names the database,
which must hold the scratch table (see :data:`SCRATCH_DDL`). Each request parses the
JSON body, runs ``BEGIN; INSERT ... RETURNING id; COMMIT`` on a pooled asyncpg
connection (the transaction shape every intake has) and answers 201 with the id.
"""

from __future__ import annotations

import json
import os
from typing import Any

import asyncpg

SCRATCH_DDL = """
CREATE TABLE IF NOT EXISTS bench_scratch (
    id bigserial PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    body jsonb NOT NULL
)
"""
INSERT = "INSERT INTO bench_scratch (body) VALUES ($1::jsonb) RETURNING id"
# The same pool bounds as the app's engine (DATABASE_POOL_SIZE=20, kept open).
POOL_MIN, POOL_MAX = 20, 20

_pool: asyncpg.Pool | None = None

Scope = dict[str, Any]


async def _lifespan(receive: Any, send: Any) -> None:
    global _pool
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            _pool = await asyncpg.create_pool(
                os.environ["BENCH_LIMIT_DSN"], min_size=POOL_MIN, max_size=POOL_MAX
            )
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            if _pool is not None:
                await _pool.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _reply(send: Any, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    if scope["method"] == "GET":  # readiness probe
        await _reply(send, 200, {"status": "ok"})
        return
    if scope["method"] != "POST":
        await _reply(send, 405, {"error": "method_not_allowed"})
        return
    chunks = []
    more = True
    while more:
        msg = await receive()
        chunks.append(msg.get("body", b""))
        more = msg.get("more_body", False)
    try:
        data = json.loads(b"".join(chunks))
    except ValueError:
        await _reply(send, 400, {"error": "malformed_json"})
        return
    assert _pool is not None
    payload = json.dumps(data, ensure_ascii=False)
    async with _pool.acquire() as conn, conn.transaction():
        row_id = await conn.fetchval(INSERT, payload)
    await _reply(send, 201, {"id": row_id})
