"""SQLAlchemy 2.0 models of the ticket core. Models only: no behaviour here."""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime, time
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    Time,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware timestamps on every backend (SQLite keeps naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")
# Integer primary keys that are BIGINT on PostgreSQL and rowid aliases on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=24,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
    }


# ---------------------------------------------------------------- enums


class TicketStatus(enum.StrEnum):
    received = "received"
    dispatched = "dispatched"
    accepted = "accepted"
    returned = "returned"
    resolved = "resolved"
    reopened = "reopened"
    closed = "closed"
    merged = "merged"


class TicketKind(enum.StrEnum):
    inquiry = "inquiry"
    complaint = "complaint"
    suggestion = "suggestion"
    praise = "praise"
    report = "report"


class Priority(enum.StrEnum):
    normal = "normal"
    urgent = "urgent"


class Channel(enum.StrEnum):
    sms = "sms"
    voice = "voice"
    web = "web"
    kiosk = "kiosk"
    open311 = "open311"
    agent = "agent"  # typed in by an agent (walk-in, letter, e-mail)


class SlaState(enum.StrEnum):
    ok = "ok"
    due_soon = "due_soon"
    overdue = "overdue"
    met = "met"  # resolved in time
    missed = "missed"  # resolved late


class Role(enum.StrEnum):
    agent = "agent"
    department = "department"
    supervisor = "supervisor"
    admin = "admin"


class DeptLevel(enum.StrEnum):
    bureau = "bureau"
    district = "district"
    street = "street"


class Direction(enum.StrEnum):
    inbound = "in"
    outbound = "out"


class DeliveryStatus(enum.StrEnum):
    received = "received"
    queued = "queued"
    sending = "sending"
    sent = "sent"
    delivered = "delivered"
    undelivered = "undelivered"
    failed = "failed"
    read = "read"


class OutboxStatus(enum.StrEnum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    skipped = "skipped"  # opted out, no address: decided, nothing to send
    dead = "dead"


class ExtensionState(enum.StrEnum):
    none = "none"
    requested = "requested"
    granted = "granted"
    denied = "denied"


class CalendarDayKind(enum.StrEnum):
    holiday = "holiday"  # a weekday off
    workday = "workday"  # a make-up working day on a weekend (调休)


# ---------------------------------------------------------------- places and departments


class District(Base):
    __tablename__ = "districts"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    # Words in an address that place it in this district (names, streets, landmarks).
    keywords: Mapped[list[Any]] = mapped_column(default=list)


class Department(Base):
    __tablename__ = "departments"
    __table_args__ = (
        CheckConstraint(
            "(level = 'bureau' AND parent_id IS NULL) "
            "OR (level <> 'bureau' AND parent_id IS NOT NULL)",
            name="level_parent",
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    level: Mapped[DeptLevel] = mapped_column(_enum(DeptLevel, "dept_level"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), index=True)
    district_id: Mapped[int | None] = mapped_column(ForeignKey("districts.id"))
    # Street-office territory: address words for a street office.
    keywords: Mapped[list[Any]] = mapped_column(default=list)
    phone: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))

    parent: Mapped[Department | None] = relationship(remote_side="Department.id", lazy="raise")


# ---------------------------------------------------------------- catalogue and deadlines


class DeadlinePolicy(Base):
    __tablename__ = "deadline_policies"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    # Minutes to sign for (签收) and to resolve (办结), per priority.
    accept_minutes: Mapped[int] = mapped_column(Integer)
    resolve_minutes: Mapped[int] = mapped_column(Integer)
    urgent_accept_minutes: Mapped[int] = mapped_column(Integer)
    urgent_resolve_minutes: Mapped[int] = mapped_column(Integer)
    # True: counted in working time over the business calendar; False: around the clock.
    working_time: Mapped[bool] = mapped_column(Boolean, default=True)
    __table_args__ = (
        CheckConstraint(
            "accept_minutes > 0 AND resolve_minutes >= accept_minutes "
            "AND urgent_accept_minutes > 0 AND urgent_resolve_minutes >= urgent_accept_minutes",
            name="positive",
        ),
    )


class Service(Base):
    """An Open311-style service in the catalogue."""

    __tablename__ = "services"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    group_zh: Mapped[str] = mapped_column(String(100))
    group_en: Mapped[str] = mapped_column(String(100))
    description_zh: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[TicketKind] = mapped_column(_enum(TicketKind, "ticket_kind"))
    keywords: Mapped[list[Any]] = mapped_column(default=list)
    default_department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    # Territorial services go to the default bureau's office in the address's district.
    territorial: Mapped[bool] = mapped_column(Boolean, default=False)
    deadline_policy_id: Mapped[int] = mapped_column(ForeignKey("deadline_policies.id"))
    # Custom form fields (Open311 attributes):
    # [{code, datatype, required, label_zh, label_en, values: [{key, name_zh, name_en}]}]
    fields: Mapped[list[Any]] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    default_department: Mapped[Department] = relationship(lazy="raise")
    deadline_policy: Mapped[DeadlinePolicy] = relationship(lazy="raise")


class WorkingHours(Base):
    """Working periods of an ordinary working day, per weekday (0 = Monday)."""

    __tablename__ = "working_hours"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday"),
        CheckConstraint("start_time < end_time", name="order"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    weekday: Mapped[int] = mapped_column(SmallInteger)
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)


class CalendarDay(Base):
    """An exception to the weekly pattern: a public holiday, or a make-up working day."""

    __tablename__ = "calendar_days"
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[CalendarDayKind] = mapped_column(_enum(CalendarDayKind, "calendar_day_kind"))
    name_zh: Mapped[str] = mapped_column(String(100), default="")
    name_en: Mapped[str] = mapped_column(String(100), default="")


class KbArticle(Base):
    __tablename__ = "kb_articles"
    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id"))
    title_zh: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200))
    body_zh: Mapped[str] = mapped_column(Text)
    body_en: Mapped[str] = mapped_column(Text)
    keywords: Mapped[list[Any]] = mapped_column(default=list)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# ---------------------------------------------------------------- people


class Citizen(Base):
    __tablename__ = "citizens"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    phone: Mapped[str | None] = mapped_column(String(20), unique=True)  # E.164
    name: Mapped[str | None] = mapped_column(String(100))
    locale: Mapped[str] = mapped_column(String(8), default="zh-CN")
    # Channels this citizen opted out of, e.g. ["sms"].
    opt_outs: Mapped[list[Any]] = mapped_column(default=list)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "(role = 'department') = (department_id IS NOT NULL)", name="department_binding"
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(_enum(Role, "user_role"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    locale: Mapped[str] = mapped_column(String(8), default="zh-CN")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column()
    # Bumped to revoke every token issued before.
    token_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    department: Mapped[Department | None] = relationship(lazy="raise")


class StaffSession(Base):
    """A browser sign-in: the cookie holds a random id, the table only its sha256."""

    __tablename__ = "staff_sessions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    ip: Mapped[str] = mapped_column(String(45), default="")
    user_agent: Mapped[str] = mapped_column(String(200), default="")


class AuditEntry(Base):
    """Who signed in or out, failed, or was locked out: append-only."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    action: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    username: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(45), default="")
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ApiClient(Base):
    __tablename__ = "api_clients"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(12))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column()


class KioskDevice(Base):
    __tablename__ = "kiosk_devices"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    token_prefix: Mapped[str] = mapped_column(String(12))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    location: Mapped[str] = mapped_column(String(200), default="")
    last_seen_at: Mapped[datetime | None] = mapped_column()
    status: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class KioskSubmission(Base):
    """A report a kiosk handed in: which device, under which ``Idempotency-Key`` (its
    sha256; a retry of the same key answers the same ticket), the provisional reference
    printed on the citizen's receipt, and when the citizen pressed submit."""

    __tablename__ = "kiosk_submissions"
    __table_args__ = (
        UniqueConstraint("device_id", "key_hash", name="uq_kiosk_submissions_device_key"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("kiosk_devices.id"))
    key_hash: Mapped[str] = mapped_column(String(64))
    # sha256 of the submission as sent: the same key with other content is refused.
    request_hash: Mapped[str] = mapped_column(String(64))
    provisional_reference: Mapped[str | None] = mapped_column(String(21), unique=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), unique=True)
    submitted_at: Mapped[datetime | None] = mapped_column()
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


# ---------------------------------------------------------------- tickets


OPEN_TICKET = "status NOT IN ('closed', 'merged')"


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        CheckConstraint("length(reference) = 14", name="reference_length"),
        CheckConstraint(
            "satisfaction IS NULL OR satisfaction BETWEEN 1 AND 5", name="satisfaction"
        ),
        Index("ix_tickets_status_due", "status", "due_at"),
        Index("ix_tickets_department_status", "department_id", "status"),
        Index("ix_tickets_created", "created_at"),
        # Duplicate candidates: open tickets of a district or a service, newest first.
        Index(
            "ix_tickets_open_district",
            "district_id",
            "created_at",
            postgresql_where=text(OPEN_TICKET),
            sqlite_where=text(OPEN_TICKET),
        ),
        Index(
            "ix_tickets_open_service",
            "service_id",
            "created_at",
            postgresql_where=text(OPEN_TICKET),
            sqlite_where=text(OPEN_TICKET),
        ),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    reference: Mapped[str] = mapped_column(String(14), unique=True)
    status: Mapped[TicketStatus] = mapped_column(_enum(TicketStatus, "ticket_status"))
    kind: Mapped[TicketKind] = mapped_column(_enum(TicketKind, "ticket_kind"))
    priority: Mapped[Priority] = mapped_column(_enum(Priority, "priority"), default=Priority.normal)
    channel: Mapped[Channel] = mapped_column(_enum(Channel, "channel"))
    locale: Mapped[str] = mapped_column(String(8))
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"), index=True)
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    title: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(String(300))
    district_id: Mapped[int | None] = mapped_column(ForeignKey("districts.id"))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Routing decision at intake (kept as given, even when a person dispatched elsewhere).
    routing_department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    routing_reason: Mapped[str] = mapped_column(Text, default="")
    routing_confidence: Mapped[float] = mapped_column(Float, default=0.0)
    routing_rule: Mapped[str] = mapped_column(String(32), default="")
    # The routing model's version where it decided the department (rule "model").
    routing_version: Mapped[int | None] = mapped_column()
    # The service intake gave the ticket; its service now may be one a dispatcher chose.
    routing_service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id"))
    # When a person chose or confirmed the service at dispatch (None: as intake left it;
    # a service the routing model named is learnt from only once a person has).
    service_confirmed_at: Mapped[datetime | None] = mapped_column()
    # Deadlines: accept-by (签收时限) and resolve-by (办结时限).
    accept_due_at: Mapped[datetime | None] = mapped_column()
    due_at: Mapped[datetime | None] = mapped_column()
    sla_state: Mapped[SlaState] = mapped_column(_enum(SlaState, "sla_state"), default=SlaState.ok)
    extension: Mapped[ExtensionState] = mapped_column(
        _enum(ExtensionState, "extension_state"), default=ExtensionState.none
    )
    extension_until: Mapped[datetime | None] = mapped_column()
    dispatched_at: Mapped[datetime | None] = mapped_column()
    accepted_at: Mapped[datetime | None] = mapped_column()
    resolved_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    reply: Mapped[str | None] = mapped_column(Text)
    # How the citizen asked to hear updates (None: the default, SMS).
    notify_channel: Mapped[Channel | None] = mapped_column(_enum(Channel, "notify_channel"))
    satisfaction: Mapped[int | None] = mapped_column(SmallInteger)
    solved: Mapped[bool | None] = mapped_column(Boolean)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    dispatch_count: Mapped[int] = mapped_column(Integer, default=0)
    urge_count: Mapped[int] = mapped_column(Integer, default=0)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    external_ref: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Who handed the ticket in besides the citizen: an Open311 client's or a kiosk's name.
    source: Mapped[str | None] = mapped_column(String(100))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    service: Mapped[Service | None] = relationship(lazy="raise", foreign_keys=[service_id])
    department: Mapped[Department | None] = relationship(foreign_keys=[department_id], lazy="raise")
    citizen: Mapped[Citizen | None] = relationship(lazy="raise")


class TicketEvent(Base):
    """Append-only history of a ticket (a database trigger refuses UPDATE and DELETE)."""

    __tablename__ = "ticket_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str | None] = mapped_column(String(24))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor: Mapped[str] = mapped_column(String(100))  # "agent1", "citizen", "system"
    reason: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Shown on the public track page (steps and the department's reply).
    public: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Message(Base):
    """Every inbound and outbound contact on any channel."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("provider", "provider_id", name="uq_messages_provider_id"),
        Index("ix_messages_ticket", "ticket_id", "created_at"),
        Index(
            "ix_messages_due_texts",
            "created_at",
            postgresql_where=text("status = 'received' AND direction = 'in'"),
            sqlite_where=text("status = 'received' AND direction = 'in'"),
        ),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"), index=True)
    channel: Mapped[Channel] = mapped_column(_enum(Channel, "channel"))
    direction: Mapped[Direction] = mapped_column(_enum(Direction, "direction"))
    provider: Mapped[str] = mapped_column(String(16))  # twilio | dev | web | kiosk
    provider_id: Mapped[str | None] = mapped_column(String(64))
    # Outbound: the outbox key that produced it (one message per key).
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    from_addr: Mapped[str | None] = mapped_column(String(64))
    to_addr: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text, default="")
    template: Mapped[str | None] = mapped_column(String(64))
    segments: Mapped[int] = mapped_column(SmallInteger, default=1)
    status: Mapped[DeliveryStatus] = mapped_column(_enum(DeliveryStatus, "delivery_status"))
    error_code: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Attachment(Base):
    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(400))
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# ---------------------------------------------------------------- durable side effects


class Outbox(Base):
    """A side effect a person will see, written in the transaction that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # event × recipient × channel: the same notification is never queued twice.
    key: Mapped[str] = mapped_column(String(200), unique=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"))
    channel: Mapped[Channel] = mapped_column(_enum(Channel, "channel"))
    recipient: Mapped[str] = mapped_column(String(64))
    template: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(8))
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[OutboxStatus] = mapped_column(
        _enum(OutboxStatus, "outbox_status"), default=OutboxStatus.pending
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()


class BusEvent(Base):
    """The real-time bus's log: ids increase; ``/ws?since=`` replays from here."""

    __tablename__ = "bus_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Who may see it: department code (None: all agents/supervisors), or supervisors only.
    department_code: Mapped[str | None] = mapped_column(String(32))
    supervisors_only: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DevMessage(Base):
    """What the dev gateway "sent": the stand-in for Twilio's side of the wire."""

    __tablename__ = "dev_messages"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    channel: Mapped[Channel] = mapped_column(_enum(Channel, "channel"))
    to_addr: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    template: Mapped[str | None] = mapped_column(String(64))
    segments: Mapped[int] = mapped_column(SmallInteger, default=1)
    status: Mapped[str] = mapped_column(String(16), default="delivered")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# ---------------------------------------------------------------- calls


class Call(Base):
    """A phone call, in or out: a contact in the citizen's history.

    ``state`` is where the IVR flow stands (node, language, answers so far); ``path``
    in it is the way the caller took through the menu. Unique on the provider's
    CallSid, so a retried webhook finds the same call.
    """

    __tablename__ = "calls"
    __table_args__ = (
        UniqueConstraint("provider", "call_sid", name="uq_calls_provider_sid"),
        Index("ix_calls_queue", "queue", "queued_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))  # twilio | dev
    call_sid: Mapped[str] = mapped_column(String(64))
    direction: Mapped[Direction] = mapped_column(_enum(Direction, "direction"))
    purpose: Mapped[str] = mapped_column(String(16), default="ivr")  # ivr | status | survey
    from_addr: Mapped[str | None] = mapped_column(String(64))
    to_addr: Mapped[str | None] = mapped_column(String(64))
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    locale: Mapped[str] = mapped_column(String(8), default="zh-CN")
    status: Mapped[str] = mapped_column(String(16), default="in-progress")  # Twilio CallStatus
    flow: Mapped[str | None] = mapped_column(String(40))
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # In the agents' queue: which queue and since when; taken by which agent, when.
    queue: Mapped[str | None] = mapped_column(String(40))
    queued_at: Mapped[datetime | None] = mapped_column()
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    connected_at: Mapped[datetime | None] = mapped_column()
    recording_url: Mapped[str | None] = mapped_column(String(500))
    transcription: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column()
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CallStatusEvent(Base):
    """Each status Twilio reported for a call, once (callbacks are retried)."""

    __tablename__ = "call_status_events"
    __table_args__ = (UniqueConstraint("call_id", "status", name="uq_call_status"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# ---------------------------------------------------------------- the citizens' mobile web


class ServiceForm(Base):
    """A form a citizen can download with a service's guidance (a PDF to fill in or print)."""

    __tablename__ = "service_forms"
    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"), index=True)
    title_zh: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(300))  # a path on this site, e.g. /m/forms/x.pdf
    position: Mapped[int] = mapped_column(SmallInteger, default=0)


class WebDraft(Base):
    """A report being written on the mobile web, kept between its steps on the server (its
    photos, the phone to confirm). The browser's cookie holds a random token, the table
    only its sha256. Once submitted only the ticket is kept, until the draft expires."""

    __tablename__ = "web_drafts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class PhoneCode(Base):
    """A one-time code sent by SMS to confirm the phone of a web report: only its HMAC is
    kept; it expires and takes a limited number of tries."""

    __tablename__ = "phone_codes"
    __table_args__ = (CheckConstraint("tries >= 0", name="tries"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("web_drafts.id"), index=True)
    phone: Mapped[str] = mapped_column(String(20))  # E.164
    code_hash: Mapped[str] = mapped_column(String(64))
    tries: Mapped[int] = mapped_column(SmallInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None] = mapped_column()


class WebLimit(Base):
    """A counter of what one client or one phone did within a window (wrong guesses on the
    track page, codes sent), and the lock it earned. ``key`` is a sha256 of what is
    counted, never an address or a number in clear; past ``reset_at`` it starts again."""

    __tablename__ = "web_limits"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    scope: Mapped[str] = mapped_column(String(24))
    count: Mapped[int] = mapped_column(Integer, default=0)
    reset_at: Mapped[datetime] = mapped_column(index=True)


# ---------------------------------------------------------------- learning and watching


class RoutingModel(Base):
    """A trained routing model: one row per version, with what it was trained on and
    how it measured. ``blob`` is a :class:`contact.learning.TextModel` as saved by its
    ``to_bytes`` (arrays and a JSON header, no pickle) that suggests departments;
    ``service_blob``, when there were enough tickets with a service to learn from, one
    that suggests services (its figures in ``metrics["service"]``). At most one
    version is ``active``."""

    __tablename__ = "routing_models"
    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    target: Mapped[str] = mapped_column(String(16), default="department")
    source: Mapped[str] = mapped_column(String(200))  # "tickets" or the CSV's name
    rows: Mapped[int] = mapped_column(Integer)
    labels: Mapped[list[Any]] = mapped_column(default=list)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    blob: Mapped[bytes] = mapped_column(LargeBinary)
    service_blob: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    train_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class HotspotAlert(Base):
    """A hot spot announced (``hotspot.detected``): once per service × district × day."""

    __tablename__ = "hotspot_alerts"
    __table_args__ = (
        UniqueConstraint("day", "service_id", "district_id", name="uq_hotspot_alerts_key"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"))
    count: Mapped[int] = mapped_column(Integer)
    expected: Mapped[float] = mapped_column(Float)
    p_value: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
