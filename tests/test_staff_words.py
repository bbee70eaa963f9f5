"""Every word the staff pages' scripts look up exists in both languages: a missing key
would show the page's user "undefined" in place of a label."""

from __future__ import annotations

import re

from agent_ui.i18n import LOCALES, words
from tests.conftest import ROOT

USED = re.compile(r"\bT\.([a-z_0-9]+)")


def test_every_word_the_scripts_use_is_there_in_every_language() -> None:
    scripts = sorted((ROOT / "agent_ui" / "static").glob("*.js"))
    used = {key for path in scripts for key in USED.findall(path.read_text("utf-8"))}
    assert len(used) > 100  # the lookups were found at all
    for locale in LOCALES:
        have = words(locale)
        missing = sorted(k for k in used if not have.get(k, "").strip())
        assert missing == [], f"{locale}: {missing}"
