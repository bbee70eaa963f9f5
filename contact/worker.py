"""``contact worker``: a non-forking rq worker plus the periodic jobs.

rq's default worker forks per job (~60 jobs/s); ``SimpleWorker`` runs them in the
process (~250/s) and keeps one event loop and connection pool warm. A child
process runs rq's cron scheduler, which enqueues the sweeper, the SLA scan, the kiosk
scan, the hot-spot scan, the hourly deletion of old real-time events and the hourly "is
routing retraining due?" check. Another child runs the training queue, so a model being
trained never holds up deliveries.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import sys

from contact.settings import Settings, SettingsError

log = logging.getLogger(__name__)

# How long the listener for rq's commands (shutdown, stop a job) may sleep before it
# looks whether it should end. rq asks for 60 s; a worker stopping then waits as long.
LISTENER_WAKE_SECONDS = 1.0
# How long the cron and training children have to stop on their own before they are
# killed. A training cut short is run again later (jobs.TRAIN_RETRIES); without the
# limit a stop waited for the training to end, past a container's 10 s stop grace.
CHILD_STOP_SECONDS = 3.0


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
        worker_class()([Queue(TRAIN_QUEUE, connection=redis)], connection=redis).work()
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
        loop.run_until_complete(runtime.bus.stop())
        loop.run_until_complete(runtime.db.dispose())
        loop.close()
    return 0
