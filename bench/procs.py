"""Child processes in their own process groups, always stopped (TERM, then KILL)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Adopt our orphaned descendants (Linux), so stopping a group leaves no zombies behind.

    A uvicorn worker or a resource tracker that outlives its parent would otherwise
    be reparented to PID 1, which in a container may never reap it.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Group:
    """Every process this bench starts, so ``stop_all`` can end them in a ``finally``."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.subreaper = become_subreaper()
        self.leftovers: list[str] = []

    def start(self, name: str, cmd: list[str], env: dict[str, str], cwd: Path) -> int:
        log = open(self.logdir / f"{name}.log", "wb")  # noqa: SIM115 - kept by the child
        try:
            proc = subprocess.Popen(
                cmd,
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        self.procs[name] = proc
        return proc.pid

    def alive(self, name: str) -> bool:
        return self.procs[name].poll() is None

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.logdir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text("utf-8", "replace").splitlines()[-lines:])

    def stop(self, name: str, grace: float = 8.0) -> None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
        # The group may outlive its leader (uvicorn workers, the cron child): KILL what is left.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        if self.subreaper and not self._reap_group(proc.pid):
            self.leftovers.append(name)

    def wait(self, name: str, timeout: float) -> None:
        """Give ``name`` up to ``timeout`` seconds to end by itself, then stop it."""
        proc = self.procs.get(name)
        if proc is None:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
        self.stop(name)

    def _reap_group(self, pgid: int, timeout: float = 5.0) -> bool:
        """Wait until no process of group ``pgid`` is left, reaping the ones we adopted."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return True
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process().children():
                    with contextlib.suppress(OSError):
                        if os.getpgid(child.pid) == pgid:
                            os.waitpid(child.pid, os.WNOHANG)
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)


def wait_http(url: str, group: Group, name: str, timeout: float = 30.0) -> None:
    """Poll ``url`` until it answers 200 a few times in a row (both workers up, usually)."""
    deadline = time.monotonic() + timeout
    streak = 0
    while time.monotonic() < deadline:
        if not group.alive(name):
            raise RuntimeError(f"{name} exited during start-up:\n{group.log_tail(name)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                streak = streak + 1 if r.status == 200 else 0
        except (OSError, urllib.error.URLError):
            streak = 0
        if streak >= 5:
            return
        time.sleep(0.1)
    tail = group.log_tail(name)
    raise RuntimeError(f"{name} did not answer {url} within {timeout:.0f} s:\n{tail}")
