"""The start page after signing in: my tasks across every agreement, and the agreements I coordinate."""

from __future__ import annotations

from functools import lru_cache

from fastapi import Request
from markupsafe import Markup
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from api.deps import SessionDep
from api.web.case_pages import page_of
from api.web.cycle_views import cycle_tasks
from api.web.delegation import acting_actor, principals_of
from api.web.queries import Task, coordinated, my_tasks
from api.web.render import render, render_fragment
from api.web.routing import User, WebUser, error_page, read_page, web_router
from api.web.views import readable_by_any
from engine.calendar import HELSINKI
from engine.errors import CaseNotFound
from engine.models import Case
from workflows.agreement.cases import AGREEMENT, PARTY

router = web_router()


@router.get("/tasks")
async def tasks_page(request: Request) -> Response:
    """List what is asked of the person (and of those they substitute for), soonest deadline first."""
    return await read_page(request, lambda session, user: _tasks(request, session, user))


def _tasks(request: Request, session: Session, user: WebUser) -> Response:
    today = request.app.state.ctx.clock.now().astimezone(HELSINKI).date()
    principals = principals_of(session, user.id, today)
    registry = request.app.state.ctx.registry
    tasks = my_tasks(session, registry, user.person, principals, today, user.lang)
    agreements = coordinated(session, registry, user.person, today) if user.coordinates else []
    cycle_work = cycle_tasks(session, registry, user, request.app.state.ctx.clock.now(), today)
    rows = _task_rows(user.lang, tuple(tasks))
    return render(request, "tasks.html", user.lang, user=user, tasks=tasks, task_rows=rows, agreements=agreements,
                  principals=principals, today=today, cycle_work=cycle_work)


@lru_cache(maxsize=512)
def _task_rows(lang: str, tasks: tuple[Task, ...]) -> Markup:
    """Draw the open tasks' rows (a quarter of the page's time for 50 cases): a function of the tasks' own values
    and the language only (`render_fragment`: no request, no user), so the rows drawn for the same tasks are kept.
    The key is the whole content: two people see the same rows only when every value in them is the same."""
    return render_fragment("_task_rows.html", lang, tasks=tasks)


@router.get("/cases/{case_id}")
def case_page(request: Request, case_id: int, user: User, session: SessionDep) -> Response:
    """Open a case from a link: redirect to the page its workflow opens on (`api.web.case_pages`).

    Agreements and party approvals are checked here (the agreement page is shared by every party); every other
    page checks who may read it itself, and answers a person who may not with a page in their language.
    """
    case = session.get(Case, case_id)
    target = page_of(case) if case is not None else None
    if case is None or target is None:
        return _cannot_open(request)
    if case.workflow in (AGREEMENT, PARTY):
        agreement_id = case.parent_id if case.workflow == PARTY and case.parent_id else case_id
        today = request.app.state.ctx.clock.now().astimezone(HELSINKI).date()
        actors = [user.actor] + [acting_actor(session, user.actor, p.id, today)
                                 for p in principals_of(session, user.id, today)]
        try:
            readable_by_any(session, actors, agreement_id)
        except CaseNotFound:
            return _cannot_open(request)
    return RedirectResponse(target, status_code=303)


def _cannot_open(request: Request) -> Response:
    """Tell, in the person's language, that this case does not open for them (unknown and hidden alike: 404)."""
    return error_page(request, 404, message="links.forbidden", detail="links.forbidden.detail")
