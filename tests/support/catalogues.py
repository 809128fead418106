"""Reading the gettext catalogues as data: every domain's .po files, and the message ids its code uses."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_keywords, parse_mapping_cfg
from babel.messages.pofile import read_po

from engine.i18n import LANGUAGES, catalogue_files

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"\{(\w+)\}|%\((\w+)\)[sd]")


@dataclass(frozen=True)
class Domain:
    """A gettext domain: its package, whether msgids are keys, and the keywords extraction looks for."""

    name: str
    package: str
    keyed: bool
    keywords: tuple[str, ...]

    def po(self, lang: str) -> Path:
        """Return the path of this domain's catalogue in a language."""
        return ROOT / self.package / "locale" / lang / "LC_MESSAGES" / f"{self.name}.po"


def domains() -> list[Domain]:
    """Return the domains declared in pyproject.toml plus any catalogue found beside the packages."""
    table = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["vuosikello"]["i18n"]
    found = {name: Domain(name, d["package"], bool(d.get("keyed")), tuple(d.get("keywords", [])))
             for name, d in table.items()}
    for po in catalogue_files(ROOT):
        package = po.relative_to(ROOT).parts[0]
        found.setdefault(po.stem, Domain(po.stem, package, False, ()))
    return sorted(found.values(), key=lambda d: d.name)


@cache
def catalog(domain: str, lang: str) -> Catalog:
    """Read one catalogue (.po) of a domain."""
    d = next(x for x in domains() if x.name == domain)
    with d.po(lang).open("rb") as fh:
        return read_po(fh, locale=lang, domain=domain)


def messages(domain: str, lang: str) -> dict[str, Message]:
    """Return a catalogue's messages by key (msgctxt\\x04msgid), without the header and obsolete ones."""
    return {(f"{m.context}\x04" if m.context else "") + (m.id if isinstance(m.id, str) else m.id[0]): m
            for m in catalog(domain, lang) if m.id}


def forms(message: Message) -> list[str]:
    """Return a message's translated text(s): one, or one per plural form."""
    return list(message.string) if isinstance(message.string, tuple | list) else [message.string]


def placeholders(text: str) -> set[str]:
    """Return the names of the {name} and %(name)s placeholders in a text."""
    return {a or b for a, b in PLACEHOLDER.findall(text)}


def extracted(domain: Domain) -> dict[str, tuple[str, int, bool]]:
    """Return the message ids the domain's code and templates name literally: where first, and if as a plural."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    keywords = parse_keywords(domain.keywords)
    if not domain.keyed:
        from babel.messages.extract import DEFAULT_KEYWORDS

        keywords = {**DEFAULT_KEYWORDS, **keywords}
    found: dict[str, tuple[str, int, bool]] = {}
    for filename, lineno, message, _comments, context in extract_from_dir(
            ROOT / domain.package, method_map, options_map, keywords=keywords):
        msgid = message if isinstance(message, str) else message[0]
        key = (f"{context}\x04" if context else "") + msgid
        found.setdefault(key, (filename, lineno, not isinstance(message, str)))
    return found


__all__ = ["LANGUAGES", "ROOT", "Domain", "catalog", "domains", "extracted", "forms", "messages", "placeholders"]
