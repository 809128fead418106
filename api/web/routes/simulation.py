"""Simulating a configuration before activating it: the timeline it would produce, moved dates marked.

A start date, a deadline, reminder offsets, user triggers and optionally unsaved YAML give the transitions,
deadlines and emails, and which dates moved because of weekends and holidays. Nothing is written.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Form, Request
from starlette.responses import Response

from api.web.admin_read import Problem, problems_of
from api.web.forms import Form as WebForm
from api.web.render import render
from api.web.routes.admin import MAX_SOURCE, require_admin
from api.web.routing import User, WebUser, today_of, web_router
from engine.calendar import parse_offset
from engine.definition import WorkflowDefinition, parse_definition
from engine.errors import DefinitionError
from engine.registry import Registry
from engine.simulate import SimEntry, simulate

router = web_router()
SEPARATORS = re.compile(r"[\s,;]+")
FIELDS = ("start", "deadline", "offsets", "path", "version", "source")


def _words(text: str) -> list[str]:
    return [w for w in SEPARATORS.split(text.strip()) if w]


def _offsets(form: WebForm) -> list[str] | None:
    words = _words(form.get("offsets"))
    for n, word in enumerate(words, start=1):
        try:
            parse_offset(word)
        except ValueError:
            form.fail("offsets", f"sim.error.offset|{n}|{word}")
    return words or None


def _definition(registry: Registry, name: str, form: WebForm) -> tuple[WorkflowDefinition | None, list[Problem]]:
    source = form.values.get("source", "")
    if source.strip():
        if len(source) > MAX_SOURCE:
            form.fail("source", "form.error.length")
            return None, []
        try:
            return parse_definition(source, f"{name} (simulation)"), []
        except DefinitionError as exc:
            problems = problems_of(exc, source)
            form.fail("source", f"admin.error.problems|{len(problems)}")
            return None, problems
    known = sorted(v for n, v in registry.machines if n == name)
    version = form.get("version")
    if version and (not version.isdigit() or int(version) not in known):
        form.fail("version", "admin.migrate.error.version")
        return None, []
    return registry.machine(name, int(version) if version else None).definition, []


def _page(request: Request, user: WebUser, name: str, form: WebForm, *, entries: list[SimEntry] | None = None,
          problems: list[Problem] | None = None, used: WorkflowDefinition | None = None,
          status: int = 200) -> Response:
    registry: Registry = request.app.state.ctx.registry
    definition = registry.machine(name).definition
    problems = problems or []
    lines = form.values.get("source", "").splitlines() if problems else []
    return render(request, "admin_simulate.html", user.lang, status=status, user=user, name=name,
                  definition=definition, versions=sorted((v for n, v in registry.machines if n == name), reverse=True),
                  form=form, entries=entries, used=used, moved=[e for e in entries or [] if e.moved],
                  problems=problems, lines=lines, at_line={p.line: p for p in problems if p.line})


@router.get("/admin/workflows/{name}/simulate")
def simulate_page(request: Request, name: str, user: User) -> Response:
    """Show the simulation form, starting today."""
    require_admin(user)
    request.app.state.ctx.registry.latest_version(name)
    today = today_of(request)
    return _page(request, user, name, WebForm({"start": f"{today.day}.{today.month}.{today.year}"}))


@router.post("/admin/workflows/{name}/simulate")
def run_simulation(request: Request, name: str, user: User, start: Annotated[str, Form()] = "",
                   deadline: Annotated[str, Form()] = "", offsets: Annotated[str, Form()] = "",
                   path: Annotated[str, Form()] = "", version: Annotated[str, Form()] = "",
                   source: Annotated[str, Form()] = "") -> Response:
    """Run the simulation (nothing is written) and show its timeline."""
    require_admin(user)
    registry: Registry = request.app.state.ctx.registry
    registry.latest_version(name)
    form = WebForm(dict(start=start, deadline=deadline, offsets=offsets, path=path, version=version,
                        source=source.replace("\r\n", "\n")))
    first, due = form.date("start"), form.date("deadline", required=False)
    reminder_offsets = _offsets(form)
    definition, problems = _definition(registry, name, form)
    if form.errors or first is None or definition is None:
        return _page(request, user, name, form, problems=problems, status=422)
    try:
        entries = simulate(definition, start=first, deadline=due, reminder_offsets=reminder_offsets,
                           path=_words(path), lang=user.lang)
    except ValueError as exc:  # a trigger of the path that cannot fire where the walk is
        form.fail("path", f"sim.error.path|0|{str(exc).removeprefix('path: ')}")
        return _page(request, user, name, form, status=422)
    return _page(request, user, name, form, entries=entries, used=definition)
