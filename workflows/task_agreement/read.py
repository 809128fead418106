"""What the API and the pages show of the link: a framework's task-specific agreements, and an agreement's framework.

Deny by default: a framework lists only the task-specific agreements the reader may open, and an agreement names
its framework's title and state only to a reader who may open the framework too (the id and theme are the
agreement's own facts).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from engine.actors import Actor
from engine.calendar import effective_deadline
from engine.models import Case
from engine.permissions import CaseReader, ReadAccess, case_access, visible_cases
from workflows.task_agreement.models import TaskAgreementLink
from workflows.task_agreement.schemas import FrameworkRef, TaskAgreementSummary
from workflows.task_agreement.service import ended_on


def framework_of(session: Session, actor: Actor | None, agreement_id: int) -> FrameworkRef | None:
    """Return the framework a task-specific agreement implements (None for an agreement that is not one)."""
    row = session.execute(
        select(TaskAgreementLink, Case)
        .join(Case, col(Case.id) == col(TaskAgreementLink.agreement_id))
        .where(col(TaskAgreementLink.agreement_id) == agreement_id)
    ).first()
    if row is None:
        return None
    link, case = row
    framework = session.get(Case, link.framework_id)
    shown = framework is not None and case_access(session, actor, framework) >= ReadAccess.SHARED
    return FrameworkRef(
        id=link.framework_id,
        title=framework.title if shown and framework else None,
        state=framework.state if shown and framework else None,
        theme=link.theme,
        outside_framework=list(link.outside_framework),
        ended_on=ended_on(case.data),
        continued_alone=bool(case.data.get("continued_alone")),
        continued_alone_reason=case.data.get("continued_alone_reason"),
    )


def task_agreements_of(
    session: Session, registry: Any, actor: Actor | None, framework_id: int, now: datetime | None = None
) -> list[TaskAgreementSummary]:
    """List the task-specific agreements of a framework that the reader may open, oldest first."""
    if actor is None:
        return []
    rows = session.execute(
        select(TaskAgreementLink, Case)
        .join(Case, col(Case.id) == col(TaskAgreementLink.agreement_id))
        .where(col(TaskAgreementLink.framework_id) == framework_id, visible_cases(actor))
        .order_by(col(Case.id))
    ).all()
    reader = CaseReader(registry, session, now or datetime.now().astimezone())
    return [
        TaskAgreementSummary(
            id=case.id or 0,
            title=case.title,
            theme=link.theme,
            state=case.state,
            deadline=case.deadline,
            effective_deadline=effective_deadline(case.deadline) if case.deadline else None,
            coordinator_id=case.coordinator_id,
            outside_framework=list(link.outside_framework),
            continued_alone=bool(case.data.get("continued_alone")),
            allowed_triggers=reader.permitted(case.id or 0, actor),
        )
        for link, case in rows
    ]


def frameworks_of(session: Session, agreement_ids: list[int]) -> dict[int, int]:
    """Return {task-specific agreement id: framework id} for those of the given agreements that are task-specific."""
    if not agreement_ids:
        return {}
    return dict(
        session.execute(
            select(col(TaskAgreementLink.agreement_id), col(TaskAgreementLink.framework_id)).where(
                col(TaskAgreementLink.agreement_id).in_(agreement_ids)
            )
        ).all()
    )
