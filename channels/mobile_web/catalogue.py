"""The service catalogue as the citizens' pages show it: groups, guidance, forms, fields.

Read from the ``services`` and ``service_forms`` tables and kept for a few seconds per
process (like the core's own catalogue), so a page costs no catalogue queries.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from contact.models import Service, ServiceForm
from contact.runtime import Runtime

CACHE_KEY = "mobile_web.services"
CACHE_SECONDS = 10.0
MAILBOX_SUFFIX = "-mailbox"  # services offered as leaders' mailboxes on the home page


@dataclass(frozen=True)
class FormLink:
    title_zh: str
    title_en: str
    url: str

    def title(self, locale: str) -> str:
        return self.title_zh if locale == "zh-CN" else self.title_en


@dataclass(frozen=True)
class ServiceView:
    code: str
    name_zh: str
    name_en: str
    group_zh: str
    group_en: str
    description_zh: str
    description_en: str
    kind: str
    keywords: tuple[str, ...]
    fields: tuple[dict[str, Any], ...]
    forms: tuple[FormLink, ...]

    @property
    def mailbox(self) -> bool:
        return self.code.endswith(MAILBOX_SUFFIX)

    def name(self, locale: str) -> str:
        return self.name_zh if locale == "zh-CN" else self.name_en

    def group(self, locale: str) -> str:
        return self.group_zh if locale == "zh-CN" else self.group_en

    def description(self, locale: str) -> str:
        return self.description_zh if locale == "zh-CN" else self.description_en

    def matches(self, query: str) -> bool:
        q = query.casefold()
        return any(
            q in text.casefold()
            for text in (
                self.name_zh,
                self.name_en,
                self.group_zh,
                self.group_en,
                self.description_zh,
                self.description_en,
                *self.keywords,
            )
        )


async def services(rt: Runtime) -> dict[str, ServiceView]:
    """The active services by code, in catalogue order."""
    cached = rt.extras.get(CACHE_KEY)
    if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]  # type: ignore[no-any-return]
    async with rt.db.session() as s:
        rows = (
            (await s.execute(select(Service).where(Service.active).order_by(Service.id)))
            .scalars()
            .all()
        )
        forms = (
            (await s.execute(select(ServiceForm).order_by(ServiceForm.position, ServiceForm.id)))
            .scalars()
            .all()
        )
    by_service: dict[int, list[FormLink]] = {}
    for f in forms:
        by_service.setdefault(f.service_id, []).append(FormLink(f.title_zh, f.title_en, f.url))
    views = {
        r.code: ServiceView(
            code=r.code,
            name_zh=r.name_zh,
            name_en=r.name_en,
            group_zh=r.group_zh,
            group_en=r.group_en,
            description_zh=r.description_zh,
            description_en=r.description_en,
            kind=r.kind.value,
            keywords=tuple(str(k) for k in r.keywords or ()),
            fields=tuple(sorted(r.fields or (), key=lambda f: f.get("order", 0))),
            forms=tuple(by_service.get(r.id, ())),
        )
        for r in rows
    }
    rt.extras[CACHE_KEY] = (time.monotonic(), views)
    return views


def grouped(views: list[ServiceView], locale: str) -> list[tuple[str, list[ServiceView]]]:
    """Services under their group names, groups in catalogue order."""
    groups: dict[str, list[ServiceView]] = {}
    for v in views:
        groups.setdefault(v.group(locale), []).append(v)
    return list(groups.items())
