"""Answer "which triggers may this actor fire on this case now" from the definition: source states, roles, guards.

Buttons, `allowed_triggers` in the API and the engine's own refusals all ask here, so they cannot disagree.
Roles come from the case (its coordinator, its parent's coordinator, its organisation) and the actor; the
definition says which roles each transition needs. Guards are evaluated only inside a unit of work (they may
read other cases under the lock); a read without one answers from states and roles alone.
"""

from __future__ import annotations

from typing import Protocol

from engine.actors import Actor
from engine.machine import WorkflowMachine


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
