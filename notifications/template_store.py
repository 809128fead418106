"""Administrator-edited email templates: stored per template, language and part; shipped files are the default.

A shipped template serves every language (its words come from the `mail` catalogue); an edit is stored for one
language and replaces the shipped part for recipients in that language only.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from jinja2 import TemplateSyntaxError
from jinja2.exceptions import SecurityError
from sqlalchemy import UniqueConstraint, delete, select
from sqlmodel import Field, Session, SQLModel, col

from engine.errors import InvalidInput, NotFound
from engine.models import utc_column
from engine.registry import Registry
from notifications.render import LANGUAGES, PARTS, environment, render, shipped_source, template_names

__all__ = ["PARTS", "SAMPLE", "SAMPLE_FOR", "EmailTemplate", "check", "load_overrides", "revert", "save", "sources"]

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
}


def check(name: str, lang: str, parts: dict[str, str], context: dict[str, Any] | None = None) -> dict[str, str]:
    """Compile and render edited parts in the sandbox; raise InvalidInput naming the part and line."""
    overrides = tuple(sorted((_key(name, lang, p), src) for p, src in parts.items()))
    env = environment(lang, overrides)
    for part, src in parts.items():
        try:
            env.parse(src)
        except TemplateSyntaxError as exc:
            raise InvalidInput(part, f"line {exc.lineno}: {exc.message}") from None
    try:
        rendered = render(name, lang, {**SAMPLE, **SAMPLE_FOR.get(name, {}), **(context or {})}, overrides)
    except SecurityError as exc:
        raise InvalidInput("template", f"not allowed: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any template error is the editor's to fix, not a 500
        line = getattr(exc, "lineno", None)
        raise InvalidInput("template", f"{type(exc).__name__}{f' at line {line}' if line else ''}: {exc}") from None
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
