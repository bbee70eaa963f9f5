"""CPU seconds spent per process group during a measured window (psutil cpu_times).

Divided by the requests served this gives CPU milliseconds per request for the
server, the worker, PostgreSQL, Redis and the load client: on a 2-core machine the
sum bounds the throughput (2000 ms of CPU per second).
"""

from __future__ import annotations

from collections.abc import Callable

import psutil

# postgres processes doing work for any database: WAL writer, checkpointer, ...
PG_AUX = ("walwriter", "checkpointer", "background writer", "autovacuum", "logical replication")


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


class CpuMeter:
    """``groups`` name -> a function listing that group's processes (called at each read)."""

    def __init__(self, groups: dict[str, Callable[[], list[psutil.Process]]]) -> None:
        self.groups = groups
        self._start: dict[str, dict[int, float]] = {}

    @staticmethod
    def tree(pid: int) -> Callable[[], list[psutil.Process]]:
        return lambda: _tree(pid)

    @staticmethod
    def postgres(dbname: str) -> Callable[[], list[psutil.Process]]:
        def find() -> list[psutil.Process]:
            out = []
            for p in psutil.process_iter(["name", "cmdline"]):
                cmd = " ".join(p.info["cmdline"] or ())
                if not cmd.startswith("postgres:"):
                    continue
                if f" {dbname} " in cmd or any(a in cmd for a in PG_AUX):
                    out.append(p)
            return out

        return find

    @staticmethod
    def named(name: str) -> Callable[[], list[psutil.Process]]:
        return lambda: [p for p in psutil.process_iter(["name"]) if p.info["name"] == name]

    def _read(self) -> dict[str, dict[int, float]]:
        out: dict[str, dict[int, float]] = {}
        for group, find in self.groups.items():
            seen = out.setdefault(group, {})
            for p in find():
                try:
                    t = p.cpu_times()
                    seen[p.pid] = t.user + t.system
                except psutil.Error:
                    continue
        return out

    def start(self) -> None:
        self._start = self._read()

    def stop(self) -> dict[str, float]:
        """CPU seconds per group since :meth:`start` (processes gone meanwhile are lost)."""
        end = self._read()
        return {
            group: sum(t - self._start.get(group, {}).get(pid, 0.0) for pid, t in pids.items())
            for group, pids in end.items()
        }
