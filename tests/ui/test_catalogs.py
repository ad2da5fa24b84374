"""Both languages say everything the templates ask for."""

from __future__ import annotations

import re
from pathlib import Path

import gateway.ui
from gateway.ui.i18n import LANGS, Catalogs

_UI = Path(gateway.ui.__file__).parent


def test_both_catalogs_have_the_same_keys() -> None:
    catalogs = Catalogs()
    keys = [set(catalogs.get(lang)._messages) for lang in LANGS]
    assert keys[0] == keys[1]


def test_every_literal_key_in_templates_and_code_is_in_the_catalogs() -> None:
    zh = Catalogs().get("zh")
    used: set[str] = set()
    for path in [*_UI.rglob("*.html"), *_UI.rglob("*.py")]:
        used |= set(
            re.findall(r"""\bt\(\s*['"]([a-z_]+\.[a-z_.]*[a-z_])['"][,)]""", path.read_text())
        )
        used |= set(re.findall(r"""UiError\(\d+, "([a-z_.]+)"\)""", path.read_text()))
        used |= set(re.findall(r'"(login\.[a-z_]+)"(?!\s*,\s*\{)', path.read_text()))
    assert used
    missing = sorted(k for k in used if not zh.has(k))
    assert missing == []
