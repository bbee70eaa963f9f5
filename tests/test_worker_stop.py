"""A worker asked to stop (SIGTERM from systemd, a deploy, Ctrl-C) stops within seconds.

rq's command listener used to sleep up to a minute before it noticed the shutdown,
and redis-py waits for it, so about one stop in three hung for a minute while idle."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from contact.migrate import upgrade
from tests.conftest import REDIS_URL, WorkerProcess, base_env, flush_redis, wait_for

pytestmark = [
    pytest.mark.skipif(not REDIS_URL, reason="needs CONTACT_TEST_REDIS_URL (a real rq worker)"),
    # They share Redis database 12 (and flush it): one test runner takes them all.
    pytest.mark.xdist_group("redis-db-12"),
]
STOP_REDIS_URL = (REDIS_URL or "").rsplit("/", 1)[0] + "/12"


def _stop(worker: WorkerProcess, log: Path, limit: float = 30) -> float:
    """SIGTERM ``worker`` and return how long it took to exit (status 0)."""
    time.sleep(0.5)
    assert worker.proc is not None
    started = time.monotonic()
    worker.proc.send_signal(signal.SIGTERM)
    try:
        worker.proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the stop took over {limit:.0f} s; log:\n{log.read_text()[-3000:]}")
    assert worker.proc.returncode == 0
    return time.monotonic() - started


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
    flush_redis(STOP_REDIS_URL)
    env = {**base_env(url, STOP_REDIS_URL), "CONTACT_LOG_LEVEL": "INFO"}
    for attempt in range(4):
        log = tmp_path / f"worker-{attempt}.log"
        worker = WorkerProcess(env, log)
        worker.start()
        try:
            # Both rq workers (deliveries and training) are listening and idle.
            wait_for(lambda log=log: log.read_text().count("*** Listening on") >= 2, timeout=60)
            took = _stop(worker, log)
            assert took < 10, f"stop {attempt + 1} took {took:.1f} s"
        finally:
            worker.kill(signal.SIGKILL)


def _training_job(redis: Any) -> Any:
    """A stand-in for a long training, queued as an admin's "train now" is."""
    from rq import Queue, Retry

    from contact.jobs import TRAIN_QUEUE, TRAIN_RETRIES, TRAIN_TIMEOUT_SECONDS

    return Queue(TRAIN_QUEUE, connection=redis).enqueue(
        "time.sleep", 120, job_timeout=TRAIN_TIMEOUT_SECONDS, retry=Retry(max=TRAIN_RETRIES)
    )


def test_a_worker_stopped_mid_training_stops_at_once_and_the_training_runs_again(
    tmp_path: Path,
) -> None:
    """Training takes a minute or more; a stop used to wait for it (and a container's stop
    grace killed it), losing an admin's "train now". The worker now stops within seconds
    and puts the cut-short job back on the queue, with one retry fewer."""
    from redis import Redis
    from rq import Queue
    from rq.job import Job, JobStatus
    from rq.registry import StartedJobRegistry

    from contact.jobs import TRAIN_QUEUE, TRAIN_RETRIES

    url = f"sqlite:///{tmp_path}/train-stop.db"
    upgrade(url)
    flush_redis(STOP_REDIS_URL)
    redis = Redis.from_url(STOP_REDIS_URL)
    job = _training_job(redis)
    log = tmp_path / "worker.log"
    worker = WorkerProcess({**base_env(url, STOP_REDIS_URL), "CONTACT_LOG_LEVEL": "INFO"}, log)
    worker.start()
    try:
        wait_for(lambda: job.get_status() == JobStatus.STARTED, timeout=60)
        took = _stop(worker, log)
        assert took < 8, f"the stop took {took:.1f} s"
        assert "contact-train still busy" in log.read_text()
        # Cut short, not finished or failed: queued to run again at once.
        assert job.get_status() == JobStatus.QUEUED
        assert job.id in Queue(TRAIN_QUEUE, connection=redis).get_job_ids()
        assert Job.fetch(job.id, connection=redis).retries_left == TRAIN_RETRIES - 1
        assert StartedJobRegistry(TRAIN_QUEUE, connection=redis).count == 0
    finally:
        worker.kill(signal.SIGKILL)
        redis.close()


def test_a_training_whose_worker_died_runs_again_when_the_next_worker_starts(
    tmp_path: Path,
) -> None:
    """A crash (power cut, out of memory: SIGKILL to every process) leaves the training
    marked as running. The next worker started on the host runs it again at once,
    rather than when rq gives up on the dead one (about 21 minutes later)."""
    from redis import Redis
    from rq.job import Job, JobStatus

    from contact.jobs import TRAIN_RETRIES
    from contact.worker import TRAINER

    url = f"sqlite:///{tmp_path}/train-crash.db"
    upgrade(url)
    flush_redis(STOP_REDIS_URL)
    redis = Redis.from_url(STOP_REDIS_URL)
    job = _training_job(redis)
    env = {**base_env(url, STOP_REDIS_URL), "CONTACT_LOG_LEVEL": "INFO"}
    first = WorkerProcess(env, tmp_path / "first.log")
    second = WorkerProcess(env, tmp_path / "second.log")
    first.start()
    try:
        wait_for(lambda: job.get_status() == JobStatus.STARTED, timeout=60)
        crashed = Job.fetch(job.id, connection=redis).worker_name or ""
        assert crashed.startswith(f"{TRAINER}.")
        first.kill(signal.SIGKILL)
        assert job.get_status() == JobStatus.STARTED  # nobody has noticed yet
        second.start()

        def rerun() -> bool:
            again = Job.fetch(job.id, connection=redis)
            return again.get_status() == JobStatus.STARTED and again.worker_name != crashed

        wait_for(rerun, timeout=60)
        assert Job.fetch(job.id, connection=redis).retries_left == TRAIN_RETRIES - 1
        assert "training cut short, queued to run again" in (tmp_path / "second.log").read_text()
    finally:
        for w in (first, second):
            w.kill(signal.SIGKILL)
        redis.close()


def test_only_trainers_of_this_host_whose_process_ended_count_as_gone() -> None:
    import os
    import socket

    from contact.worker import gone_from_this_host, trainer_name

    ended = subprocess.Popen(["true"])
    ended.wait()
    assert gone_from_this_host(trainer_name(ended.pid))
    assert not gone_from_this_host(trainer_name(os.getpid()))
    assert not gone_from_this_host(trainer_name(os.getppid()))
    assert not gone_from_this_host(trainer_name(ended.pid, host=socket.gethostname() + "-x"))
    assert not gone_from_this_host("rq-worker-1f2e")


def test_an_admins_training_request_is_queued_to_be_run_again_if_cut_short() -> None:
    import asyncio
    from types import SimpleNamespace

    from redis import Redis
    from rq.job import Job

    from contact.jobs import TRAIN_RETRIES, TRAIN_TIMEOUT_SECONDS
    from contact.routing_api import TRAIN_JOB_ID, queue_training

    flush_redis(STOP_REDIS_URL)
    rt = SimpleNamespace(settings=SimpleNamespace(REDIS_URL=STOP_REDIS_URL))
    asyncio.run(queue_training(rt))  # type: ignore[arg-type]
    redis = Redis.from_url(STOP_REDIS_URL)
    try:
        job = Job.fetch(TRAIN_JOB_ID, connection=redis)
        assert job.retries_left == TRAIN_RETRIES
        assert job.timeout == TRAIN_TIMEOUT_SECONDS
        assert job.kwargs == {"scheduled": False}
    finally:
        flush_redis(STOP_REDIS_URL)
        redis.close()
