"""Administrators configure cycles: new definition versions, validation with lines, simulation, migrations of
running cases, and email templates with previews in each language."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import AdminDep, CtxDep, SessionDep, WorkDep
from api.schemas import ERROR_RESPONSES
from api.unit import UnitOfWorkRoute
from engine.definition import parse_definition, problems_at, to_mermaid
from engine.errors import DefinitionError, InvalidInput
from engine.simulate import simulate
from engine.text import SingleLine
from engine.versions import TEMPLATE_CHECK, migrate_cases, runtime_problems, store_version
from notifications import template_store
from notifications.render import LANGUAGES, template_names

router = APIRouter(tags=["administration"], responses=ERROR_RESPONSES, route_class=UnitOfWorkRoute)


class DefinitionSource(BaseModel):
    """A definition's YAML text."""

    model_config = ConfigDict(extra="forbid")
    source: str = Field(min_length=1, max_length=200_000)


class Problem(BaseModel):
    """One problem in a definition, with its line."""

    line: int | None
    path: str
    message: str


class ValidationResult(BaseModel):
    """Whether a definition is valid, its problems by line, and its diagram when valid."""

    valid: bool
    problems: list[Problem]
    diagram: str | None = None


class VersionCreated(BaseModel):
    """A new version, now used by new cases."""

    name: str
    version: int
    diagram: str


class SimulationIn(BaseModel):
    """What to simulate: a start date, the case's deadline, optional offsets, user triggers, or unsaved YAML."""

    model_config = ConfigDict(extra="forbid")
    start: date
    deadline: date | None = None
    reminder_offsets: list[str] | None = Field(default=None, max_length=20)
    path: list[str] = Field(default_factory=list, max_length=50)
    version: int | None = Field(default=None, ge=1)
    source: str | None = Field(default=None, max_length=200_000)
    lang: str = Field(default="en", pattern="^(fi|sv|en)$")


class SimulatedEntry(BaseModel):
    """One thing the configuration would do."""

    at: datetime
    local_date: date
    state: str
    kind: str
    name: str
    offset: str | None
    trigger: str | None
    template: str | None
    to: list[str]
    nominal: date | None
    moved: bool
    reason: str | None


class MigrationIn(BaseModel):
    """Move running cases from one version to another; `mapping` renames states (unmapped names stay)."""

    model_config = ConfigDict(extra="forbid")
    from_version: int = Field(ge=1)
    to_version: int = Field(ge=1)
    mapping: dict[str, str] = Field(default_factory=dict)


class MigrationOut(BaseModel):
    """What moved."""

    moved: dict[str, int]
    cases: list[int]


class TemplateParts(BaseModel):
    """Edited parts of one language of a template (omitted parts stay)."""

    model_config = ConfigDict(extra="forbid")
    subject: SingleLine | None = Field(default=None, max_length=2000)  # an email's Subject header: one line
    txt: str | None = Field(default=None, max_length=100_000)
    html: str | None = Field(default=None, max_length=200_000)

    def given(self) -> dict[str, str]:
        """Return the parts that were sent."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class PreviewIn(TemplateParts):
    """Parts to preview (unsaved) in a language."""

    lang: str = Field(default="fi", pattern="^(fi|sv|en)$")


def _problems(exc: DefinitionError) -> list[Problem]:
    lines: list[dict[str, Any]] = exc.extra.get("lines") or [  # type: ignore[assignment]
        {"line": None, "path": "(root)", "message": exc.detail}]
    return [Problem(**line) for line in lines]


@router.post("/workflows/{name}/validate", response_model=ValidationResult)
def validate_definition(name: str, body: DefinitionSource, ctx: CtxDep, _admin: AdminDep) -> ValidationResult:
    """Check a definition as the editor types: problems with their lines, or its diagram."""
    ctx.registry.latest_version(name)
    try:
        definition = parse_definition(body.source, name)
        # what saving checks too: the workflow's guards, and every email template in fi, sv and en
        found = runtime_problems(definition, guards=ctx.registry.guards.get(name, {}),
                                 templates=ctx.registry.services.get(TEMPLATE_CHECK))
        if found:
            raise problems_at(body.source, name, found)
    except DefinitionError as exc:
        return ValidationResult(valid=False, problems=_problems(exc))
    return ValidationResult(valid=True, problems=[], diagram=to_mermaid(definition))


@router.post("/workflows/{name}/versions", response_model=VersionCreated, status_code=status.HTTP_201_CREATED)
def create_version(work: WorkDep, session: SessionDep, name: str, body: DefinitionSource, ctx: CtxDep,
                   actor: AdminDep) -> VersionCreated:
    """Store and activate a new version: new cases take it, running cases keep theirs."""
    definition = work.run(lambda uow: store_version(uow, ctx.registry, body.source, name, actor=actor))
    session.flush()
    return VersionCreated(name=name, version=definition.version, diagram=to_mermaid(definition))


@router.post("/workflows/{name}/simulate", response_model=list[SimulatedEntry])
def simulate_definition(name: str, body: SimulationIn, ctx: CtxDep, _admin: AdminDep) -> list[SimulatedEntry]:
    """Show what a configuration would do from a start date, and which dates moved for weekends and holidays."""
    if body.source:
        definition = parse_definition(body.source, name)
    else:
        definition = ctx.registry.machine(name, body.version).definition
    try:
        entries = simulate(definition, start=body.start, deadline=body.deadline,
                           reminder_offsets=body.reminder_offsets, path=body.path, lang=body.lang)
    except ValueError as exc:
        field = str(exc).split(":", 1)[0] if ":" in str(exc) else "path"
        raise InvalidInput(field if field in ("path", "reminder_offsets") else "reminder_offsets", str(exc)) from None
    return [SimulatedEntry(at=e.at, local_date=e.local_date, state=e.state, kind=e.kind, name=e.name,
                           offset=e.offset, trigger=e.trigger, template=e.template, to=e.to, nominal=e.nominal,
                           moved=e.moved, reason=e.reason) for e in entries]


@router.post("/workflows/{name}/migrations", response_model=MigrationOut)
def migrate(work: WorkDep, name: str, body: MigrationIn, ctx: CtxDep, actor: AdminDep) -> MigrationOut:
    """Move running cases to another version with a state mapping; a mapping that would strand a case is refused."""
    ctx.registry.machine(name, body.from_version)
    ctx.registry.machine(name, body.to_version)
    if body.from_version == body.to_version:
        raise InvalidInput("to_version", "must differ from from_version")
    report = work.run(lambda uow: migrate_cases(uow, name, body.from_version, body.to_version, body.mapping,
                                                      actor))
    return MigrationOut(moved=report.moved, cases=report.cases)


@router.get("/templates", response_model=list[str])
def list_templates(_admin: AdminDep) -> list[str]:
    """List the email templates (each exists in fi, sv and en)."""
    return template_names()


@router.get("/templates/{name}", response_model=dict[str, dict[str, dict[str, Any]]])
def get_template(name: str, session: SessionDep, _admin: AdminDep) -> Any:
    """Return a template's sources per language and part, and which are edited."""
    return template_store.sources(session, name)


@router.put("/templates/{name}/{lang}", response_model=dict[str, str])
def save_template(session: SessionDep, name: str, lang: str, body: TemplateParts, ctx: CtxDep,
                  actor: AdminDep) -> dict[str, str]:
    """Save edited parts of one language; returns the preview with sample data."""
    if not body.given():
        raise InvalidInput("subject", "send at least one of subject, txt, html")
    preview = template_store.save(session, ctx.registry, name, lang, body.given(), actor_id=actor.person_id,
                                  now=ctx.clock.now())
    session.flush()
    return preview


@router.delete("/templates/{name}/{lang}", status_code=status.HTTP_204_NO_CONTENT)
def revert_template(session: SessionDep, name: str, lang: str, ctx: CtxDep, _admin: AdminDep) -> None:
    """Go back to the shipped text of one language."""
    if lang not in LANGUAGES:
        raise InvalidInput("lang", f"must be one of {', '.join(LANGUAGES)}")
    template_store.sources(session, name)
    template_store.revert(session, ctx.registry, name, lang)
    session.flush()


@router.post("/templates/{name}/preview", response_model=dict[str, str])
def preview_template(name: str, body: PreviewIn, session: SessionDep, _admin: AdminDep) -> dict[str, str]:
    """Render a template (with unsaved edits) in a language with sample data."""
    template_store.sources(session, name)
    return template_store.check(name, body.lang, body.given())
