"""Administrator-edited email templates: stored per template, language and part; shipped files are the default.

A shipped template serves every language (its words come from the `mail` catalogue); an edit is stored for one
language and replaces the shipped part for recipients in that language only.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from jinja2 import TemplateSyntaxError
from jinja2.exceptions import SecurityError
from sqlalchemy import UniqueConstraint, delete, select
from sqlmodel import Field, Session, SQLModel, col

from engine.errors import InvalidInput, NotFound
from engine.models import utc_column
from engine.registry import Registry
from engine.versions import TEMPLATE_CHECK
from notifications.render import (
    LANGUAGES,
    PARTS,
    RenderLimitExceeded,
    environment,
    missing_templates,
    render,
    shipped_source,
    template_names,
)

__all__ = ["PARTS", "REQUIRED", "SAMPLE", "SAMPLE_FOR", "EmailTemplate", "check", "control_character", "load_overrides",
           "revert", "save", "sources"]

SERVICE_KEY = "template_overrides"


class EmailTemplate(SQLModel, table=True):
    """One edited part of one template in one language."""

    __tablename__ = "email_template"
    __table_args__ = (UniqueConstraint("name", "lang", "part", name="uq_email_template"),)
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120)
    lang: str = Field(max_length=2)
    part: str = Field(max_length=10)
    source: str
    updated_by: int | None = Field(default=None, foreign_key="person.id")
    updated_at: datetime = Field(sa_column=utc_column())


def _key(name: str, lang: str, part: str) -> str:
    return f"{lang}/{name}.{part}.j2"


def load_overrides(session: Session, registry: Registry) -> tuple[tuple[str, str], ...]:
    """Read every override into the registry, where rendering finds it; return them."""
    rows = session.execute(select(EmailTemplate)).scalars().all()
    overrides = tuple(sorted((_key(r.name, r.lang, r.part), r.source) for r in rows))
    registry.services[SERVICE_KEY] = overrides
    # what a definition saved from now on is checked against: templates in every language, edits included
    registry.services[TEMPLATE_CHECK] = lambda names: missing_templates(names, registry.services.get(SERVICE_KEY, ()))
    return overrides


def sources(session: Session, name: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Return every language and part of a template: its source and whether an administrator changed it."""
    if name not in template_names():
        raise NotFound(f"no email template {name!r}; known: {', '.join(template_names())}")
    edited = {(r.lang, r.part): r.source for r in session.execute(
        select(EmailTemplate).where(col(EmailTemplate.name) == name)).scalars()}
    shipped = {part: shipped_source(name, part) for part in PARTS}
    return {lang: {part: {"source": edited.get((lang, part), shipped[part]), "edited": (lang, part) in edited}
                   for part in PARTS} for lang in LANGUAGES}


SAMPLE: dict[str, Any] = {
    "person": {"name": "Maija Meikäläinen"},
    "case": {"id": 1, "title": "Pirkanmaan puitesopimus", "state": "invited", "workflow": "agreement_party"},
    "parent": {"id": 1, "title": "Pirkanmaan puitesopimus"},
    "organisation": {"key": "municipality:837", "name_fi": "Tampere", "name_sv": "Tammerfors"},
    "deadline": date(2026, 12, 28), "date": date(2026, 12, 21), "overdue": False, "offset": "-P7D",
    "kind": "reminder", "link": "https://vuosikello.example/link/…", "event": "AgreementCirculated", "payload": {},
    "base_url": "https://vuosikello.example",
    "actions": {"fi": "Allekirjoittakaa sopimus.", "sv": "Underteckna avtalet.", "en": "Please sign the agreement."},
    "items": [{"subject": "Määräaikamuistutus: Pirkanmaan puitesopimus", "text": ""}],
}
# What the emails that are not about one party's case get besides (their senders pass these instead).
SAMPLE_FOR: dict[str, dict[str, Any]] = {
    "cycle_report_requested": {"year": 2026, "responsible": "Tampere", "case_id": 1},
    "nomination_requested": {"group": "Pirkanmaan yhteistyöryhmä", "requester": "Pirkanmaan liitto", "seats": 2,
                             "organisation": "Tampere", "term_start": "1.6.2025", "term_end": "31.5.2029",
                             "case_id": 1},
    "nomination_letter": {"subject": "Nimeäminen: Pirkanmaan yhteistyöryhmä", "text": "Kirjeen teksti.",
                          "html": "<p>Kirjeen teksti.</p>"},
    "sign_in_link": {"expires_at": datetime(2026, 12, 28, 10, 0, tzinfo=UTC)},
    "password_reset": {"expires_at": datetime(2026, 12, 28, 10, 0, tzinfo=UTC)},
}


# What an edited template must still show, per template: the placeholder, and the sample value that proves it is
# there in the text and HTML parts (a sign-in link mail without its link is no use to anyone).
REQUIRED: dict[str, tuple[str, ...]] = {"sign_in_link": ("link",), "password_reset": ("link",)}
# C0 and C1 control characters, DEL; tab, line feed and carriage return are text. A subject line carries none of
# them (a header with one is refused by every mail server), and PostgreSQL cannot store NUL in text at all.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def control_character(text: str) -> tuple[str, int] | None:
    """Return the first control character of a text as ("U+0000", its line), or None."""
    found = _CONTROL.search(text)
    if found is None:
        return None
    return f"U+{ord(found.group()):04X}", text.count("\n", 0, found.start()) + 1


def _refuse_controls(parts: dict[str, str]) -> None:
    for part, src in parts.items():
        bad = control_character(src)
        if bad is not None:
            char, line = bad
            raise InvalidInput(part, f"line {line}: control character {char} is not allowed",
                               message_id="templates.error.control", params={"char": char, "line": line})


def check(name: str, lang: str, parts: dict[str, str], context: dict[str, Any] | None = None) -> dict[str, str]:
    """Compile and render edited parts in the sandbox; raise InvalidInput naming the part and line.

    Refused: control characters in any part, a syntax error, what the sandbox refuses, a render over the sandbox's
    limits (time, size, numbers), a placeholder the template must keep (`REQUIRED`), and a control character in the
    rendered subject.
    """
    _refuse_controls(parts)
    overrides = tuple(sorted((_key(name, lang, p), src) for p, src in parts.items()))
    env = environment(lang, overrides)
    for part, src in parts.items():
        try:
            env.parse(src)
        except TemplateSyntaxError as exc:
            raise InvalidInput(part, f"line {exc.lineno}: {exc.message}") from None
    sample = {**SAMPLE, **SAMPLE_FOR.get(name, {}), **(context or {})}
    try:
        rendered = render(name, lang, sample, overrides)
    except RenderLimitExceeded as exc:
        raise InvalidInput(exc.part or "template", f"over the limit: {exc}", message_id=f"templates.error.limit."
                           f"{exc.kind}") from None
    except SecurityError as exc:
        raise InvalidInput("template", f"not allowed: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any template error is the editor's to fix, not a 500
        line = getattr(exc, "lineno", None)
        raise InvalidInput("template", f"{type(exc).__name__}{f' at line {line}' if line else ''}: {exc}") from None
    bad = control_character(rendered.subject)
    if bad is not None:
        raise InvalidInput("subject", f"the rendered subject has control character {bad[0]}",
                           message_id="templates.error.control", params={"char": bad[0], "line": 1})
    for placeholder in REQUIRED.get(name, ()):
        for part in ("txt", "html"):
            if str(sample[placeholder]) not in getattr(rendered, "text" if part == "txt" else part):
                raise InvalidInput(part, f"must show {{{{ {placeholder} }}}}", message_id="templates.error.required",
                                   params={"placeholder": f"{{{{ {placeholder} }}}}"})
    return {"subject": rendered.subject, "text": rendered.text, "html": rendered.html}


def save(session: Session, registry: Registry, name: str, lang: str, parts: dict[str, str], *,
         actor_id: int | None, now: datetime) -> dict[str, str]:
    """Validate and store edited parts; rendering uses them from now on."""
    if lang not in LANGUAGES:
        raise InvalidInput("lang", f"must be one of {', '.join(LANGUAGES)}")
    sources(session, name)
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise InvalidInput(sorted(unknown)[0], f"parts are {', '.join(PARTS)}")
    preview = check(name, lang, parts)
    for part, src in parts.items():
        row = session.execute(select(EmailTemplate).where(col(EmailTemplate.name) == name,
                                                          col(EmailTemplate.lang) == lang,
                                                          col(EmailTemplate.part) == part)).scalars().first()
        if row is None:
            session.add(EmailTemplate(name=name, lang=lang, part=part, source=src, updated_by=actor_id,
                                      updated_at=now))
        else:
            row.source, row.updated_by, row.updated_at = src, actor_id, now
    session.flush()
    load_overrides(session, registry)
    return preview


def revert(session: Session, registry: Registry, name: str, lang: str) -> None:
    """Drop a language's edits of a template; the shipped text applies again."""
    session.execute(delete(EmailTemplate).where(col(EmailTemplate.name) == name, col(EmailTemplate.lang) == lang))
    session.flush()
    load_overrides(session, registry)
