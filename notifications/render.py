"""Render emails in a sandbox: one template per email, its words from the `mail` catalogue in the recipient's language.

An email is three files, `templates/<name>.{subject,txt,html}.j2` (the HTML part extends `base.html.j2`). Their words
are `{% trans %}` blocks whose English text is the msgid, with `{% pluralize %}` where a count appears;
`locale/<lang>/LC_MESSAGES/mail.po` translates them (`scripts/i18n` extracts and updates, the build compiles).
An administrator's edit of one part in one language (`<lang>/<name>.<part>.j2`, stored by `template_store`) takes the
shipped file's place for that language only, and may use the same `{% trans %}` blocks.

Administrators edit these templates, so the sandbox holds them to three limits (`LimitedSandbox`):
- **Plain data only.** `render` takes dicts, lists and dataclasses of plain values (`plain`), never ORM rows or
  settings, so nothing a template can reach holds a hash, a token or a setting; a template reads data, applies a
  short list of filters and translates, and calls nothing else.
- **Size.** Every string a template makes (output, `~`, `+`, `*`, `%`, filters, slices) is charged to one budget
  per render; a power, product or filter argument that would be huge is refused before it is computed.
- **Time.** Loop iterations are counted; the wall clock is checked at every iteration, every value made and
  after each part.
A template over a limit raises `RenderLimitExceeded`: the editor shows it as a form error, the outbox logs it and
queues nothing. Jinja offers no AST hook, so the limits are added by rewriting the parsed tree (`_parse`): loop
iterables and `~` results pass through guard filters, and each output value is charged. The Python process cannot
be interrupted mid-operation, which is why single operations are bounded by their size before they run.

Static `{% trans %}` text is translated when the template is compiled (each environment serves one language), so a
render calls no gettext function except for `{% pluralize %}`, whose count is known only then.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import re
import time as _time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from jinja2 import ChoiceLoader, DictLoader, FileSystemLoader, StrictUndefined, Template, nodes, select_autoescape
from jinja2.exceptions import SecurityError
from jinja2.ext import InternationalizationExtension
from jinja2.filters import FILTERS
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import pass_context
from markupsafe import Markup

from engine.calendar import format_date, format_datetime
from engine.i18n import LANGUAGES, Catalogue, language

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
MAIL = Catalogue(Path(__file__).resolve().parent / "locale", "mail")
PARTS = ("subject", "txt", "html")
GETTEXT_NAMES = ("gettext", "ngettext", "pgettext", "npgettext")

__all__ = ["LANGUAGES", "MAIL", "PARTS", "TEMPLATES_DIR", "DataOnlySandbox", "LimitedSandbox", "Limits",
           "NotPlainData", "RenderLimitExceeded", "Rendered", "environment", "missing_templates", "plain", "render",
           "shipped_source", "template_names"]


@dataclass(frozen=True)
class Limits:
    """What one render (all three parts of one email) may cost."""

    chars: int = 1_000_000  # every string made while rendering, output included
    part_chars: int = 300_000  # one rendered part
    int_bits: int = 4096  # about 1,200 decimal digits
    iterations: int = 20_000  # loop iterations
    seconds: float = 1.0  # wall clock


LIMITS = Limits()


class RenderLimitExceeded(SecurityError):
    """A template went over a render limit; `kind` is "size", "number", "loops" or "time"."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.part: str | None = None  # the part being rendered, set by `render`


class _Budget:
    __slots__ = ("chars", "deadline", "iterations", "limits")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.chars = limits.chars
        self.iterations = limits.iterations
        self.deadline = _time.monotonic() + limits.seconds


_BUDGET: ContextVar[_Budget | None] = ContextVar("vuosikello_render_budget", default=None)


def _budget() -> _Budget:
    budget = _BUDGET.get()
    # rendered outside `render` (a test or a tool): each guard call gets a fresh budget, so single values and
    # single loops are still bounded
    return budget if budget is not None else _Budget(LIMITS)


def _charge(value: Any) -> Any:
    """Count a string, list or tuple a template made against the render's budget; return it."""
    if isinstance(value, str | list | tuple):
        budget = _BUDGET.get() or _budget()
        budget.chars -= len(value)
        if budget.chars < 0:
            raise RenderLimitExceeded("size", f"the template makes more than {budget.limits.chars:,} characters")
        if _time.monotonic() > budget.deadline:  # every value made: a slow filter is caught right after it
            raise RenderLimitExceeded("time", f"rendering took longer than {budget.limits.seconds:g} s")
    return value


def _check_time(budget: _Budget) -> None:
    if _time.monotonic() > budget.deadline:
        raise RenderLimitExceeded("time", f"rendering took longer than {budget.limits.seconds:g} s")


def _guard_size(estimate: int, what: str) -> None:
    limit = (_BUDGET.get() or _budget()).limits.chars
    if estimate > limit:
        raise RenderLimitExceeded("size", f"{what} would make about {estimate:,} characters (at most {limit:,})")


@pass_context
def _loop(_context: Any, iterable: Iterable[Any]) -> Iterator[Any]:
    """Guard filter around every `{% for %}` iterable: count iterations and watch the clock."""
    budget = _BUDGET.get() or _budget()
    if isinstance(iterable, int | float):  # Jinja would say "not iterable"; say it the same way
        raise TypeError(f"{type(iterable).__name__!r} object is not iterable")
    for item in iterable:
        budget.iterations -= 1
        if budget.iterations < 0:
            raise RenderLimitExceeded("loops", f"the template's loops run more than "
                                               f"{budget.limits.iterations:,} times")
        if _time.monotonic() > budget.deadline:
            raise RenderLimitExceeded("time", f"rendering took longer than {budget.limits.seconds:g} s")
        yield item


@pass_context
def _made(_context: Any, value: Any) -> Any:
    """Guard filter around every `~` concatenation and every printed value: charge what it made."""
    return _charge(value)


_FORMAT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0 +\-]*(\*|\d+)?(?:\.(\*|\d+))?")
_SAFE_FORMATS: dict[str, bool] = {}


def _format_is_small(fmt: str) -> bool:
    """Tell whether a %-format string asks for no field wider than 1,000 (no `*`)."""
    known = _SAFE_FORMATS.get(fmt)
    if known is None:
        known = all((w is None or (w != "*" and len(w) < 4)) and (p is None or (p != "*" and len(p) < 4))
                    for w, p in _FORMAT_SPEC.findall(fmt) for w, p in [(w or None, p or None)])
        if len(_SAFE_FORMATS) < 4096:
            _SAFE_FORMATS[fmt] = known
    return known


def _sized(value: Any) -> int:
    return len(value) if isinstance(value, str | list | tuple | dict) else 0


def _estimate(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[int, str]:
    """Return how many characters a filter call could make at most (a cheap upper bound) and what it is."""
    value = args[0] if args else None
    rest = args[1:]
    size = _sized(value)
    if name == "center":
        width = rest[0] if rest else kwargs.get("width", 80)
        return max(size, int(width)), f"center({width})"
    if name == "indent":
        width = rest[0] if rest else kwargs.get("width", 4)
        pad = len(width) if isinstance(width, str) else int(width)
        lines = str(value).count("\n") + 1
        return size + lines * pad, "indent"
    if name == "wordwrap":
        width = int(rest[0] if rest else kwargs.get("width", 79))
        wrap = rest[2] if len(rest) > 2 else kwargs.get("wrapstring") or "\n"
        return size + (size // max(width, 1) + 1) * len(str(wrap)), "wordwrap"
    if name == "replace":
        old = str(rest[0] if rest else kwargs.get("old", ""))
        new = str(rest[1] if len(rest) > 1 else kwargs.get("new", ""))
        return size + (size // max(len(old), 1) + 1) * len(new), "replace"
    if name == "batch":
        count = int(rest[0] if rest else kwargs.get("linecount", 1))
        return size + count, f"batch({count})"
    if name == "slice":
        count = int(rest[0] if rest else kwargs.get("slices", 1))
        return size + count, f"slice({count})"
    if name == "truncate":
        return size + 3, "truncate"
    if name == "format":
        if not isinstance(value, str) or not _format_is_small(value):
            raise RenderLimitExceeded("size", "format: fields wider than 1,000 characters are not allowed")
        return size + sum(_sized(a) for a in rest), "format"
    return size, name


# Filters an email template may use: none calls out, and those that can grow a value are bounded first.
_FILTERS = ("abs", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape", "first",
            "float", "forceescape", "format", "groupby", "indent", "int", "items", "join", "last", "length", "list",
            "lower", "map", "max", "min", "reject", "rejectattr", "replace", "reverse", "round", "safe", "select",
            "selectattr", "slice", "sort", "string", "striptags", "title", "trim", "truncate", "unique", "upper",
            "urlencode", "wordcount", "wordwrap")
_GROWS = frozenset({"center", "indent", "wordwrap", "replace", "batch", "slice", "truncate", "format"})


def _guarded(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a filter: bound what it may make before it runs, and charge what it made."""
    passes = getattr(func, "jinja_pass_arg", None)
    grows = name in _GROWS

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        own = args[1:] if passes is not None else args
        if name == "join":
            seq = list(own[0]) if own else []
            sep = own[1] if len(own) > 1 else kwargs.get("d", "")
            _guard_size(sum(_sized(s) if isinstance(s, str) else 16 for s in seq)
                        + len(seq) * len(str(sep)), "join")
            args = (*args[:len(args) - len(own)], seq, *own[1:])
        elif grows:
            estimate, what = _estimate(name, own, kwargs)
            _guard_size(estimate, what)
        return _charge(func(*args, **kwargs))

    return guarded


def _date(value: date | datetime | None, lang: str) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return format_datetime(value, lang)
    return format_date(value, lang)


class CatalogueExtension(InternationalizationExtension):
    """`{% trans %}` with the catalogue looked up when the template is compiled (the environment has one language).

    Jinja's extension emits a `gettext(...)` call for every block, run on every render; its text depends only on
    the language, so the translation is a constant here. Blocks with `{% pluralize %}` still call `ngettext`.
    """

    def _make_node(self, singular: str, plural: str | None, context: str | None, variables: dict[str, nodes.Expr],
                   plural_expr: nodes.Expr | None, vars_referenced: bool, num_called_num: bool) -> nodes.Output:
        translations = getattr(self.environment, "catalogue", None)
        if plural_expr is not None or translations is None:
            return super()._make_node(singular, plural, context, variables, plural_expr, vars_referenced,
                                      num_called_num)
        if not vars_referenced:
            singular = singular.replace("%%", "%")
        text = translations.pgettext(context, singular) if context is not None else translations.gettext(singular)
        node: nodes.Expr = nodes.MarkSafeIfAutoescape(nodes.Const(text))
        if variables:
            node = nodes.Mod(node, nodes.Dict([nodes.Pair(nodes.Const(k), v) for k, v in variables.items()]))
        return nodes.Output([node])


# Output children that need no charge of their own: text, constants, and what is charged where it is made
# (`and`/`or` are BinExprs too, and print an operand as it is: they are charged like any other value)
_CHARGED = (nodes.TemplateData, nodes.Const, nodes.Filter, nodes.Add, nodes.Mul, nodes.Pow, nodes.Mod, nodes.Concat)


def _charged(node: nodes.Node) -> bool:
    if isinstance(node, nodes.MarkSafeIfAutoescape):  # a {% trans %} block's constant text
        return isinstance(node.expr, nodes.Const)
    return isinstance(node, _CHARGED)


def _made_node(node: nodes.Expr) -> nodes.Filter:
    return nodes.Filter(node, "vk_made", [], [], None, None, lineno=node.lineno)


def _guard_tree(tree: nodes.Template) -> nodes.Template:
    """Route loop iterables through `_loop`, and `~` results and printed data through `_made`."""
    every = list(tree.find_all(nodes.Node))
    for node in every:
        if isinstance(node, nodes.For):
            node.iter = nodes.Filter(node.iter, "vk_loop", [], [], None, None, lineno=node.lineno)
        elif isinstance(node, nodes.Output):
            node.nodes = [child if _charged(child) else _made_node(child) for child in node.nodes]
        for field in node.fields:
            value = getattr(node, field, None)
            if isinstance(value, nodes.Concat):
                setattr(node, field, _made_node(value))
            elif isinstance(value, list) and any(isinstance(v, nodes.Concat) for v in value):
                setattr(node, field, [_made_node(v) if isinstance(v, nodes.Concat) else v for v in value])
    return tree


class LimitedSandbox(ImmutableSandboxedEnvironment):
    """The email sandbox: plain data, bounded sizes, bounded loops and time (see the module's docstring)."""

    # `-` and `/` cannot make a value bigger than its operands; unary + and - neither, so no unop is intercepted
    intercepted_binops = frozenset({"+", "*", "**", "%"})
    intercepted_unops: frozenset[str] = frozenset()

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        return _guard_tree(super()._parse(source, name, filename))

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        """Refuse an arithmetic or repetition that would make a huge number or string; charge what is made."""
        limits = (_BUDGET.get() or _budget()).limits
        if operator == "**":
            if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1 \
                    and right * left.bit_length() > limits.int_bits:
                raise RenderLimitExceeded("number", f"{left} ** {right} is too large a number")
        elif operator == "*":
            if isinstance(left, int) and isinstance(right, int):
                if left.bit_length() + right.bit_length() > limits.int_bits:
                    raise RenderLimitExceeded("number", "the product is too large a number")
            elif isinstance(left, str | list | tuple) or isinstance(right, str | list | tuple):
                seq, times = (left, right) if isinstance(left, str | list | tuple) else (right, left)
                if isinstance(times, int) and len(seq) * times > limits.chars:
                    raise RenderLimitExceeded("size", f"repeating {len(seq):,} items {times:,} times is too much")
        elif operator == "%" and isinstance(left, str) and not _format_is_small(left):
            raise RenderLimitExceeded("size", "%-formatting fields wider than 1,000 characters is not allowed")
        return _charge(self.binop_table[operator](left, right))

    def getitem(self, obj: Any, argument: Any) -> Any:
        """Read an item; a slice makes a new string or list, which is charged."""
        if type(argument) is slice:
            return _charge(super().getitem(obj, argument))
        return super().getitem(obj, argument)


class DataOnlySandbox(LimitedSandbox):
    """A sandbox where templates read data, apply filters and translate, and call nothing else (admins edit them)."""

    translators: tuple[Callable[..., Any], ...] = ()
    catalogue: Any = None
    overridden: frozenset[str] = frozenset()

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - Jinja's API
        for allowed in __self.translators:
            if __obj is allowed:
                # old-style gettext functions are the catalogue's own and take no context: call them directly
                # (Jinja adds `_block_vars` inside blocks, for functions that want the context)
                kwargs.pop("_block_vars", None)
                return __obj(*args, **kwargs)
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
        extensions=[CatalogueExtension],
    )
    env.globals.clear()  # no range(), lipsum(), cycler(), _()...: plain data, and the gettext functions below
    t = MAIL.translations(lang)
    env.catalogue = t
    env.install_gettext_callables(  # type: ignore[attr-defined]  # added by jinja2.ext.i18n
        t.gettext, t.ngettext, newstyle=False, pgettext=t.pgettext, npgettext=t.npgettext)
    env.translators = tuple(cast(Callable[..., Any], env.globals[name]) for name in GETTEXT_NAMES)
    env.overridden = frozenset(name for name, _ in overrides)
    env.filters = {name: _guarded(name, FILTERS[name]) for name in _FILTERS}
    env.filters.update(localdate=_date, vk_loop=_loop, vk_made=_made)
    return env


class NotPlainData(TypeError):
    """A caller put something other than plain data into an email's context (a programming error)."""


_SCALARS = frozenset({str, int, float, bool, type(None), date, datetime, time, timedelta, Decimal, Markup})


def plain(value: Any, _depth: int = 0) -> Any:
    """Return `value` as plain data a template may see: dicts, lists, dataclasses and plain values; refuse the rest.

    ORM rows, settings and other objects are refused (`NotPlainData`, a TypeError): what a template can reach is
    exactly what the caller chose to put in its context, never a row's other columns (a hash, a token) or methods.
    """
    kind = type(value)
    if kind in _SCALARS:
        return value
    if _depth > 20:
        raise NotPlainData("email template data is nested too deep")
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                raise NotPlainData(f"email template data keys are strings, not {type(key).__name__}")
            out[key] = item if type(item) in _SCALARS else plain(item, _depth + 1)
        return out
    if kind is list or kind is tuple:
        return [item if type(item) in _SCALARS else plain(item, _depth + 1) for item in value]
    if isinstance(value, enum.Enum):
        return plain(value.value, _depth + 1)
    if isinstance(value, str | int | float | date | timedelta | Decimal):  # subclasses (e.g. an IntEnum)
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name), _depth + 1) for f in dataclasses.fields(value)}
    raise NotPlainData(f"email templates get plain data (dicts, lists, dataclasses of plain values), "
                    f"not {kind.__module__}.{kind.__qualname__}")


@dataclass(frozen=True)
class Rendered:
    """One rendered email."""

    subject: str
    text: str
    html: str


def template_names() -> list[str]:
    """Return the email templates (each has a subject, a text and an HTML part)."""
    return sorted(p.name.removesuffix(".subject.j2") for p in TEMPLATES_DIR.glob("*.subject.j2"))


def shipped_source(name: str, part: str) -> str:
    """Return the shipped source of one part of a template (the same for every language)."""
    return (TEMPLATES_DIR / f"{name}.{part}.j2").read_text(encoding="utf-8")


def missing_templates(names: Iterable[str], overrides: tuple[tuple[str, str], ...] = ()) -> dict[str, list[str]]:
    """Return, for each named template that some language lacks (a part not found), the languages it lacks."""
    missing: dict[str, list[str]] = {}
    for name in sorted(set(names)):
        for lang in LANGUAGES:
            env = environment(lang, overrides)
            for part in PARTS:
                edited = f"{lang}/{name}.{part}.j2"
                if edited not in env.overridden and not (TEMPLATES_DIR / f"{name}.{part}.j2").is_file():
                    missing.setdefault(name, []).append(lang)
                    break
    return missing


def _part(env: DataOnlySandbox, lang: str, template: str, part: str) -> Template:
    edited = f"{lang}/{template}.{part}.j2"
    return env.get_template(edited if edited in env.overridden else f"{template}.{part}.j2")


def render(template: str, lang: str, context: dict[str, Any],
           overrides: tuple[tuple[str, str], ...] = (), limits: Limits = LIMITS) -> Rendered:
    """Render a template's three parts in a language (Finnish when the language is not supported).

    `context` must be plain data (`plain`); a template over a limit raises `RenderLimitExceeded`.
    """
    lang = language(lang)
    env = environment(lang, overrides)
    ctx = plain(context)
    ctx["lang"] = lang
    # compiled (or found compiled) before the clock starts: the time limit is the render's, and a first compile
    # on a loaded machine (an edited template's preview, a start) is not what it bounds
    compiled = {part: _part(env, lang, template, part) for part in PARTS}
    budget = _Budget(limits)
    token = _BUDGET.set(budget)
    try:
        out = []
        for part in PARTS:
            try:
                text = compiled[part].render(ctx)
                if len(text) > limits.part_chars:
                    raise RenderLimitExceeded("size", f"the {part} part has more than {limits.part_chars:,} "
                                                      f"characters")
                _check_time(budget)
            except RenderLimitExceeded as exc:
                exc.part = exc.part or part
                raise
            out.append(text)
    finally:
        _BUDGET.reset(token)
    subject, text, html = out
    return Rendered(subject=" ".join(subject.split()), text=text.strip() + "\n", html=html)
