"""Task-specific agreements: start one from a framework agreement in force, follow the framework's review and end.

A task-specific agreement is an ordinary agreement case (the same definition, so the same decisions, signatures,
exactly-once entry into force and sealed record) plus a `task_agreement_link` row naming its framework. What
may happen to either is in `workflows/agreement/v1.yaml`: the framework's `start_task_agreement` records each
one started from it; when the framework's review starts, each linked agreement in force is put under review too
(its coordinator confirms it unchanged, revises it or terminates it, each the agreement's own transition); when
the framework is terminated, each linked agreement gets `framework_terminated` and its coordinator ends it or
continues it on its own (`continue_alone`, with a reason).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from engine.actors import SYSTEM, Actor
from engine.errors import CaseNotFound, InvalidInput, NotFound, NotPermitted
from engine.models import Case, Organisation
from engine.records import CaseRow, TransitionRecord
from engine.service import UnitOfWork
from workflows.agreement import cases as agreement_cases
from workflows.agreement import service as agreements
from workflows.common.dates import today
from workflows.review.service import schedule_review
from workflows.review.terms import next_term
from workflows.task_agreement.models import TaskAgreementLink
from workflows.task_agreement.schemas import ContinueIn, PartyWarning, TaskAgreementCreate

AGREEMENT = agreement_cases.AGREEMENT


def framework_case(uow: UnitOfWork, framework_id: int) -> CaseRow:
    """Return the locked framework agreement, or raise NotFound."""
    try:
        case = uow.case(framework_id)
    except CaseNotFound:
        raise NotFound(
            f"no agreement with id {framework_id}", message_id="error.case_not_found", params={"id": framework_id}
        ) from None
    if case.workflow != AGREEMENT:
        raise NotFound(
            f"case {framework_id} is not an agreement", message_id="error.case_not_found", params={"id": framework_id}
        )
    return case


def framework_parties(uow: UnitOfWork, framework_id: int) -> set[str]:
    """Return the organisation keys of a framework's parties (read, not locked: only compared with)."""
    return set(
        uow.session.execute(
            select(col(Organisation.key))
            .join(Case, col(Case.organisation_id) == col(Organisation.id))
            .where(col(Case.parent_id) == framework_id)
        ).scalars()
    )


def create_task_agreement(
    uow: UnitOfWork, framework_id: int, data: TaskAgreementCreate, actor: Actor
) -> tuple[CaseRow, list[PartyWarning]]:
    """Start a task-specific agreement in draft from a framework agreement in force; return it and its warnings.

    Everything is checked before anything is written: a framework not in force (its definition does not allow
    `start_task_agreement` now) or itself task-specific is bad input naming `framework_id`; an empty party list is
    refused here, an unknown organisation or a past deadline by the agreement's own checks. A party that is not a
    party of the framework is accepted with a warning, recorded in both cases' events and in the link.
    """
    framework = framework_case(uow, framework_id)
    if framework.data.get("framework_id"):
        raise InvalidInput(
            "framework_id",
            f"agreement {framework_id} is itself a task-specific agreement",
            message_id="task_agreement.error.nested",
        )
    if not uow.may(framework, "start_task_agreement"):
        raise InvalidInput(
            "framework_id",
            f"the framework agreement is not in force (it is {framework.state})",
            message_id="task_agreement.error.framework_not_in_force",
            params={"workflow": AGREEMENT, "state": framework.state},
        )
    if "start_task_agreement" not in uow.permitted_triggers(framework.id, actor):
        raise NotPermitted(
            "only the framework agreement's coordinator or an administrator starts a task-specific agreement on it",
            case_id=framework.id,
            action="start_task_agreement",
            message_id="task_agreement.error.not_coordinator",
        )
    if not data.parties:
        raise InvalidInput("parties", "name at least one party", message_id="task_agreement.error.no_parties")
    members = framework_parties(uow, framework.id)
    warnings = [
        PartyWarning(
            field=f"parties[{i}].organisation",
            organisation=p.organisation,
            detail=f"{p.organisation} is not a party of the framework agreement",
        )
        for i, p in enumerate(data.parties)
        if p.organisation not in members
    ]
    outside = [w.organisation for w in warnings]
    link: dict[str, Any] = {"framework_id": framework.id, "theme": data.theme}
    if outside:
        link["outside_framework"] = outside
    case = agreements.create_agreement(uow, data, actor, framework=link)
    uow.set_data(case, reviewed_with_framework=framework.id)
    uow.session.add(
        TaskAgreementLink(
            framework_id=framework.id,
            agreement_id=case.id,
            theme=data.theme,
            outside_framework=outside,
            created_by=actor.person_id,
            created_at=uow.now,
        )
    )
    uow.session.flush()
    payload: dict[str, Any] = {"task_agreement": case.id, "theme": data.theme}
    if outside:
        payload["outside_framework"] = outside
    uow.fire(framework.id, "start_task_agreement", actor=actor, payload=payload, document_hash=framework.data["sha256"])
    return case, warnings


def linked(uow: UnitOfWork, framework_id: int) -> list[CaseRow]:
    """Return the task-specific agreements of a framework, locked, oldest first."""
    ids = (
        uow.session.execute(
            select(col(TaskAgreementLink.agreement_id))
            .where(col(TaskAgreementLink.framework_id) == framework_id)
            .order_by(col(TaskAgreementLink.agreement_id))
        )
        .scalars()
        .all()
    )
    return [uow.case(i) for i in ids]


def react_to_agreement(uow: UnitOfWork, record: TransitionRecord) -> None:
    """Registry listener on agreement cases: a framework's review and termination reach its task agreements."""
    if record.event_name == "ReviewStarted":
        review = record.payload.get("review_case")
        for task in linked(uow, record.case.id):
            if uow.may(task, "start_review"):  # in force: reviewed with the framework, in force meanwhile
                uow.fire(
                    task.id,
                    "start_review",
                    actor=SYSTEM,
                    payload={"review_case": review} if review is not None else {},
                    document_hash=task.data["sha256"],
                )
    elif record.event_name == "AgreementEnteredIntoForce" and _flagged(record.case):
        # flagged while it was still being approved, and its coordinator has not chosen: it waits in
        # framework_ended for the choice (end it, or continue on its own), as one in force when flagged does
        case = uow.case(record.case.id)
        if uow.may(case, "framework_terminated"):
            uow.fire(
                case.id,
                "framework_terminated",
                actor=SYSTEM,
                payload={"framework": int(case.data["framework_id"]), "end_date": case.data["framework_ended_on"]},
                document_hash=case.data["sha256"],
            )
    elif record.event_name == "AgreementTerminated":
        end = record.payload.get("end_date") or today(uow).isoformat()
        for task in linked(uow, record.case.id):
            if uow.may(task, "framework_terminated"):
                uow.fire(
                    task.id,
                    "framework_terminated",
                    actor=SYSTEM,
                    payload={"framework": record.case.id, "end_date": end},
                    document_hash=task.data["sha256"],
                )
                uow.set_data(task, framework_ended_on=end)


def _flagged(case: CaseRow) -> bool:
    """Tell whether a task agreement's framework was terminated and its coordinator has not chosen yet."""
    return bool(case.data.get("framework_ended_on")) and not case.data.get("continued_alone")


def continue_alone(uow: UnitOfWork, agreement_id: int, data: ContinueIn, actor: Actor) -> None:
    """Go on without the terminated framework, with the reason recorded; it is reviewed on its own from now on."""
    case = agreement_cases.agreement_case(uow, agreement_id)
    uow.fire(case.id, "continue_alone", actor=actor, payload={"reason": data.reason}, document_hash=case.data["sha256"])
    uow.set_data(case, continued_alone=True, continued_alone_reason=data.reason, reviewed_with_framework=None)
    if uow.may(case, "start_review"):  # back in force on its own: its own council-term review from the next term
        schedule_review(uow, case, next_term(today(uow)))


def confirm_unchanged(uow: UnitOfWork, agreement_id: int, actor: Actor) -> None:
    """Confirm an agreement under review unchanged (a task-specific one in its framework's review)."""
    case = agreement_cases.agreement_case(uow, agreement_id)
    uow.fire(case.id, "confirm_unchanged", actor=actor, document_hash=case.data["sha256"])


def ended_on(case_data: dict[str, Any]) -> date | None:
    """Return the end date of a task agreement's terminated framework, if it was terminated."""
    value = case_data.get("framework_ended_on")
    return date.fromisoformat(value) if value else None
