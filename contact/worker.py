"""``contact worker``: a non-forking rq worker plus the periodic jobs.

rq's default worker forks per job (~60 jobs/s); ``SimpleWorker`` runs them in the
process (~250/s) and keeps one event loop and connection pool warm. A child
process runs rq's cron scheduler, which enqueues the sweeper, the SLA scan and the kiosk scan.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import sys

from contact.settings import Settings

log = logging.getLogger(__name__)


def _cron(redis_url: str, sweep_every: int, scan_every: int) -> None:
    from redis import Redis
    from rq.cron import CronScheduler

    from contact import tasks
    from contact.jobs import QUEUE

    cron = CronScheduler(connection=Redis.from_url(redis_url), name="contact-cron")
    cron.register(tasks.sweep_outbox, queue_name=QUEUE, interval=sweep_every, result_ttl=60)
    cron.register(tasks.sla_scan, queue_name=QUEUE, interval=scan_every, result_ttl=60)
    cron.register(
        tasks.kiosk_scan, queue_name=QUEUE, interval=tasks.KIOSK_SCAN_SECONDS, result_ttl=60
    )
    from contact.app import lanes

    for lane in lanes():
        cron.register(lane.sweep_job, queue_name=QUEUE, interval=sweep_every, result_ttl=60)
    cron.start()


def run_worker(settings: Settings, *, burst: bool = False) -> int:
    from redis import Redis
    from rq import Queue, SimpleWorker

    from contact import tasks
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
    loop.run_until_complete(runtime.bus.start(listen=False))
    tasks.install(runtime, loop)
    gc.freeze()  # start-up's objects stay; full collections need not scan them

    cron = None
    if not burst:
        cron = multiprocessing.get_context("spawn").Process(
            target=_cron,
            args=(
                settings.REDIS_URL,
                settings.SWEEP_INTERVAL_SECONDS,
                settings.SLA_SCAN_INTERVAL_SECONDS,
            ),
            daemon=True,
            name="contact-cron",
        )
        cron.start()
    redis = Redis.from_url(settings.REDIS_URL)
    worker = SimpleWorker([Queue(QUEUE, connection=redis)], connection=redis)
    try:
        if burst:  # also deliver what no nudge pointed at
            loop.run_until_complete(tasks.sweep_outbox_async(runtime))
        # The scheduler runs jobs retried with a delay (media downloads).
        worker.work(burst=burst, with_scheduler=not burst)
    finally:
        if cron is not None:
            cron.terminate()
        loop.run_until_complete(runtime.bus.stop())
        loop.run_until_complete(runtime.db.dispose())
        loop.close()
    return 0
