"""Queue a workflow's email in the transaction that causes it; it leaves through the outbox after the commit."""

from __future__ import annotations

from typing import Any

from engine.service import UnitOfWork
from notifications.outbox import queue_email


def queue_mail(uow: UnitOfWork, *, template: str, key: str, case_id: int | None = None,
               person_id: int | None = None, address: str | None = None, language: str | None = None,
               context: dict[str, Any] | None = None, cc: list[str] | None = None) -> None:
    """Queue one email in this transaction through the outbox (the key makes a repeat a no-op)."""
    queue_email(uow, template=template, key=key, case_id=case_id, person_id=person_id, address=address,
                language=language, context=context or {}, cc=cc or None)
