"""Outbound SMS gateways: the dev gateway (a table the dev outbox shows) and Twilio."""

from __future__ import annotations

import asyncio
from typing import Any

from channels.sms.segments import segments
from contact.channels import DeliveryError, DeliveryReceipt, OutboundMessage
from contact.db import Database, insert_into
from contact.models import Channel, DevMessage, utcnow


class DevSmsGateway:
    """Stands in for Twilio: one stored message per idempotency key, however often sent."""

    channel = Channel.sms
    provider = "dev"
    max_length = 1600

    def __init__(self, db: Database, latency_ms: int = 0) -> None:
        self.db = db
        self.latency = latency_ms / 1000

    async def send(self, message: OutboundMessage) -> DeliveryReceipt:
        async with self.db.session() as s:
            # One message per key: a retry after a crash finds the first one.
            dev_id = (
                await s.execute(
                    insert_into(s, DevMessage, conflict=("key",), touch=True, returning="id"),
                    dict(
                        key=message.key,
                        channel=Channel.sms,
                        to_addr=message.to,
                        body=message.body,
                        template=message.template,
                        segments=segments(message.body),
                        status="delivered",
                        created_at=utcnow(),
                    ),
                )
            ).scalar_one()
            await s.commit()
        if self.latency:
            # The provider has accepted the message; its answer is slow.
            await asyncio.sleep(self.latency)
        return DeliveryReceipt("dev", f"DEV{dev_id:012d}", "delivered", segments(message.body))


class TwilioSmsGateway:
    """Sends through the Twilio REST API, with a status callback for delivery receipts."""

    channel = Channel.sms
    provider = "twilio"
    max_length = 1600

    def __init__(self, account_sid: str, auth_token: str, from_number: str, base_url: str) -> None:
        from twilio.rest import Client

        self.client: Any = Client(account_sid, auth_token)
        self.from_number = from_number
        self.status_callback = f"{base_url}/channels/sms/twilio/status"

    async def send(self, message: OutboundMessage) -> DeliveryReceipt:
        from twilio.base.exceptions import TwilioRestException

        def call() -> Any:
            return self.client.messages.create(
                to=message.to,
                from_=self.from_number,
                body=message.body,
                status_callback=self.status_callback,
            )

        try:
            result = await asyncio.to_thread(call)
        except TwilioRestException as exc:
            # 4xx: the request itself is wrong (bad number, opted out): do not retry.
            permanent = exc.status is not None and 400 <= exc.status < 500 and exc.status != 429
            raise DeliveryError(str(exc.msg), permanent=permanent, code=str(exc.code)) from exc
        return DeliveryReceipt(
            "twilio", result.sid, _twilio_status(result.status), int(result.num_segments or 1)
        )


def _twilio_status(status: str | None) -> str:
    return {"accepted": "queued", "scheduled": "queued", "sending": "sending"}.get(
        status or "queued", status or "queued"
    )
