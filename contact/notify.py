"""Citizen messages rendered from jinja2 templates per channel and locale."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound

TEMPLATES = Path(__file__).parent / "templates" / "notifications"
LOCALES = ("zh-CN", "en")


class Renderer:
    def __init__(self, default_locale: str = "zh-CN") -> None:
        # Plain text for SMS and speech: no HTML escaping, but every variable must exist.
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=False,  # noqa: S701 - plain text, never HTML
            undefined=StrictUndefined,
            keep_trailing_newline=False,
        )
        self.default_locale = default_locale

    def render(self, channel: str, template: str, locale: str, context: dict[str, Any]) -> str:
        for loc in (locale, self.default_locale):
            try:
                tpl = self.env.get_template(f"{channel}/{loc}/{template}.txt")
            except TemplateNotFound:
                continue
            return tpl.render(**context).strip()
        raise TemplateNotFound(f"{channel}/{locale}/{template}")


# Texts a citizen waits for right now: never held for quiet hours.
URGENT_TEMPLATES = frozenset({"ticket_received", "reply", "help"})


def hold_until(now: datetime, tz: ZoneInfo, quiet: tuple[time, time] | None) -> datetime | None:
    """When a non-urgent text queued at ``now`` may go out, if ``now`` is in quiet hours."""
    if quiet is None:
        return None
    start, end = quiet
    local = now.astimezone(tz)
    t = local.timetz().replace(tzinfo=None)
    inside = (start <= t or t < end) if start > end else (start <= t < end)
    if not inside:
        return None
    release = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if release <= local:
        release += timedelta(days=1)
    return release.astimezone(now.tzinfo)
