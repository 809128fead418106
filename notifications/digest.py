"""The daily digest: people who chose it get one email a day listing their held reminders."""

from __future__ import annotations

import logging
from datetime import time
from typing import Any

from sqlalchemy import Row, select, update

from engine.calendar import HELSINKI, local_time_utc
from engine.models import OutboxMessage, table_of
from engine.service import Engine, UnitOfWork
from notifications.deferred import Fence, render_queued
from notifications.outbox import queue_email

OUTBOX = table_of(OutboxMessage)
DIGEST_AT = time(9, 0)
log = logging.getLogger(__name__)


def _compose(uow: UnitOfWork) -> int:
    today = uow.now.astimezone(HELSINKI).date()
    if uow.now < local_time_utc(today, DIGEST_AT):
        return 0
    rows = uow.session.execute(select(OUTBOX).where(OUTBOX.c.status == "held")
                               .order_by(OUTBOX.c.person_id, OUTBOX.c.id)).all()
    by_person: dict[int, list[Row[Any]]] = {}
    for row in rows:
        by_person.setdefault(row.person_id, []).append(row)
    sent = 0
    for person_id, items in by_person.items():
        key = f"digest:{person_id}:{today.isoformat()}"
        try:
            outbox_id = queue_email(uow, template="digest", key=key, person_id=person_id, contain=False,
                                    context={"items": [{"subject": r.subject, "text": r.text} for r in items],
                                             "date": today})
        except Exception:  # an edited digest template that fails: the reminders stay held for a later digest
            log.exception("the digest of person %s could not be rendered; its %d reminders stay held",
                          person_id, len(items))
            continue
        if outbox_id is None:
            continue  # today's digest already went; these wait for tomorrow's
        uow.session.execute(update(OUTBOX).where(OUTBOX.c.id.in_([r.id for r in items]))
                            .values(status="digested", sent_at=uow.now))
        sent += 1
    return sent


def send_digests(engine: Engine, fence: Fence | None = None) -> int:
    """Render what is queued, then queue today's digests that are due; return how many digests were queued.

    The mail job's first step: a digest reader's reminder becomes `held` only when it is rendered, and one the
    sweep queued in this same tick belongs in today's digest.
    """
    render_queued(engine, fence)
    count: int = engine.run(_compose)
    return count
