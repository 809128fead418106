"""Answer "which triggers may this actor fire on this case now" from the definition: source states, roles, guards.

Buttons, `allowed_triggers` in the API and the engine's own refusals all ask here, so they cannot disagree.
Roles come from the case (its coordinator, its parent's coordinator, its organisation) and the actor; the
definition says which roles each transition needs. Guards run too: inside a unit of work on the locked rows,
and on a page or an API read through `CaseReader`, which offers guards the same reads on a plain session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlmodel import Session, col

from engine.actors import Actor
from engine.errors import CaseNotFound
from engine.machine import WorkflowMachine
from engine.models import Case
from engine.records import CaseRow
from engine.registry import Registry


class CaseFacts(Protocol):
    """What deciding a role needs to know of a case (a locked `CaseRow` or a read `Case`)."""

    @property
    def workflow(self) -> str: ...
    @property
    def workflow_version(self) -> int: ...
    @property
    def state(self) -> str: ...
    @property
    def coordinator_id(self) -> int | None: ...
    @property
    def organisation_id(self) -> int | None: ...


def roles_held(actor: Actor, case: CaseFacts, parent_coordinator_id: int | None = None) -> set[str]:
    """Return the roles an actor holds on one case."""
    if actor.is_system:
        return {"system"}
    roles: set[str] = set()
    if actor.is_admin:
        roles.add("admin")
    if "coordinator" in actor.roles and actor.person_id is not None \
            and actor.person_id in (case.coordinator_id, parent_coordinator_id):
        roles.add("coordinator")
    if case.organisation_id is not None and actor.organisation_id == case.organisation_id \
            and "signatory" in actor.roles:
        roles.add("party")
    return roles


def permitted_by_roles(machine: WorkflowMachine, state: str, held: set[str]) -> list[str]:
    """Return the triggers allowed in a state that need a role among `held` (definition order)."""
    out = []
    for trigger in machine.allowed_triggers(state):
        route = machine.route(state, trigger)
        if route is not None and route.roles & held:
            out.append(trigger)
    return out


def permitted_now(machine: WorkflowMachine, actor: Actor, case: CaseFacts,
                  parent_coordinator_id: int | None = None) -> list[str]:
    """Return the triggers an actor may fire on a case read outside a unit of work (states and roles only)."""
    return permitted_by_roles(machine, case.state, roles_held(actor, case, parent_coordinator_id))


class CaseReader:
    """What guards read (cases, children, the session), on a read session: no lock, nothing written."""

    def __init__(self, registry: Registry, session: Session, now: datetime) -> None:
        self.registry = registry
        self.session = session
        self.now = now
        self._rows: dict[int, CaseRow] = {}

    @staticmethod
    def _row(case: Case) -> CaseRow:
        return CaseRow(case.id or 0, case.workflow, case.workflow_version, case.state, case.version, case.parent_id,
                       case.organisation_id, case.coordinator_id, case.title, case.deadline, dict(case.data),
                       case.event_count, case.head_hash)

    def case(self, case_id: int) -> CaseRow:
        """Return a case as a row (raises CaseNotFound)."""
        row = self._rows.get(case_id)
        if row is None:
            found = self.session.get(Case, case_id)
            if found is None:
                raise CaseNotFound(f"no case with id {case_id}", message_id="error.case_not_found",
                                   params={"id": case_id})
            row = self._rows[case_id] = self._row(found)
        return row

    def children(self, parent_id: int) -> list[CaseRow]:
        """Return a case's children in id order."""
        rows = self.session.execute(select(Case).where(col(Case.parent_id) == parent_id)
                                    .order_by(col(Case.id))).scalars().all()
        out = []
        for found in rows:
            row = self._rows.setdefault(found.id or 0, self._row(found))
            out.append(row)
        return out

    def machine_of(self, case: CaseRow) -> WorkflowMachine:
        """Return the machine of a case's definition version."""
        return self.registry.machine(case.workflow, case.workflow_version)

    def permitted(self, case_id: int, actor: Actor | None) -> list[str]:
        """Return the triggers an actor may fire on a case now: state, roles and guards, as the engine decides."""
        if actor is None:
            return []
        case = self.case(case_id)
        parent_coordinator = self.case(case.parent_id).coordinator_id if case.parent_id is not None else None
        machine = self.machine_of(case)
        out = []
        for trigger in permitted_by_roles(machine, case.state, roles_held(actor, case, parent_coordinator)):
            if machine.would_pass(case.state, trigger, GuardContext(self, case, actor, trigger)):
                out.append(trigger)
        return out


@dataclass
class GuardContext:
    """What a guard sees when asked without firing (the same fields a firing trigger's context has)."""

    uow: CaseReader
    case: CaseRow
    actor: Actor
    trigger: str
    payload: dict[str, Any] = field(default_factory=dict)
    rejection: str | None = None

    def refuse(self, detail: str, message_id: str, **params: Any) -> bool:
        """Note why the guard refused; nothing is raised when only asking."""
        self.rejection = detail
        return False


def permitted_for(registry: Registry, session: Session, case: Case, actor: Actor | None,
                  now: datetime | None = None) -> list[str]:
    """Return the triggers an actor may fire on a case, read on a session (no actor: none; deny by default)."""
    return CaseReader(registry, session, now or datetime.now(UTC)).permitted(case.id or 0, actor)
