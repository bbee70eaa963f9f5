"""The voice gateway: calls we make and calls we move, through Twilio or the dev gateway.

- ``send``: a status update by voice (an outbound call that speaks the text) or, for a
  resolved ticket, a satisfaction survey call whose TwiML comes from
  ``/ivr/twilio/survey`` (keypad 1–3). Each outbound call is recorded in ``calls``
  (direction out) with the ticket it is about; the outbox key makes it happen once.
- ``redirect``: move a live call to new TwiML (an agent took the caller).

The dev gateway records what it would have done in ``/dev/outbox`` (channel voice)
and its calls as Twilio's would be, so posting Twilio's webhooks for them works.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any, Protocol

from sqlalchemy import select

from contact.channels import DeliveryError, DeliveryReceipt, OutboundMessage
from contact.db import Database, insert_into
from contact.models import Call, Channel, DevMessage, Direction, Outbox, utcnow

SURVEY_TEMPLATES = frozenset({"ticket_resolved"})
TIMEOUT_S = 15.0


class VoiceGateway(Protocol):
    channel: Channel
    provider: str
    max_length: int

    async def send(self, message: OutboundMessage) -> DeliveryReceipt: ...

    async def redirect(self, call_sid: str, url: str) -> None: ...


async def _record_call(
    db: Database, provider: str, sid: str, message: OutboundMessage, purpose: str
) -> None:
    """The outbound call as a contact in the citizen's history, tied to its ticket."""
    async with db.session() as s:
        row = (
            await s.execute(
                select(Outbox.ticket_id, Outbox.citizen_id, Outbox.locale).where(
                    Outbox.key == message.key
                )
            )
        ).first()
        now = utcnow()
        await s.execute(
            insert_into(s, Call, conflict=("provider", "call_sid")),
            dict(
                provider=provider,
                call_sid=sid,
                direction=Direction.outbound,
                purpose=purpose,
                to_addr=message.to,
                citizen_id=row.citizen_id if row else None,
                ticket_id=row.ticket_id if row else None,
                locale=(row.locale if row else None) or "zh-CN",
                status="queued",
                state={"say": message.body, "key": message.key},
                started_at=now,
                updated_at=now,
            ),
        )
        await s.commit()


class DevVoiceGateway:
    """Stands in for Twilio Voice: what would be said or done lands in /dev/outbox."""

    channel = Channel.voice
    provider = "dev"
    max_length = 1000

    def __init__(self, db: Database) -> None:
        self.db = db

    async def _store(self, key: str, to: str, body: str, template: str | None) -> int:
        async with self.db.session() as s:
            dev_id = (
                await s.execute(
                    insert_into(s, DevMessage, conflict=("key",), touch=True, returning="id"),
                    dict(
                        key=key,
                        channel=Channel.voice,
                        to_addr=to,
                        body=body,
                        template=template,
                        segments=1,
                        status="delivered",
                        created_at=utcnow(),
                    ),
                )
            ).scalar_one()
            await s.commit()
        return int(dev_id)

    async def send(self, message: OutboundMessage) -> DeliveryReceipt:
        dev_id = await self._store(message.key, message.to, message.body, message.template)
        sid = f"CADEV{dev_id:012d}"
        purpose = "survey" if message.template in SURVEY_TEMPLATES else "status"
        # Recorded as Twilio's would be, so the same webhooks answer it (tests, demos).
        await _record_call(self.db, "twilio", sid, message, purpose)
        return DeliveryReceipt("dev", sid, "delivered")

    async def redirect(self, call_sid: str, url: str) -> None:
        await self._store(f"redirect:{call_sid}:{secrets.token_hex(4)}", call_sid, url, "redirect")


class TwilioVoiceGateway:
    """Twilio's Calls API (the SDK is synchronous: each request runs in a thread)."""

    channel = Channel.voice
    provider = "twilio"
    max_length = 1000

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str,
        public_base_url: str,
        db: Database,
        *,
        http_client: Any = None,
    ) -> None:
        from twilio.rest import Client

        self.client = Client(account_sid, auth_token, http_client=http_client)
        self.from_number = from_number
        self.base = public_base_url.rstrip("/") + "/ivr/twilio"
        self.db = db

    async def _api(self, fn: Any, **kwargs: Any) -> Any:
        from twilio.base.exceptions import TwilioRestException

        try:
            return await asyncio.wait_for(asyncio.to_thread(fn, **kwargs), TIMEOUT_S)
        except TwilioRestException as exc:
            permanent = 400 <= (exc.status or 500) < 500 and exc.status != 429
            raise DeliveryError(str(exc.msg), permanent=permanent, code=str(exc.code)) from None
        except (TimeoutError, OSError) as exc:
            raise DeliveryError(f"Twilio not reachable: {exc}") from None

    async def send(self, message: OutboundMessage) -> DeliveryReceipt:
        from twilio.twiml.voice_response import VoiceResponse

        survey = message.template in SURVEY_TEMPLATES
        kwargs: dict[str, Any] = {
            "to": message.to,
            "from_": self.from_number,
            "status_callback": f"{self.base}/status",
            "status_callback_event": ["initiated", "ringing", "answered", "completed"],
        }
        if survey:
            kwargs["url"] = f"{self.base}/survey"
        else:
            twiml = VoiceResponse()
            twiml.say(message.body, language="cmn-CN" if _chinese(message.body) else "en-US")
            kwargs["twiml"] = str(twiml)
        call = await self._api(self.client.calls.create, **kwargs)
        await _record_call(self.db, "twilio", call.sid, message, "survey" if survey else "status")
        return DeliveryReceipt("twilio", call.sid, "queued")

    async def redirect(self, call_sid: str, url: str) -> None:
        await self._api(self.client.calls(call_sid).update, url=url, method="POST")


def _chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)
