"""One error type, one body shape: ``{"error": code, "detail": ..., ...data}``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorBody(BaseModel):
    error: str
    detail: str
    fields: dict[str, str] | None = None
    status: str | None = None
    allowed: list[str] | None = None


class ContactError(Exception):
    code = "error"
    http_status = 400

    def __init__(self, detail: str, *, code: str | None = None, **data: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        self.data = data

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.detail, **self.data}


class InvalidInput(ContactError):
    code = "invalid_input"
    http_status = 422


class BadRequest(ContactError):
    code = "bad_request"
    http_status = 400


class NotFound(ContactError):
    code = "not_found"
    http_status = 404


class Unauthorized(ContactError):
    code = "unauthorized"
    http_status = 401


class Forbidden(ContactError):
    code = "forbidden"
    http_status = 403


class Conflict(ContactError):
    code = "conflict"
    http_status = 409


class IllegalTransition(Conflict):
    """An action the ticket's state does not allow: carries the state and allowed moves."""

    code = "illegal_transition"


class Locked(ContactError):
    code = "locked"
    http_status = 423


class TooManyRequests(ContactError):
    code = "rate_limited"
    http_status = 429


def field_error(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", fields={field: message})
