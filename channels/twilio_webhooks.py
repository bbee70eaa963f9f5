"""What every Twilio webhook shares: the form, parsed as Twilio encodes it, and its
signature, checked with twilio's ``RequestValidator`` against ``PUBLIC_BASE_URL`` +
path (+ query): a bad or missing signature is 403 and nothing happens.
"""

from __future__ import annotations

import hmac
from functools import lru_cache
from urllib.parse import parse_qsl

from fastapi import Request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from contact.errors import BadRequest, Forbidden
from contact.runtime import Runtime

MAX_FORM_FIELDS = 100
FORM = "application/x-www-form-urlencoded"


async def verified_form(request: Request, rt: Runtime) -> dict[str, str]:
    """The POSTed form, if ``X-Twilio-Signature`` matches PUBLIC_BASE_URL + path; else 403."""
    params = await _form(request)
    signature = request.headers.get("x-twilio-signature")
    token = rt.settings.TWILIO_AUTH_TOKEN
    if not signature or not token:
        raise Forbidden("invalid Twilio signature", code="bad_signature")
    url = rt.settings.PUBLIC_BASE_URL + request.scope["path"]
    query = request.scope.get("query_string", b"")
    if query:
        url += "?" + query.decode("latin-1")
    validator = _validator(token)
    # The URL exactly as configured matches at once; validate() also tries it with and
    # without the port and checks a bodySHA256, as Twilio may sign either way.
    exact = validator.compute_signature(url, params)
    if not hmac.compare_digest(exact, signature) and not validator.validate(url, params, signature):
        raise Forbidden("invalid Twilio signature", code="bad_signature")
    return params


async def _form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body, decoded as Twilio encodes it (UTF-8;
    bytes that are not become U+FFFD); a repeated field keeps its last value. Any other
    body reads as no fields, which no signature matches."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM:
        return {}
    body = await request.body()
    try:
        pairs = parse_qsl(
            body.decode("latin-1"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS
        )
    except ValueError:
        raise BadRequest(
            f"more than {MAX_FORM_FIELDS} form fields", code="too_many_fields"
        ) from None
    return dict(pairs)


@lru_cache(maxsize=4)
def _validator(token: str) -> RequestValidator:
    return RequestValidator(token)


def _empty_twiml() -> str:  # an empty messaging answer: "received, nothing to say"
    return str(MessagingResponse())


EMPTY_TWIML = _empty_twiml()
