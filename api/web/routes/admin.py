"""Administrators' definition pages: the editor with problems at their lines, versions, timers, migrations.

A definition is shown with its versions (and their running cases), its deadlines and reminders per state and its
Mermaid diagram source; the edited YAML is checked or saved as the next version; running cases are moved between
versions with a state mapping, and a mapping that would strand a case is refused.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from api.deps import SessionDep, WorkDep
from api.refusals import refusal_text
from api.web.admin_read import (
    Problem,
    definition_source,
    next_source,
    problems_of,
    running_states,
    timer_rows,
    versions,
)
from api.web.forms import Form as WebForm
from api.web.render import render
from api.web.routing import User, WebUser, web_router
from engine.definition import WorkflowDefinition, to_mermaid
from engine.errors import Conflict, DefinitionError, InvalidInput, NotPermitted
from engine.registry import Registry
from engine.versions import check_version, migrate_cases, store_version

router = web_router()
NOTICES = {"saved", "migrated", "valid"}
MAX_SOURCE = 200_000


def require_admin(user: WebUser) -> None:
    """Refuse anyone but an administrator (403)."""
    if not user.actor.is_admin:
        raise NotPermitted("this page is for administrators")


def _registry(request: Request) -> Registry:
    registry: Registry = request.app.state.ctx.registry
    return registry


@router.get("/admin")
def admin_index(request: Request, user: User, session: SessionDep) -> Response:
    """List the workflows with their newest version and running cases; link to templates and the outbox."""
    require_admin(user)
    registry = _registry(request)
    rows = [(d, versions(session, registry, d.name)) for d in registry.definitions()]
    return render(request, "admin_index.html", user.lang, user=user, rows=rows)


def _workflow_page(request: Request, session: Session, user: WebUser, name: str, *, shown: int | None = None,
                   form: WebForm | None = None, problems: list[Problem] | None = None,
                   checked: WorkflowDefinition | None = None, notice: str | None = None, count: int | None = None,
                   status: int = 200) -> Response:
    registry = _registry(request)
    latest = registry.latest_version(name)
    version = shown if shown in {v for n, v in registry.machines if n == name} else latest
    definition = registry.machine(name, version).definition
    source = definition_source(session, registry, name, version)
    form = form or WebForm({"source": next_source(source, latest)})
    problems = problems or []
    if problems:
        form.fail("source", f"admin.error.problems|{len(problems)}")
    lines = form.values.get("source", "").splitlines() if problems else []
    at_line = {p.line: p for p in problems if p.line}
    return render(request, "admin_workflow.html", user.lang, status=status, user=user, name=name,
                  definition=definition, version=version, latest=latest, source=source, form=form,
                  versions=versions(session, registry, name), timers=timer_rows(definition),
                  diagram=to_mermaid(definition), problems=problems, lines=lines, at_line=at_line,
                  checked=checked, checked_diagram=to_mermaid(checked) if checked else None,
                  notice=notice if notice in NOTICES else None, count=count)


@router.get("/admin/workflows/{name}")
def workflow_page(request: Request, name: str, user: User, session: SessionDep, version: int | None = None,
                  notice: str | None = None, count: int | None = None) -> Response:
    """Show a definition: its versions, deadlines and reminders per state, diagram, and the editor."""
    require_admin(user)
    return _workflow_page(request, session, user, name, shown=version, notice=notice, count=count)


@router.post("/admin/workflows/{name}")
def save_workflow(work: WorkDep, request: Request, name: str, user: User, session: SessionDep,
                  source: Annotated[str, Form()] = "", action: Annotated[str, Form()] = "check") -> Response:
    """Check the edited YAML (problems at their lines), or save it as the next version that new cases take."""
    require_admin(user)
    registry = _registry(request)
    registry.latest_version(name)  # 404 for an unknown workflow
    form = WebForm({"source": source})
    if form.text("source", max_length=MAX_SOURCE) is None:
        return _workflow_page(request, session, user, name, form=form, status=422)
    try:
        if action != "save":
            checked = check_version(registry, source, name)
            return _workflow_page(request, session, user, name, form=form, checked=checked, notice="valid")
        saved = work.run(lambda uow: store_version(uow, registry, source, name, actor=user.actor))
    except (DefinitionError, InvalidInput) as exc:
        return _workflow_page(request, session, user, name, form=form, problems=problems_of(exc, source),
                              status=422)
    except Conflict as exc:  # someone saved this version meanwhile: say so, keep what was typed
        form.fail("source", f"admin.error.version_taken|0|{exc.params.get('version', '')}")
        return _workflow_page(request, session, user, name, form=form, status=409)
    return RedirectResponse(f"/admin/workflows/{name}?notice=saved&count={saved.version}", status_code=303)


def _version(form: WebForm, field: str, known: set[int]) -> int | None:
    text = form.get(field)
    if not text:
        return None
    if not text.isdigit() or int(text) not in known:
        form.fail(field, "admin.migrate.error.version")
        return None
    return int(text)


def _migrate_page(request: Request, session: Session, user: WebUser, name: str, form: WebForm,
                  status: int = 200, refusal: str | None = None) -> Response:
    registry = _registry(request)
    known = {v for n, v in registry.machines if n == name}
    if not known:
        registry.latest_version(name)  # raises NotFound naming the known workflows
    source, target = _version(form, "from_version", known), _version(form, "to_version", known)
    if source is not None and source == target:
        form.fail("to_version", "admin.migrate.error.same")
    ready = source is not None and target is not None and not form.errors.get("to_version")
    running = running_states(session, registry, name, source) if ready and source else {}
    target_states = list(registry.machine(name, target).definition.states) if ready and target else []
    return render(request, "admin_migrate.html", user.lang, status=status, user=user, name=name, form=form,
                  versions=versions(session, registry, name), ready=ready, running=running,
                  target_states=target_states, refusal=refusal)


@router.get("/admin/workflows/{name}/migrate")
def migrate_page(request: Request, name: str, user: User, session: SessionDep, from_version: str = "",
                 to_version: str = "") -> Response:
    """Choose two versions, then map each state the running cases are in to a state of the target version."""
    require_admin(user)
    form = WebForm({"from_version": from_version, "to_version": to_version})
    return _migrate_page(request, session, user, name, form)


@router.post("/admin/workflows/{name}/migrate")
def migrate(work: WorkDep, request: Request, name: str, user: User, session: SessionDep,
            from_version: Annotated[str, Form()] = "", to_version: Annotated[str, Form()] = "",
            old: Annotated[list[str] | None, Form()] = None, new: Annotated[list[str] | None, Form()] = None
            ) -> Response:
    """Move the running cases of one version to another; a mapping that would strand a case is refused."""
    require_admin(user)
    registry = _registry(request)
    mapping = {o: n for o, n in zip(old or [], new or [], strict=False) if n}
    form = WebForm({"from_version": from_version, "to_version": to_version,
                    **{f"map-{o}": n for o, n in zip(old or [], new or [], strict=False)}})
    known = {v for n, v in registry.machines if n == name}
    source, target = _version(form, "from_version", known), _version(form, "to_version", known)
    if source is None or target is None or source == target:
        for field, value in (("from_version", source), ("to_version", target)):
            if value is None:
                form.fail(field, "form.error.required")
        return _migrate_page(request, session, user, name, form, status=422)
    states = set(registry.machine(name, target).definition.states)
    for state in running_states(session, registry, name, source):
        if mapping.get(state, state) not in states:
            form.fail(f"map-{state}", f"admin.migrate.error.stranded|{target}|{state}")
    if form.errors:
        return _migrate_page(request, session, user, name, form, status=422)
    try:
        report = work.run(
            lambda uow: migrate_cases(uow, name, source, target, mapping, user.actor))
    except InvalidInput as exc:  # the cases moved on since the page was shown
        refused = refusal_text(exc, user.lang, request.app.state.ctx.registry)
        return _migrate_page(request, session, user, name, form, status=422, refusal=refused)
    return RedirectResponse(f"/admin/workflows/{name}?notice=migrated&count={len(report.cases)}", status_code=303)
