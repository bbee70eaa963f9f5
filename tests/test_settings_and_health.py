"""Start-up refuses bad settings in one line; health probes; the API's published contract."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from contact.settings import SettingsError, load_settings
from tests.conftest import ROOT


def start_with(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONTACT_")}
    return subprocess.run(
        [sys.executable, "-m", "contact.cli", "db", "upgrade"],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


class TestSettings:
    @pytest.mark.parametrize(
        ("env", "named"),
        [
            ({"CONTACT_DATABASE_URL": "mysql://db/x"}, "CONTACT_DATABASE_URL"),
            ({"CONTACT_TIMEZONE": "Mars/Olympus"}, "CONTACT_TIMEZONE"),
            ({"CONTACT_SMS_GATEWAY": "pigeon"}, "CONTACT_SMS_GATEWAY"),
            ({"CONTACT_SMS_GATEWAY": "twilio"}, "CONTACT_TWILIO_ACCOUNT_SID"),
            (
                {"CONTACT_DATABASE_URL": "postgresql://postgres@127.0.0.1/x"},
                "CONTACT_SECRET_KEY",
            ),
            ({"CONTACT_REDIS_URL": "http://nope"}, "CONTACT_REDIS_URL"),
        ],
    )
    def test_a_wrong_setting_stops_start_up_with_one_line(
        self, env: dict[str, str], named: str
    ) -> None:
        result = start_with(**env)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert named in lines[0]

    def test_production_needs_a_real_secret(self) -> None:
        with pytest.raises(SettingsError, match="CONTACT_SECRET_KEY"):
            load_settings(DATABASE_URL="postgresql://x@h/db")
        ok = load_settings(DATABASE_URL="postgresql://x@h/db", SECRET_KEY="s" * 32)
        assert not ok.embedded


class TestHealth:
    def test_healthz_and_readyz(self, client: TestClient) -> None:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "ok" and ready.json()["database"] == "ok"

    def test_readyz_is_503_when_the_database_is_gone(self) -> None:
        from contact.app import create_app

        settings = load_settings(
            DATABASE_URL="postgresql://postgres@127.0.0.1:9/nothing", SECRET_KEY="s" * 32
        )
        with TestClient(create_app(settings)) as c:
            r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == "unavailable"


class TestOpenApi:
    def test_every_action_and_the_error_shape_are_documented(self, client: TestClient) -> None:
        spec = client.get("/openapi.json").json()
        paths = spec["paths"]
        for path in (
            "/api/v1/auth/token",
            "/api/v1/tickets",
            "/api/v1/tickets/{reference}",
            "/api/v1/tickets/{reference}/actions/{action}",
            "/api/v1/departments",
            "/api/v1/services",
            "/api/v1/users",
        ):
            assert path in paths, path
        action = paths["/api/v1/tickets/{reference}/actions/{action}"]["post"]
        enum = spec["components"]["schemas"]["Action"]["enum"]
        assert set(enum) >= {"dispatch", "accept", "return", "resolve", "merge", "urge", "note"}
        for code in ("404", "409", "422"):
            ref = action["responses"][code]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/ErrorBody")

    def test_unknown_route_uses_the_same_error_body(self, client: TestClient) -> None:
        r = client.get("/api/v1/nothing-here")
        assert r.status_code == 404 and r.json()["error"] == "not_found"
