"""``contact ivr simulate``: a call in the terminal, through the real webhooks."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from contact.reference import is_valid
from tests.conftest import ROOT, base_env

pytestmark = pytest.mark.slow

CALLER = "+8613800138000"
SPEECH = "人民路的路灯不亮了"
REFERENCE = re.compile(r"(?<!\d)\d{14}(?!\d)")


@pytest.fixture
def db_url(sqlite_template: Path, tmp_path: Path) -> str:
    shutil.copy(sqlite_template, tmp_path / "c.db")
    return f"sqlite:///{tmp_path / 'c.db'}"


def simulate(
    db_url: str, *lines: str, args: tuple[str, ...] = ("--from", CALLER), **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CONTACT_")}
    environ.update(base_env(db_url, None), PYTHONIOENCODING="utf-8", **env)
    return subprocess.run(
        [sys.executable, "-m", "contact.cli", "ivr", "simulate", *args],
        input="".join(line + "\n" for line in lines),
        env=environ,
        cwd=ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=90,
    )


def rows(db_url: str, sql: str, **params: object) -> list[tuple[object, ...]]:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        result = [tuple(r) for r in conn.execute(text(sql), params)]
    engine.dispose()
    return result


def report(db_url: str) -> tuple[str, str]:
    """A problem reported by voice: (stdout, reference)."""
    # 中文, report, the first service group, the words, confirm; then "2" until goodbye.
    r = simulate(db_url, "1", "2", "1", SPEECH, "1", "2", "2")
    assert r.returncode == 0, r.stderr
    assert "受理编号" in r.stdout
    references = {ref for ref in REFERENCE.findall(r.stdout) if is_valid(ref)}
    assert len(references) == 1, r.stdout
    return r.stdout, references.pop()


class TestSimulate:
    def test_a_report_opens_a_voice_ticket_and_the_call_ends(self, db_url: str) -> None:
        out, reference = report(db_url)
        assert f"🔊 您反映的是：{SPEECH}" in out  # read back before confirming
        assert "keys> 1\n" in out and f"speech> {SPEECH}\n" in out  # typed lines echoed
        assert "再见" in out  # the hotline said goodbye and hung up
        [(channel, description)] = rows(
            db_url, "SELECT channel, description FROM tickets WHERE reference = :r", r=reference
        )
        assert channel == "voice" and SPEECH in str(description)
        [(status, from_addr, ended)] = rows(
            db_url,
            "SELECT c.status, c.from_addr, c.ended_at FROM calls c "
            "JOIN tickets t ON t.id = c.ticket_id WHERE t.reference = :r",
            r=reference,
        )
        assert status == "completed" and from_addr == CALLER and ended is not None

    def test_the_caller_hears_the_status_of_their_ticket(self, db_url: str) -> None:
        _, reference = report(db_url)
        r = simulate(db_url, "1", "1", reference)  # 中文, track, the reference; then hangs up
        assert r.returncode == 0, r.stderr
        assert "最近进展" in r.stdout and reference in r.stdout
        calls = rows(db_url, "SELECT status FROM calls ORDER BY id")
        assert [status for (status,) in calls] == ["completed", "completed"]

    def test_a_voicemail_after_hours_in_english(self, db_url: str) -> None:
        words = "Please call me back about the noise on Jiefang Road"
        r = simulate(
            db_url,
            "2",  # English
            "0",  # an agent: closed, so a voicemail
            words,
            args=("--from", CALLER, "--lang", "en"),
            CONTACT_AGENT_HOURS="never",
        )
        assert r.returncode == 0, r.stderr
        assert "voicemail> " in r.stdout and "Reference: " in r.stdout
        [(recording, transcription, kind)] = rows(
            db_url,
            "SELECT c.recording_url, c.transcription, t.kind FROM calls c "
            "JOIN tickets t ON t.id = c.ticket_id",
        )
        assert str(recording).startswith("https://api.twilio.com/") and "/Recordings/RE" in str(
            recording
        )
        assert transcription == words and kind == "inquiry"

    def test_end_of_input_is_the_caller_hanging_up(self, db_url: str) -> None:
        r = simulate(db_url)
        assert r.returncode == 0, r.stderr
        assert "普通话服务请按1" in r.stdout and "挂机" in r.stdout
        assert rows(db_url, "SELECT status FROM calls") == [("completed",)]

    def test_a_database_that_is_not_set_up_is_named(self, tmp_path: Path) -> None:
        r = simulate(f"sqlite:///{tmp_path / 'empty.db'}")
        assert r.returncode == 2 and "contact db upgrade" in r.stderr
