"""A service's custom form fields (Open311 attributes): their definition and the values
a citizen, an agent, a kiosk or an integration gives for them.

One definition drives every channel's form: the console's new-ticket form, the mobile
web, the kiosk and Open311 service definitions. The admin page saves definitions
through :func:`check_definition`; intake checks values through :func:`clean_values`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

# Open311 GeoReport v2 datatypes.
DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")
LIST_TYPES = frozenset({"singlevaluelist", "multivaluelist"})
CODE_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
STRING_MAX = 200
TEXT_MAX = 2000
MAX_FIELDS = 20
MAX_VALUES = 50


class FieldProblem(ValueError):
    """A definition or a value that cannot be used; ``where`` names the field."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where = where
        self.message = message


def _label(raw: Mapping[str, Any], key: str, where: str, *, max_len: int = 100) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise FieldProblem(f"{where}.{key}", "is required")
    if len(value) > max_len:
        raise FieldProblem(f"{where}.{key}", f"at most {max_len} characters")
    return value.strip()


def check_definition(fields: Iterable[Any]) -> list[dict[str, Any]]:
    """Validate and normalise a service's field list (as saved by an administrator)."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    items = list(fields)
    if len(items) > MAX_FIELDS:
        raise FieldProblem("fields", f"at most {MAX_FIELDS} fields")
    for i, raw in enumerate(items):
        where = f"fields[{i}]"
        if not isinstance(raw, Mapping):
            raise FieldProblem(where, "must be an object")
        code = raw.get("code")
        if not isinstance(code, str) or not CODE_RE.match(code):
            raise FieldProblem(
                f"{where}.code", "lower-case letters, digits and _ , starting with a letter"
            )
        if code in seen:
            raise FieldProblem(f"{where}.code", f"'{code}' is used twice")
        seen.add(code)
        datatype = raw.get("datatype")
        if datatype not in DATATYPES:
            raise FieldProblem(f"{where}.datatype", f"one of {', '.join(DATATYPES)}")
        order = raw.get("order", i + 1)
        if not isinstance(order, int) or isinstance(order, bool) or not 0 <= order <= 999:
            raise FieldProblem(f"{where}.order", "a whole number from 0 to 999")
        field: dict[str, Any] = {
            "code": code,
            "datatype": datatype,
            "required": bool(raw.get("required", False)),
            "label_zh": _label(raw, "label_zh", where),
            "label_en": _label(raw, "label_en", where),
            "order": order,
        }
        for key in ("description_zh", "description_en"):
            if raw.get(key):
                field[key] = _label(raw, key, where, max_len=500)
        if datatype in LIST_TYPES:
            field["values"] = _check_values(raw.get("values"), where)
        out.append(field)
    return sorted(out, key=lambda f: f["order"])


def _check_values(values: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(values, list) or not values:
        raise FieldProblem(f"{where}.values", "a list field needs at least one value")
    if len(values) > MAX_VALUES:
        raise FieldProblem(f"{where}.values", f"at most {MAX_VALUES} values")
    out, keys = [], set()
    for j, v in enumerate(values):
        vw = f"{where}.values[{j}]"
        if not isinstance(v, Mapping):
            raise FieldProblem(vw, "must be an object")
        key = v.get("key")
        if not isinstance(key, str) or not KEY_RE.match(key):
            raise FieldProblem(f"{vw}.key", "letters, digits, _ . - (at most 40)")
        if key in keys:
            raise FieldProblem(f"{vw}.key", f"'{key}' is used twice")
        keys.add(key)
        out.append(
            {"key": key, "name_zh": _label(v, "name_zh", vw), "name_en": _label(v, "name_en", vw)}
        )
    return out


def clean_values(
    definition: Iterable[Mapping[str, Any]],
    values: Mapping[str, Any],
    *,
    enforce_required: bool,
) -> dict[str, Any]:
    """The values checked against the definition, normalised; raises :class:`FieldProblem`.

    Unknown codes are refused. ``enforce_required`` is for channels with a form (web,
    kiosk, Open311); a text message or a call cannot be held to a form.
    """
    by_code = {f["code"]: f for f in definition}
    for code in values:
        if code not in by_code:
            raise FieldProblem(f"fields.{code}", "this service has no such field")
    out: dict[str, Any] = {}
    for code, f in by_code.items():
        raw = values.get(code)
        if raw is None or raw == "" or raw == []:
            if enforce_required and f.get("required"):
                raise FieldProblem(f"fields.{code}", "is required")
            continue
        out[code] = _clean_one(f, raw, f"fields.{code}")
    return out


def _clean_one(f: Mapping[str, Any], raw: Any, where: str) -> Any:
    datatype = f["datatype"]
    if datatype in ("string", "text"):
        if not isinstance(raw, str | int | float) or isinstance(raw, bool):
            raise FieldProblem(where, "must be text")
        text = str(raw).strip()
        limit = STRING_MAX if datatype == "string" else TEXT_MAX
        if len(text) > limit:
            raise FieldProblem(where, f"at most {limit} characters")
        return text
    if datatype == "number":
        try:
            number = float(raw) if not isinstance(raw, bool) else math.nan
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise FieldProblem(where, "must be a number")
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if datatype == "datetime":
        if not isinstance(raw, str):
            raise FieldProblem(where, "must be a date and time (ISO 8601)")
        try:
            datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
        except ValueError:
            raise FieldProblem(where, "must be a date and time (ISO 8601)") from None
        return raw.strip()
    keys = {v["key"] for v in f.get("values", ())}
    if datatype == "singlevaluelist":
        if isinstance(raw, list) and len(raw) == 1:
            raw = raw[0]
        if not isinstance(raw, str) or raw not in keys:
            raise FieldProblem(where, f"one of {', '.join(sorted(keys))}")
        return raw
    chosen = raw if isinstance(raw, list) else [raw]
    if not all(isinstance(k, str) and k in keys for k in chosen):
        raise FieldProblem(where, f"values from {', '.join(sorted(keys))}")
    return list(dict.fromkeys(chosen))  # each once, in the order given
