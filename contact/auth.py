"""Staff sign-in: password checks with lockout, browser sessions, CSRF tokens, the audit log.

One :func:`authenticate` serves the API's token endpoint and the sign-in page, so the
lockout and the audit are the same for both. Browser sessions are server-side: the
cookie holds a random id, the database only its sha256, so signing out (or an admin
disabling the user) ends the session everywhere. The CSRF token is an HMAC of the
session id: nothing extra to store, and it cannot be guessed without the cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.cookies import CookieError, SimpleCookie
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contact.models import ApiClient, AuditEntry, KioskDevice, StaffSession, User, utcnow
from contact.security import new_secret, verify_password

LOCKOUT_AFTER = 5
LOCKOUT_FOR = timedelta(minutes=15)
SESSION_PREFIX = "s."


@dataclass(frozen=True)
class Client:
    """Where a request came from, for the audit log."""

    ip: str = ""
    user_agent: str = ""


@dataclass(frozen=True)
class SignIn:
    user: User | None
    outcome: str  # sign_in | bad_credentials | account_locked


async def audit(
    session: AsyncSession,
    action: str,
    username: str,
    client: Client,
    user_id: int | None = None,
    **detail: object,
) -> None:
    session.add(
        AuditEntry(
            action=action,
            username=username[:64],
            user_id=user_id,
            ip=client.ip[:45],
            user_agent=client.user_agent[:200],
            detail=dict(detail),
        )
    )


async def authenticate(
    session: AsyncSession, username: str, password: str, client: Client
) -> SignIn:
    """Check a password; count failures, lock after ``LOCKOUT_AFTER``; audit every try.

    Commits: a failure must be counted even though the caller answers with an error.
    """
    user = (
        await session.execute(select(User).where(User.username == username))
    ).scalar_one_or_none()
    now = utcnow()
    if user is not None and user.locked_until and user.locked_until > now:
        await audit(session, "sign_in_refused", username, client, user.id, reason="locked")
        await session.commit()
        return SignIn(None, "account_locked")
    if user is None or not user.active or not verify_password(user.password_hash, password):
        locked = False
        if user is not None:
            user.failed_logins += 1
            if user.failed_logins >= LOCKOUT_AFTER:
                user.locked_until = now + LOCKOUT_FOR
                user.failed_logins = 0
                locked = True
        await audit(
            session,
            "sign_in_failed",
            username,
            client,
            user.id if user else None,
            known=user is not None,
            locked=locked,
        )
        await session.commit()
        return SignIn(None, "account_locked" if locked else "bad_credentials")
    user.failed_logins = 0
    user.locked_until = None
    await audit(session, "sign_in", username, client, user.id)
    await session.commit()
    return SignIn(user, "sign_in")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def open_session(
    session: AsyncSession, user: User, client: Client, ttl: timedelta
) -> tuple[str, datetime]:
    """A new browser session for ``user``: (cookie value, expiry). The caller commits."""
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    expires = utcnow() + ttl
    session.add(
        StaffSession(
            token_hash=_hash(token),
            user_id=user.id,
            expires_at=expires,
            ip=client.ip[:45],
            user_agent=client.user_agent[:200],
        )
    )
    return token, expires


async def session_user_id(session: AsyncSession, token: str) -> int | None:
    """The user of a live session cookie, or None (unknown, expired or signed out)."""
    if not token.startswith(SESSION_PREFIX) or len(token) > 100:
        return None
    row = (
        await session.execute(
            select(StaffSession.user_id, StaffSession.expires_at, StaffSession.revoked_at).where(
                StaffSession.token_hash == _hash(token)
            )
        )
    ).first()
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
        return None
    return int(row.user_id)


async def close_session(session: AsyncSession, token: str) -> int | None:
    """Sign out: revoke the session; returns its user id (None when it was not live)."""
    user_id = await session_user_id(session, token)
    if user_id is not None:
        await session.execute(
            update(StaffSession)
            .where(StaffSession.token_hash == _hash(token))
            .values(revoked_at=utcnow())
        )
    return user_id


async def revoke_user(session: AsyncSession, user: User) -> None:
    """End every browser session and bearer token of ``user`` (disabled, or a new
    password). The caller commits, then drops the process's cache
    (:func:`contact.deps.forget_user`)."""
    user.token_version += 1
    await session.execute(
        update(StaffSession)
        .where(StaffSession.user_id == user.id, StaffSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


# Integrations' credentials: the secret is shown once; only its sha256 is stored.
API_KEY_PREFIX = "ck"
KIOSK_TOKEN_PREFIX = "kd"  # noqa: S105 - a label, not a secret


def new_api_client(name: str) -> tuple[ApiClient, str]:
    """A new API client row (not yet added) and its key, for ``contact apiclient add``
    and the admin page alike."""
    secret, prefix, digest = new_secret(API_KEY_PREFIX)
    return ApiClient(name=name, key_prefix=prefix, key_hash=digest), secret


def new_kiosk_device(name: str, location: str = "") -> tuple[KioskDevice, str]:
    """A new kiosk device row (not yet added) and its token."""
    secret, prefix, digest = new_secret(KIOSK_TOKEN_PREFIX)
    row = KioskDevice(name=name, location=location, token_prefix=prefix, token_hash=digest)
    return row, secret


def csrf_token(secret_key: str, session_token: str) -> str:
    """The CSRF token bound to a session (or to the pre-sign-in cookie)."""
    return hmac.new(secret_key.encode(), b"csrf:" + session_token.encode(), "sha256").hexdigest()


def csrf_ok(secret_key: str, session_token: str | None, presented: str | None) -> bool:
    if not session_token or not presented:
        return False
    return hmac.compare_digest(csrf_token(secret_key, session_token), presented)


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = b"x-csrf-token"


class CsrfGuard:
    """Refuse a state-changing request that rides on the session cookie without its token.

    Browsers attach cookies to cross-site requests; a bearer token they never attach.
    So a POST (PUT, PATCH, DELETE) that carries the session cookie and no
    ``Authorization`` header must present the session's CSRF token in
    ``X-CSRF-Token`` — what the staff pages' scripts send. Form posts of the sign-in
    pages (``form_paths``) check a form field themselves.
    """

    def __init__(self, app: Any, secret_key: str, cookie: str, form_paths: frozenset[str]):
        self.app = app
        self.secret_key = secret_key
        self.cookie = cookie
        self.form_paths = form_paths

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in SAFE_METHODS
            or scope["path"] in self.form_paths
        ):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        session_token = _cookie(headers.get(b"cookie", b""), self.cookie)
        if session_token is None or b"authorization" in headers:
            await self.app(scope, receive, send)
            return
        presented = headers.get(CSRF_HEADER, b"").decode("latin-1")
        if csrf_ok(self.secret_key, session_token, presented):
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            {"error": "csrf_failed", "detail": "missing or wrong X-CSRF-Token; reload the page"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _cookie(raw: bytes, name: str) -> str | None:
    jar = SimpleCookie()
    try:
        jar.load(raw.decode("latin-1"))
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel else None
