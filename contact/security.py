"""Passwords (argon2), signed bearer tokens, hashed API keys and device tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# A real hash to verify against when the user does not exist (equal timing).
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_secret(prefix: str) -> tuple[str, str, str]:
    """A new API key / device token: (secret shown once, prefix for display, sha256 to store)."""
    secret = f"{prefix}_{secrets.token_urlsafe(32)}"
    return secret, secret[: len(prefix) + 5], hash_secret(secret)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    version: int
    expires: int


def issue_token(secret_key: str, user_id: int, version: int, ttl_seconds: int) -> str:
    payload = _b64(
        json.dumps({"u": user_id, "v": version, "e": int(time.time()) + ttl_seconds}).encode()
    )
    sig = _b64(hmac.new(secret_key.encode(), payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{sig}"


def read_token(secret_key: str, token: str) -> TokenClaims | None:
    try:
        payload, sig = token.split(".", 1)
    except ValueError:
        return None
    expected = _b64(hmac.new(secret_key.encode(), payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(sig, expected):
        return None
    try:
        data = json.loads(_unb64(payload))
        claims = TokenClaims(int(data["u"]), int(data["v"]), int(data["e"]))
    except (ValueError, KeyError, TypeError):
        return None
    if claims.expires < time.time():
        return None
    return claims


def mask_phone(phone: str | None) -> str:
    """``+8613812345678`` → ``+86138****5678`` (for logs and views that need no full number)."""
    if not phone:
        return ""
    if len(phone) <= 7:
        return "*" * len(phone)
    return phone[:-8] + "****" + phone[-4:] if len(phone) > 8 else "****" + phone[-4:]
