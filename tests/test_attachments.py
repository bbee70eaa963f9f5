"""Files on a ticket: a department attaches its documents to the reply; whoever cannot
see the ticket cannot see its files; only what the bytes show to be a PDF or an image
is taken, whatever the name says."""

from __future__ import annotations

import struct
import zlib
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import login

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def png() -> bytes:
    """A 2×2 red PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xc8\x1e\x1e" * 2 for _ in range(2))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def accepted(client: TestClient) -> tuple[str, dict[str, str]]:
    agent = login(client, "agent1")
    r = client.post(
        "/api/v1/tickets",
        headers=agent,
        json={"description": "解放路88号路灯不亮", "address": "东湖区解放路88号"},
    )
    ref = r.json()["reference"]
    client.post(f"/api/v1/tickets/{ref}/actions/dispatch", headers=agent, json={})
    clerk = login(client, "cgj-dh-jf-clerk")
    assert client.post(f"/api/v1/tickets/{ref}/actions/accept", headers=clerk).status_code == 200
    return ref, clerk


def upload(
    client: TestClient, ref: str, headers: dict[str, str], name: str, data: bytes, **form: str
) -> Any:
    return client.post(
        f"/api/v1/tickets/{ref}/attachments",
        headers=headers,
        files={"file": (name, data, "application/octet-stream")},
        data=form,
    )


class TestUpload:
    def test_a_department_attaches_its_reply_documents(self, client: TestClient) -> None:
        ref, clerk = accepted(client)
        r = upload(client, ref, clerk, "../../维修单 2026.pdf", PDF, public="true")
        assert r.status_code == 201, r.text
        att = r.json()
        assert att["content_type"] == "application/pdf" and att["public"] is True
        assert att["filename"] == "维修单 2026.pdf"  # no path survives
        photo = upload(client, ref, clerk, "after.pdf", png()).json()
        assert photo["content_type"] == "image/png" and photo["filename"] == "after.png"

        t = client.get(f"/api/v1/tickets/{ref}", headers=clerk).json()
        assert [a["id"] for a in t["attachments"]] == [att["id"], photo["id"]]
        assert t["events"][-1]["kind"] == "attachment_added"

        got = client.get(att["url"], headers=clerk)
        assert got.status_code == 200 and got.content == PDF
        assert got.headers["content-type"] == "application/pdf"
        assert "attachment" in got.headers["content-disposition"]
        assert got.headers["x-content-type-options"] == "nosniff"

        r = client.post(
            f"/api/v1/tickets/{ref}/actions/resolve", headers=clerk, json={"reply": "已修复"}
        )
        assert r.status_code == 200

    def test_what_is_not_a_pdf_or_an_image_is_refused(self, client: TestClient) -> None:
        ref, clerk = accepted(client)
        r = upload(client, ref, clerk, "report.pdf", b"MZ\x90\x00 this is a program")
        assert r.status_code == 415 and r.json()["error"] == "file_type_refused"
        r = upload(client, ref, clerk, "page.html", b"<html><script>alert(1)</script>")
        assert r.status_code == 415
        r = upload(client, ref, clerk, "empty.pdf", b"")
        assert r.status_code == 422
        big = PDF + b"0" * (10 * 1024 * 1024)
        r = upload(client, ref, clerk, "big.pdf", big)
        assert r.status_code == 413 and r.json()["error"] == "file_too_large"
        t = client.get(f"/api/v1/tickets/{ref}", headers=clerk).json()
        assert t["attachments"] == []

    def test_other_departments_see_neither_ticket_nor_files(self, client: TestClient) -> None:
        ref, clerk = accepted(client)
        att = upload(client, ref, clerk, "a.pdf", PDF).json()
        stranger = login(client, "zjj-clerk")
        assert client.get(att["url"], headers=stranger).status_code == 404
        assert upload(client, ref, stranger, "b.pdf", PDF).status_code == 404
        agent = login(client, "agent1")
        assert client.get(att["url"], headers=agent).status_code == 200
        other = client.get(f"/api/v1/tickets/{ref}/attachments/{att['id'] + 999}", headers=agent)
        assert other.status_code == 404

    def test_a_closed_ticket_takes_no_more_files(self, client: TestClient) -> None:
        ref, clerk = accepted(client)
        client.post(f"/api/v1/tickets/{ref}/actions/resolve", headers=clerk, json={"reply": "好"})
        agent = login(client, "agent1")
        assert client.post(f"/api/v1/tickets/{ref}/actions/close", headers=agent).status_code == 200
        r = upload(client, ref, agent, "late.pdf", PDF)
        assert r.status_code == 409 and r.json()["error"] == "ticket_not_open"
