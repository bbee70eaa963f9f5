"""Outbound SMS gateways: the dev gateway (a table the dev outbox shows) and Twilio."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from channels.sms.segments import segments
from contact.channels import DeliveryError, DeliveryReceipt, OutboundMessage
from contact.db import Database, insert_into
from contact.models import Channel, DeliveryStatus, DevMessage, Message, Outbox, utcnow


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
    """Sends through the Twilio REST API, with a status callback for delivery receipts.

    - **One REST call per attempt**, in a thread (the SDK is synchronous), with a
      timeout (``http_client`` replaces the transport, e.g. a fake Twilio in tests).
    - **Status callback per message**: ``<base_url>/channels/sms/twilio/status?mid=<id>``
      where ``id`` is the outbound ``messages`` row of the outbox key (needs ``db``).
      Twilio signs the whole URL, so ``mid`` is as trustworthy as the SID, and lets
      :mod:`channels.sms.status` find a message whose SID we never recorded.
    - **Errors**: a REST error answer is :class:`DeliveryError` with Twilio's code;
      permanent per :func:`channels.sms.status.is_permanent` (the code table first,
      else 4xx permanent except 429, 5xx retryable). A timeout or connection error is
      retryable and *ambiguous* (code ``timeout`` / ``connection``): Twilio may have
      accepted the message before the answer was lost.
    - **Retries look before they send**: when the outbox key has been tried before
      (attempts > 1, or its message already has a SID or a failure), the gateway lists
      Twilio's recent messages from our number to that number and adopts one with the
      same body, created since the key's first attempt, still alive, and not another
      message's SID, instead of sending a second text. If that lookup fails, the
      attempt fails (retryable): never send blind after an ambiguous failure.
      See :mod:`channels.sms.status` for the whole race design.

    Without ``db`` (no message row to consult) it sends plainly: no ``mid``, no lookup.
    """

    channel = Channel.sms
    provider = "twilio"
    max_length = 1600
    # How far before the key's first attempt a message found at Twilio may have been
    # created (clock skew between us and Twilio), and how many recent messages to read.
    LOOKBACK = timedelta(minutes=5)
    LOOKUP_LIMIT = 50

    @dataclass(frozen=True)
    class _KeyState:
        message_id: int
        created_at: datetime
        body: str
        retry: bool  # an earlier attempt may have reached Twilio

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str,
        base_url: str,
        *,
        db: Database | None = None,
        http_client: Any = None,
        timeout: float = 15.0,
    ) -> None:
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        self.client: Any = Client(
            account_sid, auth_token, http_client=http_client or TwilioHttpClient(timeout=timeout)
        )
        self.from_number = from_number
        self.status_callback = f"{base_url.rstrip('/')}/channels/sms/twilio/status"
        self.db = db

    async def send(self, message: OutboundMessage) -> DeliveryReceipt:
        state = await self._state(message.key)
        if state is not None and state.retry:
            found = await self._already_accepted(message, state)
            if found is not None:
                return found
        callback = message.status_callback or (
            f"{self.status_callback}?mid={state.message_id}" if state else self.status_callback
        )

        def call() -> Any:
            return self.client.messages.create(
                to=message.to,
                from_=self.from_number,
                body=message.body,
                status_callback=callback,
            )

        result = await self._call(call, "send")
        receipt = self._receipt(result)
        if receipt.status in ("failed", "undelivered"):  # refused at once, without an error
            from channels.sms.status import is_permanent

            code = str(result.error_code) if result.error_code else None
            raise DeliveryError(
                f"twilio send: {receipt.status} at once (error {code})",
                permanent=is_permanent(code),
                code=code,
            )
        return receipt

    # ------------------------------------------------------------ helpers

    async def _call(self, fn: Any, what: str) -> Any:
        """Run one SDK call in a thread; its failures as :class:`DeliveryError`."""
        import requests
        from twilio.base.exceptions import (
            TwilioException,
            TwilioRestException,
            TwilioServiceException,
        )

        try:
            return await asyncio.to_thread(fn)
        except (TwilioRestException, TwilioServiceException) as exc:
            code = str(exc.code) if exc.code is not None else str(exc.status)
            detail = getattr(exc, "msg", "") or getattr(exc, "detail", "") or ""
            from channels.sms.status import is_permanent

            raise DeliveryError(
                f"twilio {what}: HTTP {exc.status}, error {code}: {detail}"[:500],
                permanent=is_permanent(code, exc.status),
                code=code,
            ) from exc
        except TwilioException as exc:  # e.g. a list page that is not 200: retry later
            answer = exc.args[1] if len(exc.args) > 1 else None
            status = getattr(answer, "status_code", None)
            raise DeliveryError(
                f"twilio {what}: {exc.args[0] if exc.args else exc} (HTTP {status})",
                code=str(status) if status else None,
            ) from exc
        except requests.Timeout as exc:
            raise DeliveryError(
                f"twilio {what}: timed out (it may have been accepted; the retry looks first)",
                code="timeout",
            ) from exc
        except (requests.ConnectionError, OSError) as exc:
            raise DeliveryError(
                f"twilio {what}: connection failed ({type(exc).__name__})", code="connection"
            ) from exc

    def _receipt(self, result: Any) -> DeliveryReceipt:
        from channels.sms.status import twilio_status

        status = twilio_status(result.status) or DeliveryStatus.queued
        return DeliveryReceipt(
            self.provider, result.sid, status.value, int(result.num_segments or 1)
        )

    async def _state(self, key: str) -> TwilioSmsGateway._KeyState | None:
        """The outbound message of ``key`` and whether an earlier attempt may have sent it."""
        if self.db is None:
            return None
        async with self.db.session() as s:
            row = (
                await s.execute(
                    select(
                        Message.id,
                        Message.created_at,
                        Message.status,
                        Message.provider_id,
                        Message.body,
                        Outbox.attempts,
                    )
                    .join(Outbox, Outbox.key == Message.idempotency_key)
                    .where(Message.idempotency_key == key)
                )
            ).first()
        if row is None:
            return None
        mid, created_at, status, provider_id, body, attempts = row
        retry = attempts > 1 or provider_id is not None or status != DeliveryStatus.queued
        return self._KeyState(mid, created_at, body, retry)

    async def _already_accepted(
        self, message: OutboundMessage, state: TwilioSmsGateway._KeyState
    ) -> DeliveryReceipt | None:
        """A message Twilio already accepted for this key (an earlier attempt whose
        answer we lost), if its recent messages to this number show one."""
        from channels.sms.status import FAILURES, twilio_status

        def call() -> Any:
            return self.client.messages.list(
                to=message.to, from_=self.from_number, limit=self.LOOKUP_LIMIT
            )

        recent = await self._call(call, "lookup before resending")
        since = state.created_at - self.LOOKBACK
        bodies = {message.body, state.body}
        candidates = []
        for m in recent:
            status = twilio_status(m.status)
            created = m.date_created if isinstance(m.date_created, datetime) else None
            if (
                status is None
                or status in FAILURES
                or not str(m.direction or "").startswith("outbound")
                or not any(b and (m.body or "").endswith(b) for b in bodies)
                or (created is not None and created < since)
            ):
                continue
            candidates.append(m)
        if not candidates:
            return None
        assert self.db is not None
        async with self.db.session() as s:
            taken = set(
                (
                    await s.execute(
                        select(Message.provider_id).where(
                            Message.provider == self.provider,
                            Message.provider_id.in_([m.sid for m in candidates]),
                            Message.id != state.message_id,
                        )
                    )
                ).scalars()
            )
        free = [m for m in candidates if m.sid not in taken]
        if not free:
            return None
        oldest = min(free, key=lambda m: m.date_created or since)
        return self._receipt(oldest)
