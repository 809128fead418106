"""The interface's words in Finnish (default), Swedish and English: one catalogue, and choosing the language.

The catalogue (`messages.yaml`) maps a message id to its three texts; `{name}` placeholders are filled by
`translate`. Terms follow the project glossary (`engine/data/glossary.csv`); tests hold every message to it.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml
from starlette.requests import Request

LANGUAGES = ("fi", "sv", "en")
DEFAULT_LANGUAGE = "fi"
LANGUAGE_COOKIE = "vk_lang"
CATALOGUE_PATH = Path(__file__).resolve().parent / "messages.yaml"


@cache
def catalogue() -> dict[str, dict[str, str]]:
    """Load the catalogue once; refuse it unless every message has all three languages."""
    raw = yaml.safe_load(CATALOGUE_PATH.read_text(encoding="utf-8"))
    for key, texts in raw.items():
        if not isinstance(texts, dict) or set(texts) != set(LANGUAGES) or not all(texts.values()):
            raise ValueError(f"{CATALOGUE_PATH.name}: {key}: needs exactly fi, sv and en, each non-empty "
                             f"(a comma inside an unquoted flow value splits it): {texts!r}")
    return {str(k): {lang: str(v[lang]) for lang in LANGUAGES} for k, v in raw.items()}


def translate(lang: str, key: str, **values: object) -> str:
    """Return a message in a language, with its placeholders filled; an unknown id raises KeyError."""
    text = catalogue()[key][lang if lang in LANGUAGES else DEFAULT_LANGUAGE]
    return text.format(**values) if values else text


def has_message(key: str) -> bool:
    """Tell whether the catalogue has a message id (for optional labels such as event names)."""
    return key in catalogue()


def normalise(lang: str | None) -> str | None:
    """Return a supported language code for 'sv', 'sv-FI' or 'en_GB', or None."""
    if not lang:
        return None
    base = lang.strip().replace("_", "-").split("-", 1)[0].lower()
    return base if base in LANGUAGES else None


def choose_language(request: Request, person_language: str | None = None) -> str:
    """Pick the language: the signed-in (or addressed) person's, else the one chosen on this browser, else Finnish."""
    return normalise(person_language) or normalise(request.cookies.get(LANGUAGE_COOKIE)) or DEFAULT_LANGUAGE
