"""Spreadsheet exports (CSV and XLSX) that cannot run anything when opened.

Citizen text ends up in these files. A spreadsheet treats a cell that starts with
``=``, ``+``, ``-`` or ``@`` (and, in some programs, a tab or carriage return before
one) as a formula, which can leak data or launch programs (CSV/formula injection).
Following the OWASP guidance, every text cell that starts with one of those characters
— or with their full-width forms, which some East Asian spreadsheet set-ups accept —
gets a single quote in front, so it reads as plain text; so does text where one of them
follows leading blanks or control characters. Numbers stay numbers.

CSV: written with the ``csv`` module, UTF-8 with a byte order mark so that Excel opens
Chinese text correctly. XLSX: written with openpyxl, every text cell stored as a string
(never as a formula), rates formatted as percentages.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

Cell = str | int | float | Decimal | None

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
# Characters XML 1.0 (and so XLSX) cannot hold; tab, newline and carriage return are fine.
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_LEADING = "".join(map(chr, range(32))) + " \u3000"
SHEET_TITLE_MAX = 31

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def sanitize_cell(value: object) -> Cell:
    """A value safe to put in a spreadsheet cell: text that a spreadsheet would read as
    a formula gets a leading single quote; numbers are kept as numbers."""
    if value is None:
        return None
    if isinstance(value, bool):  # bool is an int; spell it out rather than 1/0
        value = "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, datetime):
        value = value.isoformat(timespec="seconds")
    elif isinstance(value, date):
        value = value.isoformat()
    text = str(value)
    # Spreadsheets may skip leading blanks and control characters: look past them too.
    if text.startswith(FORMULA_TRIGGERS) or text.lstrip(_LEADING).startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text


@dataclass
class Table:
    """One table of an export: a CSV section or an XLSX sheet."""

    name: str  # sheet name (ASCII, ≤ 31 characters)
    title: str  # a line above the table in a CSV with several tables
    header: list[str]
    rows: list[Sequence[object]] = field(default_factory=list)
    percent_columns: frozenset[int] = frozenset()  # XLSX: shown as percentages


def to_csv(tables: Sequence[Table], *, titles: bool | None = None) -> bytes:
    """CSV bytes (UTF-8 with BOM). With several tables (or ``titles=True``) each one
    starts with its title line and tables are separated by an empty line."""
    titles = len(tables) > 1 if titles is None else titles
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for i, table in enumerate(tables):
        if i:
            writer.writerow([])
        if titles:
            writer.writerow([sanitize_cell(table.title)])
        writer.writerow([sanitize_cell(h) for h in table.header])
        writer.writerows([_csv_value(sanitize_cell(v)) for v in row] for row in table.rows)
    return buffer.getvalue().encode("utf-8-sig")


def _csv_value(value: Cell) -> Cell:
    return "" if value is None else value


def to_xlsx(tables: Sequence[Table]) -> bytes:
    """An XLSX workbook with one sheet per table."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    for table in tables:
        sheet = workbook.create_sheet(title=_sheet_title(table.name))
        sheet.freeze_panes = "A2"
        sheet.append([_xlsx_cell(sheet, h, header=True) for h in table.header])
        for row in table.rows:
            sheet.append(
                [
                    _xlsx_cell(sheet, v, percent=i in table.percent_columns)
                    for i, v in enumerate(row)
                ]
            )
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _xlsx_cell(sheet: Any, value: object, *, header: bool = False, percent: bool = False) -> Any:
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    if isinstance(value, str):
        value = _XML_ILLEGAL.sub("", value)
    clean = sanitize_cell(value)
    if isinstance(clean, str):
        cell = WriteOnlyCell(sheet, value=clean)
        cell.data_type = "s"  # text, whatever it looks like: never a formula
    else:
        cell = WriteOnlyCell(sheet, value=clean)
        if percent and clean is not None:
            cell.number_format = "0.0%"
    if header:
        cell.font = Font(bold=True)
    return cell


def _sheet_title(name: str) -> str:
    clean = re.sub(r"[\[\]:*?/\\']", "_", name).strip() or "Sheet"
    return clean[:SHEET_TITLE_MAX]


def content_disposition(filename: str) -> str:
    """An attachment header with a plain ASCII file name."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", filename)
    return f'attachment; filename="{safe}"'
