"""Statistics exports: CSV and XLSX that open cleanly in a spreadsheet and never run
citizen text as a formula."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from contact.export import Table, sanitize_cell, to_csv, to_xlsx
from contact.models import Channel, TicketStatus
from tests.conftest import login
from tests.test_statistics import insert

HOSTILE = [
    '=HYPERLINK("http://x")',
    "+1+2",
    "-3",
    "@SUM(A1)",
    "<script>alert(1)</script>",
    "＝1+1 全角等号",
    "东湖区解放路路灯不亮，晚上很黑",
]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def hostile_tickets(client: TestClient) -> dict[str, str]:
    """One ticket per hostile description, created by an agent: reference → description."""
    agent = login(client, "agent1")
    out = {}
    for text in HOSTILE:
        r = client.post(
            "/api/v1/tickets",
            headers=agent,
            json={
                "description": text,
                "service": "street-light",
                "channel": "web",
                "fields": {"problem": "out"},
            },
        )
        assert r.status_code == 201, r.text
        out[r.json()["reference"]] = text
    return out


def csv_rows(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf"), "UTF-8 byte order mark for Excel"
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def section(rows: list[list[str]], title_start: str) -> list[list[str]]:
    """The rows of one titled section of a multi-table CSV (its header first)."""
    start = next(i for i, r in enumerate(rows) if r and r[0].startswith(title_start)) + 1
    end = next((i for i in range(start, len(rows)) if not rows[i]), len(rows))
    return rows[start:end]


class TestSanitize:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("=1+1", "'=1+1"),
            ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
            ("+1+2", "'+1+2"),
            ("-3", "'-3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("  =1+1", "'  =1+1"),
            ("\x01=1", "'\x01=1"),
            ("＝1+1", "'＝1+1"),
            ("<script>alert(1)</script>", "<script>alert(1)</script>"),
            ("路灯不亮 = 危险", "路灯不亮 = 危险"),
            ("a-b", "a-b"),
            ("", ""),
            (None, None),
            (-3, -3),
            (0.25, 0.25),
            (Decimal("-1.5"), Decimal("-1.5")),
        ],
    )
    def test_cells(self, value: Any, expected: Any) -> None:
        assert sanitize_cell(value) == expected

    def test_numbers_stay_numbers_and_text_stays_text(self) -> None:
        table = Table("t", "T", ["text", "count", "rate"], [["=1+1", -3, 0.5]], frozenset({2}))
        assert csv_rows(to_csv([table])) == [["text", "count", "rate"], ["'=1+1", "-3", "0.5"]]
        sheet = load_workbook(io.BytesIO(to_xlsx([table])))["t"]
        text, count, rate = sheet[2]
        assert (text.value, text.data_type) == ("'=1+1", "s")
        assert (count.value, count.data_type) == (-3, "n")
        assert (rate.value, rate.number_format) == (0.5, "0.0%")

    def test_characters_xlsx_cannot_hold_are_dropped_before_the_check(self) -> None:
        table = Table("t", "T", ["text"], [["\x01=1+1"], ["ok\x00"]])
        sheet = load_workbook(io.BytesIO(to_xlsx([table])))["t"]
        assert [c.value for (c,) in sheet.iter_rows(min_row=2)] == ["'=1+1", "ok"]


class TestCsv:
    def test_citizen_text_comes_out_inert(self, client: TestClient) -> None:
        tickets = hostile_tickets(client)
        r = client.get("/api/v1/stats/export.csv", headers=login(client, "supervisor1"))
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/csv")
        assert r.headers["cache-control"] == "no-store"
        assert re.fullmatch(
            r'attachment; filename="statistics_\d{8}-\d{8}\.csv"', r.headers["content-disposition"]
        )
        rows = csv_rows(r.content)
        # no cell anywhere in the file starts like a formula
        for row in rows:
            for cell in row:
                assert not cell.startswith(FORMULA_START), cell
        tickets_section = section(rows, "工单明细")
        header, body = tickets_section[0], tickets_section[1:]
        assert header[0] == "工单编号" and header[-1] == "诉求内容(摘要)"
        got = {row[0]: row[-1] for row in body}
        assert set(got) == set(tickets)
        for ref, text in tickets.items():
            expected = "'" + text if text.startswith((*FORMULA_START, "＝")) else text
            assert got[ref] == expected
        assert got[next(k for k, v in tickets.items() if v.startswith("<script>"))] == (
            "<script>alert(1)</script>"
        )
        # the figures are there too, as plain numbers
        summary = dict(section(rows, "汇总")[1:])
        assert summary["工单量"] == str(len(HOSTILE))

    def test_one_table_alone_and_the_period_in_the_file_name(self, client: TestClient) -> None:
        hostile_tickets(client)
        sup = login(client, "supervisor1")
        r = client.get(
            "/api/v1/stats/export.csv",
            headers=sup,
            params={
                "table": "tickets",
                "from": "2000-01-01T00:00:00+08:00",
                "to": "2000-01-31T23:59:59+08:00",
            },
        )
        assert r.status_code == 200, r.text
        assert r.headers["content-disposition"] == (
            'attachment; filename="statistics_20000101-20000131_tickets.csv"'
        )
        assert csv_rows(r.content) == [
            ["工单编号", "受理时间", "渠道", "事项", "区域", "承办部门", "状态", "诉求内容(摘要)"]
        ]
        r = client.get(
            "/api/v1/stats/export.csv", headers=sup, params={"table": "tickets", "limit": 3}
        )
        assert len(csv_rows(r.content)) == 1 + 3
        assert r.headers["x-tickets-truncated"] == f"3/{len(HOSTILE)}"
        assert (
            client.get(
                "/api/v1/stats/export.csv", headers=sup, params={"table": "nonsense"}
            ).status_code
            == 422
        )

    def test_department_ranking_in_english(self, client: TestClient) -> None:
        now = datetime.now(UTC) - timedelta(days=1)
        insert(
            client,
            [
                dict(
                    created=now,
                    department="cgj-dh",
                    status=TicketStatus.accepted,
                    dispatched_at=now,
                    accept_due_at=now + timedelta(hours=2),
                    accepted_at=now + timedelta(hours=1),
                    channel=Channel.voice,
                )
            ],
        )
        sup = login(client, "supervisor1")
        r = client.get("/api/v1/stats/export.csv", headers=sup, params={"table": "departments"})
        rows = csv_rows(r.content)
        assert rows[0][:3] == ["排名", "综合得分", "代码"]
        assert rows[1][:6] == ["1", "100.0", "cgj-dh", "东湖区城市管理局", "district", "1"]
        assert rows[1][6] == "1.0"  # response rate, a number


class TestXlsx:
    def test_citizen_text_is_stored_as_text_never_as_a_formula(self, client: TestClient) -> None:
        tickets = hostile_tickets(client)
        r = client.get("/api/v1/stats/export.xlsx", headers=login(client, "supervisor1"))
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
        assert re.fullmatch(
            r'attachment; filename="statistics_\d{8}-\d{8}\.xlsx"', r.headers["content-disposition"]
        )
        book = load_workbook(io.BytesIO(r.content))
        assert book.sheetnames == [
            "summary",
            "departments",
            "services",
            "channels",
            "districts",
            "series",
            "hotspots",
            "tickets",
        ]
        for sheet in book.worksheets:
            for row in sheet.iter_rows():
                for cell in row:
                    assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                    if isinstance(cell.value, str):
                        assert not cell.value.startswith(FORMULA_START), cell.value
        sheet = book["tickets"]
        header = [c.value for c in sheet[1]]
        assert header[0] == "工单编号" and header[-1] == "诉求内容(摘要)"
        got = {row[0].value: row[-1] for row in sheet.iter_rows(min_row=2)}
        assert set(got) == set(tickets)
        for ref, text in tickets.items():
            cell = got[ref]
            assert cell.data_type == "s"
            if text.startswith((*FORMULA_START, "＝")):
                assert cell.value == "'" + text
            else:
                assert cell.value == text
        # numbers stay numbers
        channels = book["channels"]
        web = next(row for row in channels.iter_rows(min_row=2) if row[0].value == "web")
        assert web[2].value == len(HOSTILE) and web[2].data_type == "n"

    def test_a_department_exports_only_its_own_rows(self, client: TestClient) -> None:
        now = datetime.now(UTC) - timedelta(days=2)
        insert(
            client,
            [
                dict(created=now, department="cgj-dh", description="=cmd|'/c calc'!A1"),
                dict(created=now, department="cgj-dh-hb", description="湖滨路路灯不亮"),
                dict(created=now, department="zjj-jb", description="江北物业不作为"),
                dict(created=now, description="还没派单的工单"),
            ],
        )
        clerk = login(client, "cgj-dh-clerk")
        book = load_workbook(
            io.BytesIO(client.get("/api/v1/stats/export.xlsx", headers=clerk).content)
        )
        rows = [[c.value for c in row] for row in book["tickets"].iter_rows(min_row=2)]
        assert sorted(r[5] for r in rows) == ["cgj-dh", "cgj-dh-hb"]
        assert sorted(r[-1] for r in rows) == ["'=cmd|'/c calc'!A1", "湖滨路路灯不亮"]
        departments = [row[2].value for row in book["departments"].iter_rows(min_row=2)]
        assert sorted(departments) == ["cgj-dh", "cgj-dh-hb"]
        body = client.get("/api/v1/stats/export.csv", headers=clerk).content.decode("utf-8-sig")
        assert "江北物业" not in body and "还没派单" not in body and "zjj" not in body
        r = client.get("/api/v1/stats/export.csv?department=zjj", headers=clerk)
        assert r.status_code == 404
