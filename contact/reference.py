"""Ticket references: ``YYMMDD`` + 7 random digits + 1 Damm check digit (14 digits).

Typed on a phone keypad, so every single-digit error and every adjacent
transposition must be caught: the Damm algorithm does both.
"""

from __future__ import annotations

import secrets
from datetime import datetime

# The Damm operation table: a totally anti-symmetric quasigroup of order 10.
_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)

LENGTH = 14


def damm_digit(digits: str) -> str:
    interim = 0
    for ch in digits:
        interim = _DAMM[interim][ord(ch) - 48]
    return str(interim)


def is_valid(reference: str) -> bool:
    """A well-formed reference: 14 ASCII digits whose Damm check comes out 0."""
    return (
        len(reference) == LENGTH
        and reference.isascii()
        and reference.isdigit()
        and damm_digit(reference) == "0"
    )


def new_reference(now: datetime) -> str:
    """``now`` is the city's local time; the prefix is its date."""
    body = now.strftime("%y%m%d") + f"{secrets.randbelow(10**7):07d}"
    return body + damm_digit(body)


def normalize(text: str) -> str:
    """Drop the grouping spaces and dashes people type or read back."""
    return "".join(ch for ch in text if not ch.isspace() and ch != "-")


def grouped(reference: str) -> str:
    """``26112104821377`` → ``2611 2104 8213 77``."""
    return " ".join(reference[i : i + 4] for i in range(0, len(reference), 4))
