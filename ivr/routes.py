"""Twilio Voice webhooks under ``/ivr/twilio/``, answered with TwiML.

``/voice`` starts a call (a retried start finds the same call: unique on CallSid);
``/gather`` and ``/record`` carry the caller's keys, speech or voicemail for the node
named in the query; the flow engine decides and the call's state is saved in the same
transaction as any ticket it opened. ``/wait`` speaks the queue position while the
caller waits for an agent, ``/connect`` bridges the caller to the agent who took the
call, ``/status`` records each call status once. Every request is signed.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from functools import lru_cache
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from twilio.twiml.voice_response import VoiceResponse

from channels.twilio_webhooks import verified_form
from contact import bus, service
from contact.db import dialect_name, insert_into
from contact.errors import field_error
from contact.events import CallEvent
from contact.models import Call, CallStatusEvent, Direction, TicketEvent, User, utcnow
from contact.runtime import Runtime
from contact.schemas import normalize_phone
from contact.settings import Settings
from ivr.effects import CoreEffects, agents_available, ticket_view
from ivr.engine import CallState, Engine, Turn
from ivr.flow import Flow, FlowError, load_flows
from ivr.twiml import Urls, render

log = logging.getLogger(__name__)
router = APIRouter(prefix="/ivr/twilio", tags=["voice"])
XML = "application/xml"
TERMINAL = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
STATUS_ORDER = ["queued", "initiated", "ringing", "in-progress", *sorted(TERMINAL)]


@lru_cache(maxsize=1)
def flows() -> dict[str, Flow]:
    return load_flows()


def flow_for(rt: Runtime) -> Flow:
    return flows()[rt.settings.IVR_FLOW]


def check_flow(settings: Settings) -> None:
    if settings.IVR_FLOW not in flows():
        raise FlowError(
            f"setting IVR_FLOW: no flow named '{settings.IVR_FLOW}' in ivr/flows "
            f"(there are: {', '.join(sorted(flows())) or 'none'})"
        )


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def _xml(body: str) -> Response:
    return Response(body, media_type=XML)


def caller_of(params: dict[str, str], region: str) -> str:
    """The caller's E.164 number, or "" when withheld or not a phone (a SIP client)."""
    try:
        return normalize_phone(params.get("From", ""), region)
    except ValueError:
        return ""


# Built once: the hot path only binds the CallSid.
_LOAD = select(Call).where(Call.provider == "twilio", Call.call_sid == bindparam("sid"))
_LOAD_LOCKED = _LOAD.with_for_update()


async def _load(session: AsyncSession, sid: str) -> Call | None:
    """The call, locked on PostgreSQL (a call's webhooks come one at a time, but a retry
    may overlap the original)."""
    stmt = _LOAD_LOCKED if dialect_name(session) == "postgresql" else _LOAD
    return (await session.execute(stmt, {"sid": sid})).scalar_one_or_none()


def _sid(params: dict[str, str]) -> str:
    sid = params.get("CallSid", "")[:64]
    if not sid:
        raise field_error("CallSid", "required")
    return sid


async def _save(rt: Runtime, session: AsyncSession, call: Call, state: CallState) -> None:
    call.state = state.to_json()
    call.locale = state.language
    call.updated_at = utcnow()
    if state.ended == "queued" and call.queued_at is None:
        call.queue = "hotline"
        call.queued_at = utcnow()
        await _publish(session, "call.incoming", call)


async def _publish(
    session: AsyncSession,
    kind: Literal["call.incoming", "call.connected", "call.ended"],
    call: Call,
    **extra: Any,
) -> None:
    await bus.record(
        session,
        CallEvent(
            type=kind,
            call_id=call.id,
            citizen_id=call.citizen_id,
            ticket_id=call.ticket_id,
            queue=call.queue,
            agent_id=call.agent_id,
            **extra,
        ),
        bus.Audience(),
    )


@router.post("/voice")
async def voice(request: Request) -> Response:
    """A call comes in: the flow starts (a retried request hears the same question)."""
    rt = _runtime(request)
    params = await verified_form(request, rt)
    sid = _sid(params)
    flow = flow_for(rt)
    caller = caller_of(params, rt.settings.DEFAULT_REGION)
    async with rt.db.session() as session:
        call = await _load(session, sid)
        if call is None:
            citizen_id = None
            if caller:
                citizen_id = await service.citizen_for_phone(session, caller, flow.default_language)
            now = utcnow()
            await session.execute(
                insert_into(session, Call, conflict=("provider", "call_sid")),
                dict(
                    provider="twilio",
                    call_sid=sid,
                    direction=Direction.inbound,
                    purpose="ivr",
                    from_addr=caller or None,
                    to_addr=params.get("To", "")[:64] or None,
                    citizen_id=citizen_id,
                    locale=flow.default_language,
                    status=(params.get("CallStatus") or "ringing")[:16],
                    flow=flow.name,
                    state={},
                    started_at=now,
                    updated_at=now,
                ),
            )
            call = await _load(session, sid)
        assert call is not None
        engine = Engine(flow, CoreEffects(rt, session, call))
        if call.state:
            state = CallState.from_json(call.state)
            turn = await engine.repeat(state)
        else:
            state = engine.new_call(caller)
            turn = await engine.start(state)
        await _save(rt, session, call, state)
        await rt.commit(session)
    return _xml(render(turn, flow, Urls(rt.settings.PUBLIC_BASE_URL)))


async def _answer(request: Request, node: str, **given: str | None) -> Response:
    rt = _runtime(request)
    params = await verified_form(request, rt)
    sid = _sid(params)
    flow = flow_for(rt)
    values = {k: params.get(v) for k, v in given.items() if v}
    if rt.db.postgres:
        quick = await _answer_quickly(rt, flow, sid, node, values)
        if quick is not None:
            return _xml(render(quick, flow, Urls(rt.settings.PUBLIC_BASE_URL)))
    async with rt.db.session() as session:
        call = await _load(session, sid)
        if call is None or not call.state:  # never started here: start it now
            await session.rollback()
            return await voice(request)
        engine = Engine(flow, CoreEffects(rt, session, call))
        state = CallState.from_json(call.state)
        turn: Turn = await engine.answer(state, node, **values)  # type: ignore[arg-type]
        await _save(rt, session, call, state)
        await rt.commit(session)
    return _xml(render(turn, flow, Urls(rt.settings.PUBLIC_BASE_URL)))


class _NeedsSession(Exception):
    """The turn touches tickets or the queue: it takes the session path."""


class _ReadOnlyEffects:
    """Effects for a turn that moves through the menu or reads a ticket, on the driver
    connection; anything that writes (or a list to choose from) needs a session."""

    def __init__(self, rt: Runtime, conn: Any) -> None:
        self.rt = rt
        self.conn = conn
        self.ticket_id: int | None = None

    async def find_ticket(self, reference: str, language: str) -> Any:
        row = await self.conn.fetchrow(_QUICK_FIND, reference)
        if row is None:
            return None
        self.ticket_id = self.ticket_id or row["id"]
        return await ticket_view(self.rt, row, language)

    async def open_ticket(self, state: CallState, *, callback: bool) -> Any:
        raise _NeedsSession

    async def choices(self, source: str, language: str) -> Any:
        raise _NeedsSession

    async def kb_answer(self, article: str, language: str) -> Any:
        raise _NeedsSession

    async def working_now(self) -> bool:
        return await agents_available(self.rt)

    async def prefer_voice(self, reference: str) -> bool:
        raise _NeedsSession


_QUICK_LOAD = "SELECT id, state, updated_at FROM calls WHERE provider = 'twilio' AND call_sid = $1"
_QUICK_SAVE = (
    "UPDATE calls SET state = $1, locale = $2, updated_at = $3, "
    "ticket_id = COALESCE(ticket_id, $6) WHERE id = $4 AND updated_at = $5"
)
# The ticket, its citizen's phone and its last public step (as effects.CoreEffects reads).
_QUICK_FIND = """
SELECT t.id, t.reference, t.status, t.department_id, t.reply, c.phone,
  (SELECT e.kind FROM ticket_events e WHERE e.ticket_id = t.id AND e.public
   ORDER BY e.id DESC LIMIT 1) AS last_kind,
  (SELECT e.created_at FROM ticket_events e WHERE e.ticket_id = t.id AND e.public
   ORDER BY e.id DESC LIMIT 1) AS last_at
FROM tickets t LEFT JOIN citizens c ON c.id = t.citizen_id
WHERE t.reference = $1
"""


async def _answer_quickly(
    rt: Runtime, flow: Flow, sid: str, node: str, values: dict[str, str | None]
) -> Turn | None:
    """A menu move or a status lookup on PostgreSQL in autocommitted statements: read
    the call, (read the ticket,) write the call's new state if nobody changed it
    meanwhile. None: the turn needs the session path (it opens a ticket, lists choices,
    queues the caller, ends the call, or raced)."""
    async with rt.db.driver() as conn:
        row = await conn.fetchrow(_QUICK_LOAD, sid)
        if row is None or not row["state"]:
            return None
        state = CallState.from_json(dict(row["state"]))
        effects = _ReadOnlyEffects(rt, conn)
        try:
            turn = await Engine(flow, effects).answer(state, node, **values)  # type: ignore[arg-type]
        except _NeedsSession:
            return None
        if state.ended:
            return None
        done = await conn.execute(
            _QUICK_SAVE,
            json.dumps(state.to_json(), ensure_ascii=False),
            state.language,
            utcnow(),
            row["id"],
            row["updated_at"],
            effects.ticket_id,
        )
    return turn if done == "UPDATE 1" else None


def _node(request: Request) -> str:
    node = request.query_params.get("node", "")
    if not node or len(node) > 64:
        raise field_error("node", "required, at most 64 characters")
    return node


@router.post("/gather")
async def gather(request: Request) -> Response:
    """The caller's keys (``Digits``) or words (``SpeechResult``) at the node named in
    the query (``?node=``)."""
    return await _answer(request, _node(request), digits="Digits", speech="SpeechResult")


@router.post("/record")
async def record(request: Request) -> Response:
    """A voicemail was recorded at the node named in the query (``RecordingUrl``)."""
    return await _answer(request, _node(request), recording="RecordingUrl")


@router.post("/transcription")
async def transcription(request: Request) -> Response:
    """Twilio's transcription of a voicemail: kept on the call and noted on its ticket."""
    rt = _runtime(request)
    params = await verified_form(request, rt)
    sid = _sid(params)
    text = (params.get("TranscriptionText") or "").strip()[:4000]
    async with rt.db.session() as session:
        call = await _load(session, sid)
        if call is not None and text and call.transcription != text:
            call.transcription = text
            if call.ticket_id is not None:
                session.add(
                    TicketEvent(
                        ticket_id=call.ticket_id,
                        kind="voicemail_transcribed",
                        actor="system",
                        data={"call_id": call.id, "text": text},
                        public=False,
                        created_at=utcnow(),
                    )
                )
            await rt.commit(session)
    return _xml(str(VoiceResponse()))


WAIT = {
    "zh-CN": "您前面还有{ahead}位来电，预计等待约{minutes}分钟，请不要挂机。",
    "en": "There are {ahead} callers ahead of you. The expected wait is about {minutes} "
    "minutes. Please stay on the line.",
}
WAIT_FIRST = {
    "zh-CN": "您是下一位，请稍候。",
    "en": "You are next. Please hold.",
}
HOLD_SECONDS = 20


def _count(raw: str | None, default: int) -> int:
    return int(raw) if raw and raw.isdigit() else default


@router.post("/wait")
async def wait(request: Request) -> Response:
    """Played while the caller waits in the queue (Twilio asks again when it ends);
    ``?lang=`` is the call's language."""
    rt = _runtime(request)
    params = await verified_form(request, rt)
    flow = flow_for(rt)
    lang = request.query_params.get("lang", "")
    lang = lang if lang in flow.languages else flow.default_language
    position = _count(params.get("QueuePosition"), 1)
    average = _count(params.get("AvgQueueTime"), 0)
    ahead = max(0, position - 1)
    minutes = max(1, round((average or 60) * max(position, 1) / 60))
    text = WAIT[lang].format(ahead=ahead, minutes=minutes) if ahead else WAIT_FIRST[lang]
    resp = VoiceResponse()
    resp.say(text, language=flow.say_language.get(lang, lang), voice=flow.voice.get(lang))
    resp.pause(length=HOLD_SECONDS)
    return _xml(str(resp))


@router.post("/queue-exit")
async def queue_exit(request: Request) -> Response:
    """The caller left the queue (bridged to an agent, hung up, ...)."""
    rt = _runtime(request)
    params = await verified_form(request, rt)
    sid = _sid(params)
    result = (params.get("QueueResult") or "")[:16]
    async with rt.db.session() as session:
        call = await _load(session, sid)
        if call is not None and call.queue is not None:
            call.queue = None
            call.state = {**call.state, "queue_result": result}
            await rt.commit(session)
    return _xml(str(VoiceResponse()))


CONNECTING = {"zh-CN": "正在为您接通人工服务。", "en": "Connecting you to an agent."}


@router.post("/connect")
async def connect(request: Request, agent: int = Query(ge=1)) -> Response:
    """Bridge the caller to the agent who took the call (their Twilio Client identity)."""
    rt = _runtime(request)
    params = await verified_form(request, rt)
    sid = _sid(params)
    flow = flow_for(rt)
    resp = VoiceResponse()
    async with rt.db.session() as session:
        call = await _load(session, sid)
        user = await session.get(User, agent)
        if call is None or user is None:
            resp.say(CONNECTING["zh-CN"], language=flow.say_language["zh-CN"])
            resp.hangup()
            return _xml(str(resp))
        lang = call.locale if call.locale in flow.languages else flow.default_language
        if call.connected_at is None:
            call.connected_at = utcnow()
            call.agent_id = user.id
            call.queue = None
            await _publish(session, "call.connected", call)
            await rt.commit(session)
    resp.say(
        CONNECTING[lang], language=flow.say_language.get(lang, lang), voice=flow.voice.get(lang)
    )
    dial = resp.dial(action=Urls(rt.settings.PUBLIC_BASE_URL)("dial-done"), method="POST")
    dial.client(user.username)
    return _xml(str(resp))


@router.post("/dial-done")
async def dial_done(request: Request) -> Response:
    """The agent's leg ended: the call ends too."""
    rt = _runtime(request)
    await verified_form(request, rt)
    resp = VoiceResponse()
    resp.hangup()
    return _xml(str(resp))


@router.post("/status")
async def status(request: Request) -> Response:
    """Call status callbacks, each status recorded once; the end of a call ends it."""
    rt = _runtime(request)
    params = await verified_form(request, rt)
    sid = _sid(params)
    new_status = (params.get("CallStatus") or "").strip().lower()[:16]
    if new_status not in STATUS_ORDER:
        return _xml(str(VoiceResponse()))
    async with rt.db.session() as session:
        call = await _load(session, sid)
        if call is None:
            return _xml(str(VoiceResponse()))
        fresh = (
            await session.execute(
                insert_into(
                    session, CallStatusEvent, conflict=("call_id", "status"), returning="id"
                ),
                dict(call_id=call.id, status=new_status, created_at=utcnow()),
            )
        ).scalar_one_or_none()
        if fresh is None:  # a retried callback
            await session.rollback()
            return _xml(str(VoiceResponse()))
        if (
            STATUS_ORDER.index(new_status)
            > STATUS_ORDER.index(call.status if call.status in STATUS_ORDER else "queued")
            or new_status in TERMINAL
        ):
            call.status = new_status
        if new_status in TERMINAL and call.ended_at is None:
            call.ended_at = utcnow()
            duration = params.get("CallDuration", "")
            call.duration_seconds = (
                int(duration)
                if duration.isdigit()
                else int((call.ended_at - call.started_at) / timedelta(seconds=1))
            )
            call.queue = None
            await _publish(session, "call.ended", call, status=new_status)
        call.updated_at = utcnow()
        await rt.commit(session)
    return _xml(str(VoiceResponse()))


SURVEY_THANKS = {
    "zh-CN": "感谢您的评价，再见。",
    "en": "Thank you for your answer. Goodbye.",
}
SURVEY_AGAIN = {
    "zh-CN": "请按1、2或3。",
    "en": "Please press 1, 2 or 3.",
}
SURVEY_RATINGS = {"1": 1, "2": 2, "3": 3}
SURVEY_RETRIES = 2


@router.post("/survey")
async def survey(request: Request, step: str = Query("ask", max_length=8)) -> Response:
    """The satisfaction survey call after resolution: 1 satisfied, 2 fairly satisfied,
    3 not satisfied (the ticket goes back to the department, as by SMS)."""
    rt = _runtime(request)
    params = await verified_form(request, rt)
    sid = _sid(params)
    flow = flow_for(rt)
    urls = Urls(rt.settings.PUBLIC_BASE_URL)
    resp = VoiceResponse()
    async with rt.db.session() as session:
        call = await _load(session, sid)
        if call is None or call.ticket_id is None or call.purpose != "survey":
            resp.hangup()
            return _xml(str(resp))
        lang = call.locale if call.locale in flow.languages else flow.default_language
        say: dict[str, Any] = {"language": flow.say_language.get(lang, lang)}
        if flow.voice.get(lang):
            say["voice"] = flow.voice[lang]
        state = dict(call.state or {})
        rating = SURVEY_RATINGS.get((params.get("Digits") or "").strip())
        if step == "answer" and rating is None:
            state["retries"] = int(state.get("retries", 0)) + 1
        if step == "answer" and (rating is not None or state["retries"] > SURVEY_RETRIES):
            if rating is not None and not state.get("rated"):
                await _rate(rt, session, call.ticket_id, rating, lang)
                state["rated"] = rating
            resp.say(SURVEY_THANKS[lang], **say)
            resp.hangup()
        else:
            gather = resp.gather(
                input="dtmf",
                num_digits=1,
                timeout=8,
                action=urls("survey", step="answer"),
                method="POST",
                action_on_empty_result=True,
            )
            if step == "answer":
                gather.say(SURVEY_AGAIN[lang], **say)
            gather.say(str(state.get("say") or ""), **say)
            resp.redirect(urls("survey", step="answer"), method="POST")
        call.state = state
        call.updated_at = utcnow()
        await rt.commit(session)
    return _xml(str(resp))


async def _rate(rt: Runtime, session: AsyncSession, ticket_id: int, rating: int, lang: str) -> None:
    """Close (satisfied) or reopen (not satisfied) the ticket, as a rating by SMS does."""
    from contact.lifecycle import Action
    from contact.models import Ticket, TicketStatus
    from contact.principal import CITIZEN
    from contact.schemas import ActionBody

    ticket = await session.get(Ticket, ticket_id)
    if ticket is None or ticket.status != TicketStatus.resolved:
        return  # rated already, or reopened meanwhile: nothing to do
    satisfied = rating in (1, 2)
    unhappy = "市民不满意" if lang == "zh-CN" else "citizen not satisfied"
    body = ActionBody(satisfaction=rating, reason=None if satisfied else unhappy)
    action = Action.close if satisfied else Action.reopen
    await service.act(rt, session, CITIZEN, ticket.reference, action, body)


# The busiest voice webhooks, answered on the provider webhooks' short path.
FAST_PATHS = {
    f"{router.prefix}/voice": voice,
    f"{router.prefix}/gather": gather,
    f"{router.prefix}/record": record,
    f"{router.prefix}/wait": wait,
    f"{router.prefix}/status": status,
}
