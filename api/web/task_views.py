"""The task-specific part of the agreement page and the dashboards: a framework agreement and its task agreements.

Views over plain data for the page routes (`api.web.routes.agreements`, `api.web.routes.task_agreements`,
`api.web.routes.dashboards`); no route lives here, so the routes that build on these import them one way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from fastapi import Request
from sqlalchemy import BindParameter, bindparam, or_, select
from sqlmodel import Session, col

from api.web.routing import WebUser
from engine.models import Case, Organisation
from engine.permissions import visible_cases
from workflows.task_agreement.models import TaskAgreementLink
from workflows.task_agreement.read import framework_of, frameworks_of, task_agreements_of
from workflows.task_agreement.schemas import FrameworkRef, TaskAgreementSummary


class _Listed(Protocol):
    """A dashboard row: an agreement by its case id."""

    @property
    def id(self) -> int: ...


T = TypeVar("T", bound=_Listed)


@dataclass
class TaskSection:
    """What the agreement page shows of the link: its framework (if task-specific) or its task agreements."""

    framework: FrameworkRef | None
    tasks: list[TaskAgreementSummary]
    may_start: bool
    outside_names: list[str]


_AID: BindParameter[int] = bindparam("aid")
_LINKED = select(col(TaskAgreementLink.id)).where(
    or_(col(TaskAgreementLink.agreement_id) == _AID, col(TaskAgreementLink.framework_id) == _AID)).limit(1)


def task_section(
    request: Request, session: Session, user: WebUser, agreement_id: int, permitted: list[str]
) -> TaskSection:
    """Assemble the task-specific part of an agreement page for a viewer."""
    ctx = request.app.state.ctx
    if session.execute(_LINKED, {"aid": agreement_id}).first() is None:  # most agreements: neither side of a link
        return TaskSection(None, [], "start_task_agreement" in permitted, [])
    framework = framework_of(session, user.actor, agreement_id)
    tasks = [] if framework else task_agreements_of(session, ctx.registry, user.actor, agreement_id, ctx.clock.now())
    names: list[str] = []
    if framework and framework.outside_framework:
        rows = dict(
            session.execute(
                select(col(Organisation.key), col(Organisation.name_fi)).where(
                    col(Organisation.key).in_(framework.outside_framework)
                )
            ).all()
        )
        names = [rows.get(k, k) for k in framework.outside_framework]
    return TaskSection(framework, tasks, framework is None and "start_task_agreement" in permitted, names)


def under_frameworks(session: Session, actor: Any, items: list[T]) -> tuple[list[T], dict[int, str]]:
    """Order a dashboard list so each task-specific agreement follows its framework (or its siblings), and name
    the framework of each (only a framework the viewer may open is named: {task id: framework title})."""
    ids = [i.id for i in items]
    links = frameworks_of(session, ids)
    titles = dict(
        session.execute(
            select(col(Case.id), col(Case.title)).where(col(Case.id).in_(set(links.values())), visible_cases(actor))
        ).all()
    )
    first = {i: n for n, i in enumerate(ids)}
    # a task agreement sits after its framework if listed, else after the first of its siblings
    anchor: dict[int, int] = {}
    for n, i in enumerate(ids):
        framework = links.get(i)
        if framework is not None:
            anchor.setdefault(framework, first.get(framework, n))
    order = sorted(
        range(len(ids)),
        key=lambda n: (anchor[links[ids[n]]], 1, n) if ids[n] in links else (anchor.get(ids[n], n), 0, n),
    )
    return [items[n] for n in order], {i: titles[f] for i, f in links.items() if f in titles}
