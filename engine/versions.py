"""Definition versions written by administrators, and explicit migration of running cases between versions.

Running cases keep the version they started on; new cases take the newest. Moving running cases needs a state
mapping that covers every state a running case is in; a mapping that would strand a case is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from engine.actors import Actor
from engine.definition import WorkflowDefinition, parse_definition, problems_at
from engine.errors import Conflict, DefinitionError, InvalidInput, NotFound
from engine.models import Case, StoredDefinition, table_of
from engine.registry import Registry
from engine.service import UnitOfWork
from engine.timers import rearm

CASE = table_of(Case)
log = logging.getLogger(__name__)
# registry.services key of the mail layer's check: template names -> {name: [languages it is missing in]}
# (engine names no upper layer; notifications.template_store registers it with the overrides it loads)
TEMPLATE_CHECK = "email_template_check"
TemplateCheck = Callable[[Iterable[str]], dict[str, list[str]]]


def load_stored(session: Session, registry: Registry) -> int:
    """Register every stored version not loaded yet (at start-up); return how many."""
    count = 0
    for row in session.scalars(select(StoredDefinition).order_by(col(StoredDefinition.name),
                                                               col(StoredDefinition.version))):
        if (row.name, row.version) not in registry.machines:
            try:
                definition = parse_definition(row.source, f"stored {row.name} v{row.version}")
            except DefinitionError as exc:  # stored before a check it fails was added: start without it
                log.error("stored definition %s v%s is not valid and is not loaded: %s", row.name, row.version,
                          exc.detail)
                continue
            registry.register(definition, registry.guards.get(row.name))
            count += 1
    return count


def runtime_problems(definition: WorkflowDefinition, *, guards: Iterable[str] | None,
                     templates: TemplateCheck | None) -> list[tuple[tuple[Any, ...], str]]:
    """Return what would fail when the definition runs: unknown guards, templates missing in a language.

    `guards` are the workflow's registered guard names (None: not checked); `templates` the mail layer's check.
    """
    found: list[tuple[tuple[Any, ...], str]] = []
    if guards is not None:
        known = set(guards)
        for i, t in enumerate(definition.transitions):
            for j, condition in enumerate(t.conditions):
                if condition not in known:
                    found.append((("transitions", i, "conditions", j),
                                  f"unknown guard {condition!r}; known: {', '.join(sorted(known)) or 'none'}"))
    named = definition.templates()
    if templates is not None and named:
        missing = templates({name for _, name in named})
        for loc, name in named:
            if missing.get(name):
                found.append((loc, f"email template {name!r} does not exist in {', '.join(missing[name])}"))
    return found


def check_version(registry: Registry, source: str, name: str,
                  templates: TemplateCheck | None = None) -> WorkflowDefinition:
    """Validate a new version of a known workflow completely; raise DefinitionError or InvalidInput.

    Besides the definition itself: its guards must be registered for the workflow and every email template it
    names must exist in every language (`templates`, default: the check the mail layer registered), so that a
    saved version cannot fail when it runs. Every such problem is listed at its line.
    """
    definition = parse_definition(source, f"{name} (new version)")
    if definition.name != name:
        raise InvalidInput("name", f"the definition is named {definition.name!r}, not {name!r}")
    latest = registry.latest_version(name)
    if definition.version == latest and latest > 1:  # the page was shown before someone saved this version
        raise Conflict(f"{name} version {latest} was saved meanwhile; start from the newest version",
                       message_id="definition.error.version_taken", params={"name": name, "version": latest})
    if definition.version != latest + 1:
        raise InvalidInput("version", f"must be {latest + 1} (the newest is {latest})")
    found = runtime_problems(definition, guards=registry.guards.get(name, {}),
                             templates=templates or registry.services.get(TEMPLATE_CHECK))
    if found:
        raise problems_at(source, f"{name} (new version)", found)
    return definition


def store_version(uow: UnitOfWork, registry: Registry, source: str, name: str, *,
                  actor: Actor) -> WorkflowDefinition:
    """Validate and store a new version; it is activated (new cases take it) once the transaction commits."""
    definition = check_version(registry, source, name)
    taken = Conflict(f"{name} version {definition.version} was saved meanwhile; start from the newest version",
                     message_id="definition.error.version_taken",
                     params={"name": name, "version": definition.version})
    stored = uow.session.execute(select(col(StoredDefinition.id)).where(
        col(StoredDefinition.name) == name, col(StoredDefinition.version) == definition.version)).first()
    if stored is not None:  # another process saved it (this one's registry does not know it yet)
        raise taken
    try:
        with uow.session.begin_nested():  # a savepoint: the refused insert is undone, the transaction goes on
            uow.session.add(StoredDefinition(name=name, version=definition.version, source=source,
                                             created_by=actor.person_id, created_at=uow.now))
            uow.session.flush()  # two saves at once: the unique key refuses the second (PostgreSQL waits here)
    except IntegrityError:
        raise taken from None

    def activate() -> None:
        if (name, definition.version) not in registry.machines:
            registry.register(definition, registry.guards.get(name))
    uow.after_commit(activate)
    return definition


@dataclass
class MigrationReport:
    """What a migration moved."""

    moved: dict[str, int] = field(default_factory=dict)  # "old -> new" state: cases
    cases: list[int] = field(default_factory=list)


def migrate_cases(uow: UnitOfWork, name: str, from_version: int, to_version: int, mapping: dict[str, str],
                  actor: Actor) -> MigrationReport:
    """Move every running case of a version to another with a state mapping, or refuse naming what strands."""
    source = uow.registry.machine(name, from_version).definition
    target = uow.registry.machine(name, to_version).definition
    for old, new in mapping.items():
        if old not in source.states:
            raise InvalidInput(f"mapping.{old}", f"{old!r} is not a state of version {from_version}")
        if new not in target.states:
            raise InvalidInput(f"mapping.{old}", f"{new!r} is not a state of version {to_version}")
    running = uow.session.execute(select(col(Case.id), col(Case.state)).where(
        col(Case.workflow) == name, col(Case.workflow_version) == from_version,
        col(Case.state).not_in(source.final_states)).order_by(col(Case.id))).all()
    stranded = sorted({state for _id, state in running if mapping.get(state, state) not in target.states})
    if stranded:
        raise InvalidInput("mapping", f"running cases are in {', '.join(stranded)}, which version {to_version} does "
                           f"not have; map each to a state of version {to_version}")
    if not running and not uow.registry.machines.get((name, from_version)):
        raise NotFound(f"no workflow {name!r} version {from_version}")
    report = MigrationReport()
    for case_id, _state in running:
        case = uow.case(case_id)
        new_state = mapping.get(case.state, case.state)
        uow.session.execute(update(CASE).where(CASE.c.id == case.id).values(
            workflow_version=to_version, state=new_state, version=case.version + 1, updated_at=uow.now))
        old_state = case.state
        case.workflow_version, case.state, case.version = to_version, new_state, case.version + 1
        uow._record(case, "migrate", "CaseMigrated", old_state, new_state, actor,
                    {"from_version": from_version, "to_version": to_version}, None)
        rearm(uow, case, f"migrated to version {to_version}")
        key = f"{old_state} -> {new_state}"
        report.moved[key] = report.moved.get(key, 0) + 1
        report.cases.append(case.id)
    return report
