"""Twilio's message status callbacks: ``POST /channels/sms/twilio/status``.

What a callback does
--------------------
The signature is checked first (:func:`channels.sms.routes.verified_form`): a bad or
missing one is 403 and nothing changes. The outbound message is found by
``(provider "twilio", provider_id = MessageSid)``, or else by the ``mid`` query
parameter the gateway puts on every status callback URL (the ``messages.id`` of the
outbox key; the signature covers the query, so it cannot be forged). Unknown
messages answer 200 and store nothing: Twilio must not retry forever.

Status only moves forward (callbacks arrive out of order):
``queued < sending < sent < delivered < read``; ``failed`` / ``undelivered`` end a
send, never replace ``delivered`` / ``read``, and are replaced only by them (a
success report is proof the citizen has the text). Every move is one conditional
``UPDATE ... WHERE status IN (<states it may replace>)``, so the same callback twice,
or two callbacks at once, change the row at most once, and only the callback that
made the move acts on it.

A ``failed`` / ``undelivered`` report for the message's current SID puts its outbox
row (``sent``) back to ``pending`` with the outbox's backoff, or ``dead`` when the
error code is permanent (:data:`PERMANENT_CODES`) or the attempts are used up
(``Deliverer.retry_later``, the outbox's own retry policy). The sweeper
sends it again when it is due.

A retry racing a late success (no duplicate SMS)
------------------------------------------------
Twilio's REST API has no idempotency key, and a timeout or a dropped connection
after the request left us does not tell whether Twilio accepted the message. Three
things together keep that from becoming a second text:

1. **Retries look before they send** (``TwilioSmsGateway``): any attempt after the
   first lists Twilio's recent messages to that number from our number, and adopts
   one with the same body, created since the outbox key's first attempt, not
   ``failed``/``undelivered``/``canceled`` and not already another message's SID,
   instead of sending again. Twilio is the source of truth for "did the first
   request get through"; if the list itself fails, the attempt fails (retryable)
   rather than send blind.
2. **Late callbacks reconcile** (here): the callback URL carries ``mid``, so a report
   about an attempt whose SID we never recorded (it timed out) still finds its
   message. If the message has no SID yet, the report's SID is adopted (whatever it
   says, so its later reports apply in order); if it is alive, a ``pending`` or
   ``dead`` outbox row (or a ``sending`` one whose lease has run out) becomes
   ``sent``: the scheduled retry never happens, and the dead letter is gone before a
   supervisor retries it by hand. A report about a SID that is not the message's
   current one only counts when it is ``delivered``/``read`` (the key is delivered,
   retries stop); anything else about an earlier attempt is stale and changes
   nothing, so a late failure can never trigger an extra resend.
3. **A callback that overtakes the send waits for it**: Twilio can report
   ``failed`` before our worker has recorded the SID the REST call returned. If the
   outbox row is still ``sending`` under a live lease, the handler polls (at most
   :data:`SETTLE_SECONDS`) until the attempt is recorded, then decides on settled
   state; otherwise ``_record_sent`` would overwrite the failure with ``queued``
   and the retry would be lost. If it is still in flight after that (a worker killed
   mid-call), the lease expiry makes the sweeper retry, and point 1 finds what
   Twilio already has.

What remains: two outbox keys whose texts to the same number are identical, within
one lookback window, where the first key's SID is not yet recorded when the second
key's retry looks (one HTTP round trip), could adopt each other's message.

Error codes (Twilio → what we do)
---------------------------------
See :data:`PERMANENT_CODES` and :data:`RETRYABLE_CODES`. Codes in neither table: a
REST answer follows its HTTP status (4xx permanent except 429, 5xx retryable); a
failure reported by callback, with an unknown or no code, is retried (bounded by
``OUTBOX_MAX_ATTEMPTS``): a dead letter loses the citizen's update for good, a
retry costs at most a few attempts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, cast

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import CursorResult, and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from channels.twilio_webhooks import EMPTY_TWIML, verified_form
from contact.models import (
    Channel,
    DeliveryStatus,
    Direction,
    Message,
    Outbox,
    OutboxStatus,
    utcnow,
)
from contact.runtime import Runtime

log = logging.getLogger(__name__)
status_router = APIRouter(tags=["sms"])
STATUS_PATH = "/channels/sms/twilio/status"

PROVIDER = "twilio"
# How long a callback waits for the attempt it reports on to be recorded.
SETTLE_SECONDS = 5.0
SETTLE_POLL_SECONDS = 0.1

# Resending the same text to the same number will not help: dead letter at once.
PERMANENT_CODES: dict[str, str] = {
    "20003": "authentication failed (account settings)",
    "21211": "invalid 'To' phone number",
    "21408": "sending to this region is not enabled",
    "21606": "the 'From' number cannot send SMS",
    "21610": "the recipient has unsubscribed (replied STOP)",
    "21612": "the 'To' number cannot be reached by SMS from this sender",
    "21614": "the 'To' number is not a mobile number",
    "21617": "the body is longer than 1,600 characters",
    "30002": "account suspended",
    "30004": "message blocked (by the recipient or the carrier)",
    "30005": "unknown destination handset (the number does not exist)",
    "30006": "landline or unreachable carrier",
    "30007": "filtered by the carrier as spam",
    "30010": "message price exceeds the max price",
    "30032": "toll-free number not verified",
    "30034": "unregistered A2P 10DLC number",
}
# Transient: try again with backoff (whatever HTTP status came with them).
RETRYABLE_CODES: dict[str, str] = {
    "20429": "too many requests",
    "20500": "Twilio internal error",
    "20503": "Twilio service unavailable",
    "21611": "the 'From' number has too many queued messages",
    "30001": "queue overflow",
    "30003": "handset switched off or out of coverage (a temporary state)",
    "30008": "unknown error",
    "30009": "missing segment",
    "30017": "carrier network congestion",
    "30022": "A2P 10DLC rate limit exceeded",
    "30023": "A2P 10DLC daily cap reached",
    "30027": "carrier daily message limit reached",
    "timeout": "no answer from Twilio in time (it may have accepted the message)",
    "connection": "connection to Twilio failed or dropped",
}


def is_permanent(code: str | int | None, http_status: int | None = None) -> bool:
    """Whether resending can never help. ``http_status``: a REST answer's status."""
    key = str(code) if code is not None else None
    if key in PERMANENT_CODES:
        return True
    if key in RETRYABLE_CODES:
        return False
    if http_status is not None:
        return 400 <= http_status < 500 and http_status != 429
    return False


# Twilio's message statuses, in ours. Absent ones (receiving, received, canceled, ...)
# say nothing about an outbound text we track and are ignored.
TWILIO_STATUS: dict[str, DeliveryStatus] = {
    "accepted": DeliveryStatus.queued,
    "scheduled": DeliveryStatus.queued,
    "queued": DeliveryStatus.queued,
    "sending": DeliveryStatus.sending,
    "sent": DeliveryStatus.sent,
    "partially_delivered": DeliveryStatus.sent,
    "delivered": DeliveryStatus.delivered,
    "read": DeliveryStatus.read,
    "undelivered": DeliveryStatus.undelivered,
    "failed": DeliveryStatus.failed,
}
FAILURES = frozenset({DeliveryStatus.failed, DeliveryStatus.undelivered})
SUCCESSES = frozenset({DeliveryStatus.delivered, DeliveryStatus.read})
ALIVE = frozenset({DeliveryStatus.queued, DeliveryStatus.sending, DeliveryStatus.sent} | SUCCESSES)
_Q, _SG, _ST = DeliveryStatus.queued, DeliveryStatus.sending, DeliveryStatus.sent
# For each status: the statuses it may replace (forward only).
REPLACES: dict[DeliveryStatus, frozenset[DeliveryStatus]] = {
    _Q: frozenset(),
    _SG: frozenset({_Q}),
    _ST: frozenset({_Q, _SG}),
    DeliveryStatus.failed: frozenset({_Q, _SG, _ST}),
    DeliveryStatus.undelivered: frozenset({_Q, _SG, _ST}),
    DeliveryStatus.delivered: frozenset({_Q, _SG, _ST} | FAILURES),
    DeliveryStatus.read: frozenset({_Q, _SG, _ST, DeliveryStatus.delivered} | FAILURES),
}


def twilio_status(raw: str | None) -> DeliveryStatus | None:
    return TWILIO_STATUS.get((raw or "").strip().lower())


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


@status_router.post(STATUS_PATH)
async def twilio_status_callback(request: Request) -> Response:
    """Twilio's delivery report for a text we sent (StatusCallback)."""
    rt = _runtime(request)
    params = await verified_form(request, rt)
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    status = twilio_status(params.get("MessageStatus") or params.get("SmsStatus"))
    raw_mid = request.query_params.get("mid", "")
    mid = int(raw_mid) if raw_mid.isdigit() else None
    if sid and status is not None:
        outcome = await apply_status(
            rt, sid=sid, status=status, error_code=params.get("ErrorCode") or None, message_id=mid
        )
        log.info("twilio status %s for %s (mid %s): %s", status.value, sid, mid, outcome)
    return Response(EMPTY_TWIML, media_type="application/xml")


async def apply_status(
    rt: Runtime,
    *,
    sid: str,
    status: DeliveryStatus,
    error_code: str | None = None,
    message_id: int | None = None,
) -> str:
    """Apply one delivery report; returns what it did (for logs and tests):
    ``unknown``, ``moved``, ``unchanged``, ``adopted``, ``stale``, ``retry``, ``dead``."""
    msg = await _find(rt, sid, message_id)
    if msg is None:
        return "unknown"
    if msg.idempotency_key:
        await _settle(rt, msg.idempotency_key)
    msg = await _find(rt, sid, msg.id)  # what the settled attempt recorded
    if msg is None:  # pragma: no cover - messages are never deleted
        return "unknown"
    current = msg.provider_id if msg.provider == PROVIDER else None
    code = error_code[:32] if error_code else None

    async with rt.db.session() as s:
        outbox = (
            (await s.execute(select(Outbox).where(Outbox.key == msg.idempotency_key)))
            .scalars()
            .one_or_none()
            if msg.idempotency_key
            else None
        )
        if sid == current:
            if not await _move(s, msg.id, sid, status, code):
                return "unchanged"
            outcome = "moved"
            if status in FAILURES and outbox is not None:
                outcome = (
                    await rt.deliverer.retry_later(
                        s, outbox, permanent=is_permanent(code), error=_describe(status, code)
                    )
                    or outcome
                )
            elif status in ALIVE and outbox is not None:
                await _reconcile(s, outbox.id)
        elif current is None:
            # The message has no SID yet: its attempts timed out (or their answer was
            # lost). This report is about one Twilio did accept: adopt its SID, so later
            # reports about it (in whatever order) apply to it; if it is alive, the
            # scheduled retry or the dead letter is moot.
            failure = status in FAILURES
            adopted = cast(
                CursorResult[Any],
                await s.execute(
                    update(Message)
                    .where(Message.id == msg.id, Message.provider_id.is_(None))
                    .values(
                        provider=PROVIDER,
                        provider_id=sid,
                        status=status,
                        error_code=code if failure else None,
                        updated_at=utcnow(),
                    )
                ),
            )
            if adopted.rowcount != 1:
                return "unchanged"  # recorded meanwhile; Twilio's next report applies
            if not failure and outbox is not None:
                await _reconcile(s, outbox.id)
            outcome = "adopted"
        elif status in SUCCESSES:
            # An earlier attempt got through after all: the key is delivered.
            if not await _move(s, msg.id, None, status, None):
                return "unchanged"
            if outbox is not None:
                await _reconcile(s, outbox.id)
            outcome = "moved"
        else:
            return "stale"  # about an attempt that is no longer the current one
        try:
            await s.commit()
        except IntegrityError:  # the SID was recorded on another message meanwhile
            await s.rollback()
            return "unchanged"
    return outcome


async def _find(rt: Runtime, sid: str, message_id: int | None) -> Message | None:
    outbound = and_(Message.direction == Direction.outbound, Message.channel == Channel.sms)
    async with rt.db.session() as s:
        found = (
            await s.execute(
                select(Message).where(
                    outbound, Message.provider == PROVIDER, Message.provider_id == sid
                )
            )
        ).scalar_one_or_none()
        if found is None and message_id is not None:
            found = (
                await s.execute(
                    select(Message).where(
                        outbound,
                        Message.id == message_id,
                        Message.idempotency_key.is_not(None),
                        Message.provider.in_((PROVIDER, "pending")),
                    )
                )
            ).scalar_one_or_none()
        return found


async def _settle(rt: Runtime, key: str) -> None:
    """Wait (bounded) while an attempt for ``key`` is in flight under a live lease."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        async with rt.db.session() as s:
            busy = (
                await s.execute(
                    select(Outbox.id).where(
                        Outbox.key == key,
                        Outbox.status == OutboxStatus.sending,
                        Outbox.lease_until > utcnow(),
                    )
                )
            ).first()
        if busy is None or time.monotonic() >= deadline:
            return
        await asyncio.sleep(SETTLE_POLL_SECONDS)


async def _move(
    s: Any, message_id: int, sid: str | None, status: DeliveryStatus, code: str | None
) -> bool:
    """Forward-only compare-and-set of a message's status (for ``sid`` if given)."""
    replaces = REPLACES[status]
    if not replaces:
        return False
    cond = [Message.id == message_id, Message.status.in_(replaces)]
    if sid is not None:
        cond.append(Message.provider_id == sid)
    values: dict[str, Any] = {"status": status, "updated_at": utcnow()}
    if status in FAILURES:
        values["error_code"] = code
    elif status in SUCCESSES:
        values["error_code"] = None
    result = cast(CursorResult[Any], await s.execute(update(Message).where(*cond).values(values)))
    return result.rowcount == 1


async def _reconcile(s: Any, outbox_id: int) -> None:
    """The provider has the message: a scheduled retry or a dead letter is moot."""
    now = utcnow()
    await s.execute(
        update(Outbox)
        .where(
            Outbox.id == outbox_id,
            or_(
                Outbox.status.in_((OutboxStatus.pending, OutboxStatus.dead)),
                and_(Outbox.status == OutboxStatus.sending, Outbox.lease_until < now),
            ),
        )
        .values(status=OutboxStatus.sent, sent_at=now, lease_until=None, last_error=None)
    )


def _describe(status: DeliveryStatus, code: str | None) -> str:
    why = PERMANENT_CODES.get(code or "") or RETRYABLE_CODES.get(code or "") or "unknown"
    return f"twilio reported {status.value} (error {code or 'none'}: {why})"
