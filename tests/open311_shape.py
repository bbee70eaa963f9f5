"""One reader and checker of Open311 GeoReport v2 responses, for this server and for the
real cities' recorded responses alike.

``parse`` turns an XML or JSON body into the same plain data (XML lists by the
standard's element names; an element with ``xsi:nil`` reads as None). ``problems``
lists every place the data breaks the standard's field rules: ids are strings,
required fields are present, datetimes are W3C with an offset, statuses are
``open``/``closed``, booleans and numbers are what they say. ``complete=True`` also
asks for every field the standard defines (what this server promises).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"

# The element names under which XML holds a list.
LISTS = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
    "errors": "error",
}

W3C = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")
DATATYPES = {"string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"}

Rule = Callable[[Any], str | None]


# ------------------------------------------------------------------ reading


def parse(body: bytes | str, fmt: str) -> Any:
    """The response body as plain data (XML: the root element's content)."""
    if fmt == "json":
        return json.loads(body)
    raw = body.encode() if isinstance(body, str) else body
    root = ET.fromstring(raw)
    return _read(root)


def root_of(body: bytes | str) -> str:
    raw = body.encode() if isinstance(body, str) else body
    return _local(ET.fromstring(raw).tag)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _read(el: ET.Element) -> Any:
    name = _local(el.tag)
    if el.get(XSI_NIL) == "true":
        return None
    if name in LISTS:
        return [_read(child) for child in el if _local(child.tag) == LISTS[name]]
    children = list(el)
    if not children:
        return el.text or ""
    return {_local(child.tag): _read(child) for child in children}


# ------------------------------------------------------------------ field rules


def _empty(v: Any) -> bool:
    return v is None or v == ""


def identifier(v: Any) -> str | None:
    if not isinstance(v, str):
        return f"{v!r} is not a string"
    return None if v.strip() else "is empty"


def text(v: Any) -> str | None:
    return None if v is None or isinstance(v, str) else f"{v!r} is not text"


def required_text(v: Any) -> str | None:
    return text(v) or ("is empty" if _empty(v) else None)


def datetime_(v: Any) -> str | None:
    if _empty(v):
        return None
    if not isinstance(v, str) or not W3C.match(v):
        return f"{v!r} is not a W3C datetime with an offset"
    return None


def required_datetime(v: Any) -> str | None:
    return "is empty" if _empty(v) else datetime_(v)


def boolean(v: Any) -> str | None:
    return None if isinstance(v, bool) or v in ("true", "false") else f"{v!r} is not a boolean"


def whole(v: Any) -> str | None:
    if isinstance(v, int) and not isinstance(v, bool):
        return None
    return None if isinstance(v, str) and v.isdigit() else f"{v!r} is not a whole number"


def coordinate(v: Any) -> str | None:
    if _empty(v) or (isinstance(v, int | float) and not isinstance(v, bool)):
        return None
    try:
        float(v)
    except (TypeError, ValueError):
        return f"{v!r} is not a number"
    return None


def one_of(*allowed: str) -> Rule:
    def rule(v: Any) -> str | None:
        return None if v in allowed else f"{v!r} is not one of {', '.join(allowed)}"

    return rule


SERVICE = {
    "service_code": identifier,
    "service_name": required_text,
    "description": text,
    "metadata": boolean,
    "type": one_of("realtime", "batch", "blackbox"),
    "keywords": text,
    "group": text,
}
SERVICE_REQUIRED = ("service_code", "service_name", "metadata", "type")

REQUEST = {
    "service_request_id": identifier,
    "status": one_of("open", "closed"),
    "status_notes": text,
    "service_name": text,
    "service_code": text,
    "description": text,
    "agency_responsible": text,
    "service_notice": text,
    "requested_datetime": required_datetime,
    "updated_datetime": datetime_,
    "expected_datetime": datetime_,
    "address": text,
    "address_id": text,
    "zipcode": text,
    "lat": coordinate,
    "long": coordinate,
    "media_url": text,
}
REQUEST_REQUIRED = ("service_request_id", "status", "service_code", "requested_datetime")

ATTRIBUTE = {
    "variable": boolean,
    "code": identifier,
    "datatype": one_of(*sorted(DATATYPES)),
    "required": boolean,
    "datatype_description": text,
    "order": whole,
    "description": required_text,
    "values": lambda v: None,  # checked below
}
ATTRIBUTE_REQUIRED = ("variable", "code", "datatype", "required", "order", "description")

ENDPOINT = {
    "specification": required_text,
    "url": required_text,
    "changeset": required_datetime,
    "type": one_of("production", "test"),
    "formats": lambda v: None,  # checked below
}


def _record(
    where: str,
    record: Any,
    rules: dict[str, Rule],
    required: tuple[str, ...],
    complete: bool,
) -> list[str]:
    if not isinstance(record, dict):
        return [f"{where}: not a record"]
    out = [f"{where}.{name}: missing" for name in required if name not in record]
    if complete:
        out += [f"{where}.{name}: missing" for name in rules if name not in record]
        out += [
            f"{where}.{name}: not a field of the standard" for name in record if name not in rules
        ]
    for name, rule in rules.items():
        if name in record:
            problem = rule(record[name])
            if problem:
                out.append(f"{where}.{name}: {problem}")
    return sorted(set(out))


def _listed(data: Any, where: str) -> tuple[list[Any], list[str]]:
    if not isinstance(data, list):
        return [], [f"{where}: not a list"]
    return data, []


def problems(kind: str, data: Any, *, complete: bool = False) -> list[str]:
    """Every break of the standard's rules in a ``kind`` response: services,
    service_definition, service_requests, posted (a POST's answer), token, discovery,
    errors."""
    checker = CHECKS[kind]
    return checker(data, complete)


def _services(data: Any, complete: bool) -> list[str]:
    items, out = _listed(data, "services")
    for i, s in enumerate(items):
        out += _record(f"[{i}]", s, SERVICE, SERVICE_REQUIRED, complete)
    return out


def _requests(data: Any, complete: bool) -> list[str]:
    items, out = _listed(data, "service_requests")
    for i, r in enumerate(items):
        out += _record(f"[{i}]", r, REQUEST, REQUEST_REQUIRED, complete)
    return out


def _definition(data: Any, complete: bool) -> list[str]:
    if not isinstance(data, dict):
        return ["service_definition: not a record"]
    out = [] if "service_code" in data else ["service_code: missing"]
    if "service_code" in data and identifier(data["service_code"]):
        out.append(f"service_code: {identifier(data['service_code'])}")
    attributes, bad = _listed(data.get("attributes", []), "attributes")
    out += bad
    for i, a in enumerate(attributes):
        where = f"attributes[{i}]"
        out += _record(where, a, ATTRIBUTE, ATTRIBUTE_REQUIRED, complete)
        if not isinstance(a, dict):
            continue
        listed = a.get("datatype") in ("singlevaluelist", "multivaluelist")
        values = a.get("values")
        if listed and (not isinstance(values, list) or not values):
            out.append(f"{where}.values: a list datatype needs values")
        for j, v in enumerate(values if isinstance(values, list) else []):
            if not isinstance(v, dict) or identifier(v.get("key")) or required_text(v.get("name")):
                out.append(f"{where}.values[{j}]: needs a key and a name")
    return out


def _posted(data: Any, complete: bool) -> list[str]:
    items, out = _listed(data, "service_requests")
    if len(items) != 1:
        return [*out, "a POST answers exactly one request"]
    r = items[0]
    if not isinstance(r, dict):
        return ["[0]: not a record"]
    has_id, has_token = not _empty(r.get("service_request_id")), not _empty(r.get("token"))
    if has_id == has_token:
        out.append("[0]: either service_request_id or token, never both")
    for name in ("service_request_id", "token"):
        if not _empty(r.get(name)) and identifier(r[name]):
            out.append(f"[0].{name}: {identifier(r[name])}")
    for name in ("service_notice", "account_id"):
        if complete and name not in r:
            out.append(f"[0].{name}: missing")
        if text(r.get(name)):
            out.append(f"[0].{name}: {text(r.get(name))}")
    return out


def _token(data: Any, complete: bool) -> list[str]:
    items, out = _listed(data, "service_requests")
    if len(items) != 1 or not isinstance(items[0], dict):
        return [*out, "a token resolves to exactly one request"]
    for name in ("service_request_id", "token"):
        problem = identifier(items[0].get(name))
        if problem:
            out.append(f"[0].{name}: {problem}")
    return out


def _discovery(data: Any, complete: bool) -> list[str]:
    if not isinstance(data, dict):
        return ["discovery: not a record"]
    out = []
    if required_datetime(data.get("changeset")):
        out.append(f"changeset: {required_datetime(data.get('changeset'))}")
    for name in ("contact", "key_service"):
        if complete and required_text(data.get(name)):
            out.append(f"{name}: {required_text(data.get(name))}")
    endpoints, bad = _listed(data.get("endpoints"), "endpoints")
    out += bad or ([] if endpoints else ["endpoints: none"])
    for i, e in enumerate(endpoints):
        out += _record(f"endpoints[{i}]", e, ENDPOINT, tuple(ENDPOINT), complete)
        formats = e.get("formats") if isinstance(e, dict) else None
        if not isinstance(formats, list) or "text/xml" not in formats:
            out.append(f"endpoints[{i}].formats: must list text/xml (XML is required)")
    return out


def _errors(data: Any, complete: bool) -> list[str]:
    items, out = _listed(data, "errors")
    if not items:
        out.append("errors: none")
    for i, e in enumerate(items):
        if not isinstance(e, dict):
            out.append(f"[{i}]: not a record")
            continue
        if whole(e.get("code")):
            out.append(f"[{i}].code: {whole(e.get('code'))}")
        if required_text(e.get("description")):
            out.append(f"[{i}].description: {required_text(e.get('description'))}")
    return out


CHECKS: dict[str, Callable[[Any, bool], list[str]]] = {
    "services": _services,
    "service_definition": _definition,
    "service_requests": _requests,
    "posted": _posted,
    "token": _token,
    "discovery": _discovery,
    "errors": _errors,
}

# The XML root element of each kind of response.
ROOTS = {
    "services": "services",
    "service_definition": "service_definition",
    "service_requests": "service_requests",
    "posted": "service_requests",
    "token": "service_requests",
    "discovery": "discovery",
    "errors": "errors",
}
