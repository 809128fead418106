"""Answer "which triggers may this actor fire on this case now" from the definition: source states, roles, guards.

Buttons, `allowed_triggers` in the API and the engine's own refusals all ask here, so they cannot disagree.
Roles come from the case (its coordinator, its parent's coordinator, its organisation) and the actor; the
definition says which roles each transition needs. Guards run too: inside a unit of work on the locked rows,
and on a page or an API read through `CaseReader`, which offers guards the same reads on a plain session.

Reading has one answer too: `case_access` (one case) and `visible_cases` / `owned_cases` / `full_cases` (SQL over
many) say how much of a case an actor may read, and every read route and page asks them (see `ReadAccess`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any, Protocol

from sqlalchemy import ColumnElement, or_, select
from sqlmodel import Session, col

from engine.actors import Actor
from engine.errors import CaseNotFound
from engine.machine import WorkflowMachine
from engine.models import Case, Person
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


# -- reading: who may open a case, and how much of it -------------------------------------------------------------

class ReadAccess(IntEnum):
    """How much of one case an actor may read; every read route asks `case_access` (deny by default).

    NONE: the case does not exist for the actor (404, like an unknown id).
    SHARED: the case is the common frame of a case of the actor's organisation (an agreement seen by a party, a
        nomination request seen by an asked organisation): its shared facts (state, text, versions, who approved
        and signed), never another organisation's mail, timers, proposals or addresses.
    OWN: the actor's organisation's own case (its party case, its proposal, its report request), in full.
    FULL: administrators, the engine, and the coordinator of the case or of its parent: everything.
    """

    NONE = 0
    SHARED = 1
    OWN = 2
    FULL = 3


def organisation_reader(organisation_id: int | None) -> Actor:
    """Return the reader an organisation's calendar feed reads as: a member without roles, never the engine.

    `person_id=0` matches no coordinator (ids start at 1) and keeps `is_system` false: a feed of an organisation
    sees exactly what any member of that organisation may open.
    """
    return Actor(person_id=0, name="organisation", roles=frozenset(), organisation_id=organisation_id)


def _coordinated(actor: Actor) -> list[ColumnElement[bool]]:
    coordinated = select(col(Case.id)).where(col(Case.coordinator_id) == actor.person_id)
    return [col(Case.coordinator_id) == actor.person_id, col(Case.parent_id).in_(coordinated)]


def full_cases(actor: Actor) -> ColumnElement[bool]:
    """Return a SQL condition selecting the cases the actor reads in full (FULL)."""
    if actor.is_admin or actor.is_system:
        return col(Case.id).is_not(None)
    return or_(*_coordinated(actor))


def owned_cases(actor: Actor) -> ColumnElement[bool]:
    """Return a SQL condition selecting the cases whose own details (timers, mail) the actor reads (OWN or FULL)."""
    if actor.is_admin or actor.is_system:
        return col(Case.id).is_not(None)
    conds = _coordinated(actor)
    if actor.organisation_id is not None:
        conds.append(col(Case.organisation_id) == actor.organisation_id)
    return or_(*conds)


def visible_cases(actor: Actor) -> ColumnElement[bool]:
    """Return a SQL condition selecting the cases an actor may open at all (SHARED or more; deny by default)."""
    if actor.is_admin or actor.is_system:
        return col(Case.id).is_not(None)
    conds = _coordinated(actor)
    if actor.organisation_id is not None:
        conds += [col(Case.organisation_id) == actor.organisation_id,
                  col(Case.id).in_(select(col(Case.parent_id))
                                   .where(col(Case.organisation_id) == actor.organisation_id))]
    return or_(*conds)


def case_access(session: Session, actor: Actor | None, case: Case) -> ReadAccess:
    """Return how much of one case the actor may read (no actor: nothing)."""
    if actor is None:
        return ReadAccess.NONE
    if actor.is_admin or actor.is_system:
        return ReadAccess.FULL
    if actor.person_id is not None and actor.person_id == case.coordinator_id:
        return ReadAccess.FULL
    if case.parent_id is not None:
        parent = session.get(Case, case.parent_id)
        if parent is not None and actor.person_id is not None and parent.coordinator_id == actor.person_id:
            return ReadAccess.FULL
    if actor.organisation_id is None:
        return ReadAccess.NONE
    if case.organisation_id == actor.organisation_id:
        return ReadAccess.OWN
    member = session.execute(select(col(Case.id)).where(col(Case.parent_id) == case.id,
                                                        col(Case.organisation_id) == actor.organisation_id)
                             .limit(1)).first()
    return ReadAccess.SHARED if member is not None else ReadAccess.NONE


def readable(session: Session, actor: Actor | None, case_id: int,
             at_least: ReadAccess = ReadAccess.SHARED) -> tuple[Case, ReadAccess]:
    """Return a case and the actor's access to it; unknown, hidden and not-enough are all 404 (CaseNotFound)."""
    case = session.get(Case, case_id)
    access = case_access(session, actor, case) if case is not None else ReadAccess.NONE
    if case is None or access < at_least:
        raise CaseNotFound(f"no case with id {case_id}", message_id="error.case_not_found", params={"id": case_id})
    return case, access


_EMAIL = re.compile(r"[^\s@<>\"',;:()\[\]]+@[^\s@<>\"',;:()\[\]]+\.[A-Za-z]{2,}")


def redact_addresses(value: Any, keep: frozenset[str] = frozenset()) -> Any:
    """Return a JSON value without the email addresses in it (but those in `keep`): entries holding one are dropped.

    A timeline or a payload read with SHARED access passes through here, so an address written by any workflow,
    now or later, is not shown to another organisation (redact, don't refuse).
    """
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(v, str) and _foreign(v, keep):
                continue
            out[k] = redact_addresses(v, keep)
        return out
    if isinstance(value, list):
        return [redact_addresses(v, keep) for v in value if not (isinstance(v, str) and _foreign(v, keep))]
    return value


def _foreign(text: str, keep: frozenset[str]) -> bool:
    return any(m.lower() not in keep for m in _EMAIL.findall(text))


def own_addresses(session: Session, actor: Actor | None) -> frozenset[str]:
    """Return the addresses a non-FULL reader may see: their own and their organisation's people's (lower case)."""
    if actor is None:
        return frozenset()
    conds = [col(Person.id) == actor.person_id]
    if actor.organisation_id is not None:
        conds.append(col(Person.organisation_id) == actor.organisation_id)
    return frozenset(e.lower() for e in session.execute(select(col(Person.email)).where(or_(*conds))).scalars())
