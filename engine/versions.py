"""Definition versions written by administrators, and explicit migration of running cases between versions.

Running cases keep the version they started on; new cases take the newest. Moving running cases needs a state
mapping that covers every state a running case is in; a mapping that would strand a case is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlmodel import Session, col

from engine.actors import Actor
from engine.definition import WorkflowDefinition, parse_definition
from engine.errors import InvalidInput, NotFound
from engine.models import Case, StoredDefinition, table_of
from engine.registry import Registry
from engine.service import UnitOfWork
from engine.timers import rearm

CASE = table_of(Case)


def load_stored(session: Session, registry: Registry) -> int:
    """Register every stored version not loaded yet (at start-up); return how many."""
    count = 0
    for row in session.scalars(select(StoredDefinition).order_by(col(StoredDefinition.name),
                                                               col(StoredDefinition.version))):
        if (row.name, row.version) not in registry.machines:
            registry.register(parse_definition(row.source, f"stored {row.name} v{row.version}"),
                              registry.guards.get(row.name))
            count += 1
    return count


def check_version(registry: Registry, source: str, name: str) -> WorkflowDefinition:
    """Validate a new version of a known workflow; raise DefinitionError or InvalidInput."""
    definition = parse_definition(source, f"{name} (new version)")
    if definition.name != name:
        raise InvalidInput("name", f"the definition is named {definition.name!r}, not {name!r}")
    latest = registry.latest_version(name)
    if definition.version != latest + 1:
        raise InvalidInput("version", f"must be {latest + 1} (the newest is {latest})")
    missing = {c for t in definition.transitions for c in t.conditions} - set(registry.guards.get(name, {}))
    if missing:
        raise InvalidInput("transitions", f"unknown guard(s) {', '.join(sorted(missing))}; known: "
                           f"{', '.join(sorted(registry.guards.get(name, {}))) or 'none'}")
    return definition


def store_version(uow: UnitOfWork, registry: Registry, source: str, name: str, *,
                  actor: Actor) -> WorkflowDefinition:
    """Validate and store a new version; it is activated (new cases take it) once the transaction commits."""
    definition = check_version(registry, source, name)
    uow.session.add(StoredDefinition(name=name, version=definition.version, source=source,
                                     created_by=actor.person_id, created_at=uow.now))
    uow.session.flush()  # two saves of the same version: the second is refused here by the unique key

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
