"""The interface's words in Finnish (default), Swedish and English: the `web` catalogue, and choosing the language.

The catalogue is `api/locale/<lang>/LC_MESSAGES/web.po` (loaded by `engine.i18n`); its message ids are keys such
as `nav.tasks`, and `{name}` placeholders are filled by `translate`. A message with plural forms is read with
`translate_n(lang, key, n)`, which fills `{n}`. Terms follow the project glossary (`engine/data/glossary.csv`);
tests hold every message to it.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request

from engine.i18n import DEFAULT_LANGUAGE, LANGUAGES, Catalogue, normalise

__all__ = ["CATALOGUE", "DEFAULT_LANGUAGE", "LANGUAGES", "LANGUAGE_COOKIE", "choose_language", "has_message",
           "is_plural", "normalise", "translate", "translate_n"]

LANGUAGE_COOKIE = "vk_lang"
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
CATALOGUE = Catalogue(LOCALE_DIR, "web")


def translate(lang: str, key: str, **values: object) -> str:
    """Return a message in a language, with its placeholders filled; an unknown id raises KeyError."""
    text = CATALOGUE.lookup(lang, key) or CATALOGUE.lookup(DEFAULT_LANGUAGE, key)  # Finnish fills a gap
    if text is None:
        raise KeyError(key)
    return text.format(**values) if values else text


def translate_n(lang: str, key: str, n: int, **values: object) -> str:
    """Return a message in the plural form for n, filling {n}; a message without plural forms is just translated."""
    for code in (lang, DEFAULT_LANGUAGE):  # Finnish fills a gap, as in translate
        if CATALOGUE.is_plural(key, code):
            return CATALOGUE.ngettext(code, key, key, n, **values)
    return translate(lang, key, **{"n": n, **values})  # computed ids such as "notice." ~ notice may be singular


def is_plural(key: str) -> bool:
    """Tell whether a message id has plural forms."""
    return CATALOGUE.is_plural(key, DEFAULT_LANGUAGE)


def has_message(key: str) -> bool:
    """Tell whether the catalogue has a message id (for optional labels such as event names)."""
    return CATALOGUE.has(DEFAULT_LANGUAGE, key)


def choose_language(request: Request, person_language: str | None = None) -> str:
    """Pick the language: the signed-in (or addressed) person's, else the one chosen on this browser, else Finnish."""
    return normalise(person_language) or normalise(request.cookies.get(LANGUAGE_COOKIE)) or DEFAULT_LANGUAGE
