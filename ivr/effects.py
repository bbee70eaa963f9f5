"""What the IVR engine does to the world, through the ticket core.

One :class:`CoreEffects` per webhook request, on the request's session: a ticket a
caller reports is opened in the same transaction that saves the call's state.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from contact import service
from contact.lifecycle import STATUS_NAMES
from contact.models import (
    Call,
    Channel,
    Citizen,
    KbArticle,
    Service,
    Ticket,
    TicketEvent,
    TicketKind,
    TicketStatus,
    utcnow,
)
from contact.principal import CITIZEN
from contact.runtime import Runtime
from contact.schemas import DESCRIPTION_MAX, TicketCreate
from ivr.engine import CallState, TicketView

REPLY_SPOKEN_MAX = 150  # characters of the department's reply read out
ANSWER_SPOKEN_MAX = 400
STEP_NAMES = {
    "zh-CN": {
        "created": "已受理",
        "dispatched": "已派至{dept}",
        "accepted": "{dept}已签收",
        "returned": "{dept}已退回，正在重新派单",
        "resolved": "{dept}已办结",
        "reopened": "已重新办理",
        "closed": "已归档",
    },
    "en": {
        "created": "received",
        "dispatched": "sent to {dept}",
        "accepted": "accepted by {dept}",
        "returned": "returned by {dept} and being re-assigned",
        "resolved": "resolved by {dept}",
        "reopened": "reopened",
        "closed": "closed",
    },
}


def _last_public(column: Any) -> Any:
    return (
        select(column)
        .where(TicketEvent.ticket_id == Ticket.id, TicketEvent.public.is_(True))
        .order_by(TicketEvent.id.desc())
        .limit(1)
        .scalar_subquery()
    )


# One statement per lookup: the ticket, its citizen's phone and its last public step.
_FIND = (
    select(
        Ticket.id,
        Ticket.reference,
        Ticket.status,
        Ticket.department_id,
        Ticket.reply,
        Citizen.phone,
        _last_public(TicketEvent.kind).label("last_kind"),
        _last_public(TicketEvent.created_at).label("last_at"),
    )
    .outerjoin(Citizen, Citizen.id == Ticket.citizen_id)
    .where(Ticket.reference == bindparam("reference"))
)


def _aware(value: datetime) -> datetime:
    """Timestamps from a subquery skip the column type (SQLite gives naive UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


async def ticket_view(rt: Runtime, row: Any, language: str) -> TicketView:
    """What the caller hears about a ticket (``row``: a mapping of the lookup's columns):
    status, last step, the department's reply."""
    catalogue = await rt.catalogue()
    dept = catalogue.dept_by_id.get(row["department_id"] or -1)
    zh = language == "zh-CN"
    dept_name = (dept.name_zh if zh else dept.name_en) if dept else ""
    names = STEP_NAMES["zh-CN" if zh else "en"]
    last_step = ""
    if row["last_kind"] is not None and row["last_at"] is not None:
        when = _aware(row["last_at"]).astimezone(rt.settings.tz)
        step = names.get(row["last_kind"], "").format(dept=dept_name or "")
        if step:
            last_step = (
                f"{when.month}月{when.day}日{step}" if zh else f"{step} on {when:%B} {when.day}"
            )
    reply = ""
    if row["reply"]:
        text = row["reply"][:REPLY_SPOKEN_MAX]
        text += "…" if len(row["reply"]) > REPLY_SPOKEN_MAX else ""
        reply = f"部门答复：{text}" if zh else f"The department replied: {text}"
    status = STATUS_NAMES["zh-CN" if zh else "en"][TicketStatus(row["status"]).value]
    return TicketView(row["reference"], row["phone"], status, last_step, reply)


async def agents_available(rt: Runtime) -> bool:
    """Whether callers can reach an agent now (``AGENT_HOURS``)."""
    hours = rt.settings.AGENT_HOURS
    if hours != "calendar":
        return hours == "always"
    calendar = await rt.calendar()
    return calendar.is_open(utcnow())


class CoreEffects:
    def __init__(self, rt: Runtime, session: AsyncSession, call: Call) -> None:
        self.rt = rt
        self.session = session
        self.call = call

    async def find_ticket(self, reference: str, language: str) -> TicketView | None:
        row = (await self.session.execute(_FIND, {"reference": reference})).first()
        if row is None:
            return None
        self.call.ticket_id = self.call.ticket_id or row.id
        return await ticket_view(self.rt, row._mapping, language)

    async def open_ticket(self, state: CallState, *, callback: bool) -> str | None:
        zh = state.language == "zh-CN"
        spoken = str(state.vars.get("speech") or "").strip()
        group = str(state.vars.get("service_group") or "")
        recording = str(state.vars.get("recording") or "")
        if spoken:
            description = spoken
        elif callback:
            description = "市民来电留言，请回电。" if zh else "Voicemail: please call back."
        else:
            description = "市民来电留言（见录音）。" if zh else "Voicemail (see the recording)."
        if group and not callback:
            description = f"[{group}] {description}"
        if recording:
            self.call.recording_url = recording[:500]
        phone = state.caller or None
        ticket, _ = await service.open_ticket(
            self.rt,
            self.session,
            TicketCreate(
                description=description[:DESCRIPTION_MAX],
                channel=Channel.voice,
                phone=phone,
                locale=state.language,
                kind=TicketKind.inquiry if callback else None,
                title=("回电请求" if zh else "Callback request") if callback else "",
            ),
            CITIZEN,
            citizen_id=self.call.citizen_id,
        )
        self.call.ticket_id = ticket.id
        return ticket.reference

    async def choices(self, source: str, language: str) -> list[tuple[str, str]]:
        zh = language == "zh-CN"
        if source == "service_groups":
            groups = (
                await self.session.execute(
                    select(Service.group_zh, Service.group_en)
                    .group_by(Service.group_zh, Service.group_en)
                    .order_by(Service.group_zh)
                )
            ).all()
            return [(g_zh, g_zh if zh else g_en) for g_zh, g_en in groups]
        if source == "kb_top":
            articles = (
                await self.session.execute(
                    select(KbArticle.id, KbArticle.title_zh, KbArticle.title_en)
                    .order_by(KbArticle.id)
                    .limit(5)
                )
            ).all()
            return [(str(i), t_zh if zh else t_en) for i, t_zh, t_en in articles]
        return []

    async def kb_answer(self, article: str, language: str) -> str:
        row = (
            await self.session.execute(
                select(KbArticle.body_zh, KbArticle.body_en).where(
                    KbArticle.id == (int(article) if article.isdigit() else -1)
                )
            )
        ).first()
        if row is None:
            return ""
        body = row.body_zh if language == "zh-CN" else row.body_en
        return body[:ANSWER_SPOKEN_MAX]

    async def prefer_voice(self, reference: str) -> bool:
        """The citizen wants the outcome by phone call (a survey call after resolution)."""
        ticket = (
            await self.session.execute(select(Ticket).where(Ticket.reference == reference))
        ).scalar_one_or_none()
        if ticket is None or not self.call.from_addr:
            return False
        ticket.notify_channel = Channel.voice
        return True

    async def working_now(self) -> bool:
        return await agents_available(self.rt)
