"""What the kiosk screens work with, wherever they are served.

The screens (:mod:`kiosk.ui.routes`) talk to a :class:`KioskBackend`: on a kiosk it is
the runtime (local queue, printer, card reader, the central server over the network);
on the central server it opens tickets directly, for trying the screens out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from kiosk.hardware.printer import PrinterStatus
from kiosk.hardware.reader import card_digest, mask_card
from kiosk.hardware.receipt import TextSlip

LOCALES = ("zh-CN", "en")


def pick(names: Any, locale: str) -> str:
    """A ``{"zh-CN": ..., "en": ...}`` value in ``locale`` (falling back to the other)."""
    if isinstance(names, dict):
        return str(names.get(locale) or names.get("zh-CN") or names.get("en") or "")
    return str(names or "")


@dataclass(frozen=True)
class Group:
    code: str
    names: dict[str, str]
    icon: str

    def name(self, locale: str) -> str:
        return pick(self.names, locale)


@dataclass(frozen=True)
class ServiceInfo:
    code: str
    group: str
    names: dict[str, str]
    kind: str
    guidance: dict[str, str]
    fields: tuple[dict[str, Any], ...]
    forms: tuple[dict[str, str], ...]

    def name(self, locale: str) -> str:
        return pick(self.names, locale)

    def guide(self, locale: str) -> str:
        return pick(self.guidance, locale)


@dataclass(frozen=True)
class Catalogue:
    """The central server's ``GET /api/v1/kiosk/catalogue``, kept for offline use."""

    kiosk_id: int
    kiosk_name: str
    location: str
    groups: tuple[Group, ...]
    services: dict[str, ServiceInfo]
    track_url: str
    card_key: bytes = field(repr=False)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Catalogue:
        kiosk = raw.get("kiosk") or {}
        services = {
            str(s["code"]): ServiceInfo(
                code=str(s["code"]),
                group=str(s.get("group") or ""),
                names=dict(s.get("name") or {}),
                kind=str(s.get("kind") or "complaint"),
                guidance=dict(s.get("guidance") or {}),
                fields=tuple(s.get("fields") or ()),
                forms=tuple(s.get("forms") or ()),
            )
            for s in raw.get("services") or ()
        }
        used = {s.group for s in services.values()}
        groups = tuple(
            Group(str(g["code"]), dict(g.get("name") or {}), str(g.get("icon") or "other"))
            for g in raw.get("groups") or ()
            if str(g["code"]) in used
        )
        return cls(
            kiosk_id=int(kiosk.get("id") or 0),
            kiosk_name=str(kiosk.get("name") or ""),
            location=str(kiosk.get("location") or ""),
            groups=groups,
            services=services,
            track_url=str(raw.get("track_url") or ""),
            card_key=bytes.fromhex(str(raw.get("card_key") or "")),
        )

    def in_group(self, group: str) -> list[ServiceInfo]:
        return [s for s in self.services.values() if s.group == group]

    def group(self, code: str) -> Group | None:
        return next((g for g in self.groups if g.code == code), None)

    def track_link(self, reference: str) -> str:
        sep = "&" if "?" in self.track_url else "?"
        return f"{self.track_url}{sep}ref={reference}"

    def card(self, number: str) -> dict[str, str]:
        """A card number as the screens and the central server may see it: an HMAC under
        the city's kiosk key (the same on every kiosk), the last 4 digits and a mask;
        never the number."""
        return {
            "digest": card_digest(number, self.card_key),
            "last4": number[-4:],
            "masked": mask_card(number),
        }


@dataclass(frozen=True)
class Outcome:
    """A submission kept: the reference to give the citizen and how the receipt went."""

    reference: str
    provisional: bool
    submitted_at: datetime
    printed: bool
    print_problem: str | None = None  # "out" (paper), "offline", "error", None when printed


@dataclass(frozen=True)
class Step:
    at: str
    text: str
    detail: str = ""


@dataclass(frozen=True)
class TrackAnswer:
    """``found`` (with steps), ``waiting`` (a provisional reference this kiosk has not
    sent yet, or the server has not received), ``not_found``, ``locked``, ``offline``."""

    outcome: str
    reference: str = ""
    service: str = ""
    status: str = ""
    steps: tuple[Step, ...] = ()


class KioskBackend(Protocol):
    async def catalogue(self) -> Catalogue | None: ...

    async def submit(self, submission_id: str, payload: dict[str, Any], locale: str) -> Outcome: ...

    async def track(self, reference: str, last4: str, locale: str) -> TrackAnswer: ...

    async def print_slip(self, slip: TextSlip) -> str | None: ...

    async def printer_status(self) -> PrinterStatus: ...

    async def next_input(self, timeout: float) -> dict[str, str] | None: ...
