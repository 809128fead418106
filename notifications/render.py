"""Render emails in a sandbox: one template per email, its words from the `mail` catalogue in the recipient's language.

An email is three files, `templates/<name>.{subject,txt,html}.j2` (the HTML part extends `base.html.j2`). Their words
are `{% trans %}` blocks whose English text is the msgid, with `{% pluralize %}` where a count appears;
`locale/<lang>/LC_MESSAGES/mail.po` translates them (`scripts/i18n` extracts and updates, the build compiles).
An administrator's edit of one part in one language (`<lang>/<name>.<part>.j2`, stored by `template_store`) takes the
shipped file's place for that language only, and may use the same `{% trans %}` blocks.

Templates read data and apply filters; the only things they may call are the catalogue's gettext functions, which
the renderer installs per language (newstyle: placeholders are filled, and escaped in the HTML part).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from jinja2 import ChoiceLoader, DictLoader, FileSystemLoader, StrictUndefined, Template, select_autoescape
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine.calendar import format_date, format_datetime
from engine.i18n import LANGUAGES, Catalogue, language

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
MAIL = Catalogue(Path(__file__).resolve().parent / "locale", "mail")
PARTS = ("subject", "txt", "html")
GETTEXT_NAMES = ("gettext", "ngettext", "pgettext", "npgettext")

__all__ = ["LANGUAGES", "MAIL", "PARTS", "TEMPLATES_DIR", "DataOnlySandbox", "Rendered", "environment", "render",
           "shipped_source", "template_names"]


@dataclass(frozen=True)
class Rendered:
    """One rendered email."""

    subject: str
    text: str
    html: str


def _date(value: date | datetime | None, lang: str) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return format_datetime(value, lang)
    return format_date(value, lang)


class DataOnlySandbox(ImmutableSandboxedEnvironment):
    """A sandbox where templates read data, apply filters and translate, and call nothing else (admins edit them)."""

    translators: tuple[Callable[..., Any], ...] = ()
    overridden: frozenset[str] = frozenset()

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - Jinja's API
        if any(__obj is allowed for allowed in __self.translators):
            # the installed gettext functions are ours and safe: skip the sandbox's generic checks (a third of
            # a reminder's rendering time went there), Jinja's context still passes itself to them
            return __context.call(__obj, *args, **kwargs)
        raise SecurityError(f"templates may only read data, not call {getattr(__obj, '__name__', 'functions')}")


@lru_cache(maxsize=24)
def environment(lang: str, overrides: tuple[tuple[str, str], ...] = ()) -> DataOnlySandbox:
    """Return the sandbox for one language; `overrides` are admin-edited sources named `<lang>/<name>.<part>.j2`."""
    lang = language(lang)
    loader = ChoiceLoader([DictLoader(dict(overrides)), FileSystemLoader(str(TEMPLATES_DIR))])
    env = DataOnlySandbox(
        loader=loader, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        auto_reload=False,  # shipped files do not change under a running service; overrides get a new environment
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False, default=False),
        extensions=["jinja2.ext.i18n"],
    )
    env.globals.clear()  # no range(), lipsum(), cycler(), _()...: plain data, and the gettext functions below
    t = MAIL.translations(lang)
    env.install_gettext_callables(  # type: ignore[attr-defined]  # added by jinja2.ext.i18n
        t.gettext, t.ngettext, newstyle=False, pgettext=t.pgettext, npgettext=t.npgettext)
    env.translators = tuple(cast(Callable[..., Any], env.globals[name]) for name in GETTEXT_NAMES)
    env.overridden = frozenset(name for name, _ in overrides)
    env.filters["localdate"] = _date
    return env


def template_names() -> list[str]:
    """Return the email templates (each has a subject, a text and an HTML part)."""
    return sorted(p.name.removesuffix(".subject.j2") for p in TEMPLATES_DIR.glob("*.subject.j2"))


def shipped_source(name: str, part: str) -> str:
    """Return the shipped source of one part of a template (the same for every language)."""
    return (TEMPLATES_DIR / f"{name}.{part}.j2").read_text(encoding="utf-8")


def _part(env: DataOnlySandbox, lang: str, template: str, part: str) -> Template:
    edited = f"{lang}/{template}.{part}.j2"
    return env.get_template(edited if edited in env.overridden else f"{template}.{part}.j2")


def render(template: str, lang: str, context: dict[str, Any],
           overrides: tuple[tuple[str, str], ...] = ()) -> Rendered:
    """Render a template's three parts in a language (Finnish when the language is not supported)."""
    lang = language(lang)
    env = environment(lang, overrides)
    ctx = {**context, "lang": lang}
    subject, text, html = (_part(env, lang, template, part).render(ctx) for part in PARTS)
    return Rendered(subject=" ".join(subject.split()), text=text.strip() + "\n", html=html)
