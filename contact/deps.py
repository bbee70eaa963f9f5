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


async def principal_for_token(rt: Runtime, token: str | None) -> Principal | None:
    if not token:
        return None
    claims = read_token(rt.settings.SECRET_KEY, token)
    if claims is None:
        return None
    cached = _PRINCIPALS.get(claims.user_id)
    if cached and cached[0] > time.monotonic() and cached[1] == claims.version:
        return cached[2]
    async with rt.db.session() as s:
        row = (
            await s.execute(
                select(User, Department.code)
                .outerjoin(Department, Department.id == User.department_id)
                .where(User.id == claims.user_id)
            )
        ).first()
    if row is None:
        return None
    user, dept_code = row
    if not user.active or user.token_version != claims.version:
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
    auth = conn.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return conn.cookies.get(SESSION_COOKIE)


async def current_principal(
    request: Request, rt: RuntimeDep, _: Annotated[str | None, Depends(oauth2)]
) -> Principal:
    principal = await principal_for_token(rt, token_from(request))
    if principal is None:
        raise Unauthorized("sign in first", code="not_authenticated")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
