"""``contact worker``: a non-forking rq worker plus the periodic jobs.

rq's default worker forks per job (~60 jobs/s); ``SimpleWorker`` runs them in the
process (~250/s) and keeps one event loop and connection pool warm. A child
process runs rq's cron scheduler, which enqueues the sweeper, the SLA scan, the kiosk
scan, the hot-spot scan, the hourly deletion of old real-time events and the hourly "is
routing retraining due?" check. Another child runs the training queue, so a model being
trained never holds up deliveries; a training cut short by a stop or a crash is queued
again at once (see ``requeue_orphaned_training``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import socket
import sys
from collections.abc import Callable
from typing import Any

from contact.settings import Settings, SettingsError

log = logging.getLogger(__name__)

# How long the listener for rq's commands (shutdown, stop a job) may sleep before it
# looks whether it should end. rq asks for 60 s; a worker stopping then waits as long.
LISTENER_WAKE_SECONDS = 1.0
# How long the cron and training children have to stop on their own before they are
# killed. A training cut short is run again (jobs.TRAIN_RETRIES); without the limit a
# stop waited for the training to end, past a container's 10 s stop grace.
CHILD_STOP_SECONDS = 3.0
# Training workers are named "contact-train.<host>.<pid>", so that the worker that
# stopped one, or the next one started on the same host after a crash, can tell that
# the training it was running is orphaned and put it back on the queue at once.
TRAINER = "contact-train"


def trainer_name(pid: int, host: str | None = None) -> str:
    return f"{TRAINER}.{host or socket.gethostname()}.{pid}"


def gone_from_this_host(name: str) -> bool:
    """Whether ``name`` is a training worker of this host whose process has ended."""
    prefix = f"{TRAINER}.{socket.gethostname()}."
    if not name.startswith(prefix) or not name[len(prefix) :].isdigit():
        return False
    pid = int(name[len(prefix) :])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # some other user's process: alive
        return False
    return False


def requeue_orphaned_training(redis: Any, gone: Callable[[str], bool]) -> list[str]:
    """Send training jobs whose worker is ``gone`` through rq's own handling of
    abandoned jobs now (queued again while retries are left, else filed as failed),
    not once their heartbeat lapses: the job's timeout and a minute, about 21 minutes
    for an admin's "train now". Returns the ids of the jobs handled."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job
    from rq.registry import StartedJobRegistry

    from contact.jobs import TRAIN_QUEUE

    registry = StartedJobRegistry(TRAIN_QUEUE, connection=redis)
    orphaned: dict[str, int] = {}
    for job_id, execution_id in registry.get_job_and_execution_ids(cleanup=False):
        try:
            job = Job.fetch(job_id, connection=redis)
        except NoSuchJobError:
            continue
        if job.worker_name and gone(job.worker_name):
            orphaned[f"{job_id}:{execution_id}"] = 0
    if orphaned:
        # Expired as of the epoch: the clean-up below takes these entries only.
        redis.zadd(registry.key, orphaned, xx=True)
        registry.cleanup(timestamp=1)
    jobs = [entry.split(":", 1)[0] for entry in orphaned]
    if jobs:
        log.warning("training cut short, queued to run again: %s", ", ".join(jobs))
    return jobs


def worker_class() -> type:
    """rq's ``SimpleWorker`` whose command listener wakes every second.

    On SIGTERM rq unsubscribes from its command channel and joins the listener thread.
    If that thread has already read the unsubscribe reply, its next ``get_message``
    waits for a new subscription for the whole sleep time, and redis-py 8.2 joins the
    thread in ``stop()``: a worker stopping while idle hung for a minute about one time
    in three, and ``systemctl stop`` or a deploy waited with it."""
    from rq import SimpleWorker

    class Worker(SimpleWorker):  # type: ignore[misc]
        def subscribe(self) -> None:
            self.log.info(
                "Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name
            )
            self.pubsub = self.connection.pubsub()
            self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
            self.pubsub_thread = self.pubsub.run_in_thread(  # type: ignore[assignment]
                sleep_time=LISTENER_WAKE_SECONDS,
                daemon=True,
                exception_handler=self._pubsub_exception_handler,
            )

    return Worker


def _cron(redis_url: str, sweep_every: int, scan_every: int, hotspot_every: int = 900) -> None:
    from redis import Redis
    from rq.cron import CronScheduler

    from contact import tasks
    from contact.jobs import QUEUE, TRAIN_QUEUE, TRAIN_TIMEOUT_SECONDS

    cron = CronScheduler(connection=Redis.from_url(redis_url), name="contact-cron")
    cron.register(tasks.sweep_outbox, queue_name=QUEUE, interval=sweep_every, result_ttl=60)
    cron.register(tasks.sla_scan, queue_name=QUEUE, interval=scan_every, result_ttl=60)
    cron.register(
        tasks.kiosk_scan, queue_name=QUEUE, interval=tasks.KIOSK_SCAN_SECONDS, result_ttl=60
    )
    cron.register(tasks.hotspot_scan, queue_name=QUEUE, interval=hotspot_every, result_ttl=60)
    cron.register(
        tasks.prune_events, queue_name=QUEUE, interval=tasks.PRUNE_EVENTS_SECONDS, result_ttl=60
    )
    cron.register(
        tasks.retrain_routing,
        queue_name=TRAIN_QUEUE,
        interval=tasks.RETRAIN_CHECK_SECONDS,
        result_ttl=3600,
        job_timeout=TRAIN_TIMEOUT_SECONDS,
    )
    from contact.app import lanes

    for lane in lanes():
        cron.register(lane.sweep_job, queue_name=QUEUE, interval=sweep_every, result_ttl=60)
    cron.start()


def _trainer(overrides: dict[str, object]) -> None:
    """The training queue's worker (a child process; the settings come from the parent)."""
    from redis import Redis
    from rq import Queue

    from contact import tasks
    from contact.app import build_runtime
    from contact.jobs import TRAIN_QUEUE
    from contact.settings import load_settings

    settings = load_settings(**overrides)
    logging.basicConfig(
        level=settings.LOG_LEVEL.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    runtime = build_runtime(settings, pool_size=2)
    loop.run_until_complete(runtime.bus.start(listen=False))
    tasks.install(runtime, loop)
    redis = Redis.from_url(settings.REDIS_URL or "")
    try:
        # A training this host's previous worker was running when it died runs again now.
        requeue_orphaned_training(redis, gone_from_this_host)
        worker_class()(
            [Queue(TRAIN_QUEUE, connection=redis)],
            connection=redis,
            name=trainer_name(os.getpid()),
        ).work()
    finally:
        loop.run_until_complete(runtime.close())
        loop.close()


def _stop_child(child: multiprocessing.process.BaseProcess) -> None:
    child.terminate()
    child.join(CHILD_STOP_SECONDS)
    if child.is_alive():
        log.warning("%s still busy after %.0f s; stopping it now", child.name, CHILD_STOP_SECONDS)
        child.kill()
        child.join()


def run_worker(settings: Settings, *, burst: bool = False) -> int:
    from redis import Redis
    from rq import Queue

    from contact import model_router, tasks
    from contact.app import build_runtime
    from contact.jobs import QUEUE

    logging.basicConfig(
        level=settings.LOG_LEVEL.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    if not settings.REDIS_URL:
        print("contact: setting CONTACT_REDIS_URL is required for the worker", file=sys.stderr)
        return 2
    if settings.WORKER_NICE and hasattr(os, "nice"):
        os.nice(settings.WORKER_NICE)  # the cron child inherits it
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    runtime = build_runtime(settings, pool_size=4)
    try:
        # The caches, and the district boundaries checked against the catalogue, as the
        # web process does: a setting the web would refuse stops the worker too.
        loop.run_until_complete(runtime.warm())
    except SettingsError as exc:
        print(f"contact: {exc}", file=sys.stderr)
        loop.run_until_complete(runtime.close())
        loop.close()
        return 2
    loop.run_until_complete(runtime.bus.start(listen=False))
    loop.run_until_complete(model_router.warm(runtime))
    tasks.install(runtime, loop)
    gc.freeze()  # start-up's objects stay; full collections need not scan them

    cron = trainer = None
    if not burst:
        cron = multiprocessing.get_context("spawn").Process(
            target=_cron,
            args=(
                settings.REDIS_URL,
                settings.SWEEP_INTERVAL_SECONDS,
                settings.SLA_SCAN_INTERVAL_SECONDS,
                settings.HOTSPOT_SCAN_INTERVAL_SECONDS,
            ),
            daemon=True,
            name="contact-cron",
        )
        cron.start()
        trainer = multiprocessing.get_context("spawn").Process(
            target=_trainer,
            args=(settings.model_dump(),),
            daemon=True,
            name="contact-train",
        )
        trainer.start()
    redis = Redis.from_url(settings.REDIS_URL)
    worker = worker_class()([Queue(QUEUE, connection=redis)], connection=redis)
    try:
        if burst:  # also deliver what no nudge pointed at
            loop.run_until_complete(tasks.sweep_outbox_async(runtime))
        # The scheduler runs jobs retried with a delay (media downloads).
        worker.work(burst=burst, with_scheduler=not burst)
    finally:
        for child in (cron, trainer):
            if child is not None:
                _stop_child(child)
        if trainer is not None and trainer.pid is not None:
            stopped = trainer_name(trainer.pid)
            try:
                requeue_orphaned_training(redis, lambda name: name == stopped)
            except Exception:  # Redis gone too: rq requeues it once its heartbeat lapses
                log.exception("could not queue the cut-short training again")
        loop.run_until_complete(runtime.bus.stop())
        loop.run_until_complete(runtime.db.dispose())
        loop.close()
    return 0
