"""Task-specific agreement pages: start one from a framework agreement's page, and the framework's own section.

The framework's page lists its task-specific agreements (those the viewer may open) with their states; a
task-specific agreement's page names its framework, the parties outside it (the warning recorded at creation),
and, when the framework was terminated or is under its council-term review, what its coordinator may do now.
Every button comes from the engine's answer to "what may this person fire now" on that agreement.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from pydantic import ValidationError
from sqlalchemy import select
from sqlmodel import Session, col
from starlette.responses import RedirectResponse, Response

from api.access import readable_case
from api.deps import SessionDep, WorkDep
from api.web.forms import Form as WebForm
from api.web.forms import read_agreement_form
from api.web.render import render
from api.web.routes.agreements import show_agreement
from api.web.routing import User, WebUser, today_of, web_router
from api.web.views import agreement_view, require_permitted
from engine.errors import InvalidInput, NotPermitted
from engine.models import Case, Organisation
from engine.permissions import CaseReader
from workflows.task_agreement import service
from workflows.task_agreement.schemas import ContinueIn, TaskAgreementCreate

router = web_router()


def _may_start(request: Request, session: Session, user: WebUser, framework_id: int) -> None:
    readable_case(session, user.actor, framework_id)
    reader = CaseReader(request.app.state.ctx.registry, session, request.app.state.ctx.clock.now())
    if "start_task_agreement" not in reader.permitted(framework_id, user.actor):
        raise NotPermitted(
            "only the framework agreement's coordinator starts a task-specific agreement while it is in force",
            case_id=framework_id,
            action="start_task_agreement",
            message_id="task_agreement.error.not_coordinator",
        )


def _new_page(
    request: Request, session: Session, user: WebUser, framework_id: int, form: WebForm, status: int = 200
) -> Response:
    view = agreement_view(
        session, request.app.state.ctx.registry, user, framework_id, request.app.state.ctx.clock.now(), user.lang
    )
    return render(
        request,
        "task_agreement_new.html",
        user.lang,
        status=status,
        user=user,
        view=view,
        form=form,
        today=today_of(request),
    )


@router.get("/agreements/{framework_id}/task-agreements/new")
def new_task_agreement(request: Request, framework_id: int, user: User, session: SessionDep) -> Response:
    """Show the form for a task-specific agreement, with the framework's parties filled in."""
    _may_start(request, session, user, framework_id)
    keys = (
        session.execute(
            select(col(Organisation.key))
            .join(Case, col(Case.organisation_id) == col(Organisation.id))
            .where(col(Case.parent_id) == framework_id)
            .order_by(col(Case.id))
        )
        .scalars()
        .all()
    )
    return _new_page(
        request, session, user, framework_id, WebForm({"parties": "\n".join(keys), "required_signatures": "1"})
    )


@router.post("/agreements/{framework_id}/task-agreements/new")
def create_task_agreement(
    work: WorkDep,
    request: Request,
    framework_id: int,
    user: User,
    session: SessionDep,
    title: Annotated[str, Form()] = "",
    theme: Annotated[str, Form()] = "",
    deadline: Annotated[str, Form()] = "",
    document: Annotated[str, Form()] = "",
    parties: Annotated[str, Form()] = "",
    required_signatures: Annotated[str, Form()] = "1",
) -> Response:
    """Create the task-specific agreement in draft; parties outside the framework are accepted and shown."""
    _may_start(request, session, user, framework_id)
    form = WebForm(
        dict(
            title=title,
            theme=theme,
            deadline=deadline,
            document=document,
            parties=parties,
            required_signatures=required_signatures,
        )
    )
    chosen_theme = form.text("theme", max_length=200)
    body = read_agreement_form(session, form, today_of(request), user.id)
    if body is None or chosen_theme is None:
        return _new_page(request, session, user, framework_id, form, status=422)
    try:
        data = TaskAgreementCreate(**body.model_dump(), theme=chosen_theme)
    except ValidationError as exc:
        form.fail(str(exc.errors()[0]["loc"][0]), "form.error.invalid")
        return _new_page(request, session, user, framework_id, form, status=422)
    try:
        case, _warnings = work.run(lambda uow: service.create_task_agreement(uow, framework_id, data, user.actor))
    except InvalidInput as exc:
        if exc.field == "framework_id":
            raise
        form.fail(exc.field.split("[")[0].split(".")[0], "form.error.invalid")
        return _new_page(request, session, user, framework_id, form, status=422)
    return RedirectResponse(f"/agreements/{case.id}?notice=task_created", status_code=303)



def _show(request: Request, session: Session, user: WebUser, agreement_id: int, form: WebForm) -> Response:
    return show_agreement(request, session, user, agreement_id, status=422, form=form, form_party="continue")


@router.post("/agreements/{agreement_id}/continue-alone")
def continue_alone(
    work: WorkDep,
    request: Request,
    agreement_id: int,
    user: User,
    session: SessionDep,
    reason: Annotated[str, Form()] = "",
) -> Response:
    """Go on without the terminated framework agreement, with the reason recorded."""
    readable_case(session, user.actor, agreement_id)
    require_permitted(request, session, user, agreement_id, "continue_alone")
    form = WebForm({"reason": reason})
    text = form.text("reason", max_length=2000)
    if text is None or form.errors:
        return _show(request, session, user, agreement_id, form)
    work.run(lambda uow: service.continue_alone(uow, agreement_id, ContinueIn(reason=text), user.actor))
    return RedirectResponse(f"/agreements/{agreement_id}?notice=task_continued", status_code=303)


@router.post("/agreements/{agreement_id}/confirm-unchanged")
def confirm_unchanged(work: WorkDep, request: Request, agreement_id: int, user: User, session: SessionDep) -> Response:
    """Confirm a task-specific agreement unchanged in its framework's council-term review."""
    readable_case(session, user.actor, agreement_id)
    require_permitted(request, session, user, agreement_id, "confirm_unchanged")
    work.run(lambda uow: service.confirm_unchanged(uow, agreement_id, user.actor))
    return RedirectResponse(f"/agreements/{agreement_id}?notice=task_confirmed", status_code=303)
