"""Peak RSS of whole process trees, sampled every ~100 ms on a background thread."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import psutil


@dataclass
class Peak:
    pid: int
    role: str
    cmd: str
    rss: int = 0


class MemorySampler:
    """Follows each root process and all its descendants; keeps each pid's peak RSS."""

    def __init__(self, roots: dict[str, int], interval: float = 0.1) -> None:
        self.roots = roots  # role -> pid
        self.interval = interval
        self.peaks: dict[int, Peak] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-memory", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        for role, pid in self.roots.items():
            try:
                root = psutil.Process(pid)
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for p in procs:
                try:
                    rss = p.memory_info().rss
                    # Read each time: a spawned child shows its parent's command line
                    # until it has exec'd.
                    cmd = " ".join(p.cmdline())
                    peak = self.peaks.setdefault(p.pid, Peak(p.pid, role, cmd))
                    peak.cmd = cmd or peak.cmd
                    peak.rss = max(peak.rss, rss)
                except psutil.Error:
                    continue
        self.samples += 1

    def labelled(self) -> list[tuple[str, Peak]]:
        """(label, peak) in a stable order: each root, then its children by kind and pid."""
        out: list[tuple[str, Peak]] = []
        for role, pid in self.roots.items():
            mine = sorted((p for p in self.peaks.values() if p.role == role), key=lambda p: p.pid)
            counts: dict[str, int] = {}
            for p in mine:
                if p.pid == pid:
                    label = f"{role} parent" if role == "server" else role
                elif "resource_tracker" in p.cmd:
                    label = f"{role} resource tracker"
                elif role == "server" and "multiprocessing" in p.cmd:
                    counts["w"] = counts.get("w", 0) + 1
                    label = f"server worker {counts['w']}"
                elif role == "worker" and "multiprocessing" in p.cmd:
                    label = "worker cron scheduler"
                else:
                    counts["o"] = counts.get("o", 0) + 1
                    label = f"{role} child {counts['o']}"
                out.append((label, p))
        return out
