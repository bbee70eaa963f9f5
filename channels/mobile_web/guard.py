"""What keeps the citizens' pages safe without accounts or JavaScript.

- **CSRF**: a random cookie (``m_csrf``) and, in every form, its HMAC under the
  server's secret; a post whose field does not match its cookie is refused.
- **Track links**: after a right reference + last 4 digits, the timeline opens with a
  signed, short-lived token (reference and expiry under an HMAC); the rating and reopen
  forms carry it back.
- **Limits**: counters in ``web_limits`` per what is counted (a client, a reference
  and a client, a phone), keyed by a sha256 so no address or number is stored in clear.
  A counter that reaches its limit is locked until its window ends.
- **Purge**: expired drafts, codes and counters are deleted lazily, at most once a
  minute per process, by the requests that write them.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, case, delete, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from contact.db import dialect_name
from contact.models import Attachment, PhoneCode, UTCDateTime, WebDraft, WebLimit, utcnow

log = logging.getLogger(__name__)

CSRF_COOKIE = "m_csrf"
LIMITS = cast(Table, WebLimit.__table__)


# ---------------------------------------------------------------- CSRF


def csrf_cookie(request: Request) -> tuple[str, bool]:
    """The client's CSRF cookie value, and whether it is new (to be set on the response)."""
    value = request.cookies.get(CSRF_COOKIE, "")
    if 20 <= len(value) <= 64:
        return value, False
    return secrets.token_urlsafe(24), True


def csrf_token(secret: str, cookie: str) -> str:
    return hmac.new(secret.encode(), b"m-csrf:" + cookie.encode(), "sha256").hexdigest()


def csrf_ok(secret: str, request: Request, presented: object) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not isinstance(presented, str) or not presented:
        return False
    return hmac.compare_digest(csrf_token(secret, cookie), presented)


# ---------------------------------------------------------------- signed track links


TRACK_TOKEN_SECONDS = 3600


def track_token(secret: str, reference: str, now: float | None = None) -> str:
    expires = int((now or time.time()) + TRACK_TOKEN_SECONDS)
    return f"{reference}.{expires}.{_sign(secret, reference, expires)}"


def read_track_token(secret: str, token: str | None) -> str | None:
    """The reference a token opens, or None (malformed, forged or expired)."""
    try:
        reference, expires_s, sig = (token or "").split(".")
        expires = int(expires_s)
    except ValueError:
        return None
    if not hmac.compare_digest(_sign(secret, reference, expires), sig):
        return None
    return reference if expires >= time.time() else None


def _sign(secret: str, reference: str, expires: int) -> str:
    msg = f"m-track:{reference}:{expires}".encode()
    return hmac.new(secret.encode(), msg, "sha256").hexdigest()[:32]


# ---------------------------------------------------------------- clients and secrets


def client_ip(request: Request) -> str:
    """The client's address as the server sees it (``contact serve`` takes it from
    ``X-Forwarded-For`` when the proxy is one uvicorn trusts, ``FORWARDED_ALLOW_IPS``)."""
    return request.client.host if request.client else ""


def digest(secret: str, *parts: object) -> str:
    """A keyed hash of what is counted or stored (a client, a phone, a code)."""
    msg = "\x1f".join(str(p) for p in parts).encode()
    return hmac.new(secret.encode(), msg, "sha256").hexdigest()


# ---------------------------------------------------------------- counters and locks


@dataclass(frozen=True)
class Limit:
    scope: str
    limit: int
    window: timedelta
    lock: timedelta | None = None  # reaching the limit locks for this long (else: the window)


async def locked_until(session: AsyncSession, key: str, rule: Limit) -> datetime | None:
    """When the counter ``key`` unlocks, if it has reached its limit."""
    row = (
        await session.execute(select(WebLimit.count, WebLimit.reset_at).where(WebLimit.key == key))
    ).first()
    if row is None:
        return None
    hits, reset_at = int(row[0]), row[1]
    if reset_at <= utcnow() or hits < rule.limit:
        return None
    return reset_at  # type: ignore[no-any-return]


async def count(session: AsyncSession, key: str, rule: Limit) -> int:
    """Count one more against ``key`` (in the caller's transaction); the new count. The
    hit that reaches the limit starts the lock."""
    now = utcnow()
    fresh = now + rule.window
    when = UTCDateTime()
    if dialect_name(session) == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    new = insert(LIMITS).values(key=key, scope=rule.scope, count=1, reset_at=fresh)
    expired = LIMITS.c.reset_at <= literal(now, when)
    stmt = new.on_conflict_do_update(
        index_elements=["key"],
        set_={
            "count": case((expired, 1), else_=LIMITS.c.count + 1),
            "reset_at": case((expired, literal(fresh, when)), else_=LIMITS.c.reset_at),
        },
    ).returning(LIMITS.c.count)
    n = int((await session.execute(stmt)).scalar_one())
    if n == rule.limit and rule.lock is not None:
        await session.execute(
            update(WebLimit).where(WebLimit.key == key).values(reset_at=now + rule.lock)
        )
    return n


async def forget(session: AsyncSession, key: str) -> None:
    await session.execute(delete(WebLimit).where(WebLimit.key == key))


# ---------------------------------------------------------------- purge


PURGE_EVERY_SECONDS = 60.0
_last_purge = [0.0]


async def purge_soon(session: AsyncSession, media_dir: Path) -> None:
    """Delete what has expired, at most once a minute per process (in the caller's
    transaction): counters past their window, codes past their expiry, drafts past
    theirs with the photos no ticket took."""
    if time.monotonic() - _last_purge[0] < PURGE_EVERY_SECONDS:
        return
    _last_purge[0] = time.monotonic()
    await purge(session, media_dir)


async def purge(session: AsyncSession, media_dir: Path) -> int:
    now = utcnow()
    await session.execute(delete(WebLimit).where(WebLimit.reset_at <= now))
    expired_drafts = select(WebDraft.id).where(WebDraft.expires_at <= now)
    await session.execute(
        delete(PhoneCode).where(
            (PhoneCode.expires_at <= now - timedelta(hours=1))
            | PhoneCode.draft_id.in_(expired_drafts)
        )
    )
    drafts = (
        await session.execute(
            select(WebDraft.id, WebDraft.data, WebDraft.ticket_id).where(WebDraft.expires_at <= now)
        )
    ).all()
    unsent: list[dict[str, Any]] = [
        p for d in drafts if d.ticket_id is None for p in (d.data or {}).get("photos", [])
    ]
    if drafts:
        await session.execute(delete(WebDraft).where(WebDraft.id.in_([d.id for d in drafts])))
    await drop_photos(session, media_dir, unsent)
    return len(drafts)


async def drop_photos(session: AsyncSession, media_dir: Path, photos: list[dict[str, Any]]) -> None:
    """Delete the files of draft photos no ticket took (content-addressed: a file an
    attachment uses stays)."""
    if not photos:
        return
    taken = set(
        (
            await session.execute(
                select(Attachment.sha256).where(
                    Attachment.sha256.in_([p["sha256"] for p in photos])
                )
            )
        ).scalars()
    )
    for p in photos:
        if p["sha256"] not in taken:
            (media_dir / p["path"]).unlink(missing_ok=True)


def new_secret_token() -> tuple[str, str]:
    """A random token for a cookie, and the sha256 the table keeps."""
    token = secrets.token_urlsafe(32)
    return token, hashlib.sha256(token.encode()).hexdigest()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
