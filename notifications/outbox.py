"""Queue emails in the caller's transaction: render now, store a row, send after the commit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select

from engine.models import OutboxMessage, Person, table_of
from engine.service import UnitOfWork
from notifications.mime import message_id
from notifications.render import render

OUTBOX = table_of(OutboxMessage)


@dataclass(frozen=True)
class MailConfig:
    """Where links point and who sends."""

    base_url: str = "http://127.0.0.1:8000"
    sender: str = "Vuosikello <no-reply@vuosikello.local>"
    domain: str = "vuosikello.local"


def mail_config(uow: UnitOfWork) -> MailConfig:
    """Return the mail configuration registered with the engine."""
    config: MailConfig = uow.registry.services.get("mail") or MailConfig()
    return config


def list_id(case_id: int | None, domain: str) -> str | None:
    """Return the List-Id of a case's mail."""
    return f"case-{case_id}.{domain}" if case_id is not None else None


def queue_email(uow: UnitOfWork, *, template: str, key: str, case_id: int | None = None,
                person_id: int | None = None, address: str | None = None, language: str | None = None,
                context: dict[str, Any] | None = None, cc: list[str] | None = None, ics: bytes | None = None,
                timer_id: int | None = None, digestible: bool = False) -> int | None:
    """Render and queue one email; a key already queued is not queued again (returns None)."""
    existing = uow.session.execute(select(OUTBOX.c.id).where(OUTBOX.c.dedupe_key == key)).scalar()
    if existing is not None:
        return None
    person = uow.session.get(Person, person_id) if person_id is not None else None
    if person is not None and not person.active:
        return None
    to = address or (person.email if person else None)
    if not to:
        raise ValueError(f"email {key!r} has no recipient")
    lang = language or (person.language if person else "fi")
    config = mail_config(uow)
    ctx = {"person": person, "base_url": config.base_url, **(context or {})}
    rendered = render(template, lang, ctx, uow.registry.services.get("template_overrides", ()))
    status = "held" if (digestible and person is not None and person.digest) else "pending"
    row_id: int = uow.session.execute(insert(OUTBOX).values(
        case_id=case_id, person_id=person_id, timer_id=timer_id, template=template, language=lang, to_address=to,
        cc=list(cc or []), subject=rendered.subject[:500], text=rendered.text, html=rendered.html,
        ics=ics.decode("utf-8") if ics else None, message_id=message_id(key, config.domain),
        list_id=list_id(case_id, config.domain), dedupe_key=key, status=status, attempts=0,
        next_attempt_at=uow.now, refused={}, created_at=uow.now,
    ).returning(OUTBOX.c.id)).scalar_one()
    return row_id
