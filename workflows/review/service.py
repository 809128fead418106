"""Council-term reviews: scheduled when an agreement enters into force, opened per term, confirmed or revised."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from engine.actors import SYSTEM, Actor
from engine.calendar import effective_deadline
from engine.errors import Conflict, InvalidInput, NotFound
from engine.models import Case
from engine.permissions import permitted_for
from engine.records import CaseRow, TransitionRecord
from engine.service import UnitOfWork
from workflows.agreement import cases as agreement_cases
from workflows.agreement import service as agreements
from workflows.agreement.schemas import DocumentIn
from workflows.common.dates import set_deadline, today
from workflows.review.schemas import ConfirmIn, ReviewRead, ReviewStart, ReviseIn
from workflows.review.terms import next_term, term_label, term_of

REVIEW = "review"


def _refusal(uow: UnitOfWork, case: CaseRow, trigger: str, detail: str, message_id: str) -> Conflict:
    """Return the refusal of a step the case's definition does not allow in its state."""
    return Conflict(detail, allowed=uow.machine_of(case).allowed_triggers(case.state), message_id=message_id,
                    params={"workflow": case.workflow, "state": case.state, "trigger": trigger})


def reviews_of(uow: UnitOfWork, agreement_id: int) -> list[CaseRow]:
    """Return the review cases of an agreement, locked, oldest first."""
    ids = [i for i, data in uow.session.execute(select(col(Case.id), col(Case.data))
                                                .where(col(Case.workflow) == REVIEW))
           if int(data.get("agreement_id", 0)) == agreement_id]
    return [uow.case(i) for i in sorted(ids)]


def schedule_review(uow: UnitOfWork, agreement: CaseRow, term: tuple[date, date], actor: Actor = SYSTEM,
                    deadline: date | None = None) -> CaseRow:
    """Create the review of an agreement for a term (once per term); it opens when the term starts."""
    for r in reviews_of(uow, agreement.id):
        if r.data.get("term_start") == term[0].isoformat():
            return r
    case = uow.create_case(
        REVIEW, actor=actor, title=f"Valtuustokauden {term_label(term)} tarkistus: {agreement.title}",
        coordinator_id=agreement.coordinator_id, deadline=term[0],
        data={"agreement_id": agreement.id, "term_start": term[0].isoformat(), "term_end": term[1].isoformat(),
              "review_deadline": (deadline or term[1]).isoformat()},
        payload={"agreement_id": agreement.id, "term": term_label(term)})
    if term[0] <= today(uow):
        uow.fire(case.id, "open", actor=actor)
    return case


def react_to_agreement(uow: UnitOfWork, record: TransitionRecord) -> None:
    """Registry listener on agreement cases: schedule the next term's review; cancel the reviews on termination."""
    case = record.case
    if record.event_name == "AgreementEnteredIntoForce":
        if case.data.get("reviewed_with_framework"):  # a task-specific agreement is reviewed in its framework's
            return  # review (workflows/task_agreement), not in one of its own
        schedule_review(uow, case, next_term(today(uow)))
    elif record.event_name == "AgreementTerminated":
        for r in reviews_of(uow, case.id):
            if uow.may(r, "cancel"):
                uow.fire(r.id, "cancel", actor=SYSTEM, payload={"reason": "the agreement was terminated"})


def react_to_review(uow: UnitOfWork, record: TransitionRecord) -> None:
    """Registry listener on review cases: an opened review counts to its deadline and opens the agreement's review."""
    case = record.case
    if record.changed_state and record.event_name == "ReviewOpened":  # an event, as the agreement's reactions
        # before the timer listener arms the open state's reminders: count them to the review's deadline
        set_deadline(uow, case, date.fromisoformat(case.data["review_deadline"]))
        agreement = uow.case(int(case.data["agreement_id"]))
        if uow.may(agreement, "start_review"):
            uow.fire(agreement.id, "start_review", actor=SYSTEM, payload={"review_case": case.id})


def review_case(uow: UnitOfWork, review_id: int) -> CaseRow:
    """Return a locked review case or raise NotFound."""
    case = uow.case(review_id)
    if case.workflow != REVIEW:
        raise NotFound(f"case {review_id} is not a council-term review")
    return case


def start_now(uow: UnitOfWork, agreement_id: int, data: ReviewStart, actor: Actor) -> CaseRow:
    """Open the current term's review of an agreement in force by hand (e.g. one in force before this system).

    Firing `open` as the actor checks they coordinate the agreement or are an administrator.
    """
    agreement = agreement_cases.agreement_case(uow, agreement_id)
    if not uow.may(agreement, "start_review"):
        raise _refusal(uow, agreement, "start_review", f"only an agreement in force is reviewed; this one is "
                       f"{agreement.state}", "review.error.agreement_not_in_force")
    term = term_of(today(uow))
    if data.deadline is not None and not today(uow) <= data.deadline <= term[1]:
        raise InvalidInput("deadline", f"must lie between today and the term's end {term[1].isoformat()}")
    for r in reviews_of(uow, agreement_id):
        if r.data.get("term_start") == term[0].isoformat():
            raise Conflict(f"the {term_label(term)} review already exists (case {r.id}, {r.state})")
    return schedule_review(uow, agreement, term, actor, data.deadline)


def confirm_unchanged(uow: UnitOfWork, review_id: int, data: ConfirmIn, actor: Actor) -> None:
    """End the review with the agreement confirmed unchanged; the next term's review is scheduled."""
    case = review_case(uow, review_id)
    payload: dict[str, Any] = {}
    if data.note:
        payload["note"] = data.note
    if data.minutes_url:
        payload["minutes_url"] = str(data.minutes_url)
    uow.fire(case.id, "confirm_unchanged", actor=actor, payload=payload)
    agreement = uow.case(int(case.data["agreement_id"]))
    if uow.may(agreement, "confirm_unchanged"):
        uow.fire(agreement.id, "confirm_unchanged", actor=SYSTEM, payload={"review_case": case.id})
    schedule_review(uow, agreement, next_term(date.fromisoformat(case.data["term_start"])))


def revise(uow: UnitOfWork, review_id: int, data: ReviseIn, actor: Actor) -> int:
    """End the review with a revised text: the agreement goes round for approval again; return its version."""
    case = review_case(uow, review_id)
    if not uow.may(case, "revise"):
        raise _refusal(uow, case, "revise", f"the review is {case.state}; a revision is made while it is open",
                       "review.error.revise_while_open")
    agreement_id = int(case.data["agreement_id"])
    doc = agreements.revise(uow, agreement_id, DocumentIn(text=data.text, note=data.note), actor)
    payload: dict[str, Any] = {"document_version": doc.number}
    if data.note:
        payload["note"] = data.note
    uow.fire(case.id, "revise", actor=actor, payload=payload)
    return doc.number


def review_read(session: Session, registry: Any, case: Case, actor: Actor | None = None) -> ReviewRead:
    """Shape a review case."""
    return ReviewRead(id=case.id or 0, agreement_id=int(case.data["agreement_id"]), state=case.state,
                      term_start=date.fromisoformat(case.data["term_start"]),
                      term_end=date.fromisoformat(case.data["term_end"]), deadline=case.deadline,
                      effective_deadline=effective_deadline(case.deadline) if case.deadline else None,
                      allowed_triggers=permitted_for(registry, session, case, actor))


def list_reviews(session: Session, registry: Any, agreement_id: int,
                 actor: Actor | None = None) -> list[ReviewRead]:
    """List an agreement's reviews."""
    rows = session.execute(select(Case).where(col(Case.workflow) == REVIEW).order_by(col(Case.id))).scalars()
    return [review_read(session, registry, c, actor) for c in rows
            if int(c.data.get("agreement_id", 0)) == agreement_id]
