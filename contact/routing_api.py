"""Routing model versions for admins: list them with their metrics, train a new one
from resolved tickets (queued), and choose which version is in use."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import select

from agent_ui.admin_api import Admin, _audit
from contact import model_router
from contact.api import ERRORS
from contact.deps import DbSession, RuntimeDep
from contact.errors import NotFound
from contact.models import RoutingModel, utcnow
from contact.runtime import Runtime

router = APIRouter(prefix="/api/v1/admin/routing", tags=["admin"], responses=ERRORS)

TRAIN_JOB_ID = "routing-retrain"


class ModelVersion(BaseModel):
    version: int
    active: bool
    source: str
    rows: int
    labels: list[str]
    accuracy: float | None
    macro_f1: float | None
    metrics: dict[str, Any]
    size: int
    sha256: str
    train_seconds: float
    created_at: datetime


class ModelList(BaseModel):
    items: list[ModelVersion]
    auto_dispatch: float | None
    retrain_hours: int
    resolved_tickets: int  # resolved tickets there are to learn from
    needed: int  # the fewest a first version is trained from


@router.get("/models", response_model=ModelList)
async def list_models(rt: RuntimeDep, session: DbSession, me: Admin) -> ModelList:
    """Every version, newest first, with how it measured on its held-out share beside
    the majority and keyword baselines."""
    rows = (
        await session.execute(select(RoutingModel).order_by(RoutingModel.version.desc()).limit(100))
    ).scalars()
    return ModelList(
        items=[
            ModelVersion(
                version=m.version,
                active=m.active,
                source=m.source,
                rows=m.rows,
                labels=list(m.labels),
                accuracy=m.metrics.get("accuracy"),
                macro_f1=m.metrics.get("macro_f1"),
                metrics=m.metrics,
                size=m.size,
                sha256=m.sha256,
                train_seconds=m.train_seconds,
                created_at=m.created_at,
            )
            for m in rows
        ],
        auto_dispatch=rt.settings.ROUTING_AUTO_DISPATCH,
        retrain_hours=rt.settings.ROUTING_RETRAIN_HOURS,
        resolved_tickets=await model_router.learnable_count(session),
        needed=model_router.MIN_ROWS,
    )


@router.post("/models/{version}/activate", response_model=ModelList)
async def activate_model(
    version: int, request: Request, rt: RuntimeDep, session: DbSession, me: Admin
) -> ModelList:
    """Put a version in use (every process picks it up within seconds)."""
    if not await model_router.activate(rt, session, version):
        raise NotFound(f"no routing model version {version}")
    await _audit(session, request, me, "routing.activate", version=version)
    await session.commit()
    model_router.forget(rt)
    return await list_models(rt, session, me)


class OutcomeRow(BaseModel):
    rule: str  # how intake routed them: service, keyword, model, fallback
    tickets: int  # resolved in the period
    right: int  # of those, resolved by the department intake suggested
    share: float | None  # right ÷ tickets
    auto: int  # of those, dispatched at once by auto-dispatch
    auto_right: int  # of those, resolved by the department they were sent to
    auto_share: float | None  # auto_right ÷ auto
    version: int | None  # the routing model's version (rule "model"), where recorded
    services: int  # of the tickets, those intake gave a service (not the general one)
    services_kept: int  # of those, resolved under that service
    services_share: float | None  # services_kept ÷ services


class Outcomes(BaseModel):
    days: int
    since: datetime
    items: list[OutcomeRow]


@router.get("/outcomes", response_model=Outcomes)
async def routing_outcomes(
    session: DbSession, me: Admin, days: Annotated[int, Query(ge=1, le=366)] = 90
) -> Outcomes:
    """How routing did on the city's own tickets: those resolved in the last ``days``,
    by how intake routed them (the catalogue's rules, the model by version, the
    fallback), and how many the department intake suggested resolved; the same for
    those auto-dispatch sent at once; and how many kept the service intake gave them.
    Held-out figures say how a version measured; these say how routing does."""
    since = utcnow() - timedelta(days=days)
    return Outcomes(
        days=days,
        since=since,
        items=[
            OutcomeRow(
                rule=o.rule,
                tickets=o.tickets,
                right=o.right,
                share=round(o.right / o.tickets, 4) if o.tickets else None,
                auto=o.auto,
                auto_right=o.auto_right,
                auto_share=round(o.auto_right / o.auto, 4) if o.auto else None,
                version=o.version,
                services=o.services,
                services_kept=o.services_kept,
                services_share=round(o.services_kept / o.services, 4) if o.services else None,
            )
            for o in await model_router.live_routing(session, since)
        ],
    )


class TrainQueued(BaseModel):
    queued: bool
    job: str


@router.post("/train", status_code=202, response_model=TrainQueued)
async def train_now(
    request: Request, response: Response, rt: RuntimeDep, session: DbSession, me: Admin
) -> TrainQueued:
    """Train a new version from resolved tickets now (in the background). It becomes
    active if it measures no worse than the one in use."""
    await _audit(session, request, me, "routing.train")
    await session.commit()
    await queue_training(rt)
    response.headers["Location"] = "/api/v1/admin/routing/models"
    return TrainQueued(queued=True, job=TRAIN_JOB_ID)


async def queue_training(rt: Runtime) -> None:
    from contact import tasks

    if rt.settings.REDIS_URL:
        from redis import Redis
        from rq import Queue, Retry

        from contact.jobs import TRAIN_QUEUE, TRAIN_RETRIES, TRAIN_TIMEOUT_SECONDS

        def enqueue() -> None:
            with Redis.from_url(rt.settings.REDIS_URL or "") as redis:
                # An admin's request outlives a worker stopped or killed mid-training.
                Queue(TRAIN_QUEUE, connection=redis).enqueue(
                    tasks.retrain_routing,
                    scheduled=False,
                    job_id=TRAIN_JOB_ID,
                    job_timeout=TRAIN_TIMEOUT_SECONDS,
                    result_ttl=3600,
                    retry=Retry(max=TRAIN_RETRIES),
                )

        await asyncio.to_thread(enqueue)
        return
    running = rt.extras.get("routing_training")
    if running is None or running.done():
        rt.extras["routing_training"] = rt.spawn(
            tasks.retrain_routing_async(rt, scheduled=False), name="routing-train"
        )
