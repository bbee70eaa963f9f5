"""An inbound text, whatever carried it (the Twilio webhook or the dev gateway).

Stored first, idempotently on the provider's id: Twilio retries and concurrent
duplicates give one message and one ticket, and a retry gets the first answer
again. Then the conversation rules:

- blocked numbers and texts past the per-number rate limit are stored, not answered;
- commands in both languages: status (``CX <ref>`` / ``查询 <ref>``, only for that
  phone's tickets), help (``HELP`` / ``帮助``), opt-out (the STOP family, ``TD``,
  ``退订``) and back in (``START``), a rating after resolution (``1`` satisfied,
  ``2`` fairly satisfied, ``3``–``5`` or 不满意 not satisfied → reopened and sent
  back to the department), also from a reporter whose ticket was merged into the one
  that was handled (their ticket takes the rating; not satisfied reopens that one);
- anything else opens a ticket, or joins the one opened within the join window;
- empty or unreadable texts get the help text, never an error.

The language is detected from the text and remembered per citizen; a text without
letters (a rating, a reference) is answered in the remembered one.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any, cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contact import outbox, service
from contact.channels import InboundMessage
from contact.lifecycle import OPEN_STATES, STATUS_NAMES, Action
from contact.models import (
    Attachment,
    Channel,
    Citizen,
    DeliveryStatus,
    Direction,
    Message,
    Outbox,
    Ticket,
    TicketEvent,
    TicketStatus,
    utcnow,
)
from contact.principal import CITIZEN
from contact.reference import grouped, is_valid, normalize
from contact.runtime import Runtime
from contact.schemas import DESCRIPTION_MAX, ActionBody, TicketCreate, normalize_phone

MESSAGES = cast(Table, Message.__table__)
ATTACHMENTS = cast(Table, Attachment.__table__)
MESSAGE_MAX = 20_000  # what is kept of one text (Twilio's own limit is 1,600)

STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "TD", "退订"}
)
START_WORDS = frozenset({"START", "UNSTOP", "恢复"})
HELP_WORDS = frozenset({"HELP", "INFO", "帮助", "?", "？"})
RATING_WORDS = {
    "满意": 1,
    "非常满意": 1,
    "很满意": 1,
    "基本满意": 2,
    "一般": 2,
    "不满意": 3,
    "非常不满意": 3,
    "SATISFIED": 1,
    "VERY SATISFIED": 1,
    "FAIRLY SATISFIED": 2,
    "NOT SATISFIED": 3,
    "UNSATISFIED": 3,
    "DISSATISFIED": 3,
}
RATING_DIGITS = {"1": 1, "2": 2, "3": 3, "4": 3, "5": 3}
STATUS_RE = re.compile(r"^(?:CX|查询|STATUS)\s*[:：]?\s*([0-9][0-9\s-]*)$", re.IGNORECASE)
TRAILING = "。.!！~～ "
E164 = re.compile(r"\+[1-9][0-9]{6,14}")


@dataclass(frozen=True)
class InboundResult:
    message_id: int
    ticket_reference: str | None
    reply: str | None  # None: stored, deliberately not answered
    duplicate: bool = False


@dataclass(frozen=True)
class Command:
    kind: str  # help | stop | start | status | rating | text
    argument: str = ""
    rating: int = 0


def clean(text: str) -> str:
    """Printable text: control characters and unpaired surrogates dropped, spaces trimmed."""
    text = text.encode("utf-8", "replace").decode("utf-8")
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    return text.strip()[:MESSAGE_MAX]


def readable(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def parse(text: str) -> Command:
    word = text.strip(TRAILING).upper()
    if not readable(text) and word not in HELP_WORDS:
        return Command("help")
    if word in HELP_WORDS:
        return Command("help")
    if word in STOP_WORDS:
        return Command("stop")
    if word in START_WORDS:
        return Command("start")
    if word in RATING_DIGITS:
        return Command("rating", rating=RATING_DIGITS[word])
    if word in RATING_WORDS:
        return Command("rating", rating=RATING_WORDS[word])
    match = STATUS_RE.match(text.strip(TRAILING))
    if match:
        return Command("status", normalize(match.group(1)))
    if len(normalize(word)) == 14 and normalize(word).isdigit():
        return Command("status", normalize(word))
    return Command("text")


PHOTO_ONLY = "（彩信图片）(photo)"


async def handle_inbound(rt: Runtime, session: AsyncSession, msg: InboundMessage) -> InboundResult:
    """Store and answer at once (the dev gateway). The caller commits the answer."""
    message_id, _ = await store_inbound(rt, msg)
    return await process_inbound(rt, session, message_id)


async def store_inbound(rt: Runtime, msg: InboundMessage) -> tuple[int, bool]:
    """Store a text once per provider id, committed before this returns:
    (message id, whether it was stored before)."""
    now = utcnow()
    body = clean(msg.body or "")
    if not body and msg.media:  # a photo alone is a report too
        body = PHOTO_ONLY
    sender = msg.from_addr or ""
    if not E164.fullmatch(sender):  # Twilio's are; the job checks the number itself
        try:
            sender = normalize_phone(sender, rt.settings.DEFAULT_REGION)
        except ValueError:
            sender = sender[:64]  # kept as given; nobody to answer
    message_id = await rt.db.insert_once(
        MESSAGES,
        dict(
            channel=Channel.sms,
            direction=Direction.inbound,
            provider=msg.provider,
            provider_id=msg.provider_id,
            from_addr=sender,
            to_addr=(msg.to_addr or "")[:64],
            body=body,
            status=DeliveryStatus.received,
            segments=1,
            created_at=now,
            updated_at=now,
        ),
        conflict=("provider", "provider_id"),
        returning="id",
    )
    if message_id is not None:
        return int(message_id), False
    async with rt.db.session() as session:
        first = (
            await session.execute(
                select(Message.id).where(
                    Message.provider == msg.provider, Message.provider_id == msg.provider_id
                )
            )
        ).scalar_one()
    return first, True


async def process_inbound(rt: Runtime, session: AsyncSession, message_id: int) -> InboundResult:
    """Apply the conversation rules to a stored text, once: the text is claimed (its
    status moves from ``received`` to ``read``), so a retry or a second job only reads
    back what the first one decided. The answer goes out through the outbox."""
    claimed = (
        await session.execute(
            update(MESSAGES)
            .where(Message.id == message_id, Message.status == DeliveryStatus.received)
            .values(status=DeliveryStatus.read, updated_at=utcnow())
            .returning(MESSAGES.c.from_addr, MESSAGES.c.body)
        )
    ).first()
    if claimed is None:
        return await _replay(session, message_id)
    body = claimed.body if claimed.body != PHOTO_ONLY else ""
    try:
        phone = normalize_phone(claimed.from_addr or "", rt.settings.DEFAULT_REGION)
    except ValueError:
        return InboundResult(message_id, None, None)

    detected = _detect(body)
    citizen_id = await service.citizen_for_phone(
        session, phone, detected or rt.settings.DEFAULT_LOCALE
    )
    citizen = await session.get(Citizen, citizen_id)
    assert citizen is not None
    if detected and citizen.locale != detected:
        citizen.locale = detected
    locale = citizen.locale
    if citizen.blocked or await _over_limit(rt, session, citizen_id):
        await _link(session, message_id, citizen_id, None, media=False)
        return InboundResult(message_id, None, None)

    if claimed.body == PHOTO_ONLY:
        body = "（彩信图片）" if locale == "zh-CN" else "(photo)"
    conversation = Conversation(rt, session, citizen, phone, locale, message_id, body)
    reference, reply = await conversation.answer(parse(body))
    ticket_id = conversation.ticket_id
    await _link(session, message_id, citizen_id, ticket_id, media=True)
    if reply is not None:
        await _queue_reply(session, message_id, ticket_id, phone, locale, reply)
    return InboundResult(message_id, reference, reply)


# Pinyin abbreviations Chinese carriers use (CX 查询, TD 退订): no hint of the language.
NEUTRAL_RE = re.compile(r"^(CX|TD)\b", re.IGNORECASE)


def _detect(text: str) -> str | None:
    if NEUTRAL_RE.match(text.strip()):
        return None
    if any("\u4e00" <= ch <= "\u9fff" for ch in text):
        return "zh-CN"
    if any(ch.isascii() and ch.isalpha() for ch in text):
        return "en"
    return None


@dataclass
class Conversation:
    rt: Runtime
    session: AsyncSession
    citizen: Citizen
    phone: str
    locale: str
    message_id: int
    body: str
    ticket_id: int | None = None  # the ticket this text ends up in

    def say(self, template: str, **ctx: Any) -> str:
        return self.rt.renderer.render("sms", template, self.locale, ctx)

    async def answer(self, cmd: Command) -> tuple[str | None, str | None]:
        handler = getattr(self, f"on_{cmd.kind}")
        return await handler(cmd)  # type: ignore[no-any-return]

    async def on_help(self, cmd: Command) -> tuple[str | None, str | None]:
        return None, self.say("help")

    async def on_stop(self, cmd: Command) -> tuple[str | None, str | None]:
        opt_outs = set(self.citizen.opt_outs or [])
        self.citizen.opt_outs = sorted(opt_outs | {"sms"})
        return None, self.say("opted_out")

    async def on_start(self, cmd: Command) -> tuple[str | None, str | None]:
        self.citizen.opt_outs = sorted(set(self.citizen.opt_outs or []) - {"sms"})
        return None, self.say("opted_in")

    async def on_status(self, cmd: Command) -> tuple[str | None, str | None]:
        ref = cmd.argument
        if not is_valid(ref):
            return None, self.say("bad_reference")
        ticket = (
            await self.session.execute(
                select(Ticket).where(Ticket.reference == ref, Ticket.citizen_id == self.citizen.id)
            )
        ).scalar_one_or_none()
        if ticket is None:  # another phone's ticket is not there at all
            return None, self.say("not_found", ref_grouped=grouped(ref))
        await self._record(ticket, "status_query")
        catalogue = await self.rt.catalogue()
        dept = catalogue.dept_by_id.get(ticket.department_id or -1)
        zh = self.locale == "zh-CN"
        ctx = {
            "ref_grouped": grouped(ref),
            "reference": ref,
            "status": STATUS_NAMES[self.locale][ticket.status.value],
            "department": (dept.name_zh if zh else dept.name_en) if dept else "",
            "reply": ticket.reply or "",
            "truncated": False,
            "track_url": service.track_url(self.rt, ref),
        }
        ctx = service.fit_in_parts(self.rt, Channel.sms, "status", self.locale, ctx)
        return ref, self.say("status", **ctx)

    async def on_rating(self, cmd: Command) -> tuple[str | None, str | None]:
        since = utcnow() - timedelta(days=self.rt.settings.SATISFACTION_WINDOW_DAYS)
        ticket = (
            await self.session.execute(
                select(Ticket)
                .where(
                    Ticket.citizen_id == self.citizen.id,
                    Ticket.status == TicketStatus.resolved,
                    Ticket.resolved_at >= since,
                )
                .order_by(Ticket.resolved_at.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        if ticket is None:
            return await self._rate_merged(cmd, since)
        await self._link_to(ticket)
        satisfied = cmd.rating in (1, 2)
        unhappy = "市民不满意" if self.locale == "zh-CN" else "citizen not satisfied"
        body = ActionBody(satisfaction=cmd.rating, reason=None if satisfied else unhappy)
        action = Action.close if satisfied else Action.reopen
        ticket = await service.act(self.rt, self.session, CITIZEN, ticket.reference, action, body)
        if satisfied:
            return ticket.reference, self.say("rated", ref_grouped=grouped(ticket.reference))
        return ticket.reference, self.say(
            "reopened",
            ref_grouped=grouped(ticket.reference),
            department=await self._department_name(ticket),
        )

    async def _rate_merged(self, cmd: Command, since: Any) -> tuple[str | None, str | None]:
        """A rating from a reporter whose ticket was merged into another: they heard that
        ticket's outcome and were asked to rate it. The rating is their ticket's (it
        counts in the satisfaction rate like any other); not satisfied sends the ticket
        that was handled back to its department, as it would for its own reporter."""
        merged = (
            await self.session.execute(
                select(Ticket)
                .where(
                    Ticket.citizen_id == self.citizen.id,
                    Ticket.status == TicketStatus.merged,
                    Ticket.satisfaction.is_(None),
                )
                .order_by(Ticket.updated_at.desc())
                .limit(MERGED_LOOKBACK)
            )
        ).scalars()
        for dup in merged:
            handled = await _handled_by(self.session, dup)
            if (
                handled is None
                or handled.status not in (TicketStatus.resolved, TicketStatus.closed)
                or handled.resolved_at is None
                or _aware(handled.resolved_at) < since
            ):
                continue
            return await self._rate_for(dup, handled, cmd.rating)
        # Nothing to rate: a lone digit is not a complaint either.
        return None, self.say("help")

    async def _rate_for(
        self, dup: Ticket, handled: Ticket, rating: int
    ) -> tuple[str | None, str | None]:
        await self._link_to(dup)
        dup.satisfaction = rating
        await self._record(dup, RATED, satisfaction=rating, handled_as=handled.reference)
        await self._record(handled, RATED, satisfaction=rating, merged=dup.reference)
        if rating in (1, 2):
            return dup.reference, self.say("rated", ref_grouped=grouped(dup.reference))
        zh = self.locale == "zh-CN"
        reason = (
            f"并案诉求{dup.reference}的市民不满意"
            if zh
            else f"the citizen of merged request {dup.reference} is not satisfied"
        )
        handled = await service.act(
            self.rt,
            self.session,
            CITIZEN,
            handled.reference,
            Action.reopen,
            ActionBody(reason=reason),
        )
        return dup.reference, self.say(
            "reopened",
            ref_grouped=grouped(dup.reference),
            department=await self._department_name(handled),
        )

    async def _department_name(self, ticket: Ticket) -> str:
        catalogue = await self.rt.catalogue()
        dept = catalogue.dept_by_id.get(ticket.department_id or -1)
        if dept is None:
            return ""
        return dept.name_zh if self.locale == "zh-CN" else dept.name_en

    async def on_text(self, cmd: Command) -> tuple[str | None, str | None]:
        ticket = await self._open_ticket()
        if ticket is not None:
            await self._link_to(ticket)
            await self._record(ticket, "citizen_message")
            return ticket.reference, self.say(
                "message_added", ref_grouped=grouped(ticket.reference)
            )
        description = (
            self.body
            if len(self.body) <= DESCRIPTION_MAX
            else self.body[: DESCRIPTION_MAX - 1] + "…"
        )
        ticket, _ = await service.open_ticket(
            self.rt,
            self.session,
            TicketCreate(
                description=description, channel=Channel.sms, phone=self.phone, locale=self.locale
            ),
            CITIZEN,
            citizen_id=self.citizen.id,
        )
        await self._link_to(ticket)
        ref = ticket.reference
        return ref, self.say(
            "ticket_received",
            reference=ref,
            ref_grouped=grouped(ref),
            track_url=service.track_url(self.rt, ref),
        )

    async def _open_ticket(self) -> Ticket | None:
        window = self.rt.settings.SMS_JOIN_WINDOW_MINUTES
        if window <= 0:
            return None
        since = utcnow() - timedelta(minutes=window)
        return (
            await self.session.execute(
                select(Ticket)
                .where(
                    Ticket.citizen_id == self.citizen.id,
                    Ticket.channel == Channel.sms,
                    Ticket.status.in_(OPEN_STATES),
                    Ticket.created_at >= since,
                )
                .order_by(Ticket.created_at.desc())
                .limit(1)
            )
        ).scalar_one_or_none()

    async def _link_to(self, ticket: Ticket) -> None:
        self.ticket_id = ticket.id

    async def _record(self, ticket: Ticket, kind: str, **data: Any) -> None:
        self.session.add(
            TicketEvent(
                ticket_id=ticket.id,
                kind=kind,
                from_status=ticket.status.value,
                to_status=ticket.status.value,
                actor="citizen",
                data={**data, "message_id": self.message_id},
                public=False,
                created_at=utcnow(),
            )
        )


# The event on both tickets when a merged ticket's reporter rates the outcome.
RATED = "merged_reporter_rated"
# How many of a citizen's merged tickets a rating looks through for the one it is about.
MERGED_LOOKBACK = 10


async def _handled_by(session: AsyncSession, dup: Ticket) -> Ticket | None:
    """The ticket a merged one was finally handled as (a duplicate of a duplicate
    follows the chain)."""
    ticket: Ticket | None = dup
    for _ in range(8):
        if ticket is None or ticket.merged_into_id is None:
            return ticket
        ticket = await session.get(Ticket, ticket.merged_into_id)
    return None


def _aware(at: Any) -> Any:
    """SQLite gives back naive UTC datetimes."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


async def _link(
    session: AsyncSession, message_id: int, citizen_id: int, ticket_id: int | None, *, media: bool
) -> None:
    await session.execute(
        update(MESSAGES)
        .where(Message.id == message_id)
        .values(citizen_id=citizen_id, ticket_id=ticket_id)
    )
    if media and ticket_id is not None:  # media fetched already follow the text to its ticket
        await session.execute(
            update(ATTACHMENTS)
            .where(Attachment.message_id == message_id)
            .values(ticket_id=ticket_id)
        )


async def _over_limit(rt: Runtime, session: AsyncSession, citizen_id: int) -> bool:
    since = utcnow() - timedelta(seconds=rt.settings.SMS_RATE_WINDOW_SECONDS)
    count = (
        await session.execute(
            select(func.count(Message.id)).where(
                Message.citizen_id == citizen_id,
                Message.direction == Direction.inbound,
                Message.created_at >= since,
            )
        )
    ).scalar_one()
    return int(count) + 1 > rt.settings.SMS_RATE_LIMIT  # this text is not linked yet


async def _queue_reply(
    session: AsyncSession,
    message_id: int,
    ticket_id: int | None,
    phone: str,
    locale: str,
    reply: str,
) -> None:
    """The answer goes out like any text (and joins the thread), keyed on the text it
    answers. It always goes, even to an opted-out number (it answers the citizen's own
    text: the opt-out confirmation is one)."""
    await outbox.queue(
        session,
        key=f"reply:{message_id}",
        channel=Channel.sms,
        recipient=phone,
        template="reply",
        locale=locale,
        context={"body": reply},
        ticket_id=ticket_id,
    )


async def _replay(session: AsyncSession, message_id: int) -> InboundResult:
    """A text already answered: what was decided then, nothing new."""
    ticket_id = (
        await session.execute(select(Message.ticket_id).where(Message.id == message_id))
    ).scalar_one()
    answer = (
        await session.execute(select(Outbox.context).where(Outbox.key == f"reply:{message_id}"))
    ).scalar_one_or_none()
    reference = None
    if ticket_id is not None:
        reference = (
            await session.execute(select(Ticket.reference).where(Ticket.id == ticket_id))
        ).scalar_one_or_none()
    reply = answer.get("body") if answer else None
    return InboundResult(message_id, reference, reply, duplicate=True)
