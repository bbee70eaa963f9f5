"""The GeoReport v2 wire: the format named by the URL suffix, XML and JSON bodies, errors.

A response is built once as plain data (dicts, lists, strings, numbers, booleans,
None) and written in either format. XML is written with ``xml.etree`` (every text is
escaped by the library; characters XML 1.0 cannot carry are dropped); each list gets
the element names of the standard (``<services><service>``, ``<service_requests>
<request>``, ...). JSON is the same data, with the list itself as the body.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET  # writes XML; this package never parses any
from collections.abc import Mapping
from typing import Any

from fastapi import Response

MEDIA_TYPES = {
    "xml": "text/xml; charset=utf-8",
    "json": "application/json; charset=utf-8",
}
DEFAULT_FORMAT = "xml"  # the format the standard requires; errors without a format use it

# The element each list's items get in XML.
ITEMS = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
    "errors": "error",
}

# Characters XML 1.0 cannot carry at all (control characters other than tab and newlines).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class Open311Error(Exception):
    """An answer in the standard's error body: 400 bad input, 403 key, 404 unknown."""

    def __init__(self, status: int, description: str, headers: Mapping[str, str] | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.headers = dict(headers or {})


def format_of(suffix: str) -> str:
    """``json`` or ``xml`` from the URL suffix; anything else is an unknown resource."""
    fmt = suffix.lower()
    if fmt not in MEDIA_TYPES:
        raise Open311Error(404, f"unknown format '.{suffix}': use .xml or .json")
    return fmt


def render(
    fmt: str,
    root: str,
    body: Any,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    content = to_json(body) if fmt == "json" else to_xml(root, body)
    return Response(content, status, headers=dict(headers or {}), media_type=MEDIA_TYPES[fmt])


def error_response(fmt: str, error: Open311Error) -> Response:
    body = [{"code": error.status, "description": error.description}]
    return render(fmt, "errors", body, error.status, error.headers)


def to_json(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


def to_xml(root: str, body: Any) -> bytes:
    text = ET.tostring(_element(root, body), encoding="unicode", short_empty_elements=True)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + text).encode()


def _element(name: str, value: Any) -> ET.Element:
    el = ET.Element(name)
    if isinstance(value, Mapping):
        for key, child in value.items():
            el.append(_element(key, child))
    elif isinstance(value, list | tuple):
        item = ITEMS.get(name, "item")
        for child in value:
            el.append(_element(item, child))
    elif value is not None:
        el.text = _text(value)
    return el


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))
