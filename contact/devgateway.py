"""The dev gateway's outbox: every SMS and voice message the system "sent".

Present only when a gateway is ``dev`` (the embedded default and tests).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import select

from contact.models import DevMessage

router = APIRouter(tags=["dev gateway"])
_env = Environment(loader=PackageLoader("contact", "templates"), autoescape=select_autoescape())


async def _rows(request: Request, limit: int) -> list[dict[str, object]]:
    rt = request.app.state.runtime
    async with rt.db.session() as s:
        rows = (
            await s.execute(select(DevMessage).order_by(DevMessage.id.desc()).limit(limit))
        ).scalars()
        return [
            {
                "id": m.id,
                "channel": m.channel.value,
                "to": m.to_addr,
                "body": m.body,
                "status": m.status,
                "segments": m.segments,
                "template": m.template,
                "created_at": m.created_at.isoformat(),
            }
            for m in rows
        ]


@router.get("/dev/outbox.json")
async def outbox_json(
    request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> list[dict[str, object]]:
    return await _rows(request, limit)


@router.get("/dev/outbox", response_class=HTMLResponse)
async def outbox_html(
    request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> HTMLResponse:
    rows = await _rows(request, limit)
    return HTMLResponse(_env.get_template("dev_outbox.html").render(rows=rows))
