"""The console script as an operator uses it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from contact.security import hash_secret, verify_password
from tests.conftest import ROOT


@pytest.fixture
def db_url(sqlite_template: Path, tmp_path: Path) -> str:
    shutil.copy(sqlite_template, tmp_path / "c.db")
    return f"sqlite:///{tmp_path / 'c.db'}"


def contact(db_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTACT_")}
    env["CONTACT_DATABASE_URL"] = db_url
    return subprocess.run(
        [sys.executable, "-m", "contact.cli", *args],
        input=stdin,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def scalar(db_url: str, sql: str, **params: object) -> object:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        value = conn.execute(text(sql), params).scalar()
    engine.dispose()
    return value


class TestSecrets:
    @pytest.mark.parametrize(
        ("command", "table", "column"),
        [
            (("apiclient", "add"), "api_clients", "key_hash"),
            (("kiosk", "register"), "kiosk_devices", "token_hash"),
        ],
    )
    def test_secret_printed_once_on_the_last_line_and_stored_hashed(
        self, db_url: str, command: tuple[str, str], table: str, column: str
    ) -> None:
        r = contact(db_url, *command, "--name", "Hall A")
        assert r.returncode == 0, r.stderr
        secret = r.stdout.strip().splitlines()[-1]
        assert len(secret) > 30 and " " not in secret
        stored = scalar(db_url, f"SELECT {column} FROM {table} WHERE name = 'Hall A'")
        assert stored == hash_secret(secret) and secret not in str(stored)
        again = contact(db_url, *command, "--name", "Hall A")
        assert again.returncode == 1 and "taken" in again.stderr


class TestUsers:
    def test_add_a_clerk_with_the_password_from_stdin(self, db_url: str) -> None:
        r = contact(
            db_url,
            "user",
            "add",
            "--username",
            "wang",
            "--role",
            "department",
            "--department",
            "cgj",
            stdin="a-long-password-1\n",
        )
        assert r.returncode == 0, r.stderr
        stored = scalar(db_url, "SELECT password_hash FROM users WHERE username = 'wang'")
        assert verify_password(str(stored), "a-long-password-1")

    def test_a_department_role_needs_a_department(self, db_url: str) -> None:
        r = contact(
            db_url, "user", "add", "--username", "li", "--role", "department", stdin="x" * 12
        )
        assert r.returncode == 2 and "--department" in r.stderr
