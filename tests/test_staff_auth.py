"""Staff sign-in: the sign-in page, server-side sessions, CSRF, lockout, the audit log,
which role opens which page, and the websocket's same-origin rule."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect

from contact.models import AuditEntry, StaffSession, User
from contact.settings import Settings
from tests.conftest import PASSWORD, login, with_runtime


def csrf_of(page: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', page) or re.search(
        r'name="csrf-token" content="([^"]+)"', page
    )
    assert m, "no CSRF token in the page"
    return m.group(1)


def sign_in(c: TestClient, username: str, password: str = PASSWORD, **extra: str) -> Any:
    token = csrf_of(c.get("/signin").text)
    form = {"username": username, "password": password, "csrf_token": token, **extra}
    return c.post("/signin", data=form, follow_redirects=False)


def audit(settings: Settings) -> list[tuple[str, str]]:
    async def go(rt: Any) -> list[tuple[str, str]]:
        async with rt.db.session() as s:
            rows = await s.execute(select(AuditEntry.action, AuditEntry.username))
            return [(a, u) for a, u in rows.all()]

    return list(with_runtime(settings, go))


class TestSignInPage:
    def test_signing_in_opens_the_roles_home_with_a_session_cookie(
        self, client: TestClient, settings: Settings
    ) -> None:
        r = sign_in(client, "agent1")
        assert r.status_code == 303 and r.headers["location"] == "/console/"
        cookie = r.headers["set-cookie"]
        assert "contact_session=s." in cookie and "HttpOnly" in cookie
        assert "samesite=lax" in cookie.lower()
        page = client.get("/console/")
        assert page.status_code == 200 and "agent1" in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert ("sign_in", "agent1") in audit(settings)

        # The database keeps only a hash of the session id.
        async def stored(rt: Any) -> list[str]:
            async with rt.db.session() as s:
                return list((await s.execute(select(StaffSession.token_hash))).scalars())

        (hashed,) = with_runtime(settings, stored)
        assert client.cookies["contact_session"] not in hashed and len(hashed) == 64

    @pytest.mark.parametrize(
        ("user", "home"),
        [("cgj-dh-clerk", "/dept/"), ("supervisor1", "/supervisor/"), ("admin", "/admin/")],
    )
    def test_each_role_lands_on_its_own_page(
        self, client: TestClient, user: str, home: str
    ) -> None:
        assert sign_in(client, user).headers["location"] == home

    def test_a_wrong_password_is_refused_and_audited(
        self, client: TestClient, settings: Settings
    ) -> None:
        r = sign_in(client, "agent1", "not-the-password")
        assert r.status_code == 401
        assert "用户名或密码错误" in r.text
        assert "contact_session" not in client.cookies
        assert ("sign_in_failed", "agent1") in audit(settings)
        assert client.get("/console/", follow_redirects=False).status_code == 303

    def test_without_the_forms_token_nothing_happens(self, client: TestClient) -> None:
        client.get("/signin")
        r = client.post(
            "/signin",
            data={"username": "agent1", "password": PASSWORD, "csrf_token": "forged"},
            follow_redirects=False,
        )
        assert r.status_code == 403 and "contact_session" not in client.cookies

    def test_five_failures_lock_the_account_even_for_the_right_password(
        self, client: TestClient, settings: Settings
    ) -> None:
        codes = [sign_in(client, "agent2", "wrong").status_code for _ in range(5)]
        assert codes == [401, 401, 401, 401, 423]
        r = sign_in(client, "agent2", lang="en")
        assert r.status_code == 423 and "locked" in r.text
        assert "contact_session" not in client.cookies
        # The API's token endpoint honours the same lock.
        api = client.post("/api/v1/auth/token", data={"username": "agent2", "password": PASSWORD})
        assert api.status_code == 423 and api.json()["error"] == "account_locked"
        actions = [a for a, u in audit(settings) if u == "agent2"]
        assert actions.count("sign_in_failed") == 5 and "sign_in_refused" in actions

    def test_passwords_are_stored_as_argon2_hashes(self, settings: Settings) -> None:
        async def go(rt: Any) -> str:
            async with rt.db.session() as s:
                q = select(User.password_hash).where(User.username == "agent1")
                return str((await s.execute(q)).scalar_one())

        assert with_runtime(settings, go).startswith("$argon2")

    def test_next_only_leads_to_a_page_of_this_site(self, client: TestClient) -> None:
        r = sign_in(client, "agent1", next="//evil.example/console/")
        assert r.headers["location"] == "/console/"

    def test_next_leads_back_to_the_page_asked_for(self, client: TestClient) -> None:
        r = sign_in(client, "supervisor1", next="/supervisor/stats")
        assert r.headers["location"] == "/supervisor/stats"


class TestSessions:
    def test_signing_out_ends_the_session_everywhere(
        self, client: TestClient, settings: Settings
    ) -> None:
        sign_in(client, "agent1")
        cookie = client.cookies["contact_session"]
        page = client.get("/console/").text
        r = client.post("/signout", data={"csrf_token": csrf_of(page)}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/signin"
        assert ("sign_out", "agent1") in audit(settings)
        # A copy of the old cookie (a shared computer, a stolen value) opens nothing.
        client.cookies.set("contact_session", cookie)
        assert client.get("/console/", follow_redirects=False).status_code == 303
        assert client.get("/api/v1/me").status_code == 401

    def test_a_disabled_user_loses_the_page(self, client: TestClient, settings: Settings) -> None:
        from contact.deps import forget_principals

        sign_in(client, "agent1")

        async def disable(rt: Any) -> None:
            async with rt.db.session() as s:
                user = (await s.execute(select(User).where(User.username == "agent1"))).scalar_one()
                user.active = False
                await s.commit()

        with_runtime(settings, disable)
        forget_principals()
        assert client.get("/console/", follow_redirects=False).status_code == 303


class TestRoles:
    @pytest.mark.parametrize(
        ("user", "page"),
        [
            ("cgj-dh-clerk", "/console/"),
            ("cgj-dh-clerk", "/supervisor/"),
            ("cgj-dh-clerk", "/admin/"),
            ("agent1", "/dept/"),
            ("agent1", "/supervisor/"),
            ("agent1", "/supervisor/stats"),
            ("supervisor1", "/admin/"),
        ],
    )
    def test_a_page_of_another_role_is_403(self, client: TestClient, user: str, page: str) -> None:
        sign_in(client, user)
        assert client.get(page).status_code == 403

    def test_signed_out_pages_send_to_sign_in(self, client: TestClient) -> None:
        for page in ("/console/", "/dept/", "/supervisor/", "/supervisor/stats", "/admin/"):
            r = client.get(page, follow_redirects=False)
            assert r.status_code == 303
            assert r.headers["location"].startswith("/signin?next=")


class TestCsrf:
    def test_a_cookie_request_without_the_token_changes_nothing(self, client: TestClient) -> None:
        sign_in(client, "agent1")
        body = {"description": "路灯不亮", "kind": "complaint", "channel": "agent"}
        r = client.post("/api/v1/tickets", json=body)
        assert r.status_code == 403 and r.json()["error"] == "csrf_failed"
        r = client.post("/api/v1/tickets", json=body, headers={"X-CSRF-Token": "0" * 64})
        assert r.status_code == 403
        assert client.get("/api/v1/tickets").json()["total"] == 0
        token = csrf_of(client.get("/console/").text)
        r = client.post("/api/v1/tickets", json=body, headers={"X-CSRF-Token": token})
        assert r.status_code == 201
        assert client.get("/api/v1/tickets").json()["total"] == 1

    def test_bearer_tokens_need_no_csrf_token(self, client: TestClient) -> None:
        headers = login(client, "agent1")
        body = {"description": "路灯不亮", "kind": "complaint", "channel": "agent"}
        assert client.post("/api/v1/tickets", json=body, headers=headers).status_code == 201

    def test_signing_out_needs_the_token(self, client: TestClient) -> None:
        sign_in(client, "agent1")
        client.post("/signout", data={"csrf_token": "forged"})
        assert client.get("/console/", follow_redirects=False).status_code == 200


class TestWebsocketOrigin:
    def test_a_cookie_socket_from_another_site_is_refused(self, client: TestClient) -> None:
        sign_in(client, "agent1")
        foreign = {"Origin": "http://evil.example"}
        with (
            pytest.raises(WebSocketDisconnect) as exc,
            client.websocket_connect("/ws", headers=foreign) as ws,
        ):
            ws.receive_json()
        assert exc.value.code == 4403

    def test_a_cookie_socket_from_this_site_says_hello(self, client: TestClient) -> None:
        sign_in(client, "agent1")
        with client.websocket_connect("/ws", headers={"Origin": "http://testserver"}) as ws:
            hello = ws.receive_json()
        assert hello["type"] == "hello" and isinstance(hello["id"], int)


class TestLanguage:
    def test_each_user_reads_the_pages_in_their_own_language(self, client: TestClient) -> None:
        sign_in(client, "agent1")
        page = client.get("/console/").text
        assert '<html lang="zh-CN">' in page and "退出" in page
        token = {"X-CSRF-Token": csrf_of(page)}
        try:
            r = client.patch("/api/v1/me", json={"locale": "en"}, headers=token)
            assert r.status_code == 200
            page = client.get("/console/").text
            assert '<html lang="en">' in page and "Sign out" in page
            r = client.patch("/api/v1/me", json={"locale": "fr"}, headers=token)
            assert r.status_code == 422
        finally:  # the demo users outlive a test on PostgreSQL
            client.patch("/api/v1/me", json={"locale": "zh-CN"}, headers=token)
