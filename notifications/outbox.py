"""Queue emails in the caller's transaction: render now, store a row, send after the commit."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select

from engine.models import OutboxMessage, Person, table_of
from engine.service import UnitOfWork
from notifications.mime import message_id
from notifications.render import NotPlainData, Rendered, RenderLimitExceeded, render

OUTBOX = table_of(OutboxMessage)
log = logging.getLogger(__name__)


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
                timer_id: int | None = None, digestible: bool = False, contain: bool = True,
                person: Person | None = None) -> int | None:
    """Render and queue one email; a key already queued is not queued again (returns None).

    A template that fails to render (an administrator's edit over the sandbox's limits, say) does not stop the
    change that mails: the message is stored as `failed` with the reason, and logged. `contain=False` raises
    instead, for callers that record the failure themselves (a timer is marked failed with its note).
    """
    existing = uow.session.execute(select(OUTBOX.c.id).where(OUTBOX.c.dedupe_key == key)).scalar()
    if existing is not None:
        return None
    if person is None or person.id != person_id:  # `person`: the caller's row of person_id, already read
        person = uow.session.get(Person, person_id) if person_id is not None else None
    if person is not None and not person.active:
        return None
    to = address or (person.email if person else None)
    if not to:
        raise ValueError(f"email {key!r} has no recipient")
    lang = language or (person.language if person else "fi")
    config = mail_config(uow)
    # the reader's name is all a template learns of the person (never the row: no hashes, no other columns)
    ctx = {"person": {"name": person.name} if person is not None else None, "base_url": config.base_url,
           **(context or {})}
    status = "held" if (digestible and person is not None and person.digest) else "pending"
    error = None
    try:
        rendered = render(template, lang, ctx, uow.registry.services.get("template_overrides", ()))
    except NotPlainData:
        raise  # the caller's bug, not the template's
    except Exception as exc:  # noqa: BLE001 - an administrator's template must not stop the change that mails
        if not contain:
            raise
        # contained: the change goes on, the message is stored as failed (the outbox page shows it), nothing hangs
        kind = exc.kind if isinstance(exc, RenderLimitExceeded) else type(exc).__name__
        error = f"rendering template {template!r} ({lang}) failed: {kind}: {exc}"[:2000]
        log.error("outbox %s: %s", key, error)
        rendered, status = Rendered(subject=f"({template})", text="", html=""), "failed"
    row_id: int = uow.session.execute(insert(OUTBOX).values(
        case_id=case_id, person_id=person_id, timer_id=timer_id, template=template, language=lang, to_address=to,
        cc=list(cc or []), subject=rendered.subject[:500], text=rendered.text, html=rendered.html,
        ics=ics.decode("utf-8") if ics else None, message_id=message_id(key, config.domain),
        list_id=list_id(case_id, config.domain), dedupe_key=key, status=status, attempts=0,
        next_attempt_at=uow.now, refused={}, created_at=uow.now, last_error=error,
    ).returning(OUTBOX.c.id)).scalar_one()
    return row_id
