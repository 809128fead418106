"""Render email templates per language in a sandbox: subject, plain text and autoescaped HTML."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, DictLoader, FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from engine.calendar import format_date, format_datetime

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
LANGUAGES = ("fi", "sv", "en")


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
    """A sandbox where templates read data and apply filters, and call nothing (administrators edit them)."""

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - Jinja's API
        raise SecurityError(f"templates may only read data, not call {getattr(__obj, '__name__', 'functions')}")


@lru_cache(maxsize=8)
def environment(overrides: tuple[tuple[str, str], ...] = ()) -> DataOnlySandbox:
    """Return the sandboxed environment; `overrides` are admin-edited template sources by name."""
    loader = ChoiceLoader([DictLoader(dict(overrides)), FileSystemLoader(str(TEMPLATES_DIR))])
    env = DataOnlySandbox(
        loader=loader, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False, default=False),
    )
    env.globals.clear()  # no range(), lipsum(), cycler...: plain data only
    env.filters["localdate"] = _date
    return env


def template_names() -> list[str]:
    """Return the email templates that exist in every language."""
    names = None
    for lang in LANGUAGES:
        found = {p.name.removesuffix(".subject.j2") for p in (TEMPLATES_DIR / lang).glob("*.subject.j2")}
        names = found if names is None else names & found
    return sorted(names or [])


def render(template: str, lang: str, context: dict[str, Any],
           overrides: tuple[tuple[str, str], ...] = ()) -> Rendered:
    """Render a template's three parts in a language (falling back to Finnish)."""
    lang = lang if lang in LANGUAGES else "fi"
    env = environment(overrides)
    ctx = {**context, "lang": lang}
    subject = env.get_template(f"{lang}/{template}.subject.j2").render(ctx)
    text = env.get_template(f"{lang}/{template}.txt.j2").render(ctx)
    html = env.get_template(f"{lang}/{template}.html.j2").render(ctx)
    return Rendered(subject=" ".join(subject.split()), text=text.strip() + "\n", html=html)
