"""Counting TCP proxies for PostgreSQL and Redis, on their own thread and event loop.

Put one between an application and its store to count round trips:

* PostgreSQL: every ``Sync`` (extended protocol) or ``Query`` (simple protocol) the
  client sends ends one round trip; each is labelled with the SQL it carried.
* Redis: every command (a RESP array) is counted, and a round trip is a burst the
  client sends after the server has answered on that connection.

Runs on a separate thread so a client that blocks its own event loop (a sync Redis
call inside a coroutine) cannot deadlock the proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
from collections import Counter

SSL_REQUEST = 80877103
GSS_REQUEST = 80877104


def _cstr(buf: bytes, pos: int) -> tuple[str, int]:
    end = buf.index(b"\x00", pos)
    return buf[pos:end].decode("utf-8", "replace"), end + 1


def _short(sql: str) -> str:
    sql = " ".join(sql.split())
    for cut in (" VALUES ", " WHERE ", " SET ", " FROM "):
        if cut in sql.upper() and not sql.upper().startswith("SELECT"):
            sql = sql[: sql.upper().index(cut)]
            break
    return sql[:90]


class _PgClientParser:
    """Follows the client side of one PostgreSQL connection."""

    def __init__(self, tap: Wiretap, tag: str) -> None:
        self.tap = tap
        self.tag = tag
        self.buf = b""
        self.started = False
        self.statements: dict[str, str] = {}
        self.pending: list[str] = []

    def feed(self, data: bytes) -> None:
        self.buf += data
        while True:
            if not self.started:
                if len(self.buf) < 8:
                    return
                length, code = struct.unpack("!ii", self.buf[:8])
                if len(self.buf) < length:
                    return
                self.buf = self.buf[length:]
                if code not in (SSL_REQUEST, GSS_REQUEST):
                    self.started = True
                    self.tap.count(self.tag, "pg", "connect (startup)")
                continue
            if len(self.buf) < 5:
                return
            kind = self.buf[:1]
            (length,) = struct.unpack("!i", self.buf[1:5])
            if len(self.buf) < 1 + length:
                return
            body = self.buf[5 : 1 + length]
            self.buf = self.buf[1 + length :]
            self.message(kind, body)

    def message(self, kind: bytes, body: bytes) -> None:
        if kind == b"Q":
            sql, _ = _cstr(body, 0)
            self.tap.count(self.tag, "pg", f"query: {_short(sql)}")
        elif kind == b"P":
            name, pos = _cstr(body, 0)
            sql, _ = _cstr(body, pos)
            self.statements[name] = sql
            self.pending.append(f"prepare: {_short(sql)}")
        elif kind == b"B":
            _portal, pos = _cstr(body, 0)
            name, _ = _cstr(body, pos)
            self.pending = [p for p in self.pending if not p.startswith("prepare")]
            self.pending.append(f"execute: {_short(self.statements.get(name, '?'))}")
        elif kind == b"S":
            label = self.pending[-1] if self.pending else "sync"
            self.tap.count(self.tag, "pg", label)
            self.pending = []
        elif kind == b"X":
            self.tap.count(self.tag, "pg-close", "terminate")


def _resp_commands(buf: bytes) -> tuple[list[str], bytes]:
    """Complete RESP command arrays at the head of ``buf`` (their names), and the rest."""
    names: list[str] = []
    while buf.startswith(b"*"):
        end = buf.find(b"\r\n")
        if end < 0:
            break
        n = int(buf[1:end])
        pos = end + 2
        args: list[bytes] = []
        complete = True
        for _ in range(n):
            end = buf.find(b"\r\n", pos)
            if end < 0 or buf[pos : pos + 1] != b"$":
                complete = False
                break
            size = int(buf[pos + 1 : end])
            if len(buf) < end + 2 + size + 2:
                complete = False
                break
            args.append(buf[end + 2 : end + 2 + size])
            pos = end + 2 + size + 2
        if not complete:
            break
        names.append(b" ".join(args[:1]).decode("ascii", "replace").upper())
        buf = buf[pos:]
    return names, buf


class Wiretap:
    """``add(tag, kind, upstream_port)`` returns the local port to connect to instead.

    Counts are keyed ``(tag, kind, label)``: give each client its own proxy and tag.
    """

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._servers: list[asyncio.Server] = []
        self._thread.start()

    def count(self, tag: str, kind: str, label: str, n: int = 1) -> None:
        with self._lock:
            self.counts[(tag, kind, label)] += n

    def snapshot(self) -> Counter[tuple[str, str, str]]:
        with self._lock:
            return Counter(self.counts)

    def add(self, tag: str, kind: str, upstream_port: int, host: str = "127.0.0.1") -> int:
        listen = self._listen(tag, kind, host, upstream_port)
        return asyncio.run_coroutine_threadsafe(listen, self._loop).result(timeout=10)

    async def _listen(self, tag: str, kind: str, host: str, upstream_port: int) -> int:
        async def handle(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
            sr, sw = await asyncio.open_connection(host, upstream_port)
            state = {"answered": True}
            parser = _PgClientParser(self, tag) if kind == "pg" else None
            rest = [b""]

            async def up() -> None:
                while data := await cr.read(65536):
                    if parser is not None:
                        parser.feed(data)
                    else:
                        names, rest[0] = _resp_commands(rest[0] + data)
                        for name in names:
                            self.count(tag, "redis", name)
                        if state["answered"]:
                            self.count(tag, "redis-rt", "round trip")
                            state["answered"] = False
                    sw.write(data)
                    await sw.drain()
                sw.close()

            async def down() -> None:
                while data := await sr.read(65536):
                    state["answered"] = True
                    cw.write(data)
                    await cw.drain()
                cw.close()

            with contextlib.suppress(OSError, asyncio.CancelledError):
                await asyncio.gather(up(), down())

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    def close(self) -> None:
        async def stop() -> None:
            for s in self._servers:
                s.close()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
