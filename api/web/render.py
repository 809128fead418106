"""Turning pages into HTML: the Jinja2 environment (autoescaped), sanitised Markdown, and the page response.

Every page goes out with headers that keep it to itself: a strict Content-Security-Policy (no inline script or
style), `Referrer-Policy: no-referrer` (a sign-in link in the address bar must never leak to a linked site) and
`Cache-Control: no-store` (pages show personal data).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import nh3
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from api.web.csrf import FIELD, attach_csrf_cookie, csrf_token
from api.web.i18n import LANGUAGES, has_message, is_plural, translate, translate_n
from engine.calendar import HELSINKI, effective_deadline
from engine.calendar import format_date as calendar_date
from engine.calendar import format_datetime as calendar_datetime

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"

SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

_ALLOWED_TAGS = {"a", "abbr", "b", "blockquote", "br", "code", "em", "h3", "h4", "h5", "h6", "hr", "i", "li",
                 "ol", "p", "pre", "s", "strong", "sub", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul"}
_markdown = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])

environment = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=select_autoescape(["html"]),
                          undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def warm_templates() -> int:
    """Compile every page template now (at start-up), so the first requests do not pay for it; return how many.

    The environment is the module's own, so a process compiles each template once however many apps it builds.
    """
    names = [n for n in environment.list_templates() if n.endswith(".html")]
    for name in names:
        environment.get_template(name)
    return len(names)


@lru_cache(maxsize=64)
def render_markdown(text: str) -> Markup:
    """Render an agreement's Markdown as sanitised HTML; its headings start at h3, under the page's own."""
    tokens = _markdown.parse(text)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(int(token.tag[1]) + 2, 6)}"
    html = _markdown.renderer.render(tokens, _markdown.options, {})
    clean = nh3.clean(html, tags=_ALLOWED_TAGS, attributes={"a": {"href", "title"}, "abbr": {"title"}},
                      url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer nofollow")
    return Markup(clean)  # noqa: S704 - nh3 has just sanitised it


def _date(lang: str, value: date | None) -> str:
    return calendar_date(value, lang) if value else ""


def _datetime(lang: str, value: datetime | None) -> str:
    return calendar_datetime(value, lang) if value else ""


def _local_date(value: datetime) -> date:
    return value.astimezone(HELSINKI).date()


def error_text(lang: str, message: str) -> str:
    """Translate an error message id, with `|`-separated values for its {n} and {value} placeholders."""
    key, *values = message.split("|")
    if not has_message(key):
        return message  # an engine message (English) that has no translation
    filled = dict(zip(("n", "value"), values, strict=False))
    if is_plural(key) and filled.get("n", "").isdigit():
        return translate_n(lang, key, int(filled.pop("n")), **filled)
    return translate(lang, key, **filled)


def _language_context(lang: str) -> dict[str, Any]:
    """Return what a template sees that depends only on the language (words, dates)."""
    t: Callable[..., str] = partial(translate, lang)
    tn: Callable[..., str] = partial(translate_n, lang)
    return {"lang": lang, "t": t, "tn": tn, "languages": LANGUAGES, "err": partial(error_text, lang),
            "has": has_message, "fmt_date": partial(_date, lang), "fmt_datetime": partial(_datetime, lang),
            "local_date": _local_date, "effective": effective_deadline}  # the date a deadline is shown as


def page_context(request: Request, lang: str, **context: Any) -> dict[str, Any]:
    """Return what every template sees, plus the page's own values."""
    return {"request": request, **_language_context(lang), "csrf_field": FIELD, "csrf": csrf_token(request),
            "path": request.url.path, "user": None, **context}


def render_fragment(template: str, lang: str, **context: Any) -> Markup:
    """Render part of a page that every reader sees alike (escaped as a page is), to be kept and shown as is.

    Its template sees the language's words and dates and the values given, never the request: no CSRF token,
    path or signed-in person can end up in what is kept for others.
    """
    html = environment.get_template(template).render({**_language_context(lang), **context})
    return Markup(html)  # noqa: S704 - rendered by the autoescaping environment


def render(request: Request, template: str, lang: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a page in a language and return it with the security headers."""
    html = environment.get_template(template).render(page_context(request, lang, **context))
    response = HTMLResponse(html, status_code=status)
    secure(response)
    attach_csrf_cookie(request, response)
    return response


def secure(response: Response) -> Response:
    """Add the page security headers to a response."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
