"""Turn engine events into emails: reminder and escalation timers, and `notify:` on transitions."""

from __future__ import annotations

from datetime import date
from typing import Any

from engine.calendar import HELSINKI, deadline_instant, effective_deadline
from engine.i18n import LANGUAGES, translate
from engine.models import Organisation, Person
from engine.records import CaseRow, TransitionRecord
from engine.service import UnitOfWork
from notifications.mime import deadline_ics
from notifications.outbox import mail_config, queue_email
from notifications.render import MAIL


# What a person still has to do, by (workflow, state); workflows may add their own.
def N_(msgid: str) -> str:
    """Mark a message id for `pybabel extract -k N_` (translated where it is shown)."""
    return msgid


# What a reminder asks its reader to do, by the state the case is in: the English msgid of the `mail` catalogue
# (notifications/locale), rendered in every language for the template to pick the recipient's.
ACTIONS: dict[tuple[str, str], str] = {
    ("agreement_party", "invited"):
        N_("Take the agreement to your governing body and record its decision (body, date and section)."),
    ("agreement_party", "approved"): N_("The decision is recorded. Please sign the agreement."),
}


def actions_for(case: CaseRow) -> dict[str, str]:
    """Return what the reader of a reminder on this case is asked to do, in each language (none: empty)."""
    msgid = ACTIONS.get((case.workflow, case.state))
    return {lang: MAIL.gettext(lang, msgid) for lang in LANGUAGES} if msgid else {}


def link_for(uow: UnitOfWork, person_id: int | None, case: CaseRow) -> str:
    """Return the link a person follows to act on a case (a single-use sign-in link when available)."""
    base = mail_config(uow).base_url.rstrip("/")
    try:
        from engine import links  # built with the web interface
    except ImportError:
        return f"{base}/cases/{case.id}"
    if person_id is None or case.deadline is None:
        return f"{base}/cases/{case.id}"
    expires = links.link_expiry(case.deadline, uow.now)  # the deadline, or a week for overdue reminders
    token = links.issue_link(uow.session, person_id=person_id, case_id=case.id, expires_at=expires, now=uow.now)
    return str(links.link_url(base, token))


def case_context(uow: UnitOfWork, case: CaseRow, person_id: int | None, lang_of: str | None = None) -> dict[str, Any]:
    """Return what templates may show about a case."""
    parent = uow.case(case.parent_id) if case.parent_id else None
    org = uow.session.get(Organisation, case.organisation_id) if case.organisation_id else None
    deadline: date | None = effective_deadline(case.deadline) if case.deadline else None
    return {
        "case": {"id": case.id, "title": case.title, "state": case.state, "workflow": case.workflow},
        "parent": {"id": parent.id, "title": parent.title} if parent else None,
        "organisation": ({"key": org.key, "name_fi": org.name_fi, "name_sv": org.name_sv or org.name_fi}
                         if org else None),
        "deadline": deadline,
        "actions": actions_for(case),
        "link": link_for(uow, person_id, case),
    }


def _ics(uow: UnitOfWork, case: CaseRow, ctx: dict[str, Any], person_id: int | None,
         person: Person | None = None) -> bytes | None:
    deadline = ctx["deadline"]
    if deadline is None:
        return None
    title = (ctx["parent"] or ctx["case"])["title"]
    if person is None and person_id is not None:
        person = uow.session.get(Person, person_id)
    summary = translate(person.language if person else None, "calendar.deadline", title=title)  # the recipient's
    return deadline_ics(uid=f"deadline-{case.id}@{mail_config(uow).domain}", summary=summary,
                        description=ctx["case"]["title"], deadline_date=deadline, url=ctx["link"],
                        dtstamp=uow.now)


def send_reminder(uow: UnitOfWork, timer: Any, case: CaseRow) -> None:
    """Timer handler: email a reminder or escalation to everyone the timer's roles mean right now."""
    people: list[int] = []
    for role in filter(None, timer.roles.split(",")):
        people += [p for p in uow.registry.recipients(uow, case, role) if p not in people]
    for person_id in people:
        ctx = case_context(uow, case, person_id)
        ctx.update(offset=timer.offset, kind=timer.kind, overdue=uow.now > deadline_instant(timer.deadline)
                   if timer.deadline else False)
        key = f"{timer.kind}:{case.id}:{timer.name}:{timer.deadline}:{timer.offset}:{person_id}"
        # one read of the person for the .ics and the mail (the session's identity map holds it only weakly)
        person = uow.session.get(Person, person_id)
        queue_email(uow, template=timer.template or "reminder", key=key, case_id=case.id, person_id=person_id,
                    person=person, context=ctx, ics=_ics(uow, case, ctx, person_id, person), timer_id=timer.id,
                    digestible=timer.kind == "reminder", contain=False)  # the timer is marked failed instead


def on_transition(uow: UnitOfWork, record: TransitionRecord) -> None:
    """Registry listener: send the notices a transition declares (`notify:` in the definition)."""
    definition = uow.machine_of(record.case).definition
    specs = [t for t in definition.transitions_for(record.trigger) if t.event_name == record.event_name]
    for spec in specs[:1]:
        for notice in spec.notify:
            for role in notice.to:
                for person_id in uow.registry.recipients(uow, record.case, role):
                    ctx = case_context(uow, record.case, person_id)
                    ctx.update(event=record.event_name, payload=record.payload)
                    queue_email(uow, template=notice.template, case_id=record.case.id, person_id=person_id,
                                key=f"notice:{record.case.id}:{record.seq}:{notice.template}:{person_id}",
                                context=ctx, ics=_ics(uow, record.case, ctx, person_id))


def today(uow: UnitOfWork) -> date:
    """Return the Helsinki date of the transaction."""
    return uow.now.astimezone(HELSINKI).date()


