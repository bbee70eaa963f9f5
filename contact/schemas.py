"""Pydantic models of the REST API: ``XCreate`` / ``XRead`` per resource."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, field_validator

from contact.models import Channel, Priority, Role, TicketKind

DESCRIPTION_MAX = 4000
ADDRESS_MAX = 300
REPLY_MAX = 4000


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def normalize_phone(value: str, region: str = "CN") -> str:
    """E.164, or ValueError with a message a person can act on."""
    return _e164(value, region)


@lru_cache(maxsize=4096)  # the same numbers text and call again and again
def _e164(value: str, region: str) -> str:
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise ValueError("not a phone number") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


class TicketCreate(_In):
    description: Annotated[str, Field(min_length=1, max_length=DESCRIPTION_MAX)]
    kind: TicketKind | None = None
    service: Annotated[str | None, Field(max_length=64)] = None
    phone: Annotated[str | None, Field(max_length=32)] = None
    address: Annotated[str | None, Field(max_length=ADDRESS_MAX)] = None
    district: Annotated[str | None, Field(max_length=32)] = None
    channel: Channel = Channel.agent
    priority: Priority = Priority.normal
    title: Annotated[str, Field(max_length=200)] = ""
    fields: dict[str, Any] = Field(default_factory=dict)
    anonymous: bool = False
    locale: Annotated[str | None, Field(pattern=r"^(zh-CN|en)$")] = None
    lat: Annotated[float | None, Field(ge=-90, le=90)] = None
    lon: Annotated[float | None, Field(ge=-180, le=180)] = None

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        return normalize_phone(v) if v else None

    @field_validator("description")
    @classmethod
    def _description(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v


class ActionBody(_In):
    department: Annotated[str | None, Field(max_length=32)] = None
    # Dispatch: the service (事项) the dispatcher chose or confirmed; a new one moves the
    # deadline to that service's.
    service: Annotated[str | None, Field(max_length=32)] = None
    reason: Annotated[str | None, Field(max_length=2000)] = None
    reply: Annotated[str | None, Field(max_length=REPLY_MAX)] = None
    until: datetime | None = None
    into: Annotated[str | None, Field(max_length=20)] = None
    text: Annotated[str | None, Field(max_length=4000)] = None
    public: bool = False  # notes: visible to the citizen on the track page
    # The citizen's rating at close or reopen (回访): 1 satisfied, 2 fairly satisfied,
    # 3 not satisfied.
    satisfaction: Annotated[int | None, Field(ge=1, le=3)] = None
    solved: bool | None = None


class RoutingRead(BaseModel):
    """How intake routed the ticket, kept as it was when a person dispatched elsewhere
    or chose another service."""

    department: str | None
    service: str | None
    reason: str
    confidence: float
    rule: str
    version: int | None = None  # the routing model's, where it decided


class EventRead(BaseModel):
    id: int
    kind: str
    from_status: str | None
    to_status: str | None
    actor: str
    reason: str | None
    data: dict[str, Any]
    public: bool
    created_at: datetime


class MessageRead(BaseModel):
    id: int
    channel: str
    direction: str
    body: str
    status: str
    template: str | None
    created_at: datetime


class AttachmentRead(BaseModel):
    id: int
    filename: str
    content_type: str
    size: int
    public: bool  # shown to the citizen on the track page
    created_at: datetime
    url: str


class TicketRead(BaseModel):
    reference: str
    reference_grouped: str
    status: str
    kind: str
    priority: str
    channel: str
    locale: str
    service: str | None
    department: str | None
    district: str | None
    title: str
    description: str
    address: str | None
    phone: str | None  # masked for department staff of anonymous reports
    anonymous: bool
    fields: dict[str, Any]
    routing: RoutingRead
    accept_due_at: datetime | None
    due_at: datetime | None
    sla_state: str
    extension: str
    extension_until: datetime | None
    reply: str | None
    satisfaction: int | None
    merged_into: str | None
    allowed_actions: list[str]
    created_at: datetime
    updated_at: datetime
    dispatched_at: datetime | None
    accepted_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    urge_count: int = 0
    source: str | None = None  # the Open311 client or kiosk that handed it in
    # When a person chose or confirmed the service at dispatch (None: as intake left it).
    service_confirmed_at: datetime | None = None
    events: list[EventRead] | None = None
    messages: list[MessageRead] | None = None
    attachments: list[AttachmentRead] | None = None


class TicketPage(BaseModel):
    items: list[TicketRead]
    total: int
    limit: int
    offset: int


class DepartmentRead(BaseModel):
    code: str
    name_zh: str
    name_en: str
    level: str
    parent: str | None
    district: str | None


class FieldRead(BaseModel):
    model_config = ConfigDict(extra="allow")
    code: str
    datatype: str
    required: bool = False


class ServiceRead(BaseModel):
    code: str
    name_zh: str
    name_en: str
    group_zh: str
    group_en: str
    description_zh: str
    description_en: str
    kind: str
    department: str
    territorial: bool
    keywords: list[str]
    fields: list[dict[str, Any]]


class UserRead(BaseModel):
    id: int
    username: str
    display_name: str
    role: Role
    department: str | None
    locale: str
    active: bool


class UserCreate(_In):
    username: Annotated[str, Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    password: Annotated[str, Field(min_length=10, max_length=200)]
    role: Role
    department: str | None = None
    display_name: Annotated[str, Field(max_length=100)] = ""
    locale: Annotated[str, Field(pattern=r"^(zh-CN|en)$")] = "zh-CN"


class TokenRead(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105
    expires_in: int


class OutboxRead(BaseModel):
    id: int
    key: str
    channel: str
    recipient: str  # masked
    template: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


class BlockBody(_In):
    phone: Annotated[str, Field(max_length=32)]
    blocked: bool = True

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str) -> str:
        return normalize_phone(v)


class CitizenRead(BaseModel):
    phone: str
    locale: str
    opt_outs: list[str]
    blocked: bool


class SummaryRead(BaseModel):
    period_from: datetime
    period_to: datetime
    tickets: int
    by_status: dict[str, int]
    by_channel: dict[str, int]
    response_rate: float | None
    on_time_rate: float | None
    satisfaction_rate: float | None
    resolution_rate: float | None
    reopen_rate: float | None
    ratings: int
    satisfied: int
    reopened: int
