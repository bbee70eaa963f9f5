"""Settings: one pydantic-settings class, read from the environment (prefix ``CONTACT_``).

A missing or wrong setting stops start-up with one line naming it
(see :func:`load_settings`).
"""

from __future__ import annotations

import secrets
import sys
from datetime import time
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from contact.places import DistrictBoundaries

DEMO_SECRET = "embedded-demo-secret-not-for-production"  # noqa: S105 - refused outside the demo


class Gateway(StrEnum):
    twilio = "twilio"
    dev = "dev"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONTACT_", extra="ignore", frozen=True)

    DATABASE_URL: str = "sqlite:///var/contact.db"
    DATABASE_POOL_SIZE: int = Field(20, ge=1, le=200)
    REDIS_URL: str | None = None
    SECRET_KEY: str = DEMO_SECRET
    PUBLIC_BASE_URL: str = "http://127.0.0.1:8000"
    TWILIO_ACCOUNT_SID: str | None = None
    TWILIO_AUTH_TOKEN: str | None = None
    TWILIO_FROM_NUMBER: str | None = None
    SMS_GATEWAY: Gateway = Gateway.dev
    VOICE_GATEWAY: Gateway = Gateway.dev
    DEFAULT_LOCALE: str = "zh-CN"
    MEDIA_DIR: Path = Path("var/media")
    TIMEZONE: str = "Asia/Shanghai"
    # Country whose numbering plan applies to phone numbers typed without "+".
    DEFAULT_REGION: str = "CN"

    # Operations knobs (documented in README "Configuration").
    OUTBOX_MAX_ATTEMPTS: Annotated[int, Field(ge=1, le=50)] = 8
    OUTBOX_BACKOFF_SECONDS: Annotated[float, Field(gt=0)] = 5.0
    OUTBOX_LEASE_SECONDS: Annotated[float, Field(gt=0)] = 60.0
    SWEEP_INTERVAL_SECONDS: Annotated[int, Field(ge=1)] = 5
    # How much lower the worker's CPU priority is than the server's (Unix nice, 0-19):
    # on a shared host, answering webhooks and staff pages comes before background jobs.
    WORKER_NICE: Annotated[int, Field(ge=0, le=19)] = 10
    IVR_FLOW: str = "demo"  # the flow (ivr/flows/<name>.yaml) calls start in
    # When callers can reach an agent: in the business calendar's working time, around
    # the clock, or never (voicemail and a promised callback only).
    AGENT_HOURS: Literal["calendar", "always", "never"] = "calendar"
    SLA_SCAN_INTERVAL_SECONDS: Annotated[int, Field(ge=1)] = 60
    DUE_SOON_FRACTION: Annotated[float, Field(gt=0, lt=1)] = 0.2
    # Texts from one number within this window join its open ticket.
    SMS_JOIN_WINDOW_MINUTES: Annotated[int, Field(ge=0)] = 30
    # Flood protection: texts from one number past this many per window are stored, not answered.
    SMS_RATE_LIMIT: Annotated[int, Field(ge=1)] = 10
    SMS_RATE_WINDOW_SECONDS: Annotated[int, Field(ge=1)] = 600
    # Non-urgent texts queued in these local hours wait until their end ("" turns it off).
    QUIET_HOURS: str = "22:00-08:00"
    # How long after resolution a citizen's rating by text still counts.
    SATISFACTION_WINDOW_DAYS: Annotated[int, Field(ge=1)] = 7
    TOKEN_TTL_HOURS: Annotated[int, Field(ge=1)] = 12
    # Simulated provider latency of the dev gateway, after it has accepted a message.
    DEV_GATEWAY_LATENCY_MS: Annotated[int, Field(ge=0)] = 0
    LOG_LEVEL: str = "INFO"
    # The Open311 jurisdiction_id this server answers for ("": the host of PUBLIC_BASE_URL).
    OPEN311_JURISDICTION: str = ""
    # District boundaries (GeoJSON FeatureCollection, property "code" = district code):
    # a ticket's location places it when its address does not. Unset: by words only.
    DISTRICTS_GEOJSON: Path | None = None
    # Merge suggestions: open tickets created within this many days of each other, scoring
    # at least the threshold (0–1); the same phone's tickets within the hours are linked.
    DUPLICATE_WINDOW_DAYS: Annotated[float, Field(gt=0, le=90)] = 7
    DUPLICATE_THRESHOLD: Annotated[float, Field(gt=0, le=1)] = 0.5
    DUPLICATE_LINK_HOURS: Annotated[float, Field(gt=0, le=24 * 90)] = 72
    # Real-time events older than this are deleted from the replay log (``bus_events``):
    # a console away longer reloads its lists anyway when it reconnects.
    EVENT_RETENTION_DAYS: Annotated[float, Field(gt=0, le=3650)] = 7
    # How often the hot-spot scan looks at today's counts (service × district).
    HOTSPOT_SCAN_INTERVAL_SECONDS: Annotated[int, Field(ge=10)] = 900
    # A new ticket whose routing confidence reaches this goes to its department at once
    # (dispatched by the system); below it, the agent decides. Unset: agents decide all.
    ROUTING_AUTO_DISPATCH: Annotated[float | None, Field(gt=0, le=1)] = None
    # How often the routing model is retrained from resolved tickets (0: on demand only).
    ROUTING_RETRAIN_HOURS: Annotated[int, Field(ge=0)] = 24

    @field_validator("DATABASE_URL")
    @classmethod
    def _db_url(cls, v: str) -> str:
        scheme = v.split("://", 1)[0]
        if "://" not in v or not (scheme.startswith("sqlite") or scheme.startswith("postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return v

    @field_validator("ROUTING_AUTO_DISPATCH", mode="before")
    @classmethod
    def _blank_is_off(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("REDIS_URL")
    @classmethod
    def _redis_url(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        if not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// URL")
        return v

    @field_validator("PUBLIC_BASE_URL")
    @classmethod
    def _base_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")

    @field_validator("DEFAULT_LOCALE")
    @classmethod
    def _locale(cls, v: str) -> str:
        if v not in ("zh-CN", "en"):
            raise ValueError("must be zh-CN or en")
        return v

    @field_validator("QUIET_HOURS")
    @classmethod
    def _quiet(cls, v: str) -> str:
        if v.strip():
            parse_quiet_hours(v)
        return v.strip()

    @property
    def quiet_hours(self) -> tuple[time, time] | None:
        return parse_quiet_hours(self.QUIET_HOURS) if self.QUIET_HOURS else None

    @field_validator("OPEN311_JURISDICTION")
    @classmethod
    def _jurisdiction(cls, v: str) -> str:
        v = v.strip()
        if len(v) > 100 or any(ch.isspace() for ch in v):
            raise ValueError("one word without spaces (e.g. 311.city.gov), at most 100 characters")
        return v

    @field_validator("DISTRICTS_GEOJSON", mode="before")
    @classmethod
    def _districts_geojson_unset(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("DISTRICTS_GEOJSON")
    @classmethod
    def _districts_geojson(cls, v: Path | None) -> Path | None:
        if v is None:
            return None
        from contact.places import BoundaryError, load_boundaries

        try:
            load_boundaries(v)
        except BoundaryError as exc:
            raise ValueError(str(exc)) from None
        return v

    @property
    def district_boundaries(self) -> DistrictBoundaries | None:
        """The boundaries file, read once (the validator read it first)."""
        if self.DISTRICTS_GEOJSON is None:
            return None
        from contact.places import load_boundaries

        return load_boundaries(self.DISTRICTS_GEOJSON)

    @field_validator("TIMEZONE")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("unknown time zone") from exc
        return v

    @model_validator(mode="after")
    def _gateways(self) -> Settings:
        twilio_used = Gateway.twilio in (self.SMS_GATEWAY, self.VOICE_GATEWAY)
        if twilio_used:
            for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER"):
                if not getattr(self, name):
                    raise ValueError(f"{name} is required when a gateway is twilio")
        if not self.embedded and self.SECRET_KEY == DEMO_SECRET:
            raise ValueError("SECRET_KEY must be set outside the embedded demo")
        if len(self.SECRET_KEY) < 16:
            raise ValueError("SECRET_KEY must be at least 16 characters")
        return self

    @property
    def embedded(self) -> bool:
        """The embedded demo: SQLite, in-process jobs, dev gateways."""
        return (
            self.DATABASE_URL.startswith("sqlite")
            and Gateway.dev == self.SMS_GATEWAY
            and Gateway.dev == self.VOICE_GATEWAY
        )

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.TIMEZONE)

    @property
    def open311_jurisdiction(self) -> str:
        return self.OPEN311_JURISDICTION or urlsplit(self.PUBLIC_BASE_URL).hostname or "localhost"

    @property
    def dev_gateway(self) -> bool:
        return Gateway.dev in (self.SMS_GATEWAY, self.VOICE_GATEWAY)


def parse_quiet_hours(value: str) -> tuple[time, time]:
    """``"22:00-08:00"`` → (22:00, 08:00); ValueError with a clear message otherwise."""
    try:
        start, end = (time.fromisoformat(part.strip()) for part in value.split("-"))
    except ValueError:
        raise ValueError("must look like 22:00-08:00") from None
    if start == end:
        raise ValueError("start and end must differ")
    return start, end


class SettingsError(Exception):
    """A setting is missing or wrong; ``str()`` is one line naming it."""


def _one_line(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = [str(p) for p in err.get("loc", ()) if p != "__root__"]
    msg = err.get("msg", "invalid").removeprefix("Value error, ")
    if loc:
        return f"setting CONTACT_{loc[0]} is invalid: {msg}"
    return f"setting {msg}" if msg.split(" ", 1)[0].isupper() else f"settings invalid: {msg}"


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        line = _one_line(exc)
        if not line.startswith("setting CONTACT_") and line.startswith("setting "):
            line = "setting CONTACT_" + line.removeprefix("setting ")
        raise SettingsError(line) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def settings_or_exit() -> Settings:
    """Used by every entry point: one clear line and exit status 2 on a bad setting."""
    try:
        return get_settings()
    except SettingsError as exc:
        print(f"contact: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def random_secret(nbytes: int = 24) -> str:
    return secrets.token_urlsafe(nbytes)
