"""A worker asked to stop (SIGTERM from systemd, a deploy, Ctrl-C) stops within seconds.

rq's command listener used to sleep up to a minute before it noticed the shutdown,
and redis-py waits for it, so about one stop in three hung for a minute while idle."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from contact.migrate import upgrade
from tests.conftest import REDIS_URL, WorkerProcess, base_env, flush_redis, wait_for

pytestmark = pytest.mark.skipif(
    not REDIS_URL, reason="needs CONTACT_TEST_REDIS_URL (a real rq worker)"
)


def test_a_worker_whose_listener_already_read_the_unsubscribe_stops_at_once() -> None:
    from redis import Redis
    from rq import Queue

    from contact.worker import worker_class

    redis = Redis.from_url(REDIS_URL or "")
    worker = worker_class()([Queue("contact-stop-test", connection=redis)], connection=redis)
    worker.subscribe()
    try:
        # The race seen on SIGTERM: the listener thread reads the unsubscribe reply before
        # the worker tells it to end, and goes back to waiting for a subscription.
        worker.pubsub.unsubscribe()
        wait_for(lambda: not worker.pubsub.subscribed, timeout=5)
        time.sleep(0.2)
        assert worker.pubsub_thread.is_alive()
        started = time.monotonic()
        worker.unsubscribe()
        took = time.monotonic() - started
    finally:
        redis.close()
    assert not worker.pubsub_thread.is_alive()
    assert took < 3, f"the worker took {took:.1f} s to let go of its command channel"


def test_contact_worker_stops_on_sigterm_within_seconds_every_time(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/stop.db"
    upgrade(url)
    redis_url = (REDIS_URL or "").rsplit("/", 1)[0] + "/12"
    flush_redis(redis_url)
    env = {**base_env(url, redis_url), "CONTACT_LOG_LEVEL": "INFO"}
    for attempt in range(4):
        log = tmp_path / f"worker-{attempt}.log"
        worker = WorkerProcess(env, log)
        worker.start()
        try:
            # Both rq workers (deliveries and training) are listening and idle.
            wait_for(lambda log=log: log.read_text().count("*** Listening on") >= 2, timeout=60)
            time.sleep(0.5)
            started = time.monotonic()
            assert worker.proc is not None
            worker.proc.send_signal(signal.SIGTERM)
            try:
                worker.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pytest.fail(f"stop {attempt + 1} took over 15 s; log:\n{log.read_text()[-3000:]}")
            took = time.monotonic() - started
            assert took < 10, f"stop {attempt + 1} took {took:.1f} s"
            assert worker.proc.returncode == 0
        finally:
            worker.kill(signal.SIGKILL)
