"""SMS webhooks: Twilio's (signature checked) and the dev gateway's ``POST /dev/sms``.

Both parse a form into an :class:`InboundMessage` and run the same handler.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from twilio.twiml.messaging_response import MessagingResponse

from channels.sms.inbound import handle_inbound, store_inbound
from channels.sms.jobs import LANE
from channels.sms.media import enqueue_fetch, parse_media
from channels.twilio_webhooks import EMPTY_TWIML, MAX_FORM_FIELDS, verified_form
from contact.channels import InboundMessage
from contact.errors import field_error
from contact.models import Channel, utcnow
from contact.runtime import Runtime
from contact.schemas import normalize_phone

log = logging.getLogger(__name__)
twilio_router = APIRouter(tags=["sms"])
dev_router = APIRouter(tags=["dev gateway"])

INBOUND_PATH = "/channels/sms/twilio/inbound"


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def _twiml(reply: str | None) -> Response:
    if not reply:
        return Response(EMPTY_TWIML, media_type="application/xml")
    resp = MessagingResponse()
    resp.message(reply)
    return Response(str(resp), media_type="application/xml")


@twilio_router.post(INBOUND_PATH)
async def twilio_inbound(request: Request) -> Response:
    """Verify, store once per MessageSid, answer at once; a job decides what to say."""
    rt = _runtime(request)
    params = await verified_form(request, rt)
    sid = params.get("MessageSid") or params.get("SmsSid")
    if not sid:
        raise field_error("MessageSid", "required")
    if not params.get("From"):
        raise field_error("From", "required")
    msg = _message("twilio", sid[:64], params)
    message_id, _ = await store_inbound(rt, msg)
    try:
        await rt.jobs.nudge(LANE, [message_id])
    except Exception:  # the sweeper answers it
        log.warning("text %s not nudged", message_id, exc_info=True)
    await _fetch_media(rt, message_id, msg)
    return _twiml(None)


def _message(provider: str, sid: str, params: dict[str, str]) -> InboundMessage:
    return InboundMessage(
        channel=Channel.sms,
        provider=provider,
        provider_id=sid,
        from_addr=params.get("From", ""),
        to_addr=params.get("To", ""),
        body=params.get("Body", ""),
        media=parse_media(params),
        received_at=utcnow(),
    )


async def _fetch_media(rt: Runtime, message_id: int, msg: InboundMessage) -> None:
    if msg.media:  # also on a retry: a crash may have come between commit and enqueue
        try:
            await enqueue_fetch(rt, message_id, msg.media)
        except Exception:
            log.warning("media of message %s not scheduled", message_id, exc_info=True)


async def _handle(rt: Runtime, provider: str, sid: str, params: dict[str, str]) -> dict[str, Any]:
    """The dev gateway: store and answer in one go, and say what was decided."""
    msg = _message(provider, sid, params)
    async with rt.db.session() as session:
        try:
            result = await handle_inbound(rt, session, msg)
            await rt.commit(session)
        finally:
            rt.discard(session)
    await _fetch_media(rt, result.message_id, msg)
    return {
        "message_id": result.message_id,
        "ticket_reference": result.ticket_reference,
        "reply": result.reply,
    }


@dev_router.post("/dev/sms")
async def dev_sms(request: Request) -> JSONResponse:
    """Inject a text as if from a phone: form ``From``, ``Body`` (optional ``MessageSid``)."""
    rt = _runtime(request)
    form = await request.form(max_fields=MAX_FORM_FIELDS)
    params = {k: str(v) for k, v in form.items()}
    if not params.get("From"):
        raise field_error("From", "required: the sender's phone number")
    try:
        normalize_phone(params["From"], rt.settings.DEFAULT_REGION)
    except ValueError as exc:
        raise field_error("From", str(exc)) from None
    sid = (params.get("MessageSid") or "SMDEV" + secrets.token_hex(16))[:64]
    return JSONResponse(await _handle(rt, "dev", sid, params))
