"""Message catalogs: Chinese first, English available (gateway/ui/i18n/<lang>.json).

A page's language is the ``xinyi_lang`` cookie if set, else Chinese. Both
catalogs hold the same keys (a test checks); a missing key shows as itself,
which a test would catch before a person does.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

__all__ = ["DEFAULT_LANG", "LANGS", "Catalogs", "Translator"]

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"
_DIR = Path(__file__).parent / "i18n"


class Translator:
    """One language's messages; ``t(key, **values)`` fills ``{name}`` placeholders."""

    def __init__(self, lang: str, messages: Mapping[str, str]) -> None:
        self.lang = lang
        self._messages = messages

    def __call__(self, key: str, **values: Any) -> str:
        text = self._messages.get(key, key)
        return text.format(**values) if values else text

    def has(self, key: str) -> bool:
        return key in self._messages


class Catalogs:
    def __init__(self, directory: Path = _DIR) -> None:
        self.by_lang = {
            lang: Translator(lang, orjson.loads((directory / f"{lang}.json").read_bytes()))
            for lang in LANGS
        }

    def get(self, lang: str | None) -> Translator:
        return self.by_lang.get(lang or DEFAULT_LANG, self.by_lang[DEFAULT_LANG])
