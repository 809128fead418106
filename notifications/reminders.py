"""Turn engine events into emails: reminder and escalation timers, and `notify:` on transitions.

Both queue their emails with `notifications.deferred`: written in the transaction with what the template is given,
rendered by the mail job when it delivers them (not in the transaction, nor in the timer sweep).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from engine import timers
from engine.calendar import HELSINKI, deadline_instant, effective_deadline
from engine.i18n import LANGUAGES, translate
from engine.models import Organisation, Person
from engine.records import CaseRow, TransitionRecord
from engine.service import UnitOfWork
from notifications import deferred
from notifications.mime import deadline_ics
from notifications.outbox import mail_config
from notifications.render import MAIL, missing_templates


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


class _Mails:
    """The emails one case's event queues: what every reader's email shares about the case is read once."""

    def __init__(self, uow: UnitOfWork, case: CaseRow) -> None:
        self.uow, self.case = uow, case
        parent = uow.case(case.parent_id) if case.parent_id else None
        org = uow.session.get(Organisation, case.organisation_id) if case.organisation_id else None
        deadline: date | None = effective_deadline(case.deadline) if case.deadline else None
        self.shared: dict[str, Any] = {
            "case": {"id": case.id, "title": case.title, "state": case.state, "workflow": case.workflow},
            "parent": {"id": parent.id, "title": parent.title} if parent else None,
            "organisation": ({"key": org.key, "name_fi": org.name_fi, "name_sv": org.name_sv or org.name_fi}
                             if org else None),
            "deadline": deadline,
            "actions": actions_for(case),
            "link": f"{mail_config(uow).base_url.rstrip('/')}/cases/{case.id}",  # without a sign-in link
        }
        try:
            from engine import links  # noqa: F401 - built with the web interface
            self.signs_in = case.deadline is not None
        except ImportError:
            self.signs_in = False
        title = (self.shared["parent"] or self.shared["case"])["title"]
        self.ics = ((f"deadline-{case.id}@{mail_config(uow).domain}", title, case.title, deadline)
                    if deadline is not None else None)
        self.mails: list[deferred.Mail] = []

    def add(self, template: str, key: str, person_id: int, extra: dict[str, Any], timer_id: int | None = None,
            digestible: bool = False) -> None:
        self.mails.append(deferred.Mail(
            template=template, key=key, person_id=person_id, context={**self.shared, **extra}, case_id=self.case.id,
            timer_id=timer_id, digestible=digestible, link_case=self.case.id if self.signs_in else None,
            link_deadline=self.case.deadline if self.signs_in else None, ics=self.ics))

    def queue(self) -> int:
        return deferred.queue(self.uow, self.mails)


class _BatchMails:
    """The emails of a sweep batch's reminders, queued together at the end of its savepoint (`timers.batch_part`).

    Queued one reminder at a time they cost a recipient read, a key check and an insert each, about 0.7 ms of the
    sweep per reminder (10,000 due in one second: 7 s); together they are one of each per batch. Which templates
    exist is looked up once per batch as well.
    """

    def __init__(self) -> None:
        self.mails: list[deferred.Mail] = []
        self.missing: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, list[str]]] = {}

    def mark(self) -> int:
        return len(self.mails)

    def undo(self, mark: int) -> None:
        del self.mails[mark:]

    def flush(self, uow: UnitOfWork) -> None:
        mails, self.mails = self.mails, []
        deferred.queue(uow, mails)

    def missing_templates(self, template: str, overrides: tuple[tuple[str, str], ...]) -> dict[str, list[str]]:
        key = (template, overrides)
        if key not in self.missing:
            self.missing[key] = missing_templates([template], overrides)
        return self.missing[key]


def send_reminder(uow: UnitOfWork, timer: Any, case: CaseRow) -> None:
    """Timer handler: email a reminder or escalation to everyone the timer's roles mean right now.

    The emails are rendered on delivery, after the sweep; a template that does not exist fails the timer here, in the
    sweep, as before (one over the sandbox's limits fails its outbox rows, recorded there and logged). In a sweep
    batch they are queued with the batch's other reminders' at the end of the timer's savepoint; outside one, at once.
    """
    people: list[int] = []
    for role in filter(None, timer.roles.split(",")):
        people += [p for p in uow.registry.recipients(uow, case, role) if p not in people]
    if not people:
        return
    batch = timers.batch_part("reminder_mails", _BatchMails)
    template = timer.template or "reminder"
    overrides = uow.registry.services.get("template_overrides", ())
    missing = (batch.missing_templates(template, overrides) if batch is not None
               else missing_templates([template], overrides))
    if missing:
        raise LookupError(f"email template {template!r} does not exist (in {', '.join(missing[template])})")
    mails = _Mails(uow, case)
    extra = {"offset": timer.offset, "kind": timer.kind,
             "overdue": uow.now > deadline_instant(timer.deadline) if timer.deadline else False}
    for person_id in people:
        key = f"{timer.kind}:{case.id}:{timer.name}:{timer.deadline}:{timer.offset}:{person_id}"
        mails.add(template, key, person_id, extra, timer_id=timer.id, digestible=timer.kind == "reminder")
    if batch is None:
        mails.queue()
    else:
        batch.mails += mails.mails


def on_transition(uow: UnitOfWork, record: TransitionRecord) -> None:
    """Registry listener: queue the notices a transition declares (`notify:` in the definition)."""
    definition = uow.machine_of(record.case).definition
    specs = [t for t in definition.transitions_for(record.trigger) if t.event_name == record.event_name]
    for spec in specs[:1]:
        mails: _Mails | None = None
        for notice in spec.notify:
            for role in notice.to:
                for person_id in uow.registry.recipients(uow, record.case, role):
                    mails = mails or _Mails(uow, record.case)
                    mails.add(notice.template, f"notice:{record.case.id}:{record.seq}:{notice.template}:{person_id}",
                              person_id, {"event": record.event_name, "payload": record.payload})
        if mails is not None:
            mails.queue()


def today(uow: UnitOfWork) -> date:
    """Return the Helsinki date of the transaction."""
    return uow.now.astimezone(HELSINKI).date()


