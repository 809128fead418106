"""Mail the web asks for: a fresh sign-in link, and a coordinator's "send a reminder now".

Both queue through `notifications.outbox.queue_email` in the caller's transaction, so nothing is sent unless the
request's change commits; the outbox sends after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlmodel import col

from engine.actors import Actor
from engine.calendar import deadline_instant
from engine.errors import Conflict, NotFound, NotPermitted
from engine.links import CASELESS_VALIDITY, issue_link, link_expiry, link_url
from engine.models import Case, OutboxMessage, Person
from engine.service import UnitOfWork, actor_roles
from notifications import reminders
from notifications.outbox import mail_config, queue_email
from workflows.agreement.cases import agreement_case

LINK_TEMPLATE = "sign_in_link"
REMINDER_TEMPLATE = "party_reminder"
REMIND_AGAIN_AFTER = timedelta(hours=24)  # a person reminded less than this ago is not reminded again by hand


def send_sign_in_link(uow: UnitOfWork, person: Person, case_id: int | None, key: str) -> int | None:
    """Issue a fresh link for a person (and case) and queue it to their own address; None if already queued."""
    case = uow.session.get(Case, case_id) if case_id is not None else None
    expires = link_expiry(case.deadline, uow.now) if case is not None else uow.now + CASELESS_VALIDITY
    token = issue_link(uow.session, person_id=person.id or 0, case_id=case.id if case else None,
                       expires_at=expires, now=uow.now)
    context = {"link": link_url(mail_config(uow).base_url, token), "expires_at": expires,
               "case": {"id": case.id, "title": case.title} if case is not None else None}
    return queue_email(uow, template=LINK_TEMPLATE, key=key, case_id=case.id if case else None,
                       person_id=person.id, context=context)


@dataclass(frozen=True)
class Reminded:
    """What "send a reminder now" did: how many were queued, and how many were left out as reminded recently."""

    queued: int
    skipped: int = 0
    last_at: datetime | None = None  # the newest of the recent reminders that kept someone from another one


def remind_now(uow: UnitOfWork, agreement_id: int, actor: Actor, party_case_id: int | None = None) -> Reminded:
    """Email every party still pending (or one) a reminder with a fresh link; say how many were queued.

    A person reminded about the same party (by hand or by the schedule) less than `REMIND_AGAIN_AFTER` ago is
    not reminded again: pressing the button twice sends nothing the second time, and the page says why.
    """
    agreement = agreement_case(uow, agreement_id)
    if not actor_roles(uow, agreement, actor) & {"coordinator", "admin"}:
        raise NotPermitted("only the agreement's coordinator or an administrator sends reminders",
                           case_id=agreement_id, action="remind")
    if not uow.machine_of(agreement).definition.has_tag(agreement.state, "open_for_parties"):
        raise Conflict(f"reminders go only to an agreement in circulation; this one is {agreement.state!r}",
                       message_id="agreement.error.remind_not_circulating",
                       params={"workflow": agreement.workflow, "state": agreement.state})
    parties = [c for c in uow.children(agreement_id) if party_case_id is None or c.id == party_case_id]
    if party_case_id is not None and not parties:
        raise NotFound(f"case {party_case_id} is not a party of agreement {agreement_id}")
    pending = [p for p in parties if uow.machine_of(p).definition.has_tag(p.state, "pending")]
    recent = _recent_reminders(uow, [p.id for p in pending])
    minute = uow.now.strftime("%Y%m%dT%H%M")  # a double click queues one reminder, not two
    queued, skipped, last_at = 0, 0, None
    for party in pending:
        for person_id in uow.registry.recipients(uow, party, "party"):
            sent_at = recent.get((party.id, person_id))
            if sent_at is not None:
                skipped += 1
                last_at = max(last_at or sent_at, sent_at)
                continue
            context = reminders.case_context(uow, party, person_id)
            overdue = bool(party.deadline and uow.now > deadline_instant(party.deadline))
            context.update(offset=None, kind="reminder", overdue=overdue)
            if queue_email(uow, template=REMINDER_TEMPLATE, key=f"manual-reminder:{party.id}:{person_id}:{minute}",
                           case_id=party.id, person_id=person_id, context=context) is not None:
                queued += 1
    return Reminded(queued, skipped, last_at)


def _recent_reminders(uow: UnitOfWork, party_ids: list[int]) -> dict[tuple[int, int], datetime]:
    """Return when each (party case, person) was last reminded within `REMIND_AGAIN_AFTER` (mail not failed)."""
    rows = uow.session.execute(
        select(col(OutboxMessage.case_id), col(OutboxMessage.person_id), func.max(col(OutboxMessage.created_at)))
        .where(col(OutboxMessage.template) == REMINDER_TEMPLATE, col(OutboxMessage.case_id).in_(party_ids),
               col(OutboxMessage.created_at) > uow.now - REMIND_AGAIN_AFTER,
               col(OutboxMessage.status).not_in(("failed", "dead")))
        .group_by(col(OutboxMessage.case_id), col(OutboxMessage.person_id))).all()
    return {(case_id, person_id): at for case_id, person_id, at in rows if case_id and person_id}
