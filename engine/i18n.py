"""Gettext catalogues for every package: the languages, loading `<package>/locale/<lang>/LC_MESSAGES/<domain>`.

Each package that shows words keeps its own domain (`api/locale` -> `web`, `notifications/locale` -> `mail`,
`workflows/locale` -> `workflows`, `engine/locale` -> `engine`) so that the one-way imports hold. The `.mo` files
are compiled when the package is built or installed (`setup.py`, `scripts/i18n`); when one is missing or older
than its `.po` (a working tree after an edit), the `.po` is compiled in memory instead, so text never goes stale.

`gettext`, `ngettext` and `pgettext` fill `{name}` placeholders with `str.format`; `ngettext` also offers `{n}`.
`translate`/`translate_n` read the engine's own domain (date patterns, calendar event titles).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LANGUAGES = ("fi", "sv", "en")
DEFAULT_LANGUAGE = "fi"

__all__ = ["CATALOGUE", "DEFAULT_LANGUAGE", "LANGUAGES", "Catalogue", "catalogue_files", "compile_catalogues",
           "gettext", "has_message", "language", "ngettext", "normalise", "pgettext", "translate", "translate_n",
           "translations"]


def normalise(lang: str | None) -> str | None:
    """Return a supported language code for 'sv', 'sv-FI' or 'en_GB', or None."""
    if not lang:
        return None
    base = lang.strip().replace("_", "-").split("-", 1)[0].lower()
    return base if base in LANGUAGES else None


def language(lang: str | None) -> str:
    """Return a supported language code, Finnish when the given one is missing or unsupported."""
    return normalise(lang) or DEFAULT_LANGUAGE


def po_path(locale_dir: Path, domain: str, lang: str) -> Path:
    """Return where a domain's catalogue for a language lives."""
    return Path(locale_dir) / lang / "LC_MESSAGES" / f"{domain}.po"


@cache
def _load(locale_dir: str, domain: str, lang: str) -> Translations:
    po = po_path(Path(locale_dir), domain, lang)
    mo = po.with_suffix(".mo")
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as fh:
            return Translations(fh, domain=domain)
    if not po.exists():
        raise FileNotFoundError(f"no catalogue {po} (nor {mo.name})")
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=lang, domain=domain)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=domain)


def translations(locale_dir: Path | str, domain: str, lang: str | None) -> Translations:
    """Return the (cached) translations of a domain in a language; an unsupported language gets Finnish."""
    return _load(str(Path(locale_dir).resolve()), domain, language(lang))


def _fill(text: str, values: dict[str, object]) -> str:
    return text.format(**values) if values else text


def gettext(t: NullTranslations, msgid: str, /, **values: object) -> str:
    """Translate a message and fill its `{name}` placeholders."""
    return _fill(t.gettext(msgid), values)


def ngettext(t: NullTranslations, singular: str, plural: str, n: int, /, **values: object) -> str:
    """Translate a message in the plural form for `n` and fill its placeholders (`{n}` is n unless given)."""
    return _fill(t.ngettext(singular, plural, n), {"n": n, **values})


def pgettext(t: NullTranslations, context: str, msgid: str, /, **values: object) -> str:
    """Translate a message in a context (msgctxt) and fill its placeholders."""
    return _fill(str(t.pgettext(context, msgid)), values)


def has_message(t: NullTranslations, msgid: str, context: str | None = None) -> bool:
    """Tell whether a catalogue translates a message id (singular or plural) to something non-empty."""
    key = f"{context}\x04{msgid}" if context else msgid
    found = getattr(t, "_catalog", {})
    return bool(found.get(key) or found.get((key, 0)))


class Catalogue:
    """One domain of one package: `Catalogue(Path(__file__).parent / "locale", "web").gettext("sv", "nav.tasks")`."""

    def __init__(self, locale_dir: Path | str, domain: str) -> None:
        self.locale_dir = Path(locale_dir).resolve()
        self.domain = domain
        self._loaded: dict[str, Translations] = {}

    def translations(self, lang: str | None) -> Translations:
        """Return this domain's translations in a language (Finnish when unsupported)."""
        found = self._loaded.get(lang or "")  # pages ask hundreds of times: one dict lookup
        if found is None:
            found = translations(self.locale_dir, self.domain, lang)
            if lang and len(self._loaded) < 32:  # "sv-FI" too, but not every string a client may send
                self._loaded[lang] = found
        return found

    def lookup(self, lang: str | None, msgid: str) -> str | None:
        """Return a message's translation in a language as it is (placeholders unfilled), or None."""
        found: str | None = getattr(self.translations(lang), "_catalog", {}).get(msgid)
        return found or None

    def gettext(self, lang: str | None, msgid: str, /, **values: object) -> str:
        """Translate a message into a language and fill its placeholders."""
        return gettext(self.translations(lang), msgid, **values)

    def ngettext(self, lang: str | None, singular: str, plural: str, n: int, /, **values: object) -> str:
        """Translate a message into a language in the plural form for n and fill its placeholders."""
        return ngettext(self.translations(lang), singular, plural, n, **values)

    def pgettext(self, lang: str | None, context: str, msgid: str, /, **values: object) -> str:
        """Translate a message in a context into a language and fill its placeholders."""
        return pgettext(self.translations(lang), context, msgid, **values)

    def has(self, lang: str | None, msgid: str, context: str | None = None) -> bool:
        """Tell whether this domain translates a message id in a language."""
        return has_message(self.translations(lang), msgid, context)

    def is_plural(self, msgid: str, lang: str | None = None) -> bool:
        """Tell whether a message id has plural forms in this domain."""
        return (msgid, 0) in getattr(self.translations(lang), "_catalog", {})

    def msgids(self, lang: str | None = None) -> set[str]:
        """Return every message id this domain translates in a language (a msgctxt is joined by EOT, as gettext)."""
        return {k if isinstance(k, str) else k[0] for k in getattr(self.translations(lang), "_catalog", {}) if k}


def catalogue_files(root: Path | str) -> Iterator[Path]:
    """Yield every `<package>/locale/<lang>/LC_MESSAGES/<domain>.po` under a source root."""
    for po in sorted(Path(root).glob("*/locale/*/LC_MESSAGES/*.po")):
        if not any(part.startswith(".") for part in po.parts):
            yield po


def compile_catalogues(root: Path | str) -> list[Path]:
    """Compile every stale `.po` under a source root to its `.mo`; return the files written."""
    written = []
    for po in catalogue_files(root):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=po.parent.parent.name, domain=po.stem)
        with mo.open("wb") as out:
            write_mo(out, catalog)
        written.append(mo)
    return written


# The engine's own words (date patterns, calendar event titles): engine/locale/<lang>/LC_MESSAGES/engine.po.
CATALOGUE = Catalogue(Path(__file__).resolve().parent / "locale", "engine")


def translate(lang: str | None, key: str, **values: object) -> str:
    """Return one of the engine's messages in a language, with its placeholders filled."""
    return CATALOGUE.gettext(lang, key, **values)


def translate_n(lang: str | None, key: str, n: int, **values: object) -> str:
    """Return one of the engine's messages in the plural form for n, filling {n}."""
    return CATALOGUE.ngettext(lang, key, key, n, **values)
