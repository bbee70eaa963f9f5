"""FastAPI dependencies: the runtime, a database session, the signed-in principal."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from contact import auth
from contact.errors import Unauthorized
from contact.lifecycle import actor_for
from contact.models import Department, User
from contact.principal import Principal
from contact.runtime import Runtime
from contact.security import read_token

SESSION_COOKIE = "contact_session"
oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


async def get_runtime(conn: HTTPConnection) -> Runtime:
    return conn.app.state.runtime  # type: ignore[no-any-return]


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(rt: RuntimeDep) -> AsyncIterator[AsyncSession]:
    async with rt.db.session() as session:
        try:
            yield session
        finally:
            rt.discard(session)


DbSession = Annotated[AsyncSession, Depends(get_session)]

# Signed-in users, cached briefly so a request does not reload its user every time.
_PRINCIPALS: dict[int, tuple[float, int, Principal]] = {}
PRINCIPAL_TTL = 5.0


def forget_principals() -> None:
    _PRINCIPALS.clear()
    _SESSIONS.clear()


# Live browser sessions, checked against the database at most every few seconds.
_SESSIONS: dict[str, tuple[float, int]] = {}


def forget_session(token: str) -> None:
    _SESSIONS.pop(token, None)


def forget_user(user_id: int) -> None:
    """Drop what this process remembers of a user (its principal, its sessions): the
    next request checks the database, so a revoked user is refused at once."""
    _PRINCIPALS.pop(user_id, None)
    for token, (_, cached_user) in list(_SESSIONS.items()):
        if cached_user == user_id:
            _SESSIONS.pop(token, None)


async def principal_for_token(rt: Runtime, token: str | None) -> Principal | None:
    """The staff user behind a bearer token or a session cookie (None: not signed in)."""
    if not token:
        return None
    version: int | None = None
    if token.startswith(auth.SESSION_PREFIX):
        cached_session = _SESSIONS.get(token)
        if cached_session and cached_session[0] > time.monotonic():
            user_id = cached_session[1]
        else:
            async with rt.db.session() as s:
                found = await auth.session_user_id(s, token)
            if found is None:
                _SESSIONS.pop(token, None)
                return None
            user_id = found
            if len(_SESSIONS) > 10_000:
                _SESSIONS.clear()
            _SESSIONS[token] = (time.monotonic() + PRINCIPAL_TTL, user_id)
    else:
        claims = read_token(rt.settings.SECRET_KEY, token)
        if claims is None:
            return None
        user_id, version = claims.user_id, claims.version
    cached = _PRINCIPALS.get(user_id)
    if cached and cached[0] > time.monotonic() and version in (None, cached[1]):
        return cached[2]
    async with rt.db.session() as s:
        row = (
            await s.execute(
                select(User, Department.code)
                .outerjoin(Department, Department.id == User.department_id)
                .where(User.id == user_id)
            )
        ).first()
    if row is None:
        return None
    user, dept_code = row
    if not user.active or version not in (None, user.token_version):
        return None
    scope: frozenset[str] = frozenset()
    scope_ids: frozenset[int] = frozenset()
    if dept_code:
        catalogue = await rt.catalogue()
        scope = catalogue.subtree(dept_code)
        scope_ids = frozenset(
            catalogue.departments[c].id for c in scope if c in catalogue.departments
        )
    principal = Principal(
        actor=actor_for(user.role),
        name=user.username,
        user_id=user.id,
        department=dept_code,
        scope=scope,
        scope_ids=scope_ids,
        locale=user.locale,
    )
    _PRINCIPALS[user.id] = (time.monotonic() + PRINCIPAL_TTL, user.token_version, principal)
    return principal


def token_from(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return conn.cookies.get(SESSION_COOKIE)


def client_of(conn: HTTPConnection) -> auth.Client:
    return auth.Client(
        ip=conn.client.host if conn.client else "",
        user_agent=conn.headers.get("user-agent", ""),
    )


async def current_principal(
    request: Request, rt: RuntimeDep, _: Annotated[str | None, Depends(oauth2)]
) -> Principal:
    principal = await principal_for_token(rt, token_from(request))
    if principal is None:
        raise Unauthorized("sign in first", code="not_authenticated")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
