"""The workflows' words (annual clock, .ics feeds, annual report, nomination letter): the `workflows` catalogue.

`workflows/locale/<lang>/LC_MESSAGES/workflows.po`, keyed like the web's (`clock.title`); loaded by `engine.i18n`.
Templates of the workflows get `t(key, **values)` and `tn(key, n, **values)` from `template_helpers(lang)`.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from engine.i18n import DEFAULT_LANGUAGE, Catalogue, language

CATALOGUE = Catalogue(Path(__file__).resolve().parent / "locale", "workflows")


def translate(lang: str | None, key: str, **values: object) -> str:
    """Return a message in a language (Finnish when unsupported), with its placeholders filled."""
    return CATALOGUE.gettext(lang, key, **values)


def translate_n(lang: str | None, key: str, n: int, **values: object) -> str:
    """Return a message in the plural form for n, filling {n}."""
    return CATALOGUE.ngettext(lang, key, key, n, **values)


def has_message(key: str) -> bool:
    """Tell whether the catalogue has a message id (for labels of values that may be new, such as themes)."""
    return CATALOGUE.has(DEFAULT_LANGUAGE, key)


def template_helpers(lang: str | None) -> dict[str, Any]:
    """Return what a workflow's template needs to speak a language: lang, t and tn."""
    code = language(lang)
    return {"lang": code, "t": partial(translate, code), "tn": partial(translate_n, code)}
